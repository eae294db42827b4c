import Foundation
import KubeEmulator
@testable import KubeClient
import TapioTestSupport
import Testing

/// A kubeconfig cluster's `tls-server-name`: the server's certificate is checked against that name while the
/// connection goes to the server's own address — an API server reached by address, or through a tunnel. Against the
/// emulator the name is one its certificate holds that resolves nowhere; against a real server (`TAPIO_TEST_KUBECONFIG`)
/// `kubernetes`, which every kube-apiserver serving certificate holds. (A name the certificate does not hold cannot be
/// shown failing here: both certificates also hold 127.0.0.1, and the TLS layer accepts a certificate whose IP
/// addresses include the one it connected to, whatever the name — see the README's known limits.)
@Suite("tls-server-name", .timeLimit(.minutes(2)))
struct TLSServerNameTests {
    /// A client of the test cluster with `tlsServerName` (nil when the cluster is not reached over TLS by address or
    /// localhost, said on stderr).
    static func withClient(_ name: (TestCluster) -> String, proxy: ConnectProxy? = nil,
                           _ body: (KubeClient, KubeConfig) async throws -> Void) async throws {
        let cluster = try await TestCluster.start()
        defer { Task { await cluster.stop() } }
        var config = try KubeConfig.load(path: cluster.kubeconfigPath)
        guard config.server.scheme == "https", ["127.0.0.1", "localhost"].contains(config.server.host ?? "") else {
            FileHandle.standardError.write(Data("skipped: the test cluster is at \(config.server), not on this machine over TLS\n".utf8))
            return
        }
        config.tlsServerName = name(cluster)
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
        try await Self.withClient(Self.certificateName) { client, config in
            #expect(client.requestBase.contains("://\(config.tlsServerName ?? "?"):"), "\(client.requestBase)")
            _ = try await client.list(Namespace.self)
            _ = try await client.watch(Namespace.self, options: WatchOptions(timeoutSeconds: 1))
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
        }
    }

    @Test("an exec plugin that asks for the cluster's info is told the tls-server-name, as client-go tells it")
    func theExecPluginIsToldTheName() throws {
        let config = try KubeConfig.parse(yaml: """
            current-context: c
            clusters: [{name: k, cluster: {server: "https://10.0.0.1:6443", tls-server-name: api.internal.example}}]
            users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token,
                     interactiveMode: Never, provideClusterInfo: true}}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            """, file: "/k")
        let plugin = try #require(config.exec)
        let info = ExecCredentialRun(plugin: plugin, cluster: config).execInfo(interactive: false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any])
        let cluster = try #require((object["spec"] as? [String: Any])?["cluster"] as? [String: Any])
        #expect(cluster["tls-server-name"] as? String == "api.internal.example")
        #expect(cluster["server"] as? String == "https://10.0.0.1:6443")
    }
}
