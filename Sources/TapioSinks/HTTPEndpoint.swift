import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A tiny HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz`.
///
/// Only GET/HEAD, only the registered paths; everything else is 404/405. Each route is a closure that renders
/// the body on request, so a scrape always sees current values.
///
/// It listens on the pod network, so what any peer can make it hold is bounded (``Limits``): connections, idle ones,
/// and the bytes of responses written but not yet taken by their peers. A client that pipelines requests and never
/// reads the answers costs one page, not one page per 35-byte request; what is refused is counted
/// (`tapio_http_refused_total`).
public final class HTTPEndpoint: Sendable {
    public struct Limits: Sendable {
        /// Connections open at once. One more makes room by closing the connection that has gone longest without a
        /// request and has no answer on its way (or, with none such, is itself closed): a peer holding idle
        /// connections cannot lock out a kubelet probe, whose connection asks at once. A scraper keeps one open.
        public var maxConnections: Int
        /// A connection that sends nothing for this long is closed: scrape intervals are well under it, and a
        /// scraper whose kept-alive connection was closed opens a new one.
        public var idleTimeout: TimeAmount
        /// A connection whose answer has not been taken for this long is closed, and its share of the unsent budget
        /// given back: a scrape times out well before (Prometheus's default is 10 s).
        public var stallTimeout: TimeAmount
        /// Response bytes written but not yet taken by the peers, over all connections. A request that would go past
        /// it while other bytes are waiting closes its connection instead; a single page of any size can always be
        /// sent. A client that reads its answer before asking again (every scraper and probe) never has bytes waiting.
        public var maxUnsentBytes: Int
        public init(maxConnections: Int = 256, idleTimeout: TimeAmount = .seconds(120), stallTimeout: TimeAmount = .seconds(30),
                    maxUnsentBytes: Int = 32 << 20) {
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.stallTimeout = stallTimeout
            self.maxUnsentBytes = maxUnsentBytes
        }
    }
    public struct Response: Sendable {
        public var status: Int
        public var contentType: String
        public var body: [UInt8]
        public init(status: Int = 200, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }
    public typealias Route = @Sendable () -> Response

    private let routes: [String: Route]
    private let host: String
    private let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let channel: Mutex<(any Channel)?>
    let load: Load

    /// `metrics`, when given, counts refused connections and requests (`tapio_http_refused_total`).
    public init(host: String, port: Int, routes: [String: Route], limits: Limits = Limits(), metrics: TapioMetrics? = nil) {
        self.host = host
        self.port = port
        self.routes = routes
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.channel = Mutex(nil)
        self.load = Load(limits: limits, metrics: metrics)
    }

    /// Connections and requests refused so far by ``Limits``.
    public var shed: UInt64 { load.shed.load(ordering: .relaxed) }
    /// Connections open now.
    public var openConnections: Int { load.openCount }
    /// Response bytes written and not yet taken by their peers.
    public var unsentBytes: Int { load.unsentBytes.load(ordering: .relaxed) }

    /// Binds and starts serving; returns the bound port (useful with port 0).
    @discardableResult
    public func start() async throws -> Int {
        let routes = self.routes, load = self.load
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard load.admit(channel) else { return channel.close() }
                channel.closeFuture.whenComplete { _ in load.forget(channel) }
                let idle = IdleStateHandler(readTimeout: load.limits.idleTimeout, writeTimeout: load.limits.stallTimeout)
                return channel.pipeline.addHandler(idle).flatMap {
                    channel.pipeline.configureHTTPServerPipeline()
                }.flatMap {
                    channel.pipeline.addHandler(RouteHandler(routes: routes, load: load))
                }
            }
        let ch: any Channel
        do {
            ch = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw HTTPEndpointError.bind(address: "\(host):\(port)", underlying: "\(error)")
        }
        channel.withLock { $0 = ch }
        return ch.localAddress?.port ?? port
    }

    /// Stops listening and releases the event loop.
    public func shutdown() async {
        let ch = channel.withLock { c -> (any Channel)? in
            defer { c = nil }
            return c
        }
        try? await ch?.close()
        try? await group.shutdownGracefully()
    }
}

public enum HTTPEndpointError: Error, CustomStringConvertible {
    case bind(address: String, underlying: String)
    public var description: String {
        switch self {
        case .bind(let address, let underlying): "cannot listen on \(address): \(underlying)"
        }
    }
}
