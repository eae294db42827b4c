import Foundation
@testable import KubeEmulator
@testable import KubeClient
import TapioTestSupport
import Testing

/// A kubeconfig cluster's `tls-server-name`: the server's certificate is checked against that name while the
/// connection goes to the server's own address — an API server reached by address, or through a tunnel. Against the
/// emulator the name is one that resolves nowhere, held by the certificate the emulator presents to a client naming a
/// server (which holds no address); against a real server (`TAPIO_TEST_KUBECONFIG`) `kubernetes`, which every
/// kube-apiserver serving certificate holds. That the name is sent and checked is shown against the emulator only: a
/// real server's certificate also holds its address, and the TLS layer accepts a certificate whose IP addresses
/// include the one it connected to, whatever the name (the README's known limits).
@Suite("tls-server-name", .timeLimit(.minutes(2)))
struct TLSServerNameTests {
    /// Runs `body` with a client of the test cluster with `tlsServerName` (skipped, said on stderr, when the cluster
    /// is not reached over TLS by address or localhost), then `emulator` with what the emulator saw. With a real
    /// server `emulator` is skipped, saying so — and the whole test when it is `emulatorOnly`.
    static func withClient(_ name: (TestCluster) -> String, proxy: ConnectProxy? = nil, emulatorOnly: Bool = false,
                           _ body: (KubeClient, KubeConfig) async throws -> Void,
                           emulator: ((KubeEmulator) -> Void)? = nil) async throws {
        try await TestCluster.with { cluster in
            let config = try KubeConfig.load(path: cluster.kubeconfigPath)
            guard config.server.scheme == "https", ["127.0.0.1", "localhost"].contains(config.server.host ?? "") else {
                FileHandle.standardError.write(Data("skipped: the test cluster is at \(config.server), not on this machine over TLS\n".utf8))
                return
            }
            guard let seen = cluster.emulator else {
                let what = emulatorOnly ? "this test needs" : "the server names sent are checked against"
                if emulatorOnly || emulator != nil {
                    FileHandle.standardError.write(Data("skipped (a real server): \(what) the emulator, whose certificate for a name holds no address\n".utf8))
                }
                if !emulatorOnly { try await run(config, name(cluster), proxy, body) }
                return
            }
            try await run(config, name(cluster), proxy, body)
            emulator?(seen)
        }
    }

    private static func run(_ config: KubeConfig, _ name: String, _ proxy: ConnectProxy?,
                            _ body: (KubeClient, KubeConfig) async throws -> Void) async throws {
        var config = config
        config.tlsServerName = name
        if let proxy { config.proxy = .url("http://127.0.0.1:\(proxy.port)") }
        let client = try KubeClient(config: config, retryPolicy: RetryPolicy(maxAttempts: 1))
        do { try await body(client, config) } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    static func certificateName(_ cluster: TestCluster) -> String {
        cluster.emulator != nil ? KubeEmulator.certificateOnlyName : "kubernetes"
    }

    @Test("requests and watches reach the server under a name only its certificate holds")
    func aNameOnlyTheCertificateHolds() async throws {
        // The name resolves nowhere, so reaching the server at all shows the connection went to its address.
        let server = Box("")
        try await Self.withClient(Self.certificateName) { client, config in
            #expect(client.requestBase.contains("://\(config.tlsServerName ?? "?"):"), "\(client.requestBase)")
            server.with { $0 = "\(config.server.host ?? ""):\(config.server.port ?? 443)" }
            #expect(client.hostHeader == server.get, "the Host header names the server, as Go's client sends it")
            _ = try await client.list(Namespace.self)
            _ = try await client.watch(Namespace.self, options: WatchOptions(timeoutSeconds: 1))
        } emulator: { emulator in
            // The name went out in the TLS hello, and the certificate it got holds only that name.
            #expect(emulator.serverNames == [KubeEmulator.certificateOnlyName], "\(emulator.serverNames)")
            // The Host header did not: it named the server, as it does without a tls-server-name.
            #expect(emulator.hostHeaders.contains(server.get), "\(emulator.hostHeaders)")
            #expect(!emulator.hostHeaders.contains { $0.hasPrefix(KubeEmulator.certificateOnlyName) }, "\(emulator.hostHeaders)")
        }
    }

    @Test("a certificate that does not hold the name is refused, though it is the server's own")
    func aCertificateForAnotherNameIsRefused() async throws {
        // The emulator answers any name but localhost with the certificate for its own name, which holds no
        // address: sent "elsewhere.invalid", it shows a certificate for another server — a MITM's, to the client.
        try await Self.withClient({ _ in "elsewhere.invalid" }, emulatorOnly: true) { client, _ in
            do {
                _ = try await client.list(Namespace.self)
                Issue.record("a certificate for \(KubeEmulator.certificateOnlyName) was accepted for elsewhere.invalid")
            } catch let error as KubeError {
                // Refused for the name, not unreachable: the connection went to the server's address, and the
                // certificate was checked against the name, not against that address.
                guard case .transport(let message) = error else { Issue.record("\(error)"); return }
                #expect(message.contains("failedToValidateHostname") && message.contains("elsewhere.invalid"), "\(message)")
            }
        } emulator: { emulator in
            #expect(emulator.serverNames == ["elsewhere.invalid"], "\(emulator.serverNames)")
        }
    }

    @Test("through a proxy the tunnel goes to the server's address, and the certificate is checked against the name")
    func throughAProxy() async throws {
        let proxy = try ConnectProxy()
        defer { proxy.stop() }
        try await Self.withClient(Self.certificateName, proxy: proxy) { client, config in
            _ = try await client.list(Namespace.self)
            let server = "\(config.server.host ?? ""):\(config.server.port ?? 443)"
            #expect(!proxy.targets.isEmpty && proxy.targets.allSatisfy { $0 == server }, "\(proxy.targets) for \(server)")
        } emulator: { emulator in
            #expect(emulator.serverNames == [KubeEmulator.certificateOnlyName], "\(emulator.serverNames)")
        }
    }

    @Test("an exec plugin that asks for the cluster's info is told the tls-server-name as written, as client-go tells it")
    func theExecPluginIsToldTheName() throws {
        // Also when it differs from the name checked only in case and a trailing dot, or repeats the server's host.
        for (server, name) in [("https://10.0.0.1:6443", "api.internal.example"), ("https://10.0.0.1:6443", "API.Internal.Example."),
                               ("https://api.example.com:6443", "api.example.com")] {
            let config = try KubeConfig.parse(yaml: """
                current-context: c
                clusters: [{name: k, cluster: {server: "\(server)", tls-server-name: "\(name)"}}]
                users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token,
                         interactiveMode: Never, provideClusterInfo: true}}}]
                contexts: [{name: c, context: {cluster: k, user: u}}]
                """, file: "/k")
            let plugin = try #require(config.exec)
            let info = ExecCredentialRun(plugin: plugin, cluster: config).execInfo(interactive: false)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any])
            let cluster = try #require((object["spec"] as? [String: Any])?["cluster"] as? [String: Any])
            #expect(cluster["tls-server-name"] as? String == name, "\(server)")
            #expect(cluster["server"] as? String == server)
            // A name changed in code after loading is the one told.
            var changed = config
            changed.tlsServerName = "other.example"
            let told = ExecCredentialRun(plugin: plugin, cluster: changed).execInfo(interactive: false)
            #expect(told.contains(#""tls-server-name":"other.example""#), "\(told)")
        }
    }

    @Test("the emulator answers localhost and addresses with its certificate for them, any other name with the named one")
    func whichCertificateTheEmulatorServes() {
        for name in ["localhost", "LocalHost.", "127.0.0.1", "::1"] {
            #expect(KubeEmulator.servesDefaultCertificate(name), "\(name)")
        }
        for name in [KubeEmulator.certificateOnlyName, "elsewhere.invalid", "localhost.localdomain", "my-laptop", "1.2.3.example"] {
            #expect(!KubeEmulator.servesDefaultCertificate(name), "\(name)")
        }
    }
}
