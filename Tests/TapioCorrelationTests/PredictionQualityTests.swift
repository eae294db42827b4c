import Foundation
import Testing
import TapioModel
@testable import TapioCorrelation

/// What an OOM prediction's probability and severity must do as evidence comes and goes (issue 12), on series fed
/// straight into the engine. Each test compares the engine with itself on two series that differ in one respect.
@Suite("OOM prediction quality", .timeLimit(.minutes(3)))
struct PredictionQualityTests {
    static let mi = 1_048_576.0
    static let t0: UInt64 = 1_795_000_000 * 1_000_000_000

    /// Feeds one sample a second (`value` in bytes at second k, until it returns nil) into a fresh engine and
    /// returns the OOM prediction visible at each second, as the engine holds it (nil: none active).
    static func run(seconds: Int, limit: UInt64, value: (Int) -> Double?) -> [Prediction?] {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var seen: [Prediction?] = []
        for k in 0...seconds {
            let t = t0 + UInt64(k) * 1_000_000_000
            if let v = value(k) {
                engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(max(0, v)), limit: limit, at: t), now: t, into: &out)
            } else {
                engine.tick(now: t, into: &out)
            }
            seen.append(engine.activeInsights.first { $0.identity.type == .oomPrediction }?.spec.prediction)
        }
        return seen
    }

    @Test("probability grows with evidence: a young climb is not sure, the same climb later is surer")
    func growsWithEvidence() throws {
        // 100Mi + 1Mi/s into a 400Mi limit: the kill would come at 300 s.
        let seen = Self.run(seconds: 280, limit: 400 << 20) { 100 * Self.mi + Self.mi * Double($0) }
        let first = try #require(seen.firstIndex { $0 != nil }, "no prediction at all")
        let early = try #require(seen[first]?.probability)
        let late = try #require(seen[270]?.probability)
        #expect(early < late, "first (at \(first) s) \(early), at 270 s \(late)")
        // A series a minute old cannot be near-certain.
        if let p60 = seen[60]?.probability { #expect(p60 < 0.9) }
        #expect(early < 0.9)
    }

    @Test("probability falls when the time to the limit recedes: the same climb toward a higher limit")
    func fallsWhenTimeToOOMRecedes() throws {
        let climb: (Int) -> Double? = { 100 * Self.mi + Self.mi * Double($0) }
        let near = Self.run(seconds: 200, limit: 400 << 20, value: climb)
        let far = Self.run(seconds: 200, limit: 900 << 20, value: climb)
        let pNear = try #require(near[200]?.probability)
        let pFar = far[200]?.probability ?? 0
        #expect(pFar < pNear, "limit 900Mi: \(pFar), limit 400Mi: \(pNear)")
    }

    @Test("probability falls when the curve bends over, and a curve levelling off below the limit is no OOM")
    func fallsWhenTheCurveBends() throws {
        // Both start alike: 100Mi + 1.5Mi/s. One keeps going; one decelerates (exponential approach).
        let L: UInt64 = 700 << 20
        let straight = Self.run(seconds: 240, limit: L) { 100 * Self.mi + 1.5 * Self.mi * Double($0) }
        // Approaches 800Mi (above the limit) with τ = 400 s: the same initial slope, bending.
        let bending = Self.run(seconds: 240, limit: L) { k in
            800 * Self.mi - 700 * Self.mi * exp(-Double(k) / (700.0 / 1.5))
        }
        let pStraight = try #require(straight[240]?.probability)
        let pBending = bending[240]?.probability ?? 0
        #expect(pBending < pStraight, "bending \(pBending), straight \(pStraight)")
        // Levels off at 500Mi under the 700Mi limit (τ 150 s): nothing to predict once the bend is clear.
        let saturating = Self.run(seconds: 900, limit: L) { k in 500 * Self.mi - 400 * Self.mi * exp(-Double(k) / 150) }
        #expect(saturating[600...].allSatisfy { $0 == nil }, "still predicting at \(saturating[600...].firstIndex { $0 != nil } ?? -1) s")
    }

    @Test("a periodic ramp seen before is not predicted again")
    func periodicRampIsRecognised() throws {
        // Every 8 minutes: 6 minutes of climbing 150 → 420Mi of a 512Mi limit, then back to 150Mi. Period longer
        // than the window, so inside the window each ramp looks like a leak.
        let period = 480, ramp = 360.0
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0...(6 * period) {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            let phase = Double(k % period)
            let ws = 150 * Self.mi + (phase < ramp ? 270 * Self.mi * phase / ramp : 0)
            engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(ws), limit: 512 << 20, at: t), now: t, into: &out)
        }
        let said = out.filter { $0.identity.type == .oomPrediction && $0.change != .resolved }
        // From the third ramp on (after two drops), nothing new is said.
        let late = said.filter { $0.observedAt >= Self.t0 + UInt64(2 * period) * 1_000_000_000 }
        #expect(late.isEmpty, "\(late.map { "\(($0.observedAt - Self.t0) / 1_000_000_000) s: \($0.spec.title)" })")
    }

    @Test("a leak that grows across cycles is still caught before the kill")
    func leakAcrossCyclesIsCaught() throws {
        // The same 8-minute ramps, but each peak 40Mi higher: 420, 460, 500… the fourth reaches the 560Mi limit.
        let period = 480, ramp = 360.0
        let limit: UInt64 = 560 << 20
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var killedAt: Int?
        for k in 0...(8 * period) {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            let cycle = Double(k / period), phase = Double(k % period)
            let base = 150 * Self.mi + 40 * Self.mi * cycle
            let ws = base + (phase < ramp ? 270 * Self.mi * phase / ramp : 0)
            if ws >= Double(limit) { killedAt = k; break }
            engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(ws), limit: limit, at: t), now: t, into: &out)
        }
        let kill = try #require(killedAt)
        let warned = out.filter {
            $0.identity.type == .oomPrediction && $0.change != .resolved && ($0.spec.severity >= .warning)
                && $0.observedAt >= Self.t0 + UInt64(2 * period) * 1_000_000_000
        }
        #expect(!warned.isEmpty, "no Warning in the cycles before the kill at \(kill) s")
    }

    @Test("severity follows probability and time-to-OOM together")
    func severityTable() {
        typealias E = CorrelationEngine
        #expect(E.predictionSeverity(probability: 0.9, timeToOOM: 300) == .critical)
        #expect(E.predictionSeverity(probability: 0.9, timeToOOM: 1800) == .warning)
        #expect(E.predictionSeverity(probability: 0.45, timeToOOM: 45) == .critical)
        #expect(E.predictionSeverity(probability: 0.35, timeToOOM: 200) == .warning)
        #expect(E.predictionSeverity(probability: 0.35, timeToOOM: 900) == .info)
        #expect(E.predictionSeverity(probability: 0.2, timeToOOM: 30) == .info)
    }

    @Test("a fast leak gets an early prediction at least 30 s before its kill, escalating as it goes")
    func fastLeakEarlyWarning() throws {
        // 10Mi + 3.6Mi/s into 300Mi: killed at ~80 s.
        let seen = Self.run(seconds: 79, limit: 300 << 20) { 10 * Self.mi + 3.625 * Self.mi * Double($0) }
        let first = try #require(seen.firstIndex { $0 != nil }, "no prediction before the kill")
        #expect(first <= 50, "first prediction at \(first) s")
        let probabilities = seen[first...].compactMap { $0?.probability }
        #expect(probabilities.last! > probabilities.first!, "\(probabilities)")
    }

    @Test("the long history holds a fixed number of minutes, whatever the series' length")
    func historyIsBounded() {
        var h = MemoryHistory()
        for k in 0..<(10 * 3600) { h.add(at: Self.t0 + UInt64(k) * 1_000_000_000, value: UInt64(k) << 20) }
        #expect(h.minutes.count == MemoryHistory.capacity)
        #expect(MemoryLayout<MemoryHistory.Minute>.stride == 8)
        // A gap longer than the history starts it afresh.
        h.add(at: Self.t0 + 20 * 3600 * 1_000_000_000, value: 1)
        #expect(h.minutes.count == 1)
    }
}
