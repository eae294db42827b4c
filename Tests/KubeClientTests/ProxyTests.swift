import Foundation
@testable import KubeClient
import TapioTestSupport
import Testing

/// The API server behind a proxy: a kubeconfig cluster's `proxy-url`, or the environment's proxy as Go's client reads
/// it. The tunnels go through a real CONNECT proxy (`ConnectProxy`) to the test cluster — the emulator, or the real
/// server under `TAPIO_TEST_KUBECONFIG` — so what is asserted is that the server answered through it.
@Suite("API server behind a proxy", .timeLimit(.minutes(2)))
struct ProxyTests {
    static func withProxiedClient(_ proxyURL: (Int) -> String, proxy: ConnectProxy,
                                  _ body: (KubeClient, KubeConfig) async throws -> Void) async throws {
        try await TestCluster.with { cluster in
            var config = try KubeConfig.load(path: cluster.kubeconfigPath)
            guard ["127.0.0.1", "localhost"].contains(config.server.host ?? "") else {
                FileHandle.standardError.write(Data("skipped: the test proxy tunnels only to 127.0.0.1, and the test cluster is at \(config.server)\n".utf8))
                return
            }
            config.proxy = .url(proxyURL(proxy.port))
            let client = try KubeClient(config: config, retryPolicy: RetryPolicy(maxAttempts: 1))
            do { try await body(client, config) } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    @Test("with proxy-url every request and watch goes through the proxy's tunnel to the server")
    func requestsGoThroughTheProxy() async throws {
        let proxy = try ConnectProxy()
        defer { proxy.stop() }
        try await Self.withProxiedClient({ "http://127.0.0.1:\($0)" }, proxy: proxy) { client, config in
            _ = try await client.list(Namespace.self)
            let stream = try await client.watch(Namespace.self, options: WatchOptions(timeoutSeconds: 1))
            _ = stream
            let server = "\(config.server.host ?? ""):\(config.server.port ?? 443)"
            #expect(!proxy.targets.isEmpty)
            #expect(proxy.targets.allSatisfy { $0 == server }, "\(proxy.targets) for \(server)")
            #expect(client.proxy == ProxyEndpoint(kind: .http, host: "127.0.0.1", port: proxy.port))
        }
    }

    @Test("the proxy URL's user and password are sent as Proxy-Authorization; without them a 407 fails the request")
    func proxyCredentials() async throws {
        let expected = "Basic " + Data("me:s3cret".utf8).base64EncodedString()
        let proxy = try ConnectProxy(requireAuthorization: expected)
        defer { proxy.stop() }
        try await Self.withProxiedClient({ "http://me:s3cret@127.0.0.1:\($0)" }, proxy: proxy) { client, _ in
            _ = try await client.list(Namespace.self)
            #expect(proxy.authorizations.contains(expected))
        }
        try await Self.withProxiedClient({ "http://127.0.0.1:\($0)" }, proxy: proxy) { client, _ in
            await #expect(throws: KubeError.self) { _ = try await client.list(Namespace.self) }
        }
    }

    @Test("proxy-url is read from the kubeconfig; one Tapio cannot use is refused naming the field", arguments: [
        ("http://proxy.corp:3128", nil),
        ("socks5://proxy.corp:1080", nil),
        ("proxy.corp:3128", nil),
        ("https://proxy.corp:3128", "an https:// proxy (TLS to the proxy) is not supported"),
        ("ftp://proxy.corp", "proxy scheme \"ftp\" is not supported"),
        ("socks5://me:pw@proxy.corp", "a SOCKS5 proxy with a user name and password is not supported"),
        ("http://proxy.corp:99999", "proxy port 99999 is out of range"),
    ] as [(String, String?)])
    func proxyURLField(url: String, problem: String?) throws {
        let yaml = """
            current-context: c
            clusters: [{name: k, cluster: {server: "https://10.0.0.1:6443", proxy-url: "\(url)"}}]
            contexts: [{name: c, context: {cluster: k}}]
            """
        if let problem {
            let e = try #require(throws: KubeConfigError.self) { try KubeConfig.parse(yaml: yaml, file: "/k") }
            #expect(e.field == "clusters[name=k].cluster.proxy-url" && e.message.contains(problem), "\(e)")
        } else {
            let c = try KubeConfig.parse(yaml: yaml, file: "/k")
            guard case .url = c.proxy else { Issue.record("\(c.proxy)"); return }
        }
    }

    @Test("the environment's proxy follows Go's rules: HTTPS_PROXY for https, NO_PROXY, never loopback")
    func environmentRules() throws {
        func pick(_ server: String, _ env: [String: String]) -> String? {
            ProxyEndpoint.fromEnvironment(for: URL(string: server)!, environment: env)?.value
        }
        let proxied = ["HTTPS_PROXY": "http://proxy:3128"]
        #expect(pick("https://api.example.com:6443", proxied) == "http://proxy:3128")
        #expect(pick("https://api.example.com:6443", ["https_proxy": "proxy:8080"]) == "proxy:8080")
        #expect(pick("https://api.example.com:6443", ["HTTPS_PROXY": "a:1", "https_proxy": "b:2"]) == "a:1")
        #expect(pick("http://api.example.com:8080", proxied) == nil, "an http server takes HTTP_PROXY")
        #expect(pick("http://api.example.com:8080", ["HTTP_PROXY": "p:1"]) == "p:1")
        for loopback in ["https://127.0.0.1:6443", "https://localhost:6443", "https://[::1]:6443", "https://127.9.9.9",
                         "https://[::ffff:127.0.0.1]:6443"] {
            #expect(pick(loopback, proxied) == nil, "\(loopback)")
        }
        func bypassed(_ server: String, _ noProxy: String) -> Bool {
            var env = proxied
            env["NO_PROXY"] = noProxy
            return pick(server, env) == nil
        }
        #expect(bypassed("https://api.example.com:6443", "*"))
        #expect(bypassed("https://api.example.com:6443", "example.com"))
        #expect(bypassed("https://example.com:6443", "example.com"))
        #expect(bypassed("https://api.example.com:6443", ".example.com"))
        #expect(!bypassed("https://example.com:6443", ".example.com"), "a leading dot covers subdomains only")
        #expect(bypassed("https://api.example.com:6443", "*.example.com"))
        #expect(!bypassed("https://notexample.com:6443", "example.com"))
        #expect(bypassed("https://api.example.com:6443", "other.org, API.example.com:6443"))
        #expect(!bypassed("https://api.example.com:443", "api.example.com:6443"))
        #expect(bypassed("https://10.1.2.3:6443", "10.0.0.0/8"))
        #expect(!bypassed("https://11.1.2.3:6443", "10.0.0.0/8"))
        #expect(bypassed("https://10.1.2.3:6443", "10.1.2.3"))
        #expect(bypassed("https://10.96.0.1:443", "10.96.0.1:443"))
        #expect(bypassed("https://[fd00::10]:6443", "fd00::/8"), "IPv6 ranges, as on dual-stack clusters")
        #expect(!bypassed("https://[fe80::10]:6443", "fd00::/8"))
        #expect(bypassed("https://[fd00::1]:6443", "[fd00:0::1]:6443"), "addresses compare as addresses")
        #expect(!bypassed("https://[fd00::1]:443", "[fd00::1]:6443"))
        #expect(bypassed("https://api.example.com:6443", "other.org,\n api.example.com"))
        // A prefix out of range is no network (as Go's ParseCIDR refuses it); one near Int.max used to overflow and
        // kill the process at start.
        for prefix in ["33", "-1", "9223372036854775807", "9223372036854775712", "99999999999999999999"] {
            #expect(!bypassed("https://10.1.2.3:6443", "10.0.0.0/\(prefix)"), "\(prefix)")
        }
        #expect(!bypassed("https://[fd00::10]:6443", "fd00::/9223372036854775807"))
    }

    @Test("a proxy variable Tapio cannot use is refused at start, naming the variable")
    func aBadEnvironmentProxyIsNamed() throws {
        let config = KubeConfig(server: URL(string: "https://api.example.com:6443")!)
        #expect(throws: KubeError.self) {
            _ = try KubeClient.proxy(for: config, source: "test", environment: ["HTTPS_PROXY": "https://proxy:3128"])
        }
        do {
            _ = try KubeClient.proxy(for: config, source: "test", environment: ["HTTPS_PROXY": "ftp://proxy"])
        } catch let KubeError.configuration(m) {
            #expect(m.hasPrefix("HTTPS_PROXY: proxy scheme \"ftp\""), "\(m)")
        }
        #expect(try KubeClient.proxy(for: config, source: "test", environment: ["HTTPS_PROXY": "proxy:3128"])
                == ProxyEndpoint(kind: .http, host: "proxy", port: 3128))
        var direct = config
        direct.proxy = .none
        #expect(try KubeClient.proxy(for: direct, source: "test", environment: ["HTTPS_PROXY": "proxy:3128"]) == nil)
    }
}
