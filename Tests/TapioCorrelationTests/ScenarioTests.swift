import Foundation
import Testing
import TapioTestTraits
import TapioModel
@testable import TapioCorrelation

/// The scenario files in Tests/Scenarios.
enum Scenarios {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scenarios")

    static var all: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasSuffix(".jsonl") }.map { String($0.dropLast(6)) }.sorted()
    }

    static func load(_ name: String) throws -> Scenario {
        let text = try String(contentsOf: directory.appendingPathComponent(name + ".jsonl"), encoding: .utf8)
        return try ScenarioReplay.parse(lines: text.components(separatedBy: "\n"))
    }

    static func replay(_ name: String) throws -> (Scenario, [InsightUpdate]) {
        let s = try load(name)
        return (s, ScenarioReplay.run(s))
    }
}

@Suite("Scenario replays", .cpuBound, .timeLimit(.minutes(2)))
struct ScenarioTests {
    @Test("the scenario directory holds scenarios for every detector and the silent cases")
    func directoryIsComplete() {
        let names = Set(Scenarios.all)
        for required in ["silent-sawtooth-gc", "silent-step-plateau", "silent-noisy-flat", "silent-rollout-restarts",
                         "silent-pod-deleted", "oom-prediction-steady-leak", "oom-killed-child", "memory-leak-slow",
                         "crash-loop-after-rollout", "network-issue", "node-pressure", "cluster-health",
                         "unbounded-growth-control-plane-recorded"] {
            #expect(names.contains(required), "missing scenario \(required)")
        }
    }

    @Test("each scenario fires exactly the insight types its header expects", arguments: Scenarios.all)
    func firesWhatItExpects(name: String) throws {
        let (scenario, updates) = try Scenarios.replay(name)
        let fired = Set(updates.filter { $0.change != .resolved }.map(\.identity.type))
        #expect(fired == Set(scenario.expectedTypes),
                Comment(rawValue: "\(name): fired \(fired.map(\.rawValue).sorted()), expected \(scenario.expectedTypes.map(\.rawValue).sorted())\n"
                    + updates.map { "  \($0.change.rawValue) \($0.identity.type.rawValue): \($0.spec.title)" }.joined(separator: "\n")))
    }

    @Test("each scenario file stays under 1 MB", arguments: Scenarios.all)
    func small(name: String) throws {
        let size = try FileManager.default.attributesOfItem(atPath: Scenarios.directory.appendingPathComponent(name + ".jsonl").path)[.size] as? Int ?? 0
        #expect(size > 0 && size < 1_000_000)
    }
}
