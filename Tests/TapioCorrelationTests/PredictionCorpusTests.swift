import Foundation
import Testing
import TapioTestTraits
@testable import TapioCorrelation

/// Issue 12's goals on the labelled corpus (Tests/Scenarios/quality), scored as `tapio replay --score` does.
@Suite("Prediction quality on the labelled corpus", .cpuBound, .timeLimit(.minutes(5)))
struct PredictionCorpusTests {
    static let directory = Scenarios.directory.appendingPathComponent("quality")

    @Test("the corpus holds at least 40 labelled scenarios, each shape the issue lists")
    func corpusIsComplete() throws {
        let summary = try PredictionScore.scoreDirectory(Self.directory)
        #expect(summary.results.count >= 40)
        let shapes = Set(summary.results.map(\.shape))
        for s in ["linear", "slow", "accelerating", "staircase", "gc-leak", "after-plateau", "fast", "periodic-growing",
                  "gc-sawtooth", "step-plateau", "noisy-flat", "flat-near-limit", "spike", "saturating", "logarithmic",
                  "periodic", "restarts", "limit-raised"] {
            #expect(shapes.contains(s), "no \(s) scenario")
        }
        #expect(summary.ooms >= 15 && summary.results.count - summary.ooms >= 15)
    }

    @Test("every OOM is warned (Warning or above) before the kill, and nothing that never OOMs reaches 0.9")
    func goals() throws {
        let s = try PredictionScore.scoreDirectory(Self.directory)
        let missed = s.results.filter { $0.oomAt != nil && $0.firstWarning == nil }.map(\.name)
        #expect(missed.isEmpty, "not warned: \(missed)")
        #expect(s.maxFalseProbability < 0.9)
        // Fast leaks (80–170 s from start to kill) are warned at least 30 s ahead.
        for r in s.results where r.shape == "fast" {
            #expect((r.leadTime ?? 0) >= 30, "\(r.name): lead \(r.leadTime ?? 0) s")
        }
        let core: Set<String> = ["linear", "accelerating", "staircase"]
        let median = try #require(s.medianTTEError)
        #expect(median <= 0.2, "median TTE error \(median)")
        // Within 20 % at the first Warning, scenario by scenario. Exponential growth came out 31–64 % late over
        // twelve noise seeds while its first Warning came on the window alone, where a parabola and a compounding
        // curve fit the same points: a prediction on a curve in doubt now waits at Info (``CurveDoubt``).
        for r in s.results where core.contains(r.shape) {
            #expect(abs(r.tteError ?? 1) <= 0.2, "\(r.name): \(r.tteError ?? 1)")
        }
        // Over the prediction's whole life, not only at its first Warning: the median |TTE error| of each leak whose
        // shape has a curve to read (periodic-growing leaks are first predicted from a single ramp; fast ones have
        // no minute left to score). The exponential leak was at 46 % before long climbs were read as compounding.
        // Now periodic-growing leaks too: their prediction follows the peaks' rhythm, and stands between climbs.
        for r in s.results where ["linear", "accelerating", "staircase", "after-plateau", "slow", "gc-leak",
                                  "periodic-growing"].contains(r.shape) {
            let m = try #require(r.medianLifeError, "\(r.name): no Warning a minute or more before the kill")
            #expect(m <= 0.15, "\(r.name): median TTE error over the prediction's life \(m)")
        }
        // One leak, few alerts: every prediction raised is a new Insight. A leak across cycles is raised on its first
        // two climbs (one drop is no pattern yet), then once more when two drops show its peaks climbing, and that
        // one stands to the kill (10 separate predictions for `oom-periodic-growing-1` when each drop settled it).
        // Any other leak is raised once: a slow leak's time-to-OOM, read on its whole climb, no longer wanders across
        // the horizon with the window's noise (`oom-slow-1` was raised, lapsed and raised again).
        for r in s.results where r.oomAt != nil {
            #expect(r.raised <= (r.shape == "periodic-growing" ? 3 : 1), "\(r.name): \(r.raised) separate predictions before the kill")
        }
        // Calibrated: "predictions at ~0.8 come true about 80 % of the time". The reliability term of the Brier score
        // is the forecast-weighted mean squared gap between each tenth's probability and the share of its forecasts
        // that came true; at most 0.01 is a root-mean-square gap of at most 0.1 (0.003 on this corpus, 0.003–0.005
        // over twelve noise seeds).
        let d = try #require(s.decomposition)
        #expect(d.reliability <= 0.01, "reliability \(d.reliability)")
        // Not yet met (see the README's performance section): the Brier score is 0.144, dominated by the first
        // ramps of cycling workloads, which look like leaks until they drop.
        withKnownIssue("Brier ≤ 0.10") {
            #expect((s.brier ?? 1) <= 0.10)
        }
    }
}
