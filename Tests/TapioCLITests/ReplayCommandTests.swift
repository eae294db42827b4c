import Foundation
import TapioTestSupport
import Testing

@Suite struct ReplayCommandTests {
    @Test(.timeLimit(.minutes(2))) func replayPrintsTheScenariosInsightsAsJSONLines() async throws {
        let file = CommandRunner.repositoryRoot.appendingPathComponent("Tests/Scenarios/oom-prediction-steady-leak.jsonl").path
        let r = try await CommandRunner.run(CommandRunner.tapioExecutable, ["replay", file])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let records = try r.stdout.split(separator: "\n").map { line -> [String: Any] in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        for o in records {
            // The sniff insight record, under the replay schema, plus the virtual time.
            #expect(o["schema"] as? String == "tapio.io/replay/v1")
            #expect(o["record"] as? String == "insight")
            for key in ["name", "change", "phase", "firstSeen", "lastSeen", "occurrences", "spec"] {
                #expect(o[key] != nil, "missing \(key)")
            }
            #expect(o["observedAt"] as? String == o["lastSeen"] as? String)
        }
        let prediction = try #require(records.first { ($0["spec"] as? [String: Any])?["type"] as? String == "OOMPrediction" })
        #expect(prediction["change"] as? String == "new")
        #expect(((prediction["spec"] as? [String: Any])?["prediction"] as? [String: Any])?["timeToEvent"] is String)
    }

    @Test(.timeLimit(.minutes(2))) func aSilentScenarioPrintsNothing() async throws {
        let file = CommandRunner.repositoryRoot.appendingPathComponent("Tests/Scenarios/silent-sawtooth-gc.jsonl").path
        let r = try await CommandRunner.run(CommandRunner.tapioExecutable, ["replay", file])
        #expect(r.status == 0)
        #expect(r.stdout.isEmpty, "a GC sawtooth must stay silent, got: \(r.stdout)")
    }

    @Test(.timeLimit(.minutes(2))) func aMalformedScenarioNamesTheLineAndExitsNonZero() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.jsonl")
        try Data("not json\n".utf8).write(to: bad)
        let r = try await CommandRunner.run(CommandRunner.tapioExecutable, ["replay", bad.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("line 1"), "stderr: \(r.stderr)")
    }
}
