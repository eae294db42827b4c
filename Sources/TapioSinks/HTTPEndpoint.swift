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
        /// Connections open at once; one more is closed as it is accepted. A scraper keeps one open, a kubelet probe
        /// opens and closes its own.
        public var maxConnections: Int
        /// A connection that sends nothing for this long is closed: scrape intervals are well under it, and a
        /// scraper whose kept-alive connection was closed opens a new one.
        public var idleTimeout: TimeAmount
        /// Response bytes written but not yet taken by the peers, over all connections. A request that would go past
        /// it while other bytes are waiting closes its connection instead; a single page of any size can always be
        /// sent. A client that reads its answer before asking again (every scraper and probe) never has bytes waiting.
        public var maxUnsentBytes: Int
        public init(maxConnections: Int = 256, idleTimeout: TimeAmount = .seconds(120), maxUnsentBytes: Int = 32 << 20) {
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
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
    public var openConnections: Int { load.connections.load(ordering: .relaxed) }
    /// Response bytes written and not yet taken by their peers.
    public var unsentBytes: Int { load.unsentBytes.load(ordering: .relaxed) }

    /// What every connection shares: the counts ``Limits`` bounds, and the shed total.
    final class Load: Sendable {
        let limits: Limits
        let metrics: TapioMetrics?
        let connections = Atomic<Int>(0)
        let unsentBytes = Atomic<Int>(0)
        let shed = Atomic<UInt64>(0)
        init(limits: Limits, metrics: TapioMetrics?) {
            self.limits = limits
            self.metrics = metrics
        }
        func refused() {
            shed.add(1, ordering: .relaxed)
            metrics?.httpRefused()
        }
        /// Takes `bytes` of the unsent budget, or says no: over the budget while other bytes wait.
        func reserve(_ bytes: Int) -> Bool {
            var current = unsentBytes.load(ordering: .relaxed)
            while true {
                if current > 0, current > limits.maxUnsentBytes - bytes { return false }
                let (exchanged, now) = unsentBytes.compareExchange(expected: current, desired: current + bytes,
                                                                   ordering: .relaxed)
                if exchanged { return true }
                current = now
            }
        }
    }

    /// Binds and starts serving; returns the bound port (useful with port 0).
    @discardableResult
    public func start() async throws -> Int {
        let routes = self.routes, load = self.load
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                if load.connections.add(1, ordering: .relaxed).newValue > load.limits.maxConnections {
                    load.connections.subtract(1, ordering: .relaxed)
                    load.refused()
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in load.connections.subtract(1, ordering: .relaxed) }
                return channel.pipeline.addHandler(IdleStateHandler(readTimeout: load.limits.idleTimeout)).flatMap {
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

private final class RouteHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let routes: [String: HTTPEndpoint.Route]
    let load: HTTPEndpoint.Load
    private var head: HTTPRequestHead?
    /// This connection's answers not yet taken by its peer (only touched on the channel's event loop).
    private var unsent = 0

    init(routes: [String: HTTPEndpoint.Route], load: HTTPEndpoint.Load) {
        self.routes = routes
        self.load = load
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            // A peer asking again before it has taken the last answer pipelines without reading (a scraper or a
            // probe reads every answer before its next request): refused before a page is rendered for it.
            guard unsent == 0 else {
                load.refused()
                context.close(promise: nil)
                return
            }
            let path = String(h.uri.split(separator: "?", maxSplits: 1).first ?? "")
            let response: HTTPEndpoint.Response
            if h.method != .GET && h.method != .HEAD {
                response = .init(status: 405, body: Array("method not allowed\n".utf8))
            } else if let route = routes[path] {
                response = route()
            } else {
                response = .init(status: 404, body: Array("not found; try \(routes.keys.sorted().joined(separator: ", "))\n".utf8))
            }
            // The answer waits in memory until the peer takes it; all connections' waiting answers share one budget.
            let size = h.method == .HEAD ? 0 : response.body.count
            guard load.reserve(size) else {
                load.refused()
                context.close(promise: nil)
                return
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: String(response.body.count))
            let keepAlive = h.isKeepAlive
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .init(statusCode: response.status), headers: headers))), promise: nil)
            if h.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
            }
            unsent += 1
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            let load = self.load, channel = context.channel
            // Written to the socket, or failed with the connection closed: either way no longer held. (The promise
            // completes on this channel's event loop, where `unsent` lives.)
            done.whenComplete { _ in
                self.unsent -= 1
                load.unsentBytes.subtract(size, ordering: .relaxed)
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }
}
