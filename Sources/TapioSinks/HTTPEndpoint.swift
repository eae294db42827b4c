import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A tiny HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz`.
///
/// Only GET/HEAD, only the registered paths; everything else is 404/405. Each route is a closure that renders
/// the body on request, so a scrape always sees current values.
public final class HTTPEndpoint: Sendable {
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

    public init(host: String, port: Int, routes: [String: Route]) {
        self.host = host
        self.port = port
        self.routes = routes
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.channel = Mutex(nil)
    }

    /// Binds and starts serving; returns the bound port (useful with port 0).
    @discardableResult
    public func start() async throws -> Int {
        let routes = self.routes
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(RouteHandler(routes: routes))
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
    private var head: HTTPRequestHead?

    init(routes: [String: HTTPEndpoint.Route]) { self.routes = routes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            let path = String(h.uri.split(separator: "?", maxSplits: 1).first ?? "")
            let response: HTTPEndpoint.Response
            if h.method != .GET && h.method != .HEAD {
                response = .init(status: 405, body: Array("method not allowed\n".utf8))
            } else if let route = routes[path] {
                response = route()
            } else {
                response = .init(status: 404, body: Array("not found; try \(routes.keys.sorted().joined(separator: ", "))\n".utf8))
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
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
