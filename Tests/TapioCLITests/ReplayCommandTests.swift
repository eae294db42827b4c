import Foundation
import TapioTestSupport
import Testing

@Suite(.timeLimit(.minutes(3))) struct ReplayCommandTests {
    @Test func replayPrintsTheScenariosInsightsAsJSONLines() async throws {
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

    /// A scenario file in a fresh directory, removed by `cleanup`.
    func scenarioFile(_ bytes: [UInt8]) throws -> (path: String, cleanup: () -> Void) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("s.jsonl")
        try Data(bytes).write(to: file)
        return (file.path, { try? FileManager.default.removeItem(at: dir) })
    }

    @Test func anInvalidConfigExitsNonZeroNamingTheSettingAndItsRange() async throws {
        let (path, cleanup) = try scenarioFile(Array(#"{"tapioScenario": 1, "config": {"batchSize": -1}}"#.utf8) + [0x0A])
        defer { cleanup() }
        let r = try await CommandRunner.run(CommandRunner.tapioExecutable, ["replay", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains(#"line 1: field "config.batchSize": -1 is out of range; expected an integer from 1 to 100000"#),
                "stderr: \(r.stderr)")
    }

    @Test func aCRLFScenarioReplaysLikeItsLFOriginal() async throws {
        let original = CommandRunner.repositoryRoot.appendingPathComponent("Tests/Scenarios/oom-prediction-steady-leak.jsonl")
        let text = try String(contentsOf: original, encoding: .utf8)
        let (path, cleanup) = try scenarioFile(Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8))
        defer { cleanup() }
        let lf = try await CommandRunner.run(CommandRunner.tapioExecutable, ["replay", original.path])
        let crlf = try await CommandRunner.run(CommandRunner.tapioExecutable, ["replay", path])
        #expect(crlf.status == 0, "stderr: \(crlf.stderr)")
        #expect(!lf.stdout.isEmpty && crlf.stdout == lf.stdout)
    }

    @Test func invalidUTF8IsReportedWithItsLine() async throws {
        let bytes = Array("{\"tapioScenario\": 1}\n{\"t\": 1, \"type\": \"exec\", \"pid\": 1, \"comm\": \"".utf8) + [0xFF]
            + Array("\"}\n".utf8)
        let (path, cleanup) = try scenarioFile(bytes)
        defer { cleanup() }
        let r = try await CommandRunner.run(CommandRunner.tapioExecutable, ["replay", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("line 2: not valid UTF-8"), "stderr: \(r.stderr)")
    }

    @Test func standardInputStreamsEachUpdateBeforeTheInputEnds() async throws {
        let p = try PipedProcess(CommandRunner.tapioExecutable, ["replay", "-"])
        defer { p.terminate() }
        try p.write("""
            {"tapioScenario": 1}
            {"t": 0, "type": "pod", "pod": "d/a", "containers": [{"name": "app", "limit": "256Mi"}]}
            {"t": 1, "type": "oomKill", "pod": "d/a", "container": "app", "pid": 7, "anon": "250Mi"}
            {"t": 2, "type": "exec", "pid": 1}

            """)
        // The kill's batch is due at t = 1.1 s, before the event at t = 2: its update is out while stdin stays open.
        let streamed = await p.waitForOutput(timeout: .seconds(60)) { $0.contains(#""type":"OOMKilled""#) }
        #expect(streamed, "output so far: \(p.stdout)")
        try p.closeInput()
        #expect(await p.waitForExit(timeout: .seconds(60)) == 0)
    }
}
