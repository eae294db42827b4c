import TapioModel
@testable import TapioCorrelation

/// One pod's memory fed to a fresh engine, a sample every `step` seconds from `start`: `shape` (bytes at second k)
/// under white noise of `white` × the limit and, with `wander` above 0, an offset that wanders (each sample keeps
/// 0.98 of it and adds noise of `wander` × the limit) — until a sample reaches the limit (`kill`: its second) or
/// `runFor` seconds have passed (nil: until the limit).
enum SyntheticClimb {
    static func run(noise: TestNoise, limit: UInt64, step: Int, white: Double, wander: Double = 0, runFor: Int? = nil,
                    start: UInt64, shape: (Int) -> Double) -> (updates: [InsightUpdate], kill: Int?) {
        var noise = noise
        var offset = 0.0
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var k = 0
        while runFor.map({ k <= $0 }) ?? true {
            if wander > 0 { offset = 0.98 * offset + noise.gauss() * wander * Double(limit) }
            let v = shape(k) + noise.gauss() * white * Double(limit) + offset
            if v >= Double(limit) { return (out, k) }
            let t = start + UInt64(k) * 1_000_000_000
            engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(max(0, v)), limit: limit, at: t), now: t, into: &out)
            k += step
        }
        return (out, nil)
    }
}
