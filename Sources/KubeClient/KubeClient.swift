import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOPosix
import Synchronization

/// A client for one API server. All kinds go through the same generic calls; `KubeResource` supplies the URL.
///
/// Reads (`get`, `list`) are retried on 429/5xx/transport failures with jittered backoff; writes are retried only
/// on 429 (the server did not act on them), always honouring `Retry-After`. Every retry is logged (at info, at
/// most one line per request path per 30 s) and reported to the observer. Bodies, watch lines and redirects are
/// bounded by `limits`. Call `shutdown()` before dropping it.
/// How a request authenticates: a bearer token (the exec plugin's, the token file's or the fixed one; nil: none, a
/// client certificate authenticates), and the TLS configuration that presents an exec plugin's client certificate
/// (nil: the client's own).
struct Authentication: Sendable {
    var token: String?
    var tls: TLSConfiguration?
    /// The plugin run it came from, to report a refusal: a refusal drops the held credential only if it is still
    /// this run's (nil: not from a plugin).
    var execRun: Int?
}

public final class KubeClient: Sendable {
    public let config: KubeConfig
    public let retryPolicy: RetryPolicy
    /// Deadline for one non-watch request.
    public let requestTimeout: Duration
    public let limits: ResponseLimits
    let http: HTTPClient
    let tokens: TokenSource
    /// The kubeconfig's exec credential plugin, when it gives the credential.
    let exec: ExecCredentialSource?
    /// The proxy in use (nil: none).
    public let proxy: ProxyEndpoint?
    /// The server's URL as requests are addressed, without a trailing slash: `config.server`, or with the cluster's
    /// `tls-server-name` as its host (see `init`).
    let requestBase: String
    /// The `Host` header when `requestBase` names the cluster's `tls-server-name`: still the server's own host (and
    /// port), as Go's client sends it — a proxy or gateway in front of the API server may route by it.
    let hostHeader: String?
    let logger: Logger
    /// Rate limit of the retry and watch-failure log lines.
    public let logLimiter: LogLimiter
    /// Calls the server refused (401/403) and that have not succeeded since: for `/readyz` and status reports.
    public let accessDenials = AccessDenials()

    /// What became of one API call, for metrics (`tapio_api_requests_total` / `tapio_api_errors_total`).
    public enum RequestOutcome: Sendable, Equatable {
        case succeeded
        /// The request failed (no answer, or a non-2xx one). Each retry is a request of its own.
        case failed
        /// An open watch failed after it was answered: an `ERROR` event (410 included), a cut connection, a line
        /// past the limit, an undecodable event. Not a new request, but an error.
        case streamFailed
        /// An object in a list page or watch event that did not decode, skipped (one per object and occurrence).
        case undecodableObject(resource: String)
    }
    /// Called after every request with its verb (`GET`, `POST`, …, `WATCH`) and outcome — for metrics.
    public typealias RequestObserver = @Sendable (_ verb: String, _ outcome: RequestOutcome) -> Void
    let observer: RequestObserver?

    public init(config: KubeConfig, retryPolicy: RetryPolicy = RetryPolicy(), requestTimeout: Duration = .seconds(30),
                limits: ResponseLimits = ResponseLimits(), logger: Logger = Logger(label: "tapio.kube"),
                observer: RequestObserver? = nil) throws {
        var config = config
        if let lower = URL(string: ServerURL.normalized(config.server.absoluteString)) { config.server = lower }
        self.config = config
        self.observer = observer
        self.retryPolicy = retryPolicy
        self.requestTimeout = requestTimeout
        self.limits = limits
        self.logger = logger
        logLimiter = LogLimiter()
        // A configuration built in code skips the kubeconfig's checks: an out-of-range port would trap deep in the
        // HTTP client, so check it here too.
        if let why = ServerURL.problem(config.server.absoluteString) {
            throw KubeError.configuration("\(config.source.isEmpty ? "server" : config.source): server: \(why)")
        }
        tokens = TokenSource(token: config.token, file: config.tokenFile)
        var tls = TLSConfiguration.makeClientConfiguration()
        let source = config.source.isEmpty ? "configuration" : config.source
        if let ca = config.certificateAuthorityPEM {
            guard let certs = PEM.certificates(ca) else {
                throw KubeError.configuration("\(source): certificate authority: not a PEM certificate")
            }
            tls.trustRoots = .certificates(certs)
        }
        if config.insecureSkipTLSVerify { tls.certificateVerification = .none }
        // Closing a connection waits for the server's close_notify, 5 s by default: a server that stopped reading
        // would hold every shutdown that long.
        tls.shutdownTimeout = .milliseconds(500)
        if let cert = config.clientCertificatePEM, let key = config.clientKeyPEM {
            guard let chain = PEM.certificates(cert) else {
                throw KubeError.configuration("\(source): client certificate: not a PEM certificate")
            }
            guard let privateKey = PEM.privateKey(key) else {
                throw KubeError.configuration("\(source): client key: not a PEM private key")
            }
            guard PEM.belongTogether(chain, privateKey) else {
                throw KubeError.configuration("\(source): client key: not the key of the client certificate")
            }
            tls.certificateChain = chain.map { .certificate($0) }
            tls.privateKey = .privateKey(privateKey)
        }
        // A plugin's client certificate goes with each request, on this configuration (the TLS layer keeps
        // connections apart by it).
        exec = config.exec.map { [tls] in ExecCredentialSource(plugin: $0, cluster: config, tls: tls) }
        var hc = HTTPClient.Configuration(tlsConfiguration: tls)
        // Another TLS name than the server's host: requests are addressed to that name, which is what the TLS layer
        // checks the certificate against and sends as the server name, and the connection goes to the server's own
        // host (AsyncHTTPClient's DNS override); the Host header stays the server's host, as Go's client sends it.
        var base = config.server.absoluteString
        // Read again as the kubeconfig reads it: a configuration built in code skips the kubeconfig's checks.
        var tlsName: String?
        if let asked = config.tlsServerName {
            do { tlsName = try ServerURL.tlsServerName(asked, server: config.server) } catch {
                throw KubeError.configuration("\(source): tls-server-name: \(error.message)")
            }
        }
        if let name = tlsName, let host = config.server.host,
           var parts = URLComponents(url: config.server, resolvingAgainstBaseURL: false) {
            parts.percentEncodedHost = name
            guard let renamed = parts.string else {
                throw KubeError.configuration("\(source): tls-server-name: \"\(name.prefix(253))\" does not make a URL")
            }
            base = renamed
            let bare = ServerURL.unbracketed(host)
            hc.dnsOverride = [name: bare]
            hostHeader = (bare.contains(":") ? "[\(bare)]" : bare) + (config.server.port.map { ":\($0)" } ?? "")
        } else {
            hostHeader = nil
        }
        while base.hasSuffix("/") { base.removeLast() }
        requestBase = base
        proxy = try Self.proxy(for: config, source: source)
        hc.proxy = proxy.map { p in
            switch p.kind {
            case .http: .server(host: p.host, port: p.port, authorization: p.username.map { .basic(username: $0, password: p.password ?? "") })
            case .socks5: .socksServer(host: p.host, port: p.port)
            }
        }
        hc.timeout.connect = .seconds(10)
        // Watches stay open for minutes: no read timeout; request deadlines bound ordinary calls.
        hc.timeout.read = nil
        hc.httpVersion = .http1Only
        hc.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        // A refused or failed connection fails the request at once, with its reason, and the retry policy (or the
        // watcher's backoff) decides when to try again — as Go's client does. Left on, the pool retries the
        // connection silently until the request's deadline: a server that is down looks like one that is slow.
        hc.connectionPool.retryConnectionEstablishment = false
        // Go's net/http follows 10 redirects and client-go keeps that; a cycle is cut at its first repeat.
        hc.redirectConfiguration = limits.maxRedirects == 0 ? .disallow : .follow(max: limits.maxRedirects, allowCycles: false)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: hc)
    }

    /// The proxy requests go through (nil: directly): the kubeconfig's `proxy-url`, or the environment's as Go's
    /// client reads it (`HTTPS_PROXY`, `NO_PROXY`; never for a loopback server).
    static func proxy(for config: KubeConfig, source: String,
                      environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ProxyEndpoint? {
        /// `text` read as a proxy, or an error naming `origin`.
        func endpoint(_ text: String, from origin: String) throws -> ProxyEndpoint {
            switch ProxyEndpoint.parse(text) {
            case .success(let p): return p
            case .failure(let why): throw KubeError.configuration("\(origin): \(why)")
            }
        }
        switch config.proxy {
        case .none: return nil
        case .url(let text): return try endpoint(text, from: "\(source): proxy-url")
        case .environment:
            guard let (variable, value) = ProxyEndpoint.fromEnvironment(for: config.server, environment: environment) else { return nil }
            return try endpoint(value, from: variable)
        }
    }

    /// Convenience: a client from a kubeconfig file.
    public convenience init(kubeconfigPath: String, context: String? = nil, retryPolicy: RetryPolicy = RetryPolicy()) throws {
        try self.init(config: KubeConfig.load(path: kubeconfigPath, context: context), retryPolicy: retryPolicy)
    }

    /// Closes connections. Required before the client is released.
    public func shutdown() async throws {
        guard isShutDown.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        try await http.shutdown()
    }

    private let isShutDown = Atomic<Bool>(false)

    /// A client dropped without `shutdown()` (a caller's early exit on an error) closes its connections here instead
    /// of leaking them — AsyncHTTPClient traps in debug builds on an HTTPClient released while still running. Off an
    /// event loop only: shutting down blocks until the connections are closed, which an event loop thread cannot wait for.
    deinit {
        guard !isShutDown.load(ordering: .relaxed), MultiThreadedEventLoopGroup.currentEventLoop == nil else { return }
        try? http.syncShutdown()
    }

    /// The namespace of the configuration (used when a call passes none for a namespaced kind).
    public var defaultNamespace: String { config.namespace }

    // MARK: Raw requests

    /// A response: status, headers and the whole body.
    public struct RawResponse: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: Data
    }

    func url(_ path: String, _ query: [(String, String)]) -> String {
        var comps = URLComponents()
        comps.queryItems = query.isEmpty ? nil : query.map { URLQueryItem(name: $0.0, value: $0.1) }
        // '+' in selectors must survive: percent-encode it explicitly.
        let q = comps.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return requestBase + path + (q.map { "?" + $0 } ?? "")
    }

    /// How the next request authenticates: the exec plugin's credential, else the token file's or the fixed token.
    func authentication() async throws -> Authentication {
        if let exec { return try await exec.credential() }
        return Authentication(token: tokens.current())
    }

    /// Gets the next request's credential now — running the kubeconfig's exec credential plugin if it has one and holds
    /// no good credential: for a caller that bounds how long the server may take to answer and should not count the plugin's
    /// time (a login) against it.
    public func prepareCredentials() async throws {
        _ = try await authentication()
    }

    /// How many times the exec credential plugin has run (0 without one): for tests and diagnostics.
    public var execCredentialRuns: Int { exec?.runs ?? 0 }

    func makeRequest(method: HTTPMethod, path: String, query: [(String, String)], body: Data?,
                     contentType: String?, auth: Authentication) -> HTTPClientRequest {
        var req = HTTPClientRequest(url: url(path, query))
        req.method = method
        req.headers.add(name: "Accept", value: "application/json")
        req.headers.add(name: "User-Agent", value: "tapio/0.1")
        if let hostHeader { req.headers.add(name: "Host", value: hostHeader) }
        if let token = auth.token, !token.isEmpty { req.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let tls = auth.tls { req.tlsConfiguration = tls }
        if let body {
            req.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            req.body = .bytes(ByteBuffer(bytes: body))
        }
        return req
    }

    /// Sends one request with the retry policy (the client's, unless `retryPolicy` overrides it); throws `KubeError`
    /// for any non-2xx answer. `idempotent` requests are retried on every retryable failure, others only on 429.
    public func send(method: HTTPMethod, path: String, query: [(String, String)] = [], body: Data? = nil,
                     contentType: String? = nil, idempotent: Bool? = nil, retryPolicy: RetryPolicy? = nil) async throws -> RawResponse {
        let retryPolicy = retryPolicy ?? self.retryPolicy
        let safe = idempotent ?? (method == .GET || method == .HEAD)
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await sendOnce(method: method, path: path, query: query, body: body, contentType: contentType)
            } catch let error as KubeError {
                let retry: Bool
                switch error {
                case .tooManyRequests: retry = true
                default: retry = safe && error.isRetryable
                }
                guard retry, attempt < retryPolicy.maxAttempts else { throw error }
                var delay = retryPolicy.backoff(attempt: attempt)
                if case .tooManyRequests(let ra?, _) = error {
                    guard ra <= retryPolicy.maxRetryAfter else { throw error }
                    delay = max(ra, .milliseconds(1))
                }
                logLimiter.log(logger, .info, key: "retry \(method) \(path)",
                               "retrying \(method) \(path) in \(Self.describe(delay)) (attempt \(attempt + 1) of \(retryPolicy.maxAttempts)): \(error)")
                try await Task.sleep(for: delay)
            }
        }
    }

    /// `1.25s`, `800ms`: durations in log lines.
    public static func describe(_ d: Duration) -> String {
        let s = d.inSeconds
        return s >= 1 ? String(format: "%.2fs", s) : "\(Int(s * 1000))ms"
    }

    func sendOnce(method: HTTPMethod, path: String, query: [(String, String)], body: Data?,
                  contentType: String?) async throws -> RawResponse {
        do {
            let r = try await sendUnobserved(method: method, path: path, query: query, body: body, contentType: contentType)
            observer?(method.rawValue, .succeeded)
            noteAccess(verb: method.rawValue, path: path, error: nil)
            return r
        } catch {
            if !(error is CancellationError) { observer?(method.rawValue, .failed) }
            noteAccess(verb: method.rawValue, path: path, error: error)
            throw error
        }
    }

    /// Reports a failure of an open watch stream (see `RequestOutcome.streamFailed`).
    func observeStreamFailure() { observer?("WATCH", .streamFailed) }

    /// Reports an outcome to the observer, for failures only a caller can see (a watch that ends too soon).
    public func record(_ verb: String, _ outcome: RequestOutcome) { observer?(verb, outcome) }

    func sendUnobserved(method: HTTPMethod, path: String, query: [(String, String)], body: Data?,
                        contentType: String?) async throws -> RawResponse {
        var refusedOnce = false
        while true {
            let auth = try await authentication()
            let req = makeRequest(method: method, path: path, query: query, body: body, contentType: contentType, auth: auth)
            let response: HTTPClientResponse
            let bytes: ByteBuffer
            do {
                response = try await http.execute(req, timeout: TimeAmount.clamped(requestTimeout))
                bytes = try await response.body.collect(upTo: limits.maxBodyBytes)
            } catch {
                throw mapTransportError(error, "\(method) \(path)")
            }
            let data = Data(bytes.readableBytesView)
            let code = Int(response.status.code)
            // A plugin's credential the server refuses (revoked, or expired without saying when) is asked for anew,
            // and the request sent once more with the new one; a second refusal is the answer.
            if code == 401, let exec, let run = auth.execRun, !refusedOnce {
                exec.refused(run: run)
                refusedOnce = true
                continue
            }
            guard (200..<300).contains(code) else {
                throw KubeError.from(statusCode: code, body: data, retryAfterHeader: response.headers.first(name: "Retry-After"))
            }
            return RawResponse(status: code, headers: response.headers.map { ($0.name, $0.value) }, body: data)
        }
    }

    /// The `KubeError` (or `CancellationError`) for a failure below HTTP: timeouts, limits, redirects, transport.
    func mapTransportError(_ error: any Error, _ what: String) -> any Error {
        if error is CancellationError || Task.isCancelled { return CancellationError() }
        if let e = error as? HTTPClientError {
            if e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout {
                return KubeError.timeout(message: "\(what): \(e)")
            }
            if e == .redirectLimitReached {
                return KubeError.tooManyRedirects("\(what): more than \(limits.maxRedirects) redirects")
            }
            if e == .redirectCycleDetected { return KubeError.tooManyRedirects("\(what): a redirect cycle") }
            if e == .cancelled { return CancellationError() }
            // These quote the refused headers whole — the Authorization header is the bearer token — and would land
            // in log lines: say what was refused, not the values. (Compared by the description without the values,
            // which the cases carry.) Sending it again would be refused again: a configuration error, not retried.
            if e.shortDescription == HTTPClientError.invalidHeaderFieldValues([]).shortDescription
                || e.shortDescription == HTTPClientError.invalidHeaderFieldNames([]).shortDescription {
                return KubeError.configuration("\(what): the HTTP client refused a request header (\(e.shortDescription.lowercased())); "
                                               + "not shown, as it may hold a credential")
            }
        }
        if error is NIOTooManyBytesError {
            return KubeError.responseTooLarge(limit: limits.maxBodyBytes,
                                              message: "\(what): the body exceeded \(ResponseLimits.describe(limits.maxBodyBytes))")
        }
        if let e = error as? KubeError { return e }
        return KubeError.transport("\(what): \(error)")
    }

    // MARK: Untyped API (JSON bytes in and out), for kinds without a Swift type and for hand-built patches.

    /// GET one object as JSON.
    public func getRaw(_ type: ResourceType, namespace: String?, name: String, subresource: String? = nil) async throws -> Data {
        try await send(method: .GET, path: type.path(namespace: ns(type, namespace), name: name, subresource: subresource)).body
    }

    /// POST a JSON object.
    public func createRaw(_ type: ResourceType, namespace: String?, body: Data, options: WriteOptions = .init()) async throws -> Data {
        try await send(method: .POST, path: type.path(namespace: ns(type, namespace)), query: options.query, body: body).body
    }

    /// PUT a JSON object (it must carry `metadata.resourceVersion`).
    public func replaceRaw(_ type: ResourceType, namespace: String?, name: String, subresource: String? = nil,
                           body: Data, options: WriteOptions = .init()) async throws -> Data {
        try await send(method: .PUT, path: type.path(namespace: ns(type, namespace), name: name, subresource: subresource),
                       query: options.query, body: body).body
    }

    /// PATCH with `patchType`; for `.apply` a `fieldManager` is required and `force` takes over conflicting fields.
    public func patchRaw(_ type: ResourceType, namespace: String?, name: String, subresource: String? = nil,
                         patch: Data, patchType: PatchType, options: WriteOptions = .init(), force: Bool = false) async throws -> Data {
        var q = options.query
        if force { q.append(("force", "true")) }
        return try await send(method: .PATCH, path: type.path(namespace: ns(type, namespace), name: name, subresource: subresource),
                              query: q, body: patch, contentType: patchType.rawValue).body
    }

    /// DELETE one object.
    public func deleteRaw(_ type: ResourceType, namespace: String?, name: String, options: WriteOptions = .init()) async throws {
        let body = options.deleteBody
        _ = try await send(method: .DELETE, path: type.path(namespace: ns(type, namespace), name: name), query: options.query,
                           body: body, contentType: body == nil ? nil : "application/json")
    }

    func ns(_ type: ResourceType, _ namespace: String?) -> String? {
        type.namespaced ? (namespace ?? config.namespace) : nil
    }

    // MARK: Typed API

    static let decoder = JSONDecoder()
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes]
        return e
    }()

    func decode<T: Decodable>(_ t: T.Type, _ data: Data) throws -> T {
        do { return try Self.decoder.decode(t, from: data) } catch {
            throw KubeError.decoding(type: String(describing: t), message: "\(error)")
        }
    }

    /// Encodes `object` with `apiVersion` and `kind` set (the Swift types do not carry them).
    public func encode<K: KubeResource>(_ object: K) throws -> Data {
        let data: Data
        do { data = try Self.encoder.encode(object) } catch {
            throw KubeError.decoding(type: String(describing: K.self), message: "encoding: \(error)")
        }
        guard var dict = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return data }
        dict["apiVersion"] = K.apiVersion
        dict["kind"] = K.kind
        return try JSONSerialization.data(withJSONObject: dict, options: [.withoutEscapingSlashes])
    }

    /// Reads one object. Namespaced kinds default to the configuration's namespace.
    public func get<K: KubeResource>(_ type: K.Type, namespace: String? = nil, name: String) async throws -> K {
        try decode(K.self, try await getRaw(ResourceType(K.self), namespace: namespace, name: name))
    }

    /// Reads one page. `namespace` nil on a namespaced kind lists all namespaces. `retryPolicy` overrides the
    /// client's (a watcher, which backs off itself, lists without retries).
    public func list<K: KubeResource>(_ type: K.Type, namespace: String? = nil, options: ListOptions = .init(),
                                      retryPolicy: RetryPolicy? = nil) async throws -> ObjectList<K> {
        let t = ResourceType(K.self)
        let data = try await send(method: .GET, path: t.path(namespace: K.namespaced ? namespace : nil), query: options.query,
                                  retryPolicy: retryPolicy).body
        let page = try decode(ObjectList<K>.self, data)
        if page.undecodableCount > 0 { reportUndecodable(page.undecodable, count: page.undecodableCount, verb: "GET", in: "list \(t.plural)", resource: t.plural) }
        return page
    }

    /// Counts skipped objects for the observer and says so in the log, at most once per 30 s per list or watch.
    func reportUndecodable(_ objects: [UndecodableObject], count: Int, verb: String, in what: String, resource: String) {
        for _ in 0..<count { observer?(verb, .undecodableObject(resource: resource)) }
        let shown = objects.prefix(3).map(\.description).joined(separator: "; ")
        logLimiter.log(logger, .warning, key: "undecodable \(what)",
                       "\(what): skipped \(count) object\(count == 1 ? "" : "s") that could not be decoded (\(shown)); the rest are used")
    }

    /// Reads every page (following `continue`) and returns the items and the list's resourceVersion.
    public func listAll<K: KubeResource>(_ type: K.Type, namespace: String? = nil, options: ListOptions = .init(),
                                         pageSize: Int = 500) async throws -> (items: [K], resourceVersion: String) {
        var opts = options
        opts.limit = pageSize
        var items: [K] = []
        var rv = ""
        var pages = 0
        while true {
            let page = try await list(K.self, namespace: namespace, options: opts)
            items += page.items
            pages += 1
            // An empty version (a broken server or proxy) is none: it must not replace a page's real one.
            if let v = page.metadata.resourceVersion, !v.isEmpty { rv = v }
            guard let c = page.metadata.continue, !c.isEmpty else { break }
            // A server (or proxy) that answers a token with itself, or with new tokens for ever, would be followed
            // forever — the second holding every page in memory.
            if c == opts.continueToken { throw KubeError.continueRepeated(K.plural) }
            if let overrun = limits.listOverrun(K.plural, objects: items.count, pages: pages) { throw overrun }
            opts.continueToken = c
        }
        return (items, rv)
    }

    /// Creates `object` in its namespace (or the configuration's).
    public func create<K: KubeResource>(_ object: K, options: WriteOptions = .init()) async throws -> K {
        try decode(K.self, try await createRaw(ResourceType(K.self), namespace: object.metadata.namespace,
                                               body: encode(object), options: options))
    }

    /// Replaces `object`; fails with `.conflict` when its `metadata.resourceVersion` is stale.
    public func update<K: KubeResource>(_ object: K, options: WriteOptions = .init()) async throws -> K {
        try decode(K.self, try await replaceRaw(ResourceType(K.self), namespace: object.metadata.namespace,
                                                name: try name(object), body: encode(object), options: options))
    }

    /// Replaces the status subresource only (spec changes in `object` are ignored by the server).
    public func updateStatus<K: KubeResource>(_ object: K, options: WriteOptions = .init()) async throws -> K {
        try decode(K.self, try await replaceRaw(ResourceType(K.self), namespace: object.metadata.namespace,
                                                name: try name(object), subresource: "status", body: encode(object), options: options))
    }

    /// Applies an RFC 7386 JSON merge patch (`patch` is the JSON of the patch document).
    public func mergePatch<K: KubeResource>(_ type: K.Type, namespace: String? = nil, name: String, patch: Data,
                                            subresource: String? = nil, options: WriteOptions = .init()) async throws -> K {
        try decode(K.self, try await patchRaw(ResourceType(K.self), namespace: namespace, name: name, subresource: subresource,
                                              patch: patch, patchType: .merge, options: options))
    }

    /// Server-side apply of `object` (its fields are the applier's intent) as `fieldManager`.
    public func apply<K: KubeResource>(_ object: K, fieldManager: String, force: Bool = false, subresource: String? = nil,
                                       dryRun: Bool = false) async throws -> K {
        try decode(K.self, try await patchRaw(ResourceType(K.self), namespace: object.metadata.namespace, name: try name(object),
                                              subresource: subresource, patch: encode(object), patchType: .apply,
                                              options: WriteOptions(dryRun: dryRun, fieldManager: fieldManager), force: force))
    }

    /// Deletes one object.
    public func delete<K: KubeResource>(_ type: K.Type, namespace: String? = nil, name: String, options: WriteOptions = .init()) async throws {
        try await deleteRaw(ResourceType(K.self), namespace: namespace, name: name, options: options)
    }

    func name<K: KubeResource>(_ o: K) throws -> String {
        guard let n = o.metadata.name, !n.isEmpty else { throw KubeError.configuration("\(K.kind) without metadata.name") }
        return n
    }
}

extension TimeAmount {
    /// A NIO time amount (Int64 nanoseconds) from a `Duration`, saturating instead of trapping: deadlines come
    /// from configuration and must never overflow a timer.
    static func clamped(_ d: Duration) -> TimeAmount {
        let s = d.inSeconds
        guard s.isFinite, s > 0 else { return .zero }
        return .nanoseconds(s >= 9.2e9 ? Int64.max : Int64(s * 1e9))
    }
}
