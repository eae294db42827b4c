import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A strict, in-process Kubernetes API server for tests, listening on 127.0.0.1 (ephemeral port) over HTTPS (a fresh
/// self-signed CA and server certificate made with the `openssl` CLI) or plain HTTP. It writes a kubeconfig for
/// itself (`kubeconfigPath`) with a bearer token; a wrong token gets 401.
///
/// Semantics follow kube-apiserver where tests can observe them: one global resourceVersion counter, 409 on stale
/// updates, 410 `Expired` for watches from compacted versions, bookmarks, chunked watch streams, pagination, label and
/// field selectors, the status subresource kept apart, `generation` bumped on spec changes, CRDs validated, pruned
/// and defaulted from their schema, merge patch and server-side apply. Events are stored once and served by both
/// core `v1` and `events.k8s.io/v1`, converted field by field (see `EventStorage`), so `kubectl get events` and
/// `kubectl describe` list what the events.k8s.io recorder wrote. Fault hooks (`injectFaults`, `dropWatches`,
/// `compact`) let tests provoke what real clusters do occasionally, and `misbehave` what broken or hostile ones do
/// persistently (ERROR 410 in every watch, persistent 5xx, endless redirects, a watch line that never ends, no answer
/// at all). Call `stop()` when done.
///
/// kubectl works against it (`kubectl --kubeconfig <kubeconfigPath> get insights`, `describe`, `get -w`, `-o json`):
/// `/version` and legacy discovery (`/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`, with the CRDs' short
/// names and categories; kubectl's request for aggregated discovery falls back to it), `Accept` negotiation like
/// kube-apiserver's (`meta.k8s.io` `Table` for lists, objects and watches, with CRD printer columns or the built-in
/// printers' columns and `includeObject`; `PartialObjectMetadata[List]`; 406 when nothing acceptable is offered).
/// Not served: aggregated discovery, OpenAPI (`kubectl explain`, client-side validation of `kubectl apply`), YAML or
/// protobuf bodies, `deletecollection`, and subresources other than `/status` (logs, exec, scale…).
public final class KubeEmulator: Sendable {
    public let port: Int
    public let useTLS: Bool
    /// Bearer token clients must present.
    public let token: String
    /// A kubeconfig file pointing at this emulator (current context `emulator`, namespace `default`).
    public let kubeconfigPath: String
    /// PEM of the CA that signed the server certificate (nil for plain HTTP).
    public let caPEM: String?
    /// A client certificate and its key (PEM, CN `tapio-client-certificate`) signed by that CA: as kube-apiserver
    /// with `--client-ca-file`, the emulator authenticates a request whose connection presented it, with or
    /// without a token (nil for plain HTTP). Any other certificate authenticates nothing (the emulator checks no
    /// signature: it knows the one certificate its CA signed for clients).
    public let clientCertificate: (certificatePEM: String, keyPEM: String)?
    let acceptedClientCertificate: NIOSSLCertificate?
    /// How many requests a client certificate authenticated (a valid token was not there to do it).
    public var certificateAuthenticatedRequestCount: Int { store.state.withLock { $0.certificateAuthenticated } }
    public let directory: URL
    let store: EmulatorStore
    let serverChannel: any Channel
    let bookmarkInterval: Duration
    let acceptTask: Mutex<Task<Void, Never>?>
    let serverNamesSeen: ServerNameLog
    /// The server names clients have asked for in their TLS hello (none for a client addressing 127.0.0.1), up to
    /// ``ServerNameLog/limit`` distinct ones.
    public var serverNames: Set<String> { serverNamesSeen.names.withLock { $0 } }

    public var baseURL: String { "\(useTLS ? "https" : "http")://127.0.0.1:\(port)" }

    /// Starts an emulator. `crdFiles` (default: every YAML file in the repository's `crds/`) are registered.
    /// `historyLimit` bounds the event history kept for watch resumption; older versions answer 410. `watchBuffer`
    /// bounds the events a watch may have waiting for its client; one that falls further behind is ended.
    public static func start(tls: Bool = true, crdFiles: [String]? = nil, historyLimit: Int = 10_000,
                             bookmarkInterval: Duration = .seconds(1), watchBuffer: Int = 100_000) async throws -> KubeEmulator {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-emulator-\(getpid())-\(UUID().uuidString.prefix(8))")
        let serverNames = ServerNameLog()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let token = "tapio-" + UUID().uuidString.lowercased()
        let store = EmulatorStore(token: token, historyLimit: historyLimit, watchBuffer: watchBuffer)
        for file in crdFiles ?? defaultCRDFiles() {
            let crd = try CustomResourceDefinition.load(yamlFile: file)
            for k in EmulatedKind.from(crd: crd) { store.register(k) }
        }
        var sslContext: NIOSSLContext?
        var caPEM: String?
        var clientCertificate: (certificatePEM: String, keyPEM: String)?
        if tls {
            let certs = try certificates()
            caPEM = certs.caPEM
            clientCertificate = (certs.clientCertPEM, certs.clientKeyPEM)
            var cfg = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(certs.certPEM).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: certs.keyPEM, format: .pem)))
            cfg.minimumTLSVersion = .tlsv12
            // Client certificates: asked for, not required, and any is let through the handshake — as kube-apiserver
            // does; authentication then decides (`acceptedClientCertificate`), and an unknown one gets 401.
            cfg.certificateVerification = .optionalVerification
            // Unused (the callback decides), but the default would read the system's bundle at every start.
            cfg.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(certs.caPEM.utf8)))
            // As kube-apiserver's --tls-sni-cert-key: a client that names a server (other than localhost) gets the
            // certificate for ``certificateOnlyName``, which holds no address — so a client checking that name
            // against it has to have sent it, and one that sent another name has to refuse it.
            var named = NIOSSLContextConfigurationOverride()
            named.certificateChain = try NIOSSLCertificate.fromPEMBytes(certs.namedCertPEM).map { .certificate($0) }
            named.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: certs.namedKeyPEM, format: .pem))
            let override = named
            cfg.sslContextCallback = { [serverNames] hello, promise in
                guard let name = hello.serverHostname else { return promise.succeed(.noChanges) }
                serverNames.note(name)
                promise.succeed(servesDefaultCertificate(name) ? .noChanges : override)
            }
            sslContext = try NIOSSLContext(configuration: cfg)
        }
        let ctx = sslContext
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let ctx {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLServerHandler(context: ctx, customVerificationCallback: { _, verified in verified.succeed(.certificateVerified) }))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let port = server.channel.localAddress?.port ?? 0
        let kubeconfig = dir.appendingPathComponent("kubeconfig").path
        let scheme = tls ? "https" : "http"
        var cluster = "    server: \(scheme)://127.0.0.1:\(port)\n"
        if let caPEM { cluster += "    certificate-authority-data: \(Data(caPEM.utf8).base64EncodedString())\n" }
        let yaml = """
        apiVersion: v1
        kind: Config
        clusters:
        - name: emulator
          cluster:
        \(cluster)contexts:
        - name: emulator
          context:
            cluster: emulator
            user: tester
            namespace: default
        current-context: emulator
        users:
        - name: tester
          user:
            token: \(token)

        """
        try yaml.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
        let emu = KubeEmulator(port: port, useTLS: tls, token: token, kubeconfigPath: kubeconfig, caPEM: caPEM,
                               clientCertificate: clientCertificate, directory: dir,
                               store: store, serverChannel: server.channel, bookmarkInterval: bookmarkInterval,
                               serverNames: serverNames)
        let task = Task { await emu.acceptLoop(server) }
        emu.acceptTask.withLock { $0 = task }
        return emu
    }

    init(port: Int, useTLS: Bool, token: String, kubeconfigPath: String, caPEM: String?,
         clientCertificate: (certificatePEM: String, keyPEM: String)?, directory: URL,
         store: EmulatorStore, serverChannel: any Channel, bookmarkInterval: Duration, serverNames: ServerNameLog) {
        self.port = port; self.useTLS = useTLS; self.token = token; self.kubeconfigPath = kubeconfigPath
        self.caPEM = caPEM; self.clientCertificate = clientCertificate; self.directory = directory
        self.store = store; self.serverChannel = serverChannel
        acceptedClientCertificate = clientCertificate.flatMap { try? NIOSSLCertificate.fromPEMBytes(Array($0.certificatePEM.utf8)).first }
        self.bookmarkInterval = bookmarkInterval; self.serverNamesSeen = serverNames
        acceptTask = Mutex(nil)
    }

    /// Stops listening, ends all watches and removes the temporary directory.
    public func stop() async {
        store.dropAllWatches()
        store.closeHostileChannels()
        try? await serverChannel.close()
        let t = acceptTask.withLock { $0 }
        t?.cancel()
        await t?.value
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: Test hooks

    /// Answers the next `count` requests (with `method`, and whose path and query contain `pathContains`, if given) with `status`
    /// (429 carries `Retry-After: retryAfterSeconds`), after waiting `delay`. A status of 200 only delays.
    public func injectFaults(status: Int, count: Int = 1, retryAfterSeconds: Int? = nil, delay: Duration? = nil,
                             method: String? = nil, pathContains: String? = nil) {
        store.state.withLock {
            $0.faults.append(FaultPlan(status: status, retryAfterSeconds: retryAfterSeconds, delay: delay, remaining: count,
                                       pathContains: pathContains, method: method))
        }
    }

    /// Applies the next `count` requests (with `method`, if given, and whose path and query contain `pathContains`)
    /// at once but answers each only after `delay`: a write the server has made that its client has not heard of
    /// yet — a slow answer, or a request the client gives up on (cancels) while it is in flight.
    public func delayAnswers(by delay: Duration, count: Int = 1, method: String? = nil, pathContains: String? = nil) {
        store.state.withLock {
            $0.faults.append(FaultPlan(status: 200, retryAfterSeconds: nil, delay: nil, remaining: count,
                                       pathContains: pathContains, method: method, answerDelay: delay))
        }
    }

    /// How many injected faults and delays wait for a request still: 0 once every one has met its requests (a
    /// delayed one may still be holding its request).
    public var pendingFaultCount: Int { store.state.withLock { $0.faults.reduce(0) { $0 + $1.remaining } } }

    /// Forgets the injected faults still pending (a test that held a watcher off while it changed the store lets it
    /// back in).
    public func clearFaults() { store.state.withLock { $0.faults.removeAll() } }

    /// Cuts every open watch connection mid-stream, as a load balancer or API server restart would.
    public func dropWatches() { store.dropAllWatches() }

    /// Forgets the event history: watches from any version up to now get 410 `Expired`.
    public func compact() { store.compact() }

    /// The current global resourceVersion.
    public var resourceVersion: Int64 { store.state.withLock { $0.rv } }

    /// How many requests have been received (including rejected ones).
    public var requestCount: Int { store.state.withLock { $0.requestCount } }

    /// The number of open watches.
    public var openWatchCount: Int { store.state.withLock { $0.watchers.count } }

    /// The stored objects of one kind (for assertions), as JSON, as that kind's API shows them (core v1 and
    /// events.k8s.io/v1 Events are the same objects in two forms).
    public func objects(apiVersion: String, plural: String) -> [JSONValue] {
        let (g, v) = apiVersion.contains("/") ? (String(apiVersion.split(separator: "/")[0]), String(apiVersion.split(separator: "/")[1]))
                                              : ("", apiVersion)
        return store.state.withLock { s in
            guard let kind = s.kinds["\(g)/\(v)/\(plural)"] else { return [] }
            return (s.objects[kind.storageKey] ?? [:]).sorted { $0.key < $1.key }.map { kind.view($0.value) }
        }
    }

    // MARK: Serving

    func acceptLoop(_ server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>) async {
        try? await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { inbound in
                for try await conn in inbound {
                    group.addTask { await self.serve(conn) }
                }
            }
        }
    }

    /// kube-apiserver's limit on a request body (3 MiB).
    static let maxRequestBody = 3 << 20

    func serve(_ conn: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        let channel = conn.channel
        try? await conn.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body = ByteBuffer()
            var tooLarge = false
            // Whether the connection presented the client certificate the emulator's CA signed: read once, at the
            // first request, when the handshake is done.
            var presentedCertificate: Bool?
            for try await part in inbound {
                switch part {
                case .head(let h):
                    head = h
                    body.clear()
                    tooLarge = false
                case .body(var b):
                    // As kube-apiserver: a body past 3 MiB is refused (413), not held.
                    if tooLarge || body.readableBytes + b.readableBytes > Self.maxRequestBody {
                        tooLarge = true
                        body.clear()
                    } else {
                        body.writeBuffer(&b)
                    }
                case .end:
                    guard let h = head else { continue }
                    var req = Self.request(h, body)
                    if presentedCertificate == nil {
                        let peer = useTLS ? ((try? await channel.nioSSL_peerCertificate().get()) ?? nil) : nil
                        presentedCertificate = peer != nil && peer == acceptedClientCertificate
                    }
                    req.clientCertificate = presentedCertificate ?? false
                    let response = tooLarge
                        ? EmulatorStore.status(413, reason: "RequestEntityTooLarge",
                                               message: "the request body is larger than \(Self.maxRequestBody) bytes")
                        : await store.handle(req)
                    switch response {
                    case .json(let status, let json, let extra):
                        var data = json.jsonData()
                        data.append(UInt8(ascii: "\n"))
                        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(data.count))])
                        for (k, v) in extra { headers.add(name: k, value: v) }
                        if !h.isKeepAlive { headers.add(name: "Connection", value: "close") }
                        try await outbound.write(.head(HTTPResponseHead(version: h.version, status: .init(statusCode: status), headers: headers)))
                        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: data))))
                        try await outbound.write(.end(nil))
                        if !h.isKeepAlive { return }
                    case .text(let status, let text):
                        var headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", String(text.utf8.count)),
                                                   ("X-Content-Type-Options", "nosniff")])
                        if !h.isKeepAlive { headers.add(name: "Connection", value: "close") }
                        try await outbound.write(.head(HTTPResponseHead(version: h.version, status: .init(statusCode: status), headers: headers)))
                        try await outbound.write(.body(.byteBuffer(ByteBuffer(string: text))))
                        try await outbound.write(.end(nil))
                        if !h.isKeepAlive { return }
                    case .watch(let id, let stream):
                        // kube-apiserver takes any int64; a day is plenty for tests and keeps timers in range.
                        let timeout = min(max(Int(req.query["timeoutSeconds"] ?? "") ?? 1800, 1), 86_400)
                        try await serveWatch(id: id, stream: stream, timeout: .seconds(timeout), version: h.version,
                                             channel: channel, outbound: outbound)
                        return  // one watch per connection; the client opens a new one to resume
                    case .endlessLine:
                        try await serveEndlessLine(version: h.version, channel: channel, outbound: outbound)
                        return
                    case .noAnswer:
                        await serveNothing(channel: channel)
                        return
                    }
                }
            }
        }
    }

    func serveWatch(id: Int, stream: AsyncStream<WatchChunk>, timeout: Duration, version: HTTPVersion, channel: any Channel,
                    outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        let store = self.store
        channel.closeFuture.whenComplete { _ in store.endWatch(id, drop: false) }
        defer { store.endWatch(id, drop: false) }
        let headers = HTTPHeaders([("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
        try await outbound.write(.head(HTTPResponseHead(version: version, status: .ok, headers: headers)))
        let interval = bookmarkInterval
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Bookmarks at a steady pace, and the server-side timeout that ends a watch cleanly.
                let clock = ContinuousClock()
                let end = clock.now + timeout
                while clock.now < end {
                    try await Task.sleep(for: min(interval, end - clock.now))
                    store.bookmark(id)
                }
                store.endWatch(id, drop: false)
            }
            var dropped = false
            for await chunk in stream {
                switch chunk {
                case .data(let d): try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: d))))
                case .drop: dropped = true
                }
                if dropped { break }
            }
            group.cancelAll()
            if dropped {
                // Cut the connection without the terminating chunk, so the client sees a broken stream.
                try? await channel.close()
            } else {
                try await outbound.write(.end(nil))
            }
        }
    }

    static func request(_ h: HTTPRequestHead, _ body: ByteBuffer) -> EmulatorRequest {
        let comps = URLComponents(string: h.uri)
        var query: [String: String] = [:]
        for item in comps?.queryItems ?? [] { query[item.name] = item.value ?? "" }
        var headers: [String: String] = [:]
        for (k, v) in h.headers { headers[k.lowercased()] = v }
        return EmulatorRequest(method: h.method.rawValue, uri: h.uri, path: comps?.percentEncodedPath ?? h.uri, query: query, headers: headers,
                               body: Data(body.readableBytesView))
    }

    // MARK: Setup helpers

    /// YAML files in the repository's `crds/`.
    public static func defaultCRDFiles() -> [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("crds")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        // Only CRD manifests: crds/ also holds a kustomization.yaml.
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { dir.appendingPathComponent($0).path }
            .filter { path in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
                return text.contains("kind: CustomResourceDefinition")
            }
    }

    struct Certificates: Sendable {
        var caPEM: String
        var certPEM: [UInt8], keyPEM: [UInt8]
        /// The certificate presented to a client that names another server than localhost: ``certificateOnlyName``'s.
        var namedCertPEM: [UInt8], namedKeyPEM: [UInt8]
        /// A client certificate the emulator accepts (``KubeEmulator/clientCertificate``).
        var clientCertPEM: String, clientKeyPEM: String
    }

    /// The certificates every emulator of this process serves, made on first use. Made per emulator, they took five
    /// openssl runs each — hundreds of emulators start in the test suite, in a parallel run enough at once to starve
    /// the tests started with them. One CA for all is fine: no test tells emulators apart by their CA.
    static let madeCertificates = Mutex<Certificates?>(nil)

    static func certificates() throws -> Certificates {
        try madeCertificates.withLock { made in
            if let made { return made }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-emulator-ca-\(getpid())-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let certificates = try generateCertificates(in: dir)
            made = certificates
            return certificates
        }
    }

    /// The name of the emulator's second certificate, which holds no address and resolves nowhere (`.invalid` is
    /// reserved). The emulator presents it to every client that sends a server name other than localhost in its TLS
    /// hello: a client that reaches the emulator under this name sent it, checked the certificate against it (a
    /// kubeconfig's `tls-server-name`) and connected to the server's own address; a client that sent another name
    /// must refuse the certificate.
    public static let certificateOnlyName = "kube-emulator.invalid"

    /// Whether a client that sent `name` in its TLS hello gets the certificate for 127.0.0.1 and localhost: for
    /// localhost (any case, a trailing dot too) and for an address sent as a name (which TLS does not allow, but a
    /// client addressing the server by IP means this certificate).
    static func servesDefaultCertificate(_ name: String) -> Bool {
        if (try? SocketAddress(ipAddress: name, port: 0)) != nil { return true }
        var n = name.lowercased()
        if n.hasSuffix(".") { n.removeLast() }
        return n == "localhost"
    }

    /// A CA, a server certificate for 127.0.0.1 and localhost, one for ``certificateOnlyName`` alone and a client
    /// certificate, made with the openssl CLI in `dir` (P-256 keys: fast) and read back.
    static func generateCertificates(in dir: URL) throws -> Certificates {
        let p = dir.path
        let usage = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n\(usage)".write(toFile: p + "/ext.cnf", atomically: true, encoding: .utf8)
        try "subjectAltName=DNS:\(certificateOnlyName)\n\(usage)".write(toFile: p + "/named.cnf", atomically: true, encoding: .utf8)
        try "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
            .write(toFile: p + "/client.cnf", atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p + "/ca.key",
             "-out", p + "/ca.crt", "-days", "2", "-subj", "/CN=tapio-emulator-ca",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p + "/server.key",
             "-out", p + "/server.csr", "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", p + "/server.csr", "-CA", p + "/ca.crt", "-CAkey", p + "/ca.key", "-CAcreateserial",
             "-out", p + "/server.crt", "-days", "2", "-extfile", p + "/ext.cnf"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p + "/named.key",
             "-out", p + "/named.csr", "-subj", "/CN=\(certificateOnlyName)"],
            ["x509", "-req", "-in", p + "/named.csr", "-CA", p + "/ca.crt", "-CAkey", p + "/ca.key", "-CAcreateserial",
             "-out", p + "/named.crt", "-days", "2", "-extfile", p + "/named.cnf"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p + "/client.key",
             "-out", p + "/client.csr", "-subj", "/O=system:masters/CN=tapio-client-certificate"],
            ["x509", "-req", "-in", p + "/client.csr", "-CA", p + "/ca.crt", "-CAkey", p + "/ca.key", "-CAcreateserial",
             "-out", p + "/client.crt", "-days", "2", "-extfile", p + "/client.cnf"],
        ]
        for args in steps {
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            proc.arguments = ["openssl"] + args
            proc.standardOutput = FileHandle.nullDevice
            proc.standardError = FileHandle.nullDevice
            try proc.run()
            proc.waitUntilExit()
            guard proc.terminationStatus == 0 else {
                throw EmulatorError("openssl \(args.prefix(2).joined(separator: " ")) failed with status \(proc.terminationStatus)")
            }
        }
        func bytes(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: dir.appendingPathComponent(name))) }
        return Certificates(caPEM: try String(contentsOfFile: p + "/ca.crt", encoding: .utf8),
                            certPEM: try bytes("server.crt"), keyPEM: try bytes("server.key"),
                            namedCertPEM: try bytes("named.crt"), namedKeyPEM: try bytes("named.key"),
                            clientCertPEM: try String(contentsOfFile: p + "/client.crt", encoding: .utf8),
                            clientKeyPEM: try String(contentsOfFile: p + "/client.key", encoding: .utf8))
    }
}

/// The server names (TLS SNI) clients have sent: a bounded set, for tests to see what went out.
final class ServerNameLog: Sendable {
    static let limit = 64
    let names = Mutex<Set<String>>([])
    func note(_ name: String) { names.withLock { if $0.count < Self.limit { $0.insert(name) } } }
}

/// A failure starting the emulator.
public struct EmulatorError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

extension KubeEmulator {
    /// Creates objects directly in the store, bypassing HTTP (for seeding large fixtures in benchmarks). Each object
    /// goes through the same validation and bookkeeping as a POST; the first failure is thrown.
    public func seed(_ objects: [JSONValue]) throws {
        for o in objects {
            let av = o["apiVersion"]?.stringValue ?? "v1"
            let kind = o["kind"]?.stringValue ?? ""
            let ns = o["metadata"]?["namespace"]?.stringValue
            let k = store.state.withLock { s in s.kinds.values.first { $0.apiVersion == av && $0.kind == kind } }
            guard let k else { throw EmulatorError("seed: unknown kind \(av) \(kind)") }
            var path = k.group.isEmpty ? "/api/\(k.version)" : "/apis/\(k.group)/\(k.version)"
            if k.namespaced { path += "/namespaces/\(ns ?? "default")" }
            path += "/\(k.plural)"
            let r = store.handleSync(EmulatorRequest(method: "POST", uri: path, path: path, query: [:], headers: [:], body: o.jsonData()))
            if case .json(let status, let body, _) = r, status >= 300 {
                throw EmulatorError("seed: \(status) \(body["message"]?.stringValue ?? "")")
            }
        }
    }
}
