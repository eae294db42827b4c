import Testing
@testable import TapioCorrelation

/// The scorer's Brier decomposition, on forecasts whose answer is known by hand.
@Suite("Prediction score: Brier decomposition")
struct PredictionScoreTests {
    /// A scenario result holding the given forecasts, its Brier score computed from them.
    static func result(_ forecasts: [(Double, Bool)]) -> PredictionScore.ScenarioResult {
        var r = PredictionScore.ScenarioResult(name: "s", shape: "test", oomAt: nil)
        r.outcomes = forecasts
        r.forecasts = forecasts.count
        r.brier = forecasts.reduce(0.0) { $0 + ($1.0 - ($1.1 ? 1 : 0)) * ($1.0 - ($1.1 ? 1 : 0)) } / Double(forecasts.count)
        return r
    }

    @Test("always 0.9 on a coin flip: all calibration error, no resolution")
    func overconfident() throws {
        let s = PredictionScore.Summary(results: [Self.result([(0.9, true), (0.9, false)]), Self.result([(0.9, true), (0.9, false)])])
        let d = try #require(s.decomposition)
        #expect(abs(d.reliability - 0.16) < 1e-12)
        #expect(abs(d.resolution) < 1e-12)
        #expect(abs(d.uncertainty - 0.25) < 1e-12)
        #expect(abs(try #require(s.brier) - 0.41) < 1e-12)
        #expect(abs(d.withinBins) < 1e-12)
    }

    @Test("sharp and calibrated: resolution takes almost the whole uncertainty off")
    func sharp() throws {
        // 0.05 twenty times, one came true; 0.95 twenty times, nineteen came true: each tenth's share equals its
        // probability, so reliability is 0 and the score is what the two tenths leave unresolved.
        let low = (0..<20).map { (0.05, $0 == 0) }, high = (0..<20).map { (0.95, $0 != 0) }
        let s = PredictionScore.Summary(results: [Self.result(low), Self.result(high)])
        let d = try #require(s.decomposition)
        #expect(abs(d.reliability) < 1e-12)
        #expect(abs(d.resolution - 0.2025) < 1e-12)
        #expect(abs(d.uncertainty - 0.25) < 1e-12)
        #expect(abs(try #require(s.brier) - 0.0475) < 1e-12)
        #expect(abs(d.reliability - d.resolution + d.uncertainty + d.withinBins - (s.brier ?? 0)) < 1e-12)
    }

    @Test("probabilities spread inside a tenth show as the within-tenths term, and no forecast gives nil")
    func withinBins() throws {
        // Brier (0.29² + 0.79²) / 2 = 0.3541; the tenth's mean probability 0.75 against a share of 0.5: reliability
        // 0.0625, resolution 0 (one tenth), uncertainty 0.25, so 0.0416 is left to the spread inside the tenth.
        let s = PredictionScore.Summary(results: [Self.result([(0.71, true), (0.79, false)])])
        let d = try #require(s.decomposition)
        #expect(abs(try #require(s.brier) - 0.3541) < 1e-12)
        #expect(abs(d.reliability - 0.0625) < 1e-12)
        #expect(abs(d.resolution) < 1e-12)
        #expect(abs(d.withinBins - 0.0416) < 1e-12)
        #expect(PredictionScore.Summary(results: []).decomposition == nil)
    }
}
