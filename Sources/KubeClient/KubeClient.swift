import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// A client for one API server. All kinds go through the same generic calls; `KubeResource` supplies the URL.
///
/// Reads (`get`, `list`) are retried on 429/5xx/transport failures with jittered backoff; writes are retried only
/// on 429 (the server did not act on them), always honouring `Retry-After`. Call `shutdown()` before dropping it.
public final class KubeClient: Sendable {
    public let config: KubeConfig
    public let retryPolicy: RetryPolicy
    /// Deadline for one non-watch request.
    public let requestTimeout: Duration
    let http: HTTPClient
    let tokens: TokenSource
    let logger: Logger

    /// Called after every request (not watch streams) with its HTTP method and whether it failed — for metrics.
    public typealias RequestObserver = @Sendable (_ method: String, _ failed: Bool) -> Void
    let observer: RequestObserver?

    public init(config: KubeConfig, retryPolicy: RetryPolicy = RetryPolicy(), requestTimeout: Duration = .seconds(30),
                logger: Logger = Logger(label: "tapio.kube"), observer: RequestObserver? = nil) throws {
        self.config = config
        self.observer = observer
        self.retryPolicy = retryPolicy
        self.requestTimeout = requestTimeout
        self.logger = logger
        tokens = TokenSource(token: config.token, file: config.tokenFile)
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = config.certificateAuthorityPEM {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            }
            if config.insecureSkipTLSVerify { tls.certificateVerification = .none }
            if let cert = config.clientCertificatePEM, let key = config.clientKeyPEM {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            }
        } catch {
            throw KubeError.configuration("\(config.source): TLS material: \(error)")
        }
        var hc = HTTPClient.Configuration(tlsConfiguration: tls)
        hc.timeout.connect = .seconds(10)
        // Watches stay open for minutes: no read timeout; request deadlines bound ordinary calls.
        hc.timeout.read = nil
        hc.httpVersion = .http1Only
        hc.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: hc)
    }

    /// Convenience: a client from a kubeconfig file.
    public convenience init(kubeconfigPath: String, context: String? = nil, retryPolicy: RetryPolicy = RetryPolicy()) throws {
        try self.init(config: KubeConfig.load(path: kubeconfigPath, context: context), retryPolicy: retryPolicy)
    }

    /// Closes connections. Required before the client is released.
    public func shutdown() async throws { try await http.shutdown() }

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
        var base = config.server.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        return base + path + (q.map { "?" + $0 } ?? "")
    }

    func makeRequest(method: HTTPMethod, path: String, query: [(String, String)], body: Data?,
                     contentType: String?) -> HTTPClientRequest {
        var req = HTTPClientRequest(url: url(path, query))
        req.method = method
        req.headers.add(name: "Accept", value: "application/json")
        req.headers.add(name: "User-Agent", value: "tapio/0.1")
        if let token = tokens.current(), !token.isEmpty { req.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            req.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            req.body = .bytes(ByteBuffer(bytes: body))
        }
        return req
    }

    /// Sends one request with the retry policy; throws `KubeError` for any non-2xx answer.
    /// `idempotent` requests are retried on every retryable failure, others only on 429.
    public func send(method: HTTPMethod, path: String, query: [(String, String)] = [], body: Data? = nil,
                     contentType: String? = nil, idempotent: Bool? = nil) async throws -> RawResponse {
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
                logger.debug("retrying \(method) \(path) after \(delay): \(error)")
                try await Task.sleep(for: delay)
            }
        }
    }

    func sendOnce(method: HTTPMethod, path: String, query: [(String, String)], body: Data?,
                  contentType: String?) async throws -> RawResponse {
        do {
            let r = try await sendUnobserved(method: method, path: path, query: query, body: body, contentType: contentType)
            observer?(method.rawValue, false)
            return r
        } catch {
            if !(error is CancellationError) { observer?(method.rawValue, true) }
            throw error
        }
    }

    func sendUnobserved(method: HTTPMethod, path: String, query: [(String, String)], body: Data?,
                        contentType: String?) async throws -> RawResponse {
        let req = makeRequest(method: method, path: path, query: query, body: body, contentType: contentType)
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await http.execute(req, timeout: .nanoseconds(Int64(requestTimeout.components.seconds) * 1_000_000_000
                                                                          + requestTimeout.components.attoseconds / 1_000_000_000))
            bytes = try await response.body.collect(upTo: 256 * 1024 * 1024)
        } catch let e as HTTPClientError where e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout {
            throw KubeError.timeout(message: "\(method) \(path): \(e)")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw KubeError.transport("\(method) \(path): \(error)")
        }
        let data = Data(bytes.readableBytesView)
        let code = Int(response.status.code)
        guard (200..<300).contains(code) else {
            throw KubeError.from(statusCode: code, body: data, retryAfterHeader: response.headers.first(name: "Retry-After"))
        }
        return RawResponse(status: code, headers: response.headers.map { ($0.name, $0.value) }, body: data)
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
        _ = try await send(method: .DELETE, path: type.path(namespace: ns(type, namespace), name: name), query: options.query)
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

    /// Reads one page. `namespace` nil on a namespaced kind lists all namespaces.
    public func list<K: KubeResource>(_ type: K.Type, namespace: String? = nil, options: ListOptions = .init()) async throws -> ObjectList<K> {
        let t = ResourceType(K.self)
        let data = try await send(method: .GET, path: t.path(namespace: K.namespaced ? namespace : nil), query: options.query).body
        return try decode(ObjectList<K>.self, data)
    }

    /// Reads every page (following `continue`) and returns the items and the list's resourceVersion.
    public func listAll<K: KubeResource>(_ type: K.Type, namespace: String? = nil, options: ListOptions = .init(),
                                         pageSize: Int = 500) async throws -> (items: [K], resourceVersion: String) {
        var opts = options
        opts.limit = pageSize
        var items: [K] = []
        var rv = ""
        while true {
            let page = try await list(K.self, namespace: namespace, options: opts)
            items += page.items
            rv = page.metadata.resourceVersion ?? rv
            guard let c = page.metadata.continue, !c.isEmpty else { break }
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
