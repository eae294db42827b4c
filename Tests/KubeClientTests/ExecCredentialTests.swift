import Foundation
import KubeClient
import KubeEmulator
import TapioTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Kubeconfig users whose token comes from a command (`exec`), as on EKS, GKE and AKS. The plugins here are shell
/// scripts that print an ExecCredential holding the test cluster's own token — the emulator's, or the real
/// server's under `TAPIO_TEST_KUBECONFIG` — and record each run, so what is asserted is what a server accepted.
@Suite("Exec credential plugins", .timeLimit(.minutes(2)))
struct ExecCredentialTests {
    /// A plugin script and a kubeconfig that runs it, in a directory of their own.
    struct Plugin {
        let directory: URL
        var kubeconfig: String { directory.appendingPathComponent("kubeconfig").path }
        var runs: Int {
            ((try? String(contentsOf: directory.appendingPathComponent("runs"), encoding: .utf8)) ?? "")
                .split(separator: "\n").count
        }
        var execInfo: [String: Any]? {
            (try? Data(contentsOf: directory.appendingPathComponent("info")))
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
    }

    /// The server, CA and token of the test cluster's kubeconfig; nil (with the reason printed) when its user has
    /// no plain token to hand to a plugin.
    static func clusterCredentials(_ cluster: TestCluster) throws -> KubeConfig? {
        let config = try KubeConfig.load(path: cluster.kubeconfigPath)
        guard config.token != nil else {
            FileHandle.standardError.write(Data("skipped: the test cluster's kubeconfig user has no token to hand to a plugin\n".utf8))
            return nil
        }
        return config
    }

    /// Writes `script` (its body; `$STATE` is the plugin's directory, `$GOOD` the cluster's token, `$BAD` one the
    /// server refuses) and a kubeconfig whose user runs it.
    static func plugin(_ script: String, server: KubeConfig, apiVersion: String = "client.authentication.k8s.io/v1",
                       command: String? = nil) throws -> Plugin {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-exec-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("plugin.sh").path
        try writeExecutable("#!/bin/sh\necho run >> \"$STATE/runs\"\nprintf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$STATE/info\"\n"
                            + script + "\n", to: path)
        let ca = server.certificateAuthorityPEM.map { "    certificate-authority-data: \(Data($0).base64EncodedString())\n" } ?? ""
        let yaml = """
            apiVersion: v1
            kind: Config
            current-context: exec
            clusters:
            - name: c
              cluster:
                server: \(server.server.absoluteString)
                extensions:
                - name: client.authentication.k8s.io/exec
                  extension: {audience: tapio-test, regions: [eu-1]}
            \(ca)\(server.insecureSkipTLSVerify ? "    insecure-skip-tls-verify: true\n" : "")contexts:
            - name: exec
              context: {cluster: c, user: u}
            users:
            - name: u
              user:
                exec:
                  apiVersion: \(apiVersion)
                  command: \(command ?? "./plugin.sh")
                  interactiveMode: Never
                  provideClusterInfo: true
                  installHint: "install it with: make plugin"
                  env:
                  - {name: STATE, value: "\(dir.path)"}
                  - {name: GOOD, value: "\(server.token ?? "")"}
                  - {name: BAD, value: "not-the-token"}
            """
        try yaml.write(toFile: dir.appendingPathComponent("kubeconfig").path, atomically: true, encoding: .utf8)
        return Plugin(directory: dir)
    }

    /// A plugin body printing an ExecCredential whose status holds `fields` (JSON members, `$VARIABLES` expanded).
    static func status(_ fields: String) -> String {
        #"printf '%s\n' "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{"#
            + fields.replacingOccurrences(of: "\"", with: "\\\"") + #"}}""#
    }

    static func credential(_ token: String, expires: String? = nil, version: String = "client.authentication.k8s.io/v1") -> String {
        #"printf '{"apiVersion":"\#(version)","kind":"ExecCredential","status":{"token":"%s"\#(expires.map { #","expirationTimestamp":"\#($0)""# } ?? "")}}' "\#(token)""#
    }

    /// Runs `body` with a client whose kubeconfig user is `script`'s plugin.
    static func withPlugin(_ script: String, timeout: Duration? = nil,
                           _ body: (KubeClient, Plugin) async throws -> Void) async throws {
        try await TestCluster.with { cluster in
            guard let server = try clusterCredentials(cluster) else { return }
            let plugin = try plugin(script, server: server)
            defer { try? FileManager.default.removeItem(at: plugin.directory) }
            var config = try KubeConfig.load(path: plugin.kubeconfig)
            if let timeout { config.exec?.timeout = timeout }
            // Whether `swift test` runs in a terminal must not change what is asserted.
            config.exec?.terminal = false
            let client = try KubeClient(config: config, retryPolicy: RetryPolicy(maxAttempts: 1))
            do {
                try await body(client, plugin)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    /// Expects `client`'s next request to fail for want of a credential, with a message holding every one of `parts`.
    static func expectCredentialsError(_ client: KubeClient, containing parts: String...,
                                       sourceLocation: SourceLocation = #_sourceLocation) async {
        await #expect(sourceLocation: sourceLocation) {
            _ = try await client.list(Namespace.self)
        } throws: { e in
            guard case KubeError.credentials(let m) = e else { return false }
            return parts.allSatisfy { m.contains($0) }
        }
    }

    @Test("the plugin's token authenticates, is kept while it has not expired, and the plugin gets its request")
    func aTokenIsUsedAndKept() async throws {
        try await Self.withPlugin(Self.credential("$GOOD")) { client, plugin in
            for _ in 0..<4 { _ = try await client.list(Namespace.self) }
            #expect(plugin.runs == 1)
            #expect(client.execCredentialRuns == 1)
            let info = try #require(plugin.execInfo)
            #expect(info["apiVersion"] as? String == "client.authentication.k8s.io/v1")
            #expect(info["kind"] as? String == "ExecCredential")
            let spec = try #require(info["spec"] as? [String: Any])
            #expect(spec["interactive"] as? Bool == false)
            let cluster = try #require(spec["cluster"] as? [String: Any], "provideClusterInfo: true sends the cluster")
            #expect(cluster["server"] as? String == client.config.server.absoluteString)
            #expect((cluster["certificate-authority-data"] as? String).flatMap { Data(base64Encoded: $0) }
                    == client.config.certificateAuthorityPEM.map { Data($0) })
            let extensionConfig = try #require(cluster["config"] as? [String: Any], "the cluster's exec extension")
            #expect(extensionConfig["audience"] as? String == "tapio-test")
            #expect(extensionConfig["regions"] as? [String] == ["eu-1"])
        }
    }

    @Test("the plugin starts with no signal blocked or ignored, whatever thread or handlers Tapio has")
    func thePluginGetsCleanSignals() async throws {
        // Read with the shell's builtins: dash blocks every signal around each fork, so a `grep` of the shell's
        // status could catch it in the middle of starting the grep.
        let script = #"while IFS= read -r line; do case "$line" in SigBlk:*|SigIgn:*) echo "$line";; esac; done < /proc/$$/status > "$STATE/signals""#
            + "\n" + Self.credential("$GOOD")
        try await Self.withPlugin(script) { client, plugin in
            _ = try await client.list(Namespace.self)
            let text = try String(contentsOf: plugin.directory.appendingPathComponent("signals"), encoding: .utf8)
            let masks = Dictionary(text.split(separator: "\n").compactMap { line -> (String, UInt64)? in
                let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
                return parts.count == 2 ? (parts[0], UInt64(parts[1], radix: 16) ?? .max) : nil
            }, uniquingKeysWith: { a, _ in a })
            #expect(masks["SigBlk"] == 0, "\(text)")
            // Signals 1–31 at their defaults. glibc's posix_spawn leaves its own two real-time signals (32, 33: thread
            // cancellation and set*id, which no program may use) ignored in every child.
            #expect(masks["SigIgn"].map { $0 & 0x7FFF_FFFF } == 0, "\(text)")
        }
    }

    @Test("a request waiting for the plugin stops waiting when it is cancelled, and the plugin nobody waits for is stopped")
    func aWaitingRequestCanBeCancelled() async throws {
        try await Self.withPlugin("echo $$ > \"$STATE/pid\"\nsleep 100", timeout: .seconds(90)) { client, plugin in
            let request = Task { try await client.list(Namespace.self) }
            let pidFile = plugin.directory.appendingPathComponent("pid")
            func written() -> Int32? {
                (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
            #expect(await eventually(timeout: .seconds(60)) { written() != nil })
            let pid = try #require(written())
            request.cancel()
            let outcome = await request.result
            #expect(throws: CancellationError.self) { try outcome.get() }
            // The script's shell is gone (killed and reaped), not sleeping on for a minute and a half.
            #expect(await eventually(timeout: .seconds(60)) { kill(pid, 0) != 0 })
        }
    }

    @Test("a plugin that closes its output and goes on running is killed at its timeout, not waited for")
    func aPluginThatLingersIsKilled() async throws {
        try await Self.withPlugin("exec >&- 2>&-\nsleep 30", timeout: .seconds(1)) { client, _ in
            await Self.expectCredentialsError(client, containing: "did not finish within 1.00s")
        }
    }

    @Test("a watch refused with the plugin's token asks for a new one on the next attempt")
    func aRefusedWatchAsksAgain() async throws {
        let script = "if [ \"$(wc -l < \"$STATE/runs\")\" -le 1 ]; then \(Self.credential("$BAD")); else \(Self.credential("$GOOD")); fi"
        try await Self.withPlugin(script) { client, plugin in
            await #expect {
                _ = try await client.watch(Namespace.self)
            } throws: { e in
                guard case KubeError.unauthorized = e else { return false }
                return true
            }
            #expect(plugin.runs == 1)
            _ = try await client.watch(Namespace.self, options: WatchOptions(timeoutSeconds: 1))
            #expect(plugin.runs == 2)
        }
    }

    @Test("an expired token is replaced before the next request")
    func anExpiredTokenIsReplaced() async throws {
        try await Self.withPlugin(Self.credential("$GOOD", expires: "2020-01-01T00:00:00Z")) { client, plugin in
            for _ in 0..<3 { _ = try await client.list(Namespace.self) }
            #expect(plugin.runs == 3)
        }
    }

    @Test("requests that need a token together wait for one run of the plugin")
    func concurrentRequestsShareOneRun() async throws {
        try await Self.withPlugin("sleep 0.3\n" + Self.credential("$GOOD")) { client, plugin in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 { group.addTask { _ = try await client.list(Namespace.self) } }
                try await group.waitForAll()
            }
            #expect(plugin.runs == 1)
        }
    }

    /// Runs `body` with a client whose plugin gives `certificate` and `key`, or else the emulator's client
    /// certificate and key, and no token unless `token`; without both against a real server (whose CA did not sign
    /// the emulator's) it is skipped with the reason printed. `body` gets the emulator when there is one.
    static func withCertificatePlugin(expires: String? = nil, certificate: String? = nil, key: String? = nil, token: String? = nil,
                                      test: String = #function,
                                      _ body: (KubeClient, Plugin, KubeEmulator?) async throws -> Void) async throws {
        try await TestCluster.with { cluster in
            let emu = cluster.emulator
            guard let pair = certificate.flatMap({ c in key.map { (certificatePEM: c, keyPEM: $0) } }) ?? emu?.clientCertificate else {
                FileHandle.standardError.write(Data("skipped \(test): needs a client certificate the server trusts — the emulator's (TAPIO_TEST_KUBECONFIG is set)\n".utf8))
                return
            }
            let plugin = try Self.plugin(#"cat "$STATE/credential.json""#, server: try KubeConfig.load(path: cluster.kubeconfigPath))
            defer { try? FileManager.default.removeItem(at: plugin.directory) }
            var status: [String: Any] = ["clientCertificateData": pair.certificatePEM, "clientKeyData": key ?? pair.keyPEM]
            if let expires { status["expirationTimestamp"] = expires }
            if let token { status["token"] = token }
            let object: [String: Any] = ["apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status]
            try JSONSerialization.data(withJSONObject: object).write(to: plugin.directory.appendingPathComponent("credential.json"))
            var config = try KubeConfig.load(path: plugin.kubeconfig)
            config.exec?.terminal = false
            let client = try KubeClient(config: config, retryPolicy: RetryPolicy(maxAttempts: 1))
            do { try await body(client, plugin, emu) } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    /// Teleport's `tsh kube credentials` and some on-premises logins answer with a client certificate, not a token.
    @Test("a plugin's client certificate and key authenticate requests and watches, with no token")
    func aClientCertificateAuthenticates() async throws {
        try await Self.withCertificatePlugin { client, plugin, emu in
            let emu = try #require(emu)
            let before = emu.certificateAuthenticatedRequestCount
            for _ in 0..<3 { _ = try await client.list(Namespace.self) }
            _ = try await client.watch(Namespace.self, options: WatchOptions(timeoutSeconds: 1))
            #expect(emu.certificateAuthenticatedRequestCount - before == 4, "every request was authenticated by the certificate alone")
            #expect(plugin.runs == 1)
        }
    }

    /// client-go sends both when a plugin gives both; kube-apiserver authenticates by the certificate first, so a
    /// token it does not know does no harm (as on the real cluster, 6 December).
    @Test("a plugin's certificate and token together: the certificate is sent with the token")
    func aCertificateAndATokenTogether() async throws {
        try await Self.withCertificatePlugin(token: "not-the-token") { client, plugin, emu in
            _ = try await client.list(Namespace.self)
            #expect(try #require(emu).certificateAuthenticatedRequestCount == 1, "the token is refused, so only the certificate can have authenticated")
            #expect(plugin.runs == 1)
        }
    }

    @Test("an expired client certificate is replaced before the next request")
    func anExpiredClientCertificateIsReplaced() async throws {
        try await Self.withCertificatePlugin(expires: "2020-01-01T00:00:00Z") { client, plugin, emu in
            for _ in 0..<3 { _ = try await client.list(Namespace.self) }
            #expect(plugin.runs == 3)
            #expect(try #require(emu).certificateAuthenticatedRequestCount >= 3)
        }
    }

    /// kube-apiserver lets any client certificate through the handshake and authenticates only one its CA signed
    /// (seen on the real cluster, 6 December): an unknown one is a 401, asked for again once, not a TLS failure.
    @Test("a client certificate the server does not know is refused with 401, and the plugin asked again once")
    func anUnknownClientCertificateIsRefused() async throws {
        let (cert, key) = try await KubeConfigRegressionTests.certificateAndKey()
        try await Self.withCertificatePlugin(certificate: cert, key: key) { client, plugin, emu in
            await #expect {
                _ = try await client.list(Namespace.self)
            } throws: { e in
                guard case KubeError.unauthorized = e else { return false }
                return true
            }
            #expect(plugin.runs == 2, "asked again once after the refusal")
            #expect((emu?.certificateAuthenticatedRequestCount ?? 0) == 0)
        }
    }

    @Test("a plugin's client key that is not PEM, or not the certificate's, is named")
    func aBadClientKeyIsNamed() async throws {
        // Made here, not the emulator's: what is checked is the plugin's answer, so this runs against any server.
        let (cert, _) = try await KubeConfigRegressionTests.certificateAndKey()
        let (_, otherKey) = try await KubeConfigRegressionTests.certificateAndKey()
        try await Self.withCertificatePlugin(certificate: cert, key: "not a key") { client, _, _ in
            await Self.expectCredentialsError(client, containing: "users[name=u].user.exec: ", "status.clientKeyData is not a PEM private key")
        }
        try await Self.withCertificatePlugin(certificate: cert, key: otherKey) { client, _, emu in
            await Self.expectCredentialsError(client, containing: "users[name=u].user.exec: ",
                                              "status.clientKeyData is not the key of the certificate in status.clientCertificateData")
            #expect((emu?.certificateAuthenticatedRequestCount ?? 0) == 0)
        }
    }

    @Test("a token the server refuses is asked for again and the request sent once more; a second refusal is the answer")
    func aRefusedTokenIsReplacedOnce() async throws {
        // First run: a token the server refuses; every later run: the good one.
        let script = "if [ \"$(wc -l < \"$STATE/runs\")\" -le 1 ]; then \(Self.credential("$BAD")); else \(Self.credential("$GOOD")); fi"
        try await Self.withPlugin(script) { client, plugin in
            _ = try await client.list(Namespace.self)
            #expect(plugin.runs == 2)
            _ = try await client.list(Namespace.self)
            #expect(plugin.runs == 2)
        }
        try await Self.withPlugin(Self.credential("$BAD")) { client, plugin in
            await #expect {
                _ = try await client.list(Namespace.self)
            } throws: { e in
                guard case KubeError.unauthorized = e else { return false }
                return true
            }
            #expect(plugin.runs == 2, "asked again once, not without end")
        }
    }

    @Test("a plugin that fails, hangs, prints too much or prints no credential is named with what it said", arguments: [
        ("echo 'no session; run: login' >&2; exit 3", "exited with status 3: no session; run: login"),
        ("sleep 30", "did not finish within 2.00s; killed"),
        ("head -c 2000000 /dev/zero | tr '\\0' 'x'", "printed more than 1048576 bytes; killed"),
        ("echo hello", "did not print an ExecCredential (JSON): hello"),
        (credential("$GOOD", version: "client.authentication.k8s.io/v1beta1"), "not the client.authentication.k8s.io/v1 it was asked for"),
        (status(#""clientCertificateData":"x","clientKeyData":"y""#), "status.clientCertificateData is not a PEM certificate"),
        (status(#""clientCertificateData":"x""#), "gave status.clientCertificateData without status.clientKeyData"),
        (status(#""clientKeyData":"y","token":"$GOOD""#), "gave status.clientKeyData without status.clientCertificateData"),
        (status(""), "has neither status.token nor status.clientCertificateData and clientKeyData"),
        (status(#""token":7"#), "status.token is not a string"),
        // Sent, it would be refused by the HTTP client with an error quoting the whole token.
        (status(#""token":"ab\u0001cd""#), "status.token contains a control character (byte 3 of 5)"),
        (credential("$GOOD", expires: "tomorrow"), "is not an RFC 3339 time"),
    ])
    func failuresAreNamed(script: String, expected: String) async throws {
        // Two seconds for the one that hangs; the others have the default minute, so a loaded machine cannot turn
        // their failure into a timeout.
        try await Self.withPlugin(script, timeout: script.hasPrefix("sleep") ? .seconds(2) : nil) { client, plugin in
            await Self.expectCredentialsError(client, containing: "users[name=u].user.exec: ", expected)
        }
    }

    @Test("a command that is not there is named with the kubeconfig's install hint")
    func aMissingCommandGivesTheInstallHint() async throws {
        let server = KubeConfig(server: URL(string: "https://127.0.0.1:1")!, token: "unused")
        let plugin = try Self.plugin("", server: server, command: "tapio-no-such-plugin")
        defer { try? FileManager.default.removeItem(at: plugin.directory) }
        var config = try KubeConfig.load(path: plugin.kubeconfig)
        config.exec?.terminal = false
        let client = try KubeClient(config: config, retryPolicy: RetryPolicy(maxAttempts: 1))
        await Self.expectCredentialsError(client, containing: "tapio-no-such-plugin: command not found", "install it with: make plugin")
        try await client.shutdown()
    }

    @Test("exec sections kubectl would refuse are refused naming the field", arguments: [
        ("command: \"\"", "exec.command: missing"),
        ("apiVersion: client.authentication.k8s.io/v1alpha1", "exec.apiVersion: \"client.authentication.k8s.io/v1alpha1\" is not supported"),
        ("interactiveMode: Sometimes", "exec.interactiveMode: \"Sometimes\" is not one of Never, IfAvailable, Always"),
        ("env: [{value: x}]", "exec.env[0].name: missing"),
        ("args: [ok, {a: b}]", "exec.args[1]: not a string"),
        ("provideClusterInfo: \"yes\"", "exec.provideClusterInfo: not a boolean"),
    ])
    func malformedSectionsNameTheField(line: String, expected: String) throws {
        var fields = ["apiVersion: client.authentication.k8s.io/v1", "command: aws", "interactiveMode: Never"]
        let key = String(line.prefix { $0 != ":" })
        fields.removeAll { $0.hasPrefix(key + ":") }
        fields.append(line)
        let yaml = """
            apiVersion: v1
            current-context: c
            clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
            contexts: [{name: c, context: {cluster: c, user: u}}]
            users:
            - name: u
              user:
                exec:
            \(fields.map { "      " + $0 }.joined(separator: "\n"))
            """
        #expect {
            _ = try KubeConfig.parse(yaml: yaml, file: "/k/config")
        } throws: { e in
            (e as? KubeConfigError)?.description.contains("/k/config: users[name=u].user.\(expected)") == true
        }
    }

    @Test("a command with a slash is relative to the kubeconfig, a bare name is left to PATH, and v1beta1 defaults to IfAvailable")
    func commandsResolveAsKubectlResolvesThem() throws {
        func exec(_ command: String, _ version: String = "client.authentication.k8s.io/v1", mode: String = "interactiveMode: Never") throws -> ExecCredentialPlugin? {
            try KubeConfig.parse(yaml: """
                apiVersion: v1
                current-context: c
                clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
                contexts: [{name: c, context: {cluster: c, user: u}}]
                users: [{name: u, user: {exec: {apiVersion: \(version), command: "\(command)", \(mode)}}}]
                """, file: "/home/me/.kube/config").exec
        }
        #expect(try exec("./bin/get-token")?.command == "/home/me/.kube/bin/get-token")
        #expect(try exec("aws")?.command == "aws")
        #expect(try exec("/usr/bin/aws")?.command == "/usr/bin/aws")
        #expect(try exec("aws", "client.authentication.k8s.io/v1beta1", mode: "args: []")?.interactiveMode == .ifAvailable)
        #expect(throws: KubeConfigError.self) { try exec("aws", mode: "args: []") }
    }

    @Test("interactiveMode Always without a terminal is refused before anything runs")
    func alwaysNeedsATerminal() async throws {
        var config = KubeConfig(server: URL(string: "https://127.0.0.1:1")!)
        config.exec = ExecCredentialPlugin(command: "/bin/true", interactiveMode: .always, field: "users[name=u].user.exec")
        config.exec?.terminal = false
        let client = try KubeClient(config: config, retryPolicy: RetryPolicy(maxAttempts: 1))
        await Self.expectCredentialsError(client, containing: "interactiveMode is Always, but standard input is not a terminal")
        #expect(client.execCredentialRuns == 1)
        try await client.shutdown()
    }
}
