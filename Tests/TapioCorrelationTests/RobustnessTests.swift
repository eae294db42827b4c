import Testing
import TapioTestTraits
import TapioModel
@testable import TapioCorrelation

/// The silent cases again, over many noise draws: detectors re-test every bucket, so a rule that lets noise
/// through one time in fifty would fire in production every day.
@Suite("Memory detectors under noise", .cpuBound, .timeLimit(.minutes(5)))
struct RobustnessTests {
    static let mi = Double(1 << 20)

    func replay(seconds: Int, limit: UInt64? = 1 << 30, value: (Double) -> Double) -> [InsightUpdate] {
        TestEvents.replayMemory(seconds: seconds, limit: limit, value: value)
    }

    @Test("a noisy flat series stays silent", arguments: 1...40)
    func noisyFlat(seed: Int) {
        var r = TestNoise(state: UInt64(seed) &* 0x9e37_79b9_7f4a_7c15 | 1)
        let u = replay(seconds: 900, limit: 512 << 20) { _ in 420 * Self.mi + 20 * Self.mi * r.gauss() }
        #expect(u.isEmpty, "\(u.map(\.spec.title))")
    }

    @Test("a bounded GC sawtooth with jitter stays silent", arguments: 1...40)
    func sawtooth(seed: Int) {
        var r = TestNoise(state: UInt64(seed) &* 0x2545_f491_4f6c_dd1d | 1)
        let period = 20 + Double(seed % 5) * 9  // 20…56 s
        let u = replay(seconds: 900) { t in
            300 * Self.mi + 350 * Self.mi * (t.truncatingRemainder(dividingBy: period) / period) + 4 * Self.mi * r.gauss()
        }
        #expect(u.isEmpty, "\(u.map(\.spec.title))")
    }

    @Test("a single spike on a flat series stays silent", arguments: 1...20)
    func spike(seed: Int) {
        var r = TestNoise(state: UInt64(seed) | 1)
        let at = Double(60 + seed * 23)
        let u = replay(seconds: 600, limit: 512 << 20) { t in
            (t == at ? 500 : 300) * Self.mi + 2 * Self.mi * r.gauss()
        }
        #expect(u.isEmpty, "\(u.map(\.spec.title))")
    }

    @Test("a steady leak under jitter is predicted within 20 % of its first crossing (15 s in the last minute)", arguments: 1...20)
    func leak(seed: Int) throws {
        var r = TestNoise(state: UInt64(seed) | 1)
        let rate = 0.5 * Self.mi  // per second; 300Mi → 1Gi takes about 1448 s
        let values = (0...1500).map { t in 300 * Self.mi + rate * Double(t) + 3 * Self.mi * r.gauss() }
        // The kill comes when the jittery series first touches the limit, a little before its mean does.
        let trueOOM = Double(try #require(values.firstIndex { $0 >= 1024 * Self.mi }))
        let u = replay(seconds: Int(trueOOM) - 1) { t in values[Int(t)] }
        let predictions = u.filter { $0.identity.type == .oomPrediction && $0.change != .resolved }
        let first = try #require(predictions.first)
        let t0: UInt64 = 1_795_000_000 * 1_000_000_000
        #expect(trueOOM - Double(first.observedAt - t0) / 1e9 >= 60)
        for p in predictions {
            let truth = trueOOM - Double(p.observedAt - t0) / 1e9
            guard let predicted = seconds(p.spec.prediction?.timeToEvent) else { continue }
            // In the last minute the jitter of the crossing itself (σ 3Mi at 0.5Mi/s ≈ 6 s) dominates.
            #expect(abs(predicted - truth) <= max(0.2 * truth, 15), "predicted \(predicted)s, truth \(truth)s")
        }
    }
}
