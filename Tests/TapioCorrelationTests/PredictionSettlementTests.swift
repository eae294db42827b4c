import Foundation
import TapioCorrelation
import TapioModel
import Testing

/// When the predicted kill happens, the prediction is settled (resolved) and the OOMKilled insight takes over, so
/// a person never sees "OOM in 19s" next to the kill that already happened.
@Suite(.timeLimit(.minutes(2))) struct PredictionSettlementTests {
    @Test func theKernelKillResolvesTheOOMPredictionAndOOMKilledTakesOver() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scenarios/oom-prediction-steady-leak.jsonl")
        let updates = try ScenarioReplay.run(fileURL: file)
        let prediction = try #require(updates.firstIndex { $0.spec.type == .oomPrediction && $0.change == .new },
                                      "the steady leak must be predicted first")
        let settled = try #require(updates.firstIndex { $0.spec.type == .oomPrediction && $0.change == .resolved },
                                   "the prediction was never settled")
        let killed = try #require(updates.firstIndex { $0.spec.type == .oomKilled && $0.change == .new })
        #expect(prediction < settled)
        // Settled by the kill itself: at the kill's time (t=312 s), not resolveAfter later.
        let start = try #require(Formatting.parseRFC3339("2026-11-29T10:00:00Z"))
        #expect(updates[settled].observedAt - start < 320 * 1_000_000_000)
        #expect(updates[killed].spec.subject == updates[prediction].spec.subject)
        #expect(!updates[settled...].dropFirst().contains { $0.spec.type == .oomPrediction && $0.change == .new },
                "no new prediction right after the kill")
    }
}
