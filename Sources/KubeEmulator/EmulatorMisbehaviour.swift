import Foundation
import NIOCore
import NIOHTTP1

/// Ways the emulator can misbehave for as long as a test wants, as broken or hostile API servers and proxies do.
/// Unlike `injectFaults` (the next N requests), a misbehaviour lasts until `behave()`.
public enum Misbehaviour: Sendable, Equatable {
    /// Every watch is answered 200 with one `ERROR` event (410 `Expired`) and ends: whatever version the client
    /// resumes from, it is told to relist.
    case expireWatchesInStream
    /// Every watch is answered 200 with an empty body: it ends before it delivered anything.
    case closeWatchesAtOnce
    /// Every request is answered with this status (e.g. 500: an API server that lost its etcd).
    case status(Int)
    /// Every request is redirected (302) to the same path with one more hop in its query: a chain that never ends
    /// and never repeats a URL.
    case redirectLoop
    /// Watches are answered 200 and then stream bytes forever without a newline.
    case endlessWatchLine
    /// Requests are read and never answered (the connection stays open).
    case neverAnswer
    /// Lists are answered with no items and the same `continue` token, whatever token was sent: paging that never
    /// ends (a broken server or proxy).
    case repeatContinueToken
    /// Lists are answered with `itemsPerPage` new objects (named `endless-<n>`, the rest of each as the list's kind
    /// needs nothing more to decode) and a new `continue` token, whatever token was sent: paging that never ends and
    /// never repeats itself.
    case endlessContinueTokens(itemsPerPage: Int)
    /// Requests are answered as usual, but every `metadata.resourceVersion` in a list (its own and its items') and in
    /// a watch event's object (bookmarks included) is `""`: present but empty, as a broken server or proxy may send.
    case blankResourceVersions
}

extension Misbehaviour {
    var watchesOnly: Bool {
        switch self {
        case .expireWatchesInStream, .closeWatchesAtOnce, .endlessWatchLine: true
        case .status, .redirectLoop, .neverAnswer, .repeatContinueToken, .endlessContinueTokens, .blankResourceVersions: false
        }
    }
}

struct ActiveMisbehaviour: Sendable {
    var kind: Misbehaviour
    var pathContains: String?
}

extension KubeEmulator {
    /// Misbehaves on every request whose path and query contain `pathContains` (all requests when nil) until
    /// `behave()`. The latest call wins where several match.
    public func misbehave(_ m: Misbehaviour, pathContains: String? = nil) {
        store.state.withLock { $0.misbehaviours.insert(ActiveMisbehaviour(kind: m, pathContains: pathContains), at: 0) }
    }

    /// Stops every misbehaviour and closes the connections held open by `endlessWatchLine` and `neverAnswer`.
    public func behave() {
        let channels = store.state.withLock { s -> [any Channel] in
            s.misbehaviours = []
            defer { s.hostileChannels = [:] }
            return Array(s.hostileChannels.values)
        }
        for c in channels { c.close(promise: nil) }
    }

    /// The distinct `Host` headers requests came with so far (at most 100).
    public var hostHeaders: Set<String> { store.state.withLock { $0.hostHeaders } }

    /// When each request whose path and query contain `substring` arrived (the last 100,000 requests are kept).
    public func requestTimes(containing substring: String) -> [ContinuousClock.Instant] {
        store.state.withLock { s in s.requestLog.filter { $0.uri.contains(substring) }.map(\.at) }
    }

    /// The path and query of each request that contains `substring`, oldest first (of the same last 100,000).
    public func requestURIs(containing substring: String) -> [String] {
        store.state.withLock { s in s.requestLog.filter { $0.uri.contains(substring) }.map(\.uri) }
    }

    /// Streams the start of an event and then filler bytes, never a newline, until the client hangs up or the
    /// emulator stops (`behave()` or `stop()` close the connection).
    func serveEndlessLine(version: HTTPVersion, channel: any Channel,
                          outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        let id = store.holdOpen(channel)
        defer { store.release(id) }
        let headers = HTTPHeaders([("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
        try await outbound.write(.head(HTTPResponseHead(version: version, status: .ok, headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(string: #"{"type":"ADDED","object":{"metadata":{"name":""#))))
        let filler = ByteBuffer(repeating: UInt8(ascii: "a"), count: 64 << 10)
        // The writer waits while the client is not reading, so this costs the emulator one buffer, not memory;
        // paced at ~3 MiB/s (16 MiB in ~5 s), as over a real network, so a test can act while a line grows.
        while !Task.isCancelled && channel.isActive {
            try await outbound.write(.body(.byteBuffer(filler)))
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Holds the request without an answer until the client hangs up or the emulator stops.
    func serveNothing(channel: any Channel) async {
        let id = store.holdOpen(channel)
        defer { store.release(id) }
        while !Task.isCancelled && channel.isActive {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

extension EmulatorStore {
    /// The misbehaviour for this request, if any, as the response to give (`nil`: behave).
    func misbehaviour(for req: EmulatorRequest) -> EmulatorResponse? {
        let isWatch = req.query["watch"] == "true" || req.query["watch"] == "1"
        let m = state.withLock { s in
            s.misbehaviours.first { m in
                (m.pathContains.map { req.uri.contains($0) } ?? true)
                    && (isWatch || !m.kind.watchesOnly)
            }
        }
        guard let m else { return nil }
        switch m.kind {
        case .expireWatchesInStream:
            let (stream, cont) = AsyncStream<WatchChunk>.makeStream()
            cont.yield(Self.eventLine("ERROR", Self.statusObject(410, reason: "Expired",
                                                                 message: "too old resource version: \(req.query["resourceVersion"] ?? "")")))
            cont.finish()
            return .watch(id: -1, stream: stream)
        case .closeWatchesAtOnce:
            let (stream, cont) = AsyncStream<WatchChunk>.makeStream()
            cont.finish()
            return .watch(id: -1, stream: stream)
        case .status(let code):
            return Self.status(code, reason: code >= 500 ? "InternalError" : "BadRequest",
                               message: "Internal error occurred: the emulator is misbehaving")
        case .redirectLoop:
            let hop = Int(req.query["hop"] ?? "0").map { $0 &+ 1 } ?? 1
            var comps = URLComponents(string: req.uri) ?? URLComponents()
            comps.queryItems = (comps.queryItems ?? []).filter { $0.name != "hop" } + [URLQueryItem(name: "hop", value: String(hop))]
            let location = comps.string ?? req.path
            return .json(status: 302, body: Self.statusObject(302, reason: "Found", message: "see \(location)"),
                         headers: [("Location", location)])
        case .endlessWatchLine: return .endlessLine
        case .neverAnswer: return .noAnswer
        case .repeatContinueToken:
            guard req.method == "GET" else { return nil }
            return Self.listPage([], continue: "again")
        case .endlessContinueTokens(let perPage):
            guard req.method == "GET" else { return nil }
            let page = Int(req.query["continue"]?.dropFirst("page-".count) ?? "0").map { $0 &+ 1 } ?? 1
            let items = (0..<max(0, perPage)).map { i in
                JSONValue.object(["metadata": .object([
                    "name": .string("endless-\(page)-\(i)"), "namespace": .string("default"),
                    "uid": .string("endless-\(page)-\(i)"), "resourceVersion": .string("1"),
                ])])
            }
            return Self.listPage(items, continue: "page-\(page)")
        case .blankResourceVersions:
            switch handleSync(req) {
            case .json(let status, var body, let headers) where body["items"] != nil:
                body["metadata"]?["resourceVersion"] = .string("")
                if case .array(let items) = body["items"] { body["items"] = .array(items.map(Self.blankingVersion)) }
                return .json(status: status, body: body, headers: headers)
            case .watch(let id, let stream):
                // Relayed through a stream as bounded as the watch's own; ending either ends the other.
                let (relay, cont) = AsyncStream<WatchChunk>.makeStream(bufferingPolicy: .bufferingOldest(watchBuffer))
                let task = Task {
                    for await chunk in stream {
                        guard case .data(let line) = chunk, var event = try? JSONValue.parse(line),
                              let object = event["object"], event["type"]?.stringValue != "ERROR" else {
                            cont.yield(chunk)
                            continue
                        }
                        event["object"] = Self.blankingVersion(object)
                        var blanked = event.jsonData()
                        blanked.append(UInt8(ascii: "\n"))
                        cont.yield(.data(blanked))
                    }
                    cont.finish()
                }
                cont.onTermination = { _ in task.cancel() }
                return .watch(id: id, stream: relay)
            case let other:
                return other
            }
        }
    }

    /// `object` with its `metadata.resourceVersion` present but empty.
    static func blankingVersion(_ object: JSONValue) -> JSONValue {
        var o = object
        o["metadata"]?["resourceVersion"] = .string("")
        return o
    }

    /// A list page with `items` and a `continue` token, as the paging misbehaviours answer.
    static func listPage(_ items: [JSONValue], continue token: String) -> EmulatorResponse {
        .json(status: 200, body: .object([
            "kind": .string("List"), "apiVersion": .string("v1"),
            "metadata": .object(["resourceVersion": .string("1"), "continue": .string(token)]),
            "items": .array(items),
        ]), headers: [])
    }

    func holdOpen(_ channel: any Channel) -> Int {
        state.withLock { s in
            s.nextHostileID += 1
            s.hostileChannels[s.nextHostileID] = channel
            return s.nextHostileID
        }
    }

    func release(_ id: Int) { _ = state.withLock { $0.hostileChannels.removeValue(forKey: id) } }

    /// Closes every connection a misbehaviour holds open (on `stop()`).
    func closeHostileChannels() {
        let channels = state.withLock { s -> [any Channel] in
            defer { s.hostileChannels = [:] }
            return Array(s.hostileChannels.values)
        }
        for c in channels { c.close(promise: nil) }
    }
}
