import Foundation
import KubeEmulator
import TapioTestSupport
import Testing

/// `tapio sniff` against API servers that are gone or hostile: `--k8s-only` fails fast with the README's message,
/// and `--duration` holds in every state (issue 16).
@Suite(.serialized)
struct SniffHostileServerTests {
    /// The grace sniff gets beyond `--duration` to start (a debug binary, timed from the spawn), stop the probes and
    /// print its summary — loose, for a loaded machine: what these tests catch is a wait on the server that is not
    /// held to the duration (a request's own timeout, 30 s and more, or none at all).
    static let grace: Duration = .seconds(15)

    func sniff(_ args: [String], kubeconfig: String) async throws -> (result: CommandResult, took: Duration) {
        var env = ProcessInfo.processInfo.environment
        env["KUBECONFIG"] = kubeconfig
        env["KUBERNETES_SERVICE_HOST"] = nil
        let start = ContinuousClock.now
        let r = try await CommandRunner.run(CommandRunner.tapioExecutable, ["sniff"] + args, environment: env, timeout: .seconds(60))
        return (r, ContinuousClock.now - start)
    }

    /// A kubeconfig for a server that is gone: an emulator's, after it stopped (its port now refuses).
    func goneKubeconfig() async throws -> String {
        try await withEmulator { emu in
            let text = try String(contentsOfFile: emu.kubeconfigPath, encoding: .utf8)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-gone-\(UUID().uuidString).kubeconfig").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func k8sOnlyWithAServerThatIsGoneFailsFastWithTheReadmesMessage() async throws {
        let kubeconfig = try await goneKubeconfig()
        defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
        let (r, took) = try await sniff(["--k8s-only", "--duration", "2s"], kubeconfig: kubeconfig)
        #expect(!r.timedOut && r.status == 1, "status \(r.status) after \(took); stderr: \(r.stderr)")
        #expect(r.stderr.contains("--k8s-only, but no cluster is reachable: https://127.0.0.1:"), "stderr: \(r.stderr)")
        #expect(took < .seconds(2) + Self.grace, "took \(took)")
    }

    @Test(.timeLimit(.minutes(2)))
    func k8sOnlyWithAServerThatNeverAnswersFailsWithinTheDuration() async throws {
        try await withEmulator { emu in
            emu.misbehave(.neverAnswer)
            let (r, took) = try await sniff(["--k8s-only", "--duration", "2s"], kubeconfig: emu.kubeconfigPath)
            #expect(!r.timedOut && r.status == 1, "status \(r.status) after \(took); stderr: \(r.stderr)")
            #expect(r.stderr.contains("--k8s-only, but no cluster is reachable:"), "stderr: \(r.stderr)")
            #expect(took < .seconds(2) + Self.grace, "took \(took)")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func withoutK8sOnlyAServerThatNeverAnswersFallsBackToTheMachineAndTheDurationHolds() async throws {
        try await withEmulator { emu in
            emu.misbehave(.neverAnswer)
            let (r, took) = try await sniff(["-o", "json", "--duration", "3s"], kubeconfig: emu.kubeconfigPath)
            #expect(!r.timedOut && r.status == 0, "status \(r.status) after \(took); stderr: \(r.stderr)")
            #expect(r.stderr.contains("no cluster reachable"), "stderr: \(r.stderr)")
            // Twice the grace: this run also loads and closes the kernel probes, which a loaded machine makes slow.
            #expect(took < .seconds(3) + Self.grace * 2, "took \(took)")
        }
    }

    @Test(.timeLimit(.minutes(2)), arguments: [Misbehaviour.neverAnswer, .endlessWatchLine, .expireWatchesInStream, .status(500)])
    func theDurationHoldsWhenTheServerTurnsHostileAfterSniffConnected(_ mode: Misbehaviour) async throws {
        try await withEmulator { emu in
            var env = ProcessInfo.processInfo.environment
            env["KUBECONFIG"] = emu.kubeconfigPath
            let start = ContinuousClock.now
            async let run = CommandRunner.run(CommandRunner.tapioExecutable, ["sniff", "--k8s-only", "-o", "json", "--duration", "5s"],
                                              environment: env, timeout: .seconds(60))
            // Connected and watching its pods: then the server turns.
            let end = ContinuousClock.now + .seconds(20)
            while emu.requestTimes(containing: "/api/v1/pods?watch=true").isEmpty && ContinuousClock.now < end {
                try await Task.sleep(for: .milliseconds(20))
            }
            let watching = !emu.requestTimes(containing: "/api/v1/pods?watch=true").isEmpty
            emu.misbehave(mode)
            emu.dropWatches()
            let r = try await run
            let took = ContinuousClock.now - start
            #expect(watching, "sniff never watched its pods; stderr: \(r.stderr)")
            #expect(!r.timedOut && r.status == 0, "status \(r.status) after \(took); stderr: \(r.stderr)")
            #expect(took < .seconds(5) + Self.grace, "\(mode): took \(took)")
            #expect(r.stdout.contains(#""record":"status""#), "the final status record is written: \(r.stdout.suffix(500))")
        }
    }
}
