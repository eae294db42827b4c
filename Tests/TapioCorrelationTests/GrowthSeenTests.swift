import Foundation
import Testing
import TapioModel
@testable import TapioCorrelation

/// How long the growth behind an OOM prediction has been seen ("growing for …"): it weighs the prediction's
/// probability, so under a GC sawtooth it must not swing with the phase of the teeth.
@Suite("How long growth has been seen", .timeLimit(.minutes(2)))
struct GrowthSeenTests {
    static let mi = 1_048_576.0
    /// On a minute's start, so the series' minutes are whole.
    static let t0: UInt64 = 1_795_000_020 * 1_000_000_000

    /// `oom-gc-leak-1`'s shape: 45-s teeth of 300Mi on a floor climbing 1Mi/s from 600Mi, into 2Gi.
    static func sawtooth(_ t: Double) -> Double {
        600 * mi + mi * t + 300 * mi * (t.truncatingRemainder(dividingBy: 45) / 45)
    }

    @Test("under a sawtooth a minute's maximum is on the curve when the curve passes it anywhere in that minute")
    func aSawtoothMinuteIsOnItsPeaksLine() {
        var h = MemoryHistory()
        for k in 0..<600 { h.add(at: Self.t0 + UInt64(k) * 1_000_000_000, value: UInt64(Self.sawtooth(Double(k)))) }
        let now = Self.t0 + 600 * 1_000_000_000
        // The teeth's tops: 900Mi + 1Mi/s at their drops (x seconds relative to now).
        let peaks = { (x: Double) -> Double in 900 * Self.mi + Self.mi * (600 + x) }
        // Back from minute 9: all nine minutes before it lie on the line — each tooth's top within 20Mi of it,
        // though up to 45 s (45Mi of climb) before its minute's end.
        let run = h.run(before: Int64(now / MemoryHistory.minuteNanos) - 1, now: now, curve: peaks,
                        tolerance: { _ in 20 * Self.mi }, peakAnywhere: true)
        #expect(run == 9 * 60, "\(run) s")
        // Read as a steady climb, whose minutes peak at their end, the teeth are off the line.
        #expect(h.run(before: Int64(now / MemoryHistory.minuteNanos) - 1, now: now, curve: peaks,
                      tolerance: { _ in 20 * Self.mi }) < 9 * 60)
        // A curve the minutes do not follow (twice as steep) is not extended by the minute's span.
        let steep = { (x: Double) -> Double in 900 * Self.mi + 2 * Self.mi * (600 + x) }
        #expect(h.run(before: Int64(now / MemoryHistory.minuteNanos) - 1, now: now, curve: steep,
                      tolerance: { _ in 20 * Self.mi }, peakAnywhere: true) <= 60)
    }

    @Test("under a GC sawtooth the growth seen falls back by at most a minute while the prediction stands")
    func growthSeenUnderASawtoothOnlyGrows() throws {
        var falls: [String] = []
        var predicted = 0
        for seed in UInt64(1)...6 {
            var noise = TestNoise(state: seed &* 0x9E37_79B9_7F4A_7C15 | 1)
            let out = TestEvents.replayMemory(seconds: 1150, limit: 2 << 30) { t in
                Self.sawtooth(t) + noise.gauss() * 0.003 * 2048 * Self.mi
            }
            var last: (at: UInt64, seen: Double)?
            for p in out where p.identity.type == .oomPrediction && p.change != .resolved {
                let texts = p.spec.evidence.map(\.description)
                guard let text = texts.lazy.compactMap({ d in
                    d.range(of: #"growing for [0-9hms]+"#, options: .regularExpression).map { String(d[$0]) }
                }).first, let seen = Self.seconds(String(text.dropFirst("growing for ".count))) else { continue }
                predicted += 1
                // A noisy minute off the curve may end the run one minute sooner (plus the evidence's rounding);
                // the phase of the teeth may not: before, it fell back by up to twelve minutes (945 → 225 s).
                if let l = last, p.change != .new, seen < l.seen - 70 {
                    falls.append("seed \(seed) at \((p.observedAt - TestEvents.memoryStart) / 1_000_000_000) s: \(Int(l.seen)) → \(Int(seen)) s")
                }
                last = (p.observedAt, seen)
            }
        }
        #expect(predicted > 100)
        #expect(falls.isEmpty, "\(falls)")
    }

    /// Seconds in a duration as the evidence writes it ("1h2m3s").
    static func seconds(_ s: String) -> Double? {
        var total = 0.0, number = ""
        for c in s {
            if c.isNumber { number.append(c); continue }
            guard let v = Double(number) else { return nil }
            switch c {
            case "h": total += v * 3600
            case "m": total += v * 60
            case "s": total += v
            default: return nil
            }
            number = ""
        }
        return number.isEmpty ? total : nil
    }
}
