import Foundation
import KubeClient
import KubeEmulator
import TapioTestSupport
import Testing

/// `tapio sniff` with a kubeconfig whose user gets its token from a command, as cloud clusters' kubeconfigs do: the
/// plugin's time (a login) does not count against sniff's 5-second wait for the API server, and a plugin that is
/// not there is named in the error `--k8s-only` exits with.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct SniffExecCredentialTests {
    /// A kubeconfig for `emu` whose user runs `script` (`$GOOD` is the emulator's token).
    static func execKubeconfig(_ emu: KubeEmulator, script: String, command: String = "./plugin.sh") throws -> URL {
        let config = try KubeConfig.load(path: emu.kubeconfigPath)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-sniff-exec-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let plugin = dir.appendingPathComponent("plugin.sh").path
        try writeExecutable("#!/bin/sh\n" + script + "\n", to: plugin)
        let ca = config.certificateAuthorityPEM.map { Data($0).base64EncodedString() } ?? ""
        try """
            apiVersion: v1
            kind: Config
            current-context: cloud
            clusters: [{name: c, cluster: {server: "\(config.server.absoluteString)", certificate-authority-data: "\(ca)"}}]
            contexts: [{name: cloud, context: {cluster: c, user: login}}]
            users:
            - name: login
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: \(command)
                  interactiveMode: Never
                  installHint: "install the cloud's CLI"
                  env: [{name: GOOD, value: "\(config.token ?? "")"}]
            """.write(to: dir.appendingPathComponent("kubeconfig"), atomically: true, encoding: .utf8)
        return dir
    }

    func sniff(_ kubeconfig: URL, _ args: [String]) async throws -> CommandResult {
        var env = ProcessInfo.processInfo.environment
        env["KUBECONFIG"] = kubeconfig.appendingPathComponent("kubeconfig").path
        env["KUBERNETES_SERVICE_HOST"] = nil
        return try await CommandRunner.run(CommandRunner.tapioExecutable, ["sniff"] + args, environment: env, timeout: .seconds(90))
    }

    @Test("a plugin that takes longer than sniff's 5-second wait still connects sniff to the cluster")
    func aSlowLoginStillConnects() async throws {
        try await withEmulator { emu in
            // Seven seconds: longer than the wait for the server, which must not include the login.
            let dir = try Self.execKubeconfig(emu, script: #"""
                sleep 7
                printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$GOOD"
                """#)
            defer { try? FileManager.default.removeItem(at: dir) }
            // Twenty: the login's 7 s, then a binary's start and the list, with room for a loaded machine.
            let r = try await sniff(dir, ["--k8s-only", "-o", "json", "--duration", "20s"])
            #expect(!r.timedOut && r.status == 0, "status \(r.status); stderr: \(r.stderr)")
            #expect(r.stderr.contains("Kubernetes \(emu.baseURL)"), "stderr: \(r.stderr)")
            #expect(!r.stderr.contains("no cluster reachable"), "stderr: \(r.stderr)")
            #expect(emu.requestTimes(containing: "/api/v1/pods").count >= 1, "sniff listed pods with the plugin's token")
        }
    }

    @Test("with --k8s-only, a plugin that is not there is named, with the kubeconfig's install hint")
    func aMissingPluginIsNamed() async throws {
        try await withEmulator { emu in
            let dir = try Self.execKubeconfig(emu, script: "exit 0", command: "tapio-test-no-such-login")
            defer { try? FileManager.default.removeItem(at: dir) }
            let r = try await sniff(dir, ["--k8s-only", "--duration", "5s"])
            #expect(!r.timedOut && r.status == 1, "status \(r.status); stderr: \(r.stderr)")
            #expect(r.stderr.contains("--k8s-only, but no cluster is reachable: credentials: "), "stderr: \(r.stderr)")
            #expect(r.stderr.contains("users[name=login].user.exec: tapio-test-no-such-login: command not found"), "stderr: \(r.stderr)")
            #expect(r.stderr.contains("install the cloud's CLI"), "stderr: \(r.stderr)")
        }
    }
}
