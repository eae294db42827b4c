import Foundation
import Testing
@testable import TapioCorrelation

/// Which curve a long climb follows (issue 12: the time-to-OOM over a prediction's life): compounding growth, a
/// steady acceleration, or a flat stretch and then a straight line. Minute maxima over 12–20 minutes, as the long
/// history holds them, with the corpus's noise (0.3 % of a 1Gi limit).
@Suite("Reading the curve of a long climb")
struct ClimbCurveTests {
    static let mi = 1_048_576.0
    static let limit = 1024 * mi

    /// One point a minute from `minutes` minutes ago to now (x in seconds, ≤ 0), `curve(x)` plus white noise.
    static func points(minutes: Int, sigma: Double, seed: UInt64, _ curve: (Double) -> Double) -> (x: [Double], y: [Double]) {
        var g = TestNoise(state: seed &* 0x9e37_79b9_7f4a_7c15 | 1)
        let x = (0..<minutes).map { Double($0 - minutes + 1) * 60 }
        return (x, x.map { curve($0) + sigma * g.gauss() })
    }

    @Test("an exact compounding curve is recovered: rate, level, time to the limit, and a parabola fits it worse")
    func exactCompounding() throws {
        let k = log(2.0) / 300
        let (x, y) = Self.points(minutes: 15, sigma: 0, seed: 1) { 40 * Self.mi + 200 * Self.mi * exp(k * $0) }
        let g = try #require(CompoundingFit.fit(x: x, y: y))
        #expect(abs(g.rate - k) < 1e-4 * k, "rate \(g.rate)")
        #expect(abs(g.doubling - 300) < 0.1)
        #expect(abs(g.level - 240 * Self.mi) < 0.01 * Self.mi)
        let truth = log((Self.limit - 40 * Self.mi) / (200 * Self.mi)) / k
        #expect(abs(try #require(g.time(toReach: Self.limit)) - truth) < 0.5, "truth \(truth) s")
        #expect(g.advantage > 100, "parabola's squared residuals over the curve's: \(g.advantage)")
        #expect(g.time(toReach: 100 * Self.mi) == 0, "already above that")
    }

    @Test("under noise: compounding for an exponential leak, a parabola for a quadratic one, a knee after a plateau")
    func judgesTheCurve() throws {
        let sigma = 0.003 * Self.limit
        var wrong: [String] = []
        for seed in UInt64(1)...20 {
            // The corpus's oom-accelerating-exp 15 minutes in (60Mi doubling every 5 minutes).
            let e = Self.points(minutes: 15, sigma: sigma, seed: seed) { 60 * Self.mi * exp(log(2) / 300 * (900 + $0)) }
            if case .compounding(let g) = ClimbCurve.judge(x: e.x, y: e.y) {
                // Its time to the limit (329 s from 900 s) within 15 %.
                let truth = 300 * log2(1024.0 / 60) - 900
                let t = try #require(g.time(toReach: Self.limit))
                if abs(t - truth) > 0.15 * truth { wrong.append("exponential \(seed): \(Int(t)) s for \(Int(truth)) s") }
            } else {
                wrong.append("exponential \(seed): not compounding")
            }
            // The corpus's oom-accelerating-1 (quadratic, T = 1600 s) 15 minutes in.
            let q = Self.points(minutes: 15, sigma: 0.005 * 512 * Self.mi, seed: seed) { x in
                let u = (900 + x) / 1600
                return 100 * Self.mi + 412 * Self.mi * (0.2 * u + 0.8 * u * u)
            }
            if case .parabola = ClimbCurve.judge(x: q.x, y: q.y) {} else { wrong.append("quadratic \(seed)") }
            // Flat for 8 minutes, then 1Mi/s: a leak after a plateau, 12 minutes of history.
            let k = Self.points(minutes: 12, sigma: sigma, seed: seed) { 250 * Self.mi + Self.mi * max(0, $0 + 240) }
            if case .knee(let f) = ClimbCurve.judge(x: k.x, y: k.y) {
                if abs(f.slope - Self.mi) > 0.1 * Self.mi || abs(f.knee + 240) > 60 {
                    wrong.append("knee \(seed): slope \(f.slope / Self.mi) Mi/s from \(f.knee) s")
                }
            } else {
                wrong.append("knee \(seed): not a knee")
            }
        }
        #expect(wrong.isEmpty, "\(wrong)")
    }

    @Test("an hour of a straight leak under a wandering offset is a line, whatever its halves say")
    func wanderingLineIsALine() {
        // The corpus's oom-slow-1 (200Mi to 1Gi in three hours) with its noise: sampled every second, white noise of
        // 0.3 % of the limit and an offset wandering by 0.03 % a second, pulled back by 2 %; an hour of minute maxima.
        var wrong: [UInt64] = []
        for seed in UInt64(1)...20 {
            var g = TestNoise(state: seed &* 0x9e37_79b9_7f4a_7c15 | 1)
            var offset = 0.0
            var x: [Double] = [], y: [Double] = []
            var top = -Double.infinity
            for second in 0..<3600 {
                offset = 0.98 * offset + 0.0003 * Self.limit * g.gauss()
                let v = 200 * Self.mi + 824 * Self.mi * Double(second + 3600) / 10_800 + offset + 0.003 * Self.limit * g.gauss()
                top = max(top, v)
                if second % 60 == 59 { x.append(Double(second - 3599)); y.append(top); top = -.infinity }
            }
            if case .line = ClimbCurve.judge(x: x, y: y) {} else { wrong.append(seed) }
        }
        #expect(wrong.isEmpty, "not read as a line for seeds \(wrong)")
    }

    @Test("an exact logarithm is recovered: its origin, what a doubling adds, its time to the limit")
    func exactLogarithm() throws {
        // 150Mi + 140Mi × ln(1 + t/20 s), 30 minutes of it from t = 600 s (now is t = 2,340 s).
        let (x, y) = Self.points(minutes: 30, sigma: 0, seed: 1) { 150 * Self.mi + 140 * Self.mi * log1p((2340 + $0) / 20) }
        let g = try #require(LogarithmicFit.fit(x: x, y: y))
        #expect(abs(g.origin + 2360) < 1, "origin \(g.origin) s, truth −2,360 s")
        #expect(abs(g.perDoubling - 140 * Self.mi * log(2)) < 0.01 * Self.mi)
        // The limit at 1 + t/20 = e^((1024 − 150)/140).
        let truth = 20 * (exp(874.0 / 140) - 1) - 2340
        #expect(abs(try #require(g.time(toReach: Self.limit)) - truth) < 1e-4 * truth, "truth \(truth) s")
        #expect(g.time(toReach: 100 * Self.mi) == 0, "already above that")
        #expect(g.time(toReach: 1e6 * Self.limit) == nil, "ages beyond any number are no time")
        #expect(LogarithmicFit.fit(x: x, y: y.map { -$0 }) == nil, "falling memory")
    }

    @Test("a slowing climb: a logarithm when it never levels off, an approach to a level when it does, else a line")
    func judgesTheSlowing() {
        let sigma = 0.003 * Self.limit
        var wrong: [String] = []
        for seed in UInt64(1)...20 {
            // A cache keyed by ever new values, its first 40 minutes: 150Mi + 140Mi × ln(1 + t/20 s).
            let l = Self.points(minutes: 40, sigma: sigma, seed: seed) { 150 * Self.mi + 140 * Self.mi * log1p((2400 + $0) / 20) }
            if case .logarithmic = ClimbCurve.judgeSlowing(x: l.x, y: l.y) {} else { wrong.append("logarithm \(seed)") }
            // The corpus's quiet-saturating-exp-1 (approaching 470Mi, τ 600 s) from 5 to 45 minutes: levels off.
            let e = Self.points(minutes: 40, sigma: 0.003 * 512 * Self.mi, seed: seed) { x in
                470 * Self.mi - 420 * Self.mi * exp(-(2700 + x) / 600)
            }
            if case .parabola = ClimbCurve.judgeSlowing(x: e.x, y: e.y) {} else { wrong.append("levelling \(seed)") }
            // A straight leak is no slowing at all.
            let s = Self.points(minutes: 40, sigma: sigma, seed: seed) { 500 * Self.mi + Self.mi * $0 / 60 }
            if case .line = ClimbCurve.judgeSlowing(x: s.x, y: s.y) {} else { wrong.append("line \(seed)") }
        }
        #expect(wrong.isEmpty, "\(wrong)")
    }

    @Test("too few points, too short a span or no growth give no fit")
    func degenerate() {
        #expect(CompoundingFit.fit(x: [-240, -180, -120, -60, 0], y: [1, 2, 4, 8, 16]) == nil)
        #expect(CompoundingFit.fit(x: [-50, -40, -30, -20, -10, 0], y: [1, 2, 4, 8, 16, 32]) == nil)
        #expect(CompoundingFit.fit(x: (0..<10).map { Double($0 - 9) * 60 }, y: (0..<10).map { 100 - Double($0) }) == nil,
                "falling memory")
        #expect(KneeFit.fit(x: (0..<10).map { Double($0 - 9) * 60 }, y: [Double](repeating: 5, count: 10)) == nil,
                "flat memory has no rising line")
    }
}

/// The detector's side of the long-climb reading, on the labelled corpus's scenarios: what a person reads in the
/// OOMPrediction once ten minutes of the climb are in the history.
@Suite("Long climbs in OOM predictions", .timeLimit(.minutes(3)))
struct LongClimbPredictionTests {
    /// Every OOMPrediction update of a corpus scenario: seconds from the start, time-to-OOM (s), evidence texts.
    static func predictions(_ name: String) throws -> (oomAt: Double, seen: [(at: Double, tte: Double, evidence: [String])]) {
        let (scenario, updates) = try Scenarios.replay("quality/" + name)
        let start = scenario.startNanos
        let oomAt = try #require(scenario.truth?.oomAt.map { Double($0 - start) / 1e9 })
        let seen = updates.filter { $0.identity.type == .oomPrediction && $0.change != .resolved }.compactMap { u -> (Double, Double, [String])? in
            guard let tte = PredictionScore.seconds(goDuration: u.spec.prediction?.timeToEvent) else { return nil }
            return (Double(u.observedAt - start) / 1e9, tte, u.spec.evidence.map(\.description))
        }
        return (oomAt, seen)
    }

    @Test("an exponential leak is read as compounding from its fifteenth minute, and its time-to-OOM is right")
    func exponentialLeak() throws {
        let (oomAt, seen) = try Self.predictions("oom-accelerating-exp")
        let late = seen.filter { $0.at >= 900 && oomAt - $0.at >= 60 }
        #expect(!late.isEmpty)
        for p in late {
            let truth = oomAt - p.at
            #expect(abs(p.tte - truth) <= 0.1 * truth, "at \(p.at) s: \(p.tte) s for \(truth) s")
            let compounds = p.evidence.first { $0.hasPrefix("Growth compounds: the rate doubles every") }
            #expect(compounds != nil, "at \(p.at) s: \(p.evidence)")
            // The steady speed-up's own, later time is said beside it.
            #expect(compounds?.contains("which would reach the limit later, in") == true, "\(compounds ?? "")")
        }
        // Before ten minutes nothing can tell the curves apart: the window's hint gives the compounding time.
        let early = try #require(seen.first { $0.evidence.contains { $0.contains("Growth is speeding up") } })
        #expect(early.at < 600)
        #expect(early.evidence.contains { $0.contains("if the rate keeps doubling every") })
    }

    @Test("a quadratic leak keeps the parabola's reading, and a leak after a plateau is read as a straight line")
    func quadraticAndKnee() throws {
        let quadratic = try Self.predictions("oom-accelerating-1")
        let long = quadratic.seen.filter { $0.at >= 900 && quadratic.oomAt - $0.at >= 60 }
        #expect(!long.isEmpty)
        #expect(long.allSatisfy { !$0.evidence.contains { $0.hasPrefix("Growth compounds") } })
        #expect(long.allSatisfy { abs($0.tte - (quadratic.oomAt - $0.at)) <= 0.2 * (quadratic.oomAt - $0.at) })
        // Flat for 20 minutes, then 0.8Mi/s: once the climb's ten minutes (with the flat stretch before them) are
        // in the history, the knee is read, and the time-to-OOM is the line's.
        let plateau = try Self.predictions("oom-after-plateau-1")
        let knees = plateau.seen.filter { $0.evidence.contains { $0.hasPrefix("Steady growth since it began") } }
        #expect(!knees.isEmpty, "no knee read")
        for p in knees where plateau.oomAt - p.at >= 60 {
            let truth = plateau.oomAt - p.at
            #expect(abs(p.tte - truth) <= 0.15 * truth, "at \(p.at) s: \(p.tte) s for \(truth) s")
        }
    }
}
