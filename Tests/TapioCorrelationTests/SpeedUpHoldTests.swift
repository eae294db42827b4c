import Foundation
import Testing
import TapioModel
@testable import TapioCorrelation

/// A speed-up the window has read keeps being read while its bend stays beyond two standard errors (issue 12: a
/// quadratic leak's prediction flipped between "OOM in 17m, Warning" and "in 44m, Info" as its bend came and went
/// around the four-error bar).
@Suite("Speed-up hold", .timeLimit(.minutes(2)))
struct SpeedUpHoldTests {
    static let mi = 1_048_576.0
    static let t0: UInt64 = 1_795_000_000 * 1_000_000_000
    static let bucket: UInt64 = 10_000_000_000
    static let window: UInt64 = 300_000_000_000

    /// Five minutes of `oom-accelerating-1`'s shape at 7–12 minutes into it (100Mi + 412Mi·(0.2u + 0.8u²), u = t/1600 s,
    /// into 512Mi), a sample a second with white noise of 0.5 % of the limit: its bend is about three standard
    /// errors, so some draws land between the bars.
    static func analysis(seed: UInt64, from start: Int) -> MemoryAnalysis? {
        var noise = TestNoise(state: seed &* 0x9E37_79B9_7F4A_7C15 | 1)
        var series = MemorySeries()
        var now: UInt64 = 0
        for k in start..<(start + 300) {
            let u = Double(k) / 1600
            let v = 100 * mi + 412 * mi * (0.2 * u + 0.8 * u * u) + noise.gauss() * 0.005 * 512 * mi
            now = t0 + UInt64(k) * 1_000_000_000
            _ = series.add(at: now, value: UInt64(max(0, v)), bucketNanos: bucket, windowNanos: window)
        }
        return MemoryAnalysis.analyze(series, now: now)
    }

    @Test("a bend between two and four standard errors counts only when a speed-up was read just before, and not across a drop")
    func theHoldLowersTheBarForTheSameClimb() throws {
        // A draw whose bend is between the bars (the parabola's z; its halves must not count on their own either).
        var found: MemoryAnalysis?
        search: for start in stride(from: 420, through: 720, by: 30) {
            for seed in UInt64(1)...40 {
                guard let a = Self.analysis(seed: seed, from: start), let p = a.parabola,
                      p.z > MemoryAnalysis.bendHoldZ + 0.3, p.z < MemoryAnalysis.bendZ - 0.3, !a.speedsUp else { continue }
                found = a
                break search
            }
        }
        var a = try #require(found, "no noise draw put the bend between the bars")
        #expect(a.shape.accel == 0, "unheld, a bend under four errors is read straight")
        a.speedUpHeld = true
        #expect(a.speedsUp)
        let held = a.shape
        #expect(held.accel > 0 && held.slope > 0)
        // Read as speeding up, the limit comes sooner than on the straight line.
        let straight = try #require(MemoryAnalysis.timeToLimit(level: a.level, slope: a.fit.slope, accel: 0, limit: 512 * Self.mi).time)
        let bent = try #require(MemoryAnalysis.timeToLimit(level: held.level, slope: held.slope, accel: held.accel, limit: 512 * Self.mi).time)
        #expect(bent < straight)
        // Memory dropped back inside the window: whatever was read before was another climb.
        a.dropBuckets = 1
        #expect(!a.speedsUp)
    }

    @Test("the engine holds a speed-up from one evaluation to the next, and forgets it with the container")
    func theEngineKeepsTheReading() throws {
        // A clean quadratic climb toward 1Gi: its bend is far beyond four errors.
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var t = Self.t0
        for k in 0...400 {
            t = Self.t0 + UInt64(k) * 1_000_000_000
            let v = 100 * Self.mi + 0.2 * Self.mi * Double(k) + 0.002 * Self.mi * Double(k * k)
            engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(v), limit: 1 << 30, at: t), now: t, into: &out)
        }
        let i = try #require(engine.index[.podContainer(TestEvents.ref("p"), container: "app")])
        #expect(engine.states[i].speedUpAt > 0 && engine.states[i].speedUpAt <= t)
        #expect(t - engine.states[i].speedUpAt <= 10_000_000_000, "the last evaluation read it")
        let prediction = try #require(engine.activeInsights.first { $0.identity.type == .oomPrediction })
        #expect(prediction.spec.evidence.contains { $0.description.contains("speeding up") })
        // A restart: the new container's curve is its own.
        let r = t + 1_000_000_000
        engine.ingest(TestEvents.restart(pod: "p", count: 1, reason: "Completed", at: r), now: r, into: &out)
        #expect(engine.states[i].speedUpAt == 0)
    }
}
