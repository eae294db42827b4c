import Foundation
import TapioTestSupport
import Testing

/// Issue 16: inputs that used to crash the binary (SIGILL on an arithmetic overflow) now get a message naming the
/// flag or field and its range, and the exit code says which kind of mistake it was (64 a flag, 1 a file).
@Suite("Poison input to the CLI", .timeLimit(.minutes(3)))
struct PoisonInputTests {
    static func tapio(_ args: [String]) async throws -> CommandResult {
        try await CommandRunner.run(CommandRunner.tapioExecutable, args, timeout: .seconds(60))
    }

    static func file(_ name: String, _ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-poison-\(getpid())-\(name)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("duration flags beyond their range exit 64 with the flag, the value and the range", arguments: [
        (["sniff", "--duration", "2562047.9h"], "'--duration <duration>': too large"),
        (["sniff", "--duration", "2562047h47m16.854775808s"], "too large"),
        (["sniff", "--duration", "8761h"], "must be between 1ms and 8760h"),
        (["sniff", "--window", "2562047.9h"], "'--window <duration>': too large"),
        (["sniff", "--window", "25h"], "must be between 1m and 24h"),
        (["sniff", "--batch-timeout=-1s"], "must be between 1ms and 1m"),
        (["sniff", "--batch-timeout", "0"], "must be between 1ms and 1m"),
        (["operator", "--lease-duration", "9999999999h"], "too large"),
        (["operator", "--retry-period", "1ns"], "must be between 100ms and 10m"),
    ])
    func durationFlags(args: [String], says: String) async throws {
        let r = try await Self.tapio(args)
        #expect(r.status == 64, "\(args): exit \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.contains(says), "\(args): \(r.stderr)")
    }

    static let scenario = #"{"tapioScenario": 1, "name": "empty"}"# + "\n"

    @Test("a poison --policy file exits 1 listing each field with its line, column and range")
    func poisonPolicyFile() async throws {
        let policy = try Self.file("poison.yaml", """
            apiVersion: tapio.io/v1alpha1
            kind: TapioPolicy
            metadata: {name: poison}
            spec:
              correlation:
                batchTimeout: "2562047.9h"
                window: "2562047h47m16.854775808s"
              insights:
                resolveAfter: 9999999999h
                ttl: "1s"
            """)
        let scenario = try Self.file("s.jsonl", Self.scenario)
        defer { for p in [policy, scenario] { try? FileManager.default.removeItem(atPath: p) } }
        for command in [["replay", "--policy", policy, scenario], ["sniff", "--ebpf-only", "--duration", "5s", "--policy", policy]] {
            let r = try await Self.tapio(command)
            #expect(r.status == 1, "\(command[0]): exit \(r.status): \(r.stderr)")
            for (line, field, says) in [(6, "spec.correlation.batchTimeout", "too large"), (7, "spec.correlation.window", "too large"),
                                        (9, "spec.insights.resolveAfter", "too large"), (10, "spec.insights.ttl", "between 1m and 8760h")] {
                #expect(r.stderr.contains("\(policy):\(line):5: \(field): Invalid value") && r.stderr.contains(says), "\(command[0]): \(r.stderr)")
            }
            #expect(!r.stderr.contains("Fatal error"))
        }
    }

    @Test("unknown fields in a --policy file are warned about on stderr with their path, and the run goes on")
    func unknownFieldsWarn() async throws {
        let policy = try Self.file("typo.yaml", """
            apiVersion: tapio.io/v1alpha1
            kind: TapioPolicy
            metadata: {name: typo}
            spec:
              corelation: {window: "10m"}
            """)
        let scenario = try Self.file("s2.jsonl", Self.scenario)
        defer { for p in [policy, scenario] { try? FileManager.default.removeItem(atPath: p) } }
        let r = try await Self.tapio(["replay", "--policy", policy, scenario])
        #expect(r.status == 0, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains(#"\#(policy):5:3: warning: unknown field "spec.corelation""#), "\(r.stderr)")
    }

    @Test("a --policy file that is not UTF-8 or not YAML says where")
    func unreadablePolicyFiles() async throws {
        let notUTF8 = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-poison-\(getpid())-latin1.yaml").path
        try Data("apiVersion: tapio.io/v1alpha1\nkind: TapioPolicy\n# caf\u{E9}\n".utf8.map { $0 == 0xC3 ? 0xE9 : $0 }
            .filter { $0 != 0xA9 }).write(to: URL(fileURLWithPath: notUTF8))
        let broken = try Self.file("broken.yaml", "spec:\n  probes: {memory: [1\n")
        let scenario = try Self.file("s3.jsonl", Self.scenario)
        defer { for p in [notUTF8, broken, scenario] { try? FileManager.default.removeItem(atPath: p) } }
        let a = try await Self.tapio(["replay", "--policy", notUTF8, scenario])
        #expect(a.status == 1 && a.stderr.contains("\(notUTF8):3: not UTF-8 text"), "\(a.stderr)")
        let b = try await Self.tapio(["replay", "--policy", broken, scenario])
        #expect(b.status == 1 && b.stderr.contains("\(broken):3:1: not valid YAML"), "\(b.stderr)")
    }
}
