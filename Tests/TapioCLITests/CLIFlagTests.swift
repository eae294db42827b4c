import Foundation
import TapioTestSupport
import Testing

/// The CLI as a person meets it: the real binary, its exit codes and messages.
@Suite struct CLIFlagTests {
    func tapio(_ args: String...) async throws -> CommandResult {
        try await CommandRunner.run(CommandRunner.tapioExecutable, args, timeout: .seconds(30))
    }

    @Test(.timeLimit(.minutes(2))) func versionPrintsTheVersionAndTheAPIVersion() async throws {
        let r = try await tapio("version")
        #expect(r.status == 0)
        #expect(r.stdout.contains("tapio.io/v1alpha1"))
        let json = try await tapio("version", "-o", "json")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: String]
        #expect(object?["apiVersion"] == "tapio.io/v1alpha1")
    }

    @Test(.timeLimit(.minutes(2)), arguments: [
        (["sniff", "--no-such-flag"], "Unknown option"),
        (["sniff", "--batch-size", "0"], "--batch-size must be between 1 and 100000"),
        (["sniff", "--batch-size", "many"], "batch-size"),
        (["sniff", "--sampling-rate", "5000"], "--sampling-rate must be between 1 and 1000"),
        (["sniff", "--k8s-only", "--ebpf-only"], "exclude each other"),
        (["sniff", "--window", "five minutes"], "window"),
        (["sniff", "-o", "xml"], "output"),
        (["sniff", "--once"], "--once only applies to -o prometheus"),
        (["sniff", "--namespace", "Not_A_Namespace"], "not a valid namespace name"),
        (["sniff", "--policy", "/nonexistent/policy.yaml"], "no readable file"),
        (["sniff", "--metrics-addr", "localhost"], "metrics-addr"),
        (["sniff", "--log-level", "loud"], "log-level"),
        (["sniff", "--log-format", "xml"], "log-format"),
        (["agent", "--node-name", "n1", "--namespace", "UPPER"], "not a valid namespace name"),
        (["agent", "--node-name", "n1", "--release-startup-pages-after", "2h"], "must be between 0s and 1h"),
        (["agent", "--node-name", "n1", "--release-startup-pages-after", "soon"], "release-startup-pages-after"),
        (["agent", "--node-name", "Worker_1"], "is not a Node name"),
        (["agent", "--node-name", String(repeating: "n", count: 64)], "label values are at most 63 characters"),
        (["operator", "--renew-deadline", "20s"], "must be shorter than --lease-duration"),
        (["operator", "--release-startup-pages-after", "2h"], "must be between 0s and 1h"),
        (["replay", "/nonexistent/scenario.jsonl"], "no readable file"),
        (["frobnicate"], "Unexpected argument"),
    ])
    func badFlagsFailWithAClearMessageAndNoStackTrace(args: [String], expected: String) async throws {
        let r = try await CommandRunner.run(CommandRunner.tapioExecutable, args, timeout: .seconds(30))
        #expect(r.status == 64, "\(args): exit \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.contains(expected), "\(args): stderr was: \(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"), "\(args) crashed: \(r.stderr)")
    }

    @Test(.timeLimit(.minutes(2))) func agentWithoutANodeNameSaysHowToGiveOne() async throws {
        var env = ProcessInfo.processInfo.environment
        env["NODE_NAME"] = nil
        let r = try await CommandRunner.run(CommandRunner.tapioExecutable, ["agent"], environment: env, timeout: .seconds(30))
        #expect(r.status == 64)
        #expect(r.stderr.contains("--node-name"))
    }

    @Test(.timeLimit(.minutes(2)), arguments: ["sniff", "agent", "operator", "replay", "version"])
    func everySubcommandDocumentsItsFlags(subcommand: String) async throws {
        let r = try await tapio("help", subcommand)
        #expect(r.status == 0)
        // Every option line in the help has a description after its name.
        let optionLines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("  -") }
        #expect(!optionLines.isEmpty)
        for line in optionLines where !line.contains("--help") && !line.contains("--version") {
            let described = line.split(separator: " ", omittingEmptySubsequences: true).count > 1
            #expect(described || r.stdout.contains(line + "\n        "), "undocumented: \(line)")
        }
        if subcommand != "version" {
            for common in ["--kubeconfig", "--log-level", "--log-format"] { #expect(r.stdout.contains(common)) }
        }
    }
}
