import NIOCore
import NIOHTTP1
import Synchronization

extension HTTPEndpoint {
    /// What every connection shares: the connections open (for the cap), the unsent budget and the shed total.
    final class Load: Sendable {
        let limits: Limits
        let metrics: TapioMetrics?
        let unsentBytes = Atomic<Int>(0)
        let shed = Atomic<UInt64>(0)

        struct Connection {
            var channel: any Channel
            /// When it was accepted or last finished a request: the longest-waiting makes room at the cap.
            var lastRequest: NIODeadline
            /// An answer is on its way to it (such a connection is not closed to make room).
            var busy: Bool
        }
        private let connections = Mutex<[ObjectIdentifier: Connection]>([:])

        init(limits: Limits, metrics: TapioMetrics?) {
            self.limits = limits
            self.metrics = metrics
        }

        var openCount: Int { connections.withLock { $0.count } }

        func refused() {
            shed.add(1, ordering: .relaxed)
            metrics?.httpRefused()
        }

        /// Admits a new connection. At the cap, the open connection that has gone longest without a request and has
        /// no answer on its way is closed to make room; with none such, the new one is refused (false).
        func admit(_ channel: any Channel) -> Bool {
            let (admitted, victim) = connections.withLock { c -> (Bool, (any Channel)?) in
                var victim: (any Channel)?
                if c.count >= limits.maxConnections {
                    guard let oldest = c.filter({ !$0.value.busy }).min(by: { $0.value.lastRequest < $1.value.lastRequest })
                    else { return (false, nil) }
                    c.removeValue(forKey: oldest.key)
                    victim = oldest.value.channel
                }
                c[ObjectIdentifier(channel)] = Connection(channel: channel, lastRequest: .now(), busy: false)
                return (true, victim)
            }
            if let victim {
                refused()
                victim.close(promise: nil)
            }
            if !admitted { refused() }
            return admitted
        }

        func forget(_ channel: any Channel) {
            _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
        }

        /// A request finished (`busy`: its answer is on its way), or its answer was taken (`busy` false).
        func mark(_ channel: any Channel, busy: Bool, requested: Bool) {
            connections.withLock { c in
                guard var e = c[ObjectIdentifier(channel)] else { return }
                e.busy = busy
                if requested { e.lastRequest = .now() }
                c[ObjectIdentifier(channel)] = e
            }
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
}

/// Answers one connection's requests from the routes, within the endpoint's ``HTTPEndpoint/Limits``. All its state
/// is touched on the channel's event loop only (handler callbacks and write promises both run there).
final class RouteHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let routes: [String: HTTPEndpoint.Route]
    let load: HTTPEndpoint.Load
    private var head: HTTPRequestHead?
    /// This connection's answers not yet taken by its peer.
    private var unsent = 0
    /// Set when this handler closes the connection: requests the HTTP decoder had already parsed from the same read
    /// are still delivered (replayed as the pipeline is torn down), and none of them may render a page.
    private var closing = false

    init(routes: [String: HTTPEndpoint.Route], load: HTTPEndpoint.Load) {
        self.routes = routes
        self.load = load
    }

    private func close(_ context: ChannelHandlerContext, refused: Bool) {
        guard !closing else { return }
        closing = true
        if refused { load.refused() }
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        // Nothing asked for this long: a scraper opens a new connection when it needs one.
        case IdleStateHandler.IdleStateEvent.read: close(context, refused: false)
        // An answer not taken for this long holds its share of the budget for nobody.
        case IdleStateHandler.IdleStateEvent.write where unsent > 0: close(context, refused: true)
        case is IdleStateHandler.IdleStateEvent: break
        default: context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing, context.channel.isActive else { return }
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            // A peer asking again before it has taken the last answer pipelines without reading (a scraper or a
            // probe reads every answer before its next request): refused before a page is rendered for it.
            guard unsent == 0 else { return close(context, refused: true) }
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
            guard load.reserve(size) else { return close(context, refused: true) }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: String(response.body.count))
            let keepAlive = h.isKeepAlive
            if !keepAlive {
                headers.add(name: "Connection", value: "close")
                closing = true  // nothing after this request is answered
            }
            let channel = context.channel
            unsent += 1
            load.mark(channel, busy: true, requested: true)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .init(statusCode: response.status), headers: headers))), promise: nil)
            if h.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
            }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            let load = self.load
            // Written to the socket, or failed with the connection closed: either way no longer held.
            done.whenComplete { _ in
                self.unsent -= 1
                load.unsentBytes.subtract(size, ordering: .relaxed)
                load.mark(channel, busy: self.unsent > 0, requested: false)
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }
}
