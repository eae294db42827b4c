import Foundation
import NIOCore
import Synchronization
import TapioModel

/// One HTTP request as the store sees it.
struct EmulatorRequest: Sendable {
    var method: String
    /// Path and query as sent (fault matching looks at it).
    var uri: String = ""
    var path: String
    var query: [String: String]
    var headers: [String: String]  // lower-cased names
    var body: Data
    /// The connection presented the client certificate the emulator's CA signed.
    var clientCertificate = false
}

/// A chunk of a watch stream, or the instruction to cut the connection (fault injection).
enum WatchChunk: Sendable {
    case data(Data)
    case drop
}

enum EmulatorResponse: Sendable {
    case json(status: Int, body: JSONValue, headers: [(String, String)])
    /// Plain text, as kube-apiserver's catch-all handler answers a path under `/apis` that no group serves.
    case text(status: Int, body: String)
    case watch(id: Int, stream: AsyncStream<WatchChunk>)
    /// `Misbehaviour.endlessWatchLine`: a watch whose first line never ends.
    case endlessLine
    /// `Misbehaviour.neverAnswer`.
    case noAnswer
}

/// Faults the next requests suffer (test hooks).
struct FaultPlan: Sendable {
    var status: Int
    var retryAfterSeconds: Int?
    var delay: Duration?
    var remaining: Int
    var pathContains: String?
    /// Only requests with this method (POST, PUT, …) suffer it.
    var method: String? = nil
    /// The request is applied at once and answered only after this long (`KubeEmulator.delayAnswers`).
    var answerDelay: Duration? = nil
}

/// All objects, the global resourceVersion counter, the bounded event history and the open watches, behind one lock.
/// Every write takes the lock once: it assigns the next resourceVersion, records history and feeds matching watches
/// in that order, so each watch sees events in resourceVersion order.
final class EmulatorStore: Sendable {
    struct HistoryEntry {
        var rv: Int64
        /// The kind's `storageKey`: one history for all the APIs serving the same objects.
        var storageKey: String
        var type: String
        var object: JSONValue
        var old: JSONValue?
    }
    struct Watcher {
        var kind: EmulatedKind
        var namespace: String?
        var labels: LabelSelectorQuery?
        var fields: FieldSelectorQuery?
        var bookmarks: Bool
        var continuation: AsyncStream<WatchChunk>.Continuation
        /// Converts event objects into the negotiated form (Table rows for `kubectl get -w`); nil sends them as stored.
        var transform: WatchTransform? = nil
    }
    struct State {
        var rv: Int64 = 1
        var kinds: [String: EmulatedKind] = [:]
        var objects: [String: [String: JSONValue]] = [:]
        var history: [HistoryEntry] = []
        var historyLimit: Int
        /// Events at or below this resourceVersion are gone: watching from an older version answers 410.
        var compactedThrough: Int64 = 0
        var watchers: [Int: Watcher] = [:]
        var nextWatchID = 1
        var faults: [FaultPlan] = []
        var requestCount = 0
        /// Requests a client certificate authenticated (without a valid token).
        var certificateAuthenticated = 0
        /// Arrival of recent requests (test hooks count and time them), oldest first, at most `requestLogLimit`.
        var requestLog: [(uri: String, at: ContinuousClock.Instant)] = []
        /// The distinct `Host` headers requests came with (at most 100).
        var hostHeaders: Set<String> = []
        var misbehaviours: [ActiveMisbehaviour] = []
        /// Connections a misbehaviour holds open, closed by `behave()` and `stop()`.
        var hostileChannels: [Int: any Channel] = [:]
        var nextHostileID = 0
    }
    static let requestLogLimit = 100_000

    let state: Mutex<State>
    let token: String
    /// Events a watch may have waiting before it is ended.
    let watchBuffer: Int

    init(token: String, historyLimit: Int, watchBuffer: Int = 100_000) {
        self.token = token
        self.watchBuffer = max(1, watchBuffer)
        var s = State(historyLimit: historyLimit)
        for k in EmulatedKind.builtins { s.kinds[k.typeKey] = k }
        state = Mutex(s)
        for ns in ["default", "kube-system", "kube-public"] {
            _ = handleSync(EmulatorRequest(method: "POST", path: "/api/v1/namespaces", query: [:], headers: [:],
                                           body: JSONValue.object(["apiVersion": "v1", "kind": "Namespace",
                                                                   "metadata": .object(["name": .string(ns)])]).jsonData()))
        }
    }

    func register(_ kind: EmulatedKind) {
        state.withLock { $0.kinds[kind.typeKey] = kind }
    }

    // MARK: Routing

    struct Route {
        var kind: EmulatedKind
        var namespace: String?
        var name: String?
        var subresource: String?
    }

    func route(_ path: String) -> Route? {
        var segs = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        let group: String, version: String
        if segs.first == "api", segs.count >= 2 {
            group = ""; version = segs[1]; segs.removeFirst(2)
        } else if segs.first == "apis", segs.count >= 3 {
            group = segs[1]; version = segs[2]; segs.removeFirst(3)
        } else { return nil }
        var namespace: String?
        if segs.count >= 3, segs[0] == "namespaces", !(segs.count == 3 && (segs[2] == "status" || segs[2] == "finalize")) {
            namespace = segs[1]; segs.removeFirst(2)
        }
        guard let plural = segs.first, segs.count <= 3 else { return nil }
        guard let kind = state.withLock({ $0.kinds["\(group)/\(version)/\(plural)"] }) else { return nil }
        if namespace != nil && !kind.namespaced { return nil }
        return Route(kind: kind, namespace: namespace, name: segs.count > 1 ? segs[1] : nil,
                     subresource: segs.count > 2 ? segs[2] : nil)
    }

    // MARK: Entry point

    /// Handles one request; faults and auth first, then the API.
    func handle(_ req: EmulatorRequest) async -> EmulatorResponse {
        // As kube-apiserver's authenticators: a client certificate from the trusted CA, or the token, will do.
        if req.headers["authorization"] != "Bearer \(token)" {
            guard req.clientCertificate else { return Self.status(401, reason: "Unauthorized", message: "Unauthorized") }
            state.withLock { $0.certificateAuthenticated += 1 }
        }
        let fault: FaultPlan? = state.withLock { s in
            s.requestCount += 1
            if s.requestLog.count >= Self.requestLogLimit { s.requestLog.removeFirst(s.requestLog.count / 2) }
            s.requestLog.append((req.uri, .now))
            if let host = req.headers["host"], s.hostHeaders.count < 100 { s.hostHeaders.insert(host) }
            guard let i = s.faults.firstIndex(where: { f in
                (f.pathContains.map { req.uri.contains($0) } ?? true) && (f.method.map { $0 == req.method } ?? true)
            }) else { return nil }
            let f = s.faults[i]
            s.faults[i].remaining -= 1
            if s.faults[i].remaining <= 0 { s.faults.remove(at: i) }
            return f
        }
        if let hostile = misbehaviour(for: req) { return hostile }
        if let fault {
            if let d = fault.answerDelay {
                let answer = handleSync(req)
                try? await Task.sleep(for: d)
                return answer
            }
            if let d = fault.delay { try? await Task.sleep(for: d) }
            if fault.status == 429 {
                return Self.status(429, reason: "TooManyRequests", message: "Too many requests, please try again later.",
                                   details: ["retryAfterSeconds": .int(Int64(fault.retryAfterSeconds ?? 1))],
                                   headers: [("Retry-After", String(fault.retryAfterSeconds ?? 1))])
            }
            if fault.status >= 400 {
                return Self.status(fault.status, reason: "InternalError", message: "Internal error occurred: injected fault")
            }
        }
        return handleSync(req)
    }

    /// kube-apiserver 1.36 answers a path nobody serves with a Status under `/api` (the legacy group's handler) and
    /// with plain "404 page not found" under `/apis` and elsewhere (the catch-all handler).
    static func notFound(_ path: String) -> EmulatorResponse {
        if path == "/api" || path.hasPrefix("/api/") {
            return status(404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        return .text(status: 404, body: "404 page not found\n")
    }

    func handleSync(_ req: EmulatorRequest) -> EmulatorResponse {
        if req.path == "/version" {
            return .json(status: 200, body: Self.versionInfo, headers: [])
        }
        if let d = discovery(req) { return d }
        guard let r = route(req.path) else { return Self.notFound(req.path) }
        if let sub = r.subresource, !(sub == "status" && r.kind.hasStatus) { return Self.notFound(req.path) }
        if r.kind.namespaced && r.namespace == nil && (r.name != nil || req.method != "GET") { return Self.notFound(req.path) }
        // Content negotiation first, as the real server does before acting: `kubectl get` asks for Tables.
        guard let target = Negotiation.negotiate(req.headers["accept"], transforms: true) else { return Negotiation.notAcceptable() }
        if case .table = target, let bad = TablePrinter.validateIncludeObject(req.query["includeObject"]) { return bad }
        let response: EmulatorResponse
        switch (req.method, r.name) {
        case ("GET", nil):
            if let w = req.query["watch"], w == "true" || w == "1" { return watch(r, req, target: target) }
            response = list(r, req)
        case ("GET", let name?): response = get(r, name)
        case ("POST", nil): response = create(r, req)
        case ("PUT", let name?): response = update(r, name, req)
        case ("PATCH", let name?): response = patch(r, name, req)
        case ("DELETE", let name?): response = delete(r, name, req)
        default:
            return Self.status(405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
        }
        return Self.transform(response, to: target, kind: r.kind, req: req)
    }

    /// What `GET /version` answers (version.Info).
    static let versionInfo: JSONValue = .object([
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-tapio-emulator", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2", "compiler": "gc",
        "platform": "linux/amd64",
    ])

    /// Turns a successful response into the negotiated form (Table, PartialObjectMetadata…); errors pass unchanged.
    static func transform(_ response: EmulatorResponse, to target: OutputTarget, kind: EmulatedKind, req: EmulatorRequest) -> EmulatorResponse {
        guard case .json(let status, let body, let headers) = response, (200..<300).contains(status),
              body["kind"]?.stringValue != "Status" else { return response }
        let isList = body["items"] != nil && body["kind"]?.stringValue?.hasSuffix("List") == true
        switch target {
        case .object:
            return response
        case .table(let version):
            let objects = isList ? (body["items"]?.arrayValue ?? []) : [body]
            return .json(status: status, body: TablePrinter.table(kind, objects: objects, listMeta: isList ? body["metadata"] : nil,
                                                                  version: version, include: req.query["includeObject"] ?? ""),
                         headers: headers)
        case .partialObjectMetadata(let version):
            guard !isList else {
                return Self.status(406, reason: "NotAcceptable",
                                   message: "you requested PartialObjectMetadata, but the requested object is a list (\(Self.goTypeName(kind, list: true)))")
            }
            return .json(status: status, body: TablePrinter.partial(body, version: version), headers: headers)
        case .partialObjectMetadataList(let version):
            guard isList else {
                return Self.status(406, reason: "NotAcceptable",
                                   message: "you requested PartialObjectMetadataList, but the requested object is not a list (\(Self.goTypeName(kind, list: false)))")
            }
            var meta: [String: JSONValue] = [:]
            for key in ["resourceVersion", "continue", "remainingItemCount"] { if let v = body["metadata"]?[key] { meta[key] = v } }
            let items = (body["items"]?.arrayValue ?? []).map { TablePrinter.partial($0, version: version) }
            return .json(status: status, body: .object(["kind": "PartialObjectMetadataList", "apiVersion": .string("meta.k8s.io/\(version)"),
                                                        "metadata": .object(meta), "items": .array(items)]), headers: headers)
        }
    }

    /// The Go type name the real server puts in some messages.
    static func goTypeName(_ k: EmulatedKind, list: Bool) -> String {
        if k.crd != nil { return list ? "*unstructured.UnstructuredList" : "*unstructured.Unstructured" }
        let pkg = k.group.isEmpty ? "core" : String(k.group.split(separator: ".")[0])
        return "*\(pkg).\(k.kind)\(list ? "List" : "")"
    }

    // MARK: Helpers

    static func status(_ code: Int, reason: String, message: String, details: [String: JSONValue]? = nil,
                       headers: [(String, String)] = []) -> EmulatorResponse {
        .json(status: code, body: statusObject(code, reason: reason, message: message, details: details), headers: headers)
    }

    static func statusObject(_ code: Int, reason: String, message: String, details: [String: JSONValue]? = nil) -> JSONValue {
        var o: [String: JSONValue] = ["kind": "Status", "apiVersion": "v1", "metadata": .object([:]), "status": "Failure",
                                      "message": .string(message), "reason": .string(reason), "code": .int(Int64(code))]
        if let details { o["details"] = .object(details) }
        return .object(o)
    }

    static func notFound(_ k: EmulatedKind, _ name: String) -> EmulatorResponse {
        status(404, reason: "NotFound", message: "\(k.qualifiedResource) \"\(name)\" not found",
               details: ["name": .string(name), "group": .string(k.group), "kind": .string(k.plural)])
    }

    static func invalid(_ k: EmulatedKind, _ name: String, _ errors: [FieldError]) -> EmulatorResponse {
        let causes = errors.map { e -> JSONValue in
            .object(["reason": .string(e.type.statusCauseReason), "message": .string(e.message), "field": .string(e.path)])
        }
        let list = errors.map(\.description)
        let joined = list.count == 1 ? list[0] : "[" + list.joined(separator: ", ") + "]"
        return status(422, reason: "Invalid", message: "\(k.kind).\(k.group.isEmpty ? "" : k.group) \"\(name)\" is invalid: \(joined)"
                        .replacingOccurrences(of: ". \"", with: " \""),
                      details: ["name": .string(name), "group": .string(k.group), "kind": .string(k.kind), "causes": .array(causes)])
    }

    static func key(_ ns: String?, _ name: String) -> String { ns.map { "\($0)/\(name)" } ?? name }

    static func timestamp(_ d: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    // MARK: Reads

    func get(_ r: Route, _ name: String) -> EmulatorResponse {
        guard let obj = current(r, name) else { return Self.notFound(r.kind, name) }
        return .json(status: 200, body: obj, headers: [])
    }

    /// The stored object as the route's API shows it.
    func current(_ r: Route, _ name: String) -> JSONValue? {
        state.withLock { $0.objects[r.kind.storageKey]?[Self.key(r.namespace, name)] }.map(r.kind.view)
    }

    func selectors(_ r: Route, _ req: EmulatorRequest) throws -> (LabelSelectorQuery?, FieldSelectorQuery?) {
        let l = try req.query["labelSelector"].flatMap { $0.isEmpty ? nil : try LabelSelectorQuery($0) }
        let f = try req.query["fieldSelector"].flatMap {
            $0.isEmpty ? nil : try FieldSelectorQuery($0, supported: r.kind.fieldSelectors, kind: r.kind.kind,
                                                      fallbacks: r.kind.fieldSelectorFallbacks)
        }
        return (l, f)
    }

    static func matches(_ o: JSONValue, ns: String?, _ l: LabelSelectorQuery?, _ f: FieldSelectorQuery?) -> Bool {
        if let ns, o["metadata"]?["namespace"]?.stringValue != ns { return false }
        if let l {
            let labels = (o["metadata"]?["labels"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
            if !l.matches(labels) { return false }
        }
        if let f, !f.matches(o) { return false }
        return true
    }

    func list(_ r: Route, _ req: EmulatorRequest) -> EmulatorResponse {
        let l: LabelSelectorQuery?, f: FieldSelectorQuery?
        do { (l, f) = try selectors(r, req) } catch let e as LabelSelectorQuery.ParseError {
            return Self.status(400, reason: "BadRequest", message: "unable to parse requirement: \(e.message)")
        } catch { return Self.status(400, reason: "BadRequest", message: "\(error)") }
        let limit = req.query["limit"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil }
        var startAfter: String?
        var listRV: Int64?
        if let c = req.query["continue"], !c.isEmpty {
            guard let d = Data(base64Encoded: c), let s = String(data: d, encoding: .utf8),
                  let bar = s.firstIndex(of: "|"), let rv = Int64(s[..<bar]) else {
                return Self.status(400, reason: "BadRequest", message: "continue key is not valid")
            }
            listRV = rv
            startAfter = String(s[s.index(after: bar)...])
        }
        return state.withLock { s -> EmulatorResponse in
            if let listRV, listRV < s.compactedThrough {
                return Self.status(410, reason: "Expired",
                                   message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
            }
            let all = (s.objects[r.kind.storageKey] ?? [:]).sorted { $0.key < $1.key }
            var items: [JSONValue] = []
            var next: String?
            var remaining: Int64 = 0
            for (k, stored) in all {
                if let startAfter, k <= startAfter { continue }
                let o = r.kind.view(stored)
                guard Self.matches(o, ns: r.namespace, l, f) else { continue }
                if let limit, items.count >= limit {
                    remaining += 1
                    continue
                }
                items.append(r.kind.crd == nil ? Self.strippedTypeMeta(o) : o)
                next = k
            }
            let rv = listRV ?? s.rv
            var meta: [String: JSONValue] = ["resourceVersion": .string(String(rv))]
            if remaining > 0, let next {
                meta["continue"] = .string(Data("\(rv)|\(next)".utf8).base64EncodedString())
                meta["remainingItemCount"] = .int(remaining)
            }
            return .json(status: 200, body: .object(["kind": .string(r.kind.kind + "List"), "apiVersion": .string(r.kind.apiVersion),
                                                     "metadata": .object(meta), "items": .array(items)]), headers: [])
        }
    }

    /// Built-in list items carry no `kind`/`apiVersion` on the wire, as from the real server.
    static func strippedTypeMeta(_ o: JSONValue) -> JSONValue {
        guard case .object(var d) = o else { return o }
        d.removeValue(forKey: "kind"); d.removeValue(forKey: "apiVersion")
        return .object(d)
    }

    static func eventLine(_ type: String, _ object: JSONValue, _ t: WatchTransform? = nil) -> WatchChunk {
        let out = type == "ERROR" ? object : (t?.apply(object) ?? object)
        var d = JSONValue.object(["type": .string(type), "object": out]).jsonData()
        d.append(UInt8(ascii: "\n"))
        return .data(d)
    }

    func watch(_ r: Route, _ req: EmulatorRequest, target: OutputTarget = .object) -> EmulatorResponse {
        let transform = WatchTransform(target: target, kind: r.kind, include: req.query["includeObject"] ?? "")
        let l: LabelSelectorQuery?, f: FieldSelectorQuery?
        do { (l, f) = try selectors(r, req) } catch { return Self.status(400, reason: "BadRequest", message: "\(error)") }
        let rvText = req.query["resourceVersion"] ?? ""
        // Bounded, as kube-apiserver's per-watcher buffer: a watcher that falls this far behind is ended (its client
        // resumes or relists) rather than buffered without limit.
        let (stream, cont) = AsyncStream<WatchChunk>.makeStream(bufferingPolicy: .bufferingOldest(watchBuffer))
        let bookmarks = req.query["allowWatchBookmarks"] == "true"
        let id: Int? = state.withLock { s -> Int? in
            // What the watch starts with; more than its buffer holds is answered 410, so the client lists instead.
            var initial: [WatchChunk] = []
            if rvText.isEmpty || rvText == "0" {
                for (_, stored) in (s.objects[r.kind.storageKey] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    let o = r.kind.view(stored)
                    if Self.matches(o, ns: r.namespace, l, f) { initial.append(Self.eventLine("ADDED", o, transform)) }
                }
            } else {
                guard let from = Int64(rvText) else { return nil }
                if from < s.compactedThrough {
                    cont.yield(Self.eventLine("ERROR", Self.statusObject(410, reason: "Expired",
                        message: "too old resource version: \(from) (\(s.compactedThrough + 1))")))
                    cont.finish()
                    return -1
                }
                for e in s.history where e.rv > from && e.storageKey == r.kind.storageKey {
                    if let chunk = Self.chunk(for: e, kind: r.kind, ns: r.namespace, l, f, transform) { initial.append(chunk) }
                }
            }
            guard initial.count < watchBuffer else {
                cont.yield(Self.eventLine("ERROR", Self.statusObject(410, reason: "Expired",
                    message: "a watch from \(rvText.isEmpty ? "0" : rvText) would start \(initial.count) events behind; list instead")))
                cont.finish()
                return -1
            }
            for c in initial { cont.yield(c) }
            let id = s.nextWatchID
            s.nextWatchID += 1
            s.watchers[id] = Watcher(kind: r.kind, namespace: r.namespace, labels: l, fields: f, bookmarks: bookmarks, continuation: cont,
                                     transform: transform)
            return id
        }
        guard let id else { return Self.status(400, reason: "BadRequest", message: "invalid resourceVersion \(rvText)") }
        return .watch(id: id, stream: stream)
    }

    /// The line a watch on `kind` sees for a history entry, taking selectors into account: an object moving into
    /// the selection is ADDED, one moving out is DELETED. Objects are shown (and selected) as `kind`'s API shows them.
    static func chunk(for e: HistoryEntry, kind: EmulatedKind, ns: String?, _ l: LabelSelectorQuery?, _ f: FieldSelectorQuery?,
                      _ t: WatchTransform? = nil) -> WatchChunk? {
        let object = kind.view(e.object)
        let now = matches(object, ns: ns, l, f)
        let before = e.old.map { matches(kind.view($0), ns: ns, l, f) } ?? false
        switch e.type {
        case "MODIFIED":
            if now && before { return eventLine("MODIFIED", object, t) }
            if now { return eventLine("ADDED", object, t) }
            if before { return eventLine("DELETED", object, t) }
            return nil
        default:
            return now ? eventLine(e.type, object, t) : nil
        }
    }

    /// Sends a BOOKMARK at the current resourceVersion to one watch (when it asked for bookmarks).
    func bookmark(_ id: Int) {
        state.withLock { s in
            guard let w = s.watchers[id], w.bookmarks else { return }
            w.continuation.yield(Self.eventLine("BOOKMARK", .object([
                "kind": .string(w.kind.kind), "apiVersion": .string(w.kind.apiVersion),
                "metadata": .object(["resourceVersion": .string(String(s.rv))]),
            ]), w.transform))
        }
    }

    func endWatch(_ id: Int, drop: Bool) {
        let w = state.withLock { $0.watchers.removeValue(forKey: id) }
        if drop { w?.continuation.yield(.drop) }
        w?.continuation.finish()
    }

    func dropAllWatches() {
        let all = state.withLock { s -> [Watcher] in
            defer { s.watchers.removeAll() }
            return Array(s.watchers.values)
        }
        for w in all {
            w.continuation.yield(.drop)
            w.continuation.finish()
        }
    }

    func compact() {
        state.withLock { s in
            s.compactedThrough = s.rv
            s.history.removeAll()
        }
    }

    // MARK: Writes

    /// Records a stored change: bumps nothing (the caller set rv), appends history, feeds watches (of every API
    /// serving the kind's store). `object` and `old` are in stored form. Lock held.
    static func record(_ s: inout State, kind: EmulatedKind, type: String, object: JSONValue, old: JSONValue?) {
        let e = HistoryEntry(rv: s.rv, storageKey: kind.storageKey, type: type, object: object, old: old)
        s.history.append(e)
        if s.history.count > s.historyLimit + s.historyLimit / 4 {
            let drop = s.history.count - s.historyLimit
            s.compactedThrough = s.history[drop - 1].rv
            s.history.removeFirst(drop)
        }
        var behind: [Int] = []
        for (id, w) in s.watchers where w.kind.storageKey == kind.storageKey {
            if let c = chunk(for: e, kind: w.kind, ns: w.namespace, w.labels, w.fields, w.transform),
               case .dropped = w.continuation.yield(c) {
                behind.append(id)
            }
        }
        // What it has buffered is still delivered; then its watch ends. Its client resumes from the last version it
        // saw if the history still holds what followed, else gets 410 and lists.
        for id in behind { s.watchers.removeValue(forKey: id)?.continuation.finish() }
    }

    static func parseBody(_ req: EmulatorRequest, allowYAML: Bool = false) -> JSONValue? {
        if let v = try? JSONValue.parse(req.body) { return v }
        if allowYAML, let text = String(data: req.body, encoding: .utf8), let v = try? JSONValue.parseYAML(text) { return v }
        return nil
    }

    /// A body in a media type the emulator does not decode (protobuf, CBOR): 415 like a server without that codec,
    /// which makes client-go fall back to JSON. nil when the type is JSON or YAML (or absent).
    static func unsupportedBody(_ req: EmulatorRequest) -> EmulatorResponse? {
        guard let type = req.headers["content-type"]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased(),
              !type.isEmpty, type != "application/json", type != "application/yaml", type != "*/*" else { return nil }
        return status(415, reason: "UnsupportedMediaType",
                      message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
    }

    func create(_ r: Route, _ req: EmulatorRequest) -> EmulatorResponse {
        if let unsupported = Self.unsupportedBody(req) { return unsupported }
        guard var obj = Self.parseBody(req), obj.objectValue != nil else {
            return Self.status(400, reason: "BadRequest", message: "the body of the request was in an unknown format")
        }
        if let bad = checkTypeMeta(r.kind, obj) { return bad }
        var meta = obj["metadata"]?.objectValue ?? [:]
        if let bodyNS = meta["namespace"]?.stringValue, let ns = r.namespace, bodyNS != ns {
            return Self.status(400, reason: "BadRequest", message: "the namespace of the provided object does not match the namespace sent on the request")
        }
        if meta["name"]?.stringValue?.isEmpty ?? true, let g = meta["generateName"]?.stringValue {
            let chars = Array("bcdfghjklmnpqrstvwxz2456789")
            meta["name"] = .string(g + String((0..<5).map { _ in chars.randomElement()! }))
        }
        guard let name = meta["name"]?.stringValue, !name.isEmpty else {
            return Self.invalid(r.kind, "", [.required("metadata.name", "name or generateName is required")])
        }
        if r.kind.namespaced { meta["namespace"] = .string(r.namespace ?? "") } else { meta.removeValue(forKey: "namespace") }
        if meta["resourceVersion"] != nil {
            return Self.invalid(r.kind, name, [.forbidden("metadata.resourceVersion", "must be empty on create")])
                .withStatusOverride(409, reason: "Conflict")
        }
        obj["metadata"] = .object(meta)
        if r.kind.hasStatus && r.kind.crd != nil { obj["status"] = nil }
        // The namespace registry starts every namespace Active (what `kubectl get ns` shows as STATUS).
        if r.kind.group.isEmpty && r.kind.kind == "Namespace" { obj["status"] = .object(["phase": "Active"]) }
        return commit(r, name: name, new: obj, old: nil, req: req, subresource: nil)
    }

    func update(_ r: Route, _ name: String, _ req: EmulatorRequest) -> EmulatorResponse {
        if let unsupported = Self.unsupportedBody(req) { return unsupported }
        guard let obj = Self.parseBody(req), obj.objectValue != nil else {
            return Self.status(400, reason: "BadRequest", message: "the body of the request was in an unknown format")
        }
        if let bad = checkTypeMeta(r.kind, obj) { return bad }
        let bodyName = obj["metadata"]?["name"]?.stringValue
        guard bodyName == name else {
            return Self.status(400, reason: "BadRequest", message: "the name of the object (\(bodyName ?? "")) does not match the name on the URL (\(name))")
        }
        let rv = obj["metadata"]?["resourceVersion"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        // Events allow unconditional updates (no resourceVersion) and create on update, as their registry strategy says.
        if rv == nil && !r.kind.isEvent {
            return Self.invalid(r.kind, name, [.invalid("metadata.resourceVersion", "0x0", "must be specified for an update")])
        }
        guard let old = current(r, name) else {
            guard r.kind.isEvent, r.subresource == nil else { return Self.notFound(r.kind, name) }
            var created = obj
            created["metadata"]?["namespace"] = .string(r.namespace ?? "")
            created["metadata"]?["resourceVersion"] = nil
            return commit(r, name: name, new: created, old: nil, req: req, subresource: nil)
        }
        return commit(r, name: name, new: obj, old: old, req: req, subresource: r.subresource, expectedRV: rv)
    }

    /// Patches are applied to the latest object; when another write lands between read and write the server
    /// retries on the new version (as kube-apiserver's patcher does) instead of failing the patch.
    func patch(_ r: Route, _ name: String, _ req: EmulatorRequest) -> EmulatorResponse {
        var response = patchOnce(r, name, req)
        for _ in 0..<5 {
            guard case .json(409, let body, _) = response, body["details"]?["causes"] == nil,
                  body["message"]?.stringValue?.contains("has been modified") == true,
                  Self.parseBody(req)?["metadata"]?["resourceVersion"] == nil else { break }
            response = patchOnce(r, name, req)
        }
        return response
    }

    func patchOnce(_ r: Route, _ name: String, _ req: EmulatorRequest) -> EmulatorResponse {
        let ct = (req.headers["content-type"] ?? "").split(separator: ";").first.map(String.init) ?? ""
        let old = current(r, name)
        switch ct {
        case "application/merge-patch+json":
            guard let p = Self.parseBody(req), p.objectValue != nil else {
                return Self.status(400, reason: "BadRequest", message: "invalid JSON merge patch")
            }
            guard let old else { return Self.notFound(r.kind, name) }
            let rv = p["metadata"]?["resourceVersion"]?.stringValue
            return commit(r, name: name, new: old.mergePatched(with: p), old: old, req: req, subresource: r.subresource, expectedRV: rv)
        case "application/apply-patch+yaml":
            return apply(r, name, req, old: old)
        case "application/strategic-merge-patch+json" where r.kind.crd == nil:
            guard let p = Self.parseBody(req), p.objectValue != nil else {
                return Self.status(400, reason: "BadRequest", message: "invalid strategic merge patch")
            }
            guard let old else { return Self.notFound(r.kind, name) }
            return commit(r, name: name, new: old.strategicMergePatched(with: p), old: old, req: req,
                          subresource: r.subresource, expectedRV: p["metadata"]?["resourceVersion"]?.stringValue)
        default:
            return Self.status(415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
        }
    }

    func delete(_ r: Route, _ name: String, _ req: EmulatorRequest) -> EmulatorResponse {
        let dry = req.query["dryRun"] == "All"
        return state.withLock { s -> EmulatorResponse in
            let k = Self.key(r.namespace, name)
            guard var obj = s.objects[r.kind.storageKey]?[k] else { return Self.notFound(r.kind, name) }
            // DeleteOptions.preconditions, checked as kube-apiserver checks them (uid first, then resourceVersion).
            let preconditions = (try? JSONValue.parse(req.body))?["preconditions"]
            for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
                guard let want = preconditions?[field]?.stringValue else { continue }
                let have = obj["metadata"]?[field]?.stringValue ?? ""
                if want != have {
                    return Self.status(409, reason: "Conflict", message: "Operation cannot be fulfilled on \(r.kind.qualifiedResource) \"\(name)\": Precondition failed: \(label) in precondition: \(want), \(label) in object meta: \(have)")
                }
            }
            if dry { return .json(status: 200, body: r.kind.view(obj), headers: []) }
            // Graceful deletion, as kube-apiserver does it: a pod bound to a node is only marked (deletionTimestamp,
            // a MODIFIED event) and stays, terminating, until its kubelet deletes it with a grace period of 0.
            if r.kind.kind == "Pod" && r.kind.group.isEmpty, let node = obj["spec"]?["nodeName"]?.stringValue, !node.isEmpty {
                let requested = req.query["gracePeriodSeconds"].flatMap { Int64($0) }
                    ?? (try? JSONValue.parse(req.body))?["gracePeriodSeconds"]?.intValue
                let grace = requested ?? obj["spec"]?["terminationGracePeriodSeconds"]?.intValue ?? 30
                if grace > 0 {
                    if obj["metadata"]?["deletionTimestamp"] == nil {
                        let until = Date().addingTimeInterval(TimeInterval(min(grace, 86_400 * 365)))
                        obj["metadata"]?["deletionTimestamp"] = .string(until.formatted(.iso8601))
                        obj["metadata"]?["deletionGracePeriodSeconds"] = .int(grace)
                        s.rv += 1
                        obj["metadata"]?["resourceVersion"] = .string(String(s.rv))
                        s.objects[r.kind.storageKey]?[k] = obj
                        Self.record(&s, kind: r.kind, type: "MODIFIED", object: obj, old: nil)
                    }
                    return .json(status: 200, body: r.kind.view(obj), headers: [])
                }
            }
            s.objects[r.kind.storageKey]?[k] = nil
            s.rv += 1
            obj["metadata"]?["resourceVersion"] = .string(String(s.rv))
            Self.record(&s, kind: r.kind, type: "DELETED", object: obj, old: nil)
            if r.kind.plural == "namespaces" && r.kind.group.isEmpty {
                // Namespace deletion takes its contents with it (the real server finalizes asynchronously).
                // Stores are keyed by storageKey, which is always the typeKey of one of the kinds they hold.
                for (storageKey, objs) in s.objects {
                    guard let kind = s.kinds[storageKey], kind.namespaced else { continue }
                    for (ok, var o) in objs where ok.hasPrefix(name + "/") {
                        s.objects[storageKey]?[ok] = nil
                        s.rv += 1
                        o["metadata"]?["resourceVersion"] = .string(String(s.rv))
                        Self.record(&s, kind: kind, type: "DELETED", object: o, old: nil)
                    }
                }
            }
            return .json(status: 200, body: r.kind.view(obj), headers: [])
        }
    }

    func checkTypeMeta(_ k: EmulatedKind, _ obj: JSONValue) -> EmulatorResponse? {
        let av = obj["apiVersion"]?.stringValue, kind = obj["kind"]?.stringValue
        if av == nil || kind == nil {
            return Self.status(400, reason: "BadRequest", message: "Object 'Kind' is missing in '\(String(decoding: obj.jsonData().prefix(200), as: UTF8.self))'")
        }
        if av != k.apiVersion || kind != k.kind {
            return Self.status(400, reason: "BadRequest", message: "the API version in the data (\(av!)) does not match the expected API version (\(k.apiVersion)) or kind \(kind!) is not \(k.kind)")
        }
        return nil
    }

    /// The fields that make up the "spec" for generation purposes: everything but metadata and status.
    static func specPart(_ o: JSONValue, hasStatus: Bool) -> JSONValue {
        guard case .object(var d) = o else { return o }
        d.removeValue(forKey: "metadata")
        if hasStatus { d.removeValue(forKey: "status") }
        d.removeValue(forKey: "apiVersion"); d.removeValue(forKey: "kind")
        return .object(d)
    }

    /// The shared write path: subresource rules, pruning/defaulting/validation, metadata bookkeeping, optimistic
    /// concurrency, storage and notification.
    func commit(_ r: Route, name: String, new input: JSONValue, old: JSONValue?, req: EmulatorRequest,
                subresource: String?, expectedRV: String? = nil, managedFields: JSONValue? = nil) -> EmulatorResponse {
        var new = input
        var warnings: [(String, String)] = []
        let kind = r.kind
        if let old {
            if subresource == "status" {
                // Only status changes through /status: everything else comes from the stored object.
                var merged = old
                merged["status"] = new["status"]
                if let rv = new["metadata"]?["resourceVersion"] { merged["metadata"]?["resourceVersion"] = rv }
                new = merged
            } else if kind.hasStatus {
                new["status"] = old["status"]
            }
            // System-owned metadata is not the writer's to change.
            for f in ["uid", "creationTimestamp", "generation", "namespace", "name", "managedFields"] {
                new["metadata"]?[f] = old["metadata"]?[f]
            }
        }
        if let managedFields { new["metadata"]?["managedFields"] = managedFields }
        if let crd = kind.crd {
            let pruned = SchemaDefaulter.prune(&new, crd: crd, version: kind.version)
            if !pruned.isEmpty {
                if req.query["fieldValidation"] == "Strict" {
                    return Self.status(400, reason: "BadRequest",
                                       message: ".\(pruned.joined(separator: ", .")): strict decoding error: unknown field \"\(pruned.joined(separator: "\", \""))\"")
                }
                warnings += pruned.map { ("Warning", "299 - \"unknown field \\\"\($0)\\\"\"") }
            }
            SchemaDefaulter.applyDefaults(&new, crd: crd, version: kind.version)
            let errors = SchemaValidator.validate(new, against: crd, version: kind.version).filter { $0.level == .error }
            if !errors.isEmpty { return Self.invalid(kind, name, errors) }
        }
        // What goes into the store: the body itself, except for kinds stored in another API's form (Events, whose
        // body is decoded as the server's Go types would decode it, then validated in the stored terms).
        var storedNew = new
        var metaErrors = Self.validateMeta(kind, new, isNamespace: kind.plural == "namespaces" && kind.group.isEmpty)
        if kind.isEvent {
            let decoded: (stored: JSONValue, fields: EventStorage.Fields, unknown: [String])
            let cannot = "\(kind.kind) in version \"\(kind.version)\" cannot be handled as a \(kind.kind): "
            do { decoded = try EventStorage.toStorage(new, as: kind) } catch {
                return Self.status(400, reason: "BadRequest", message: cannot + error.message)
            }
            if !decoded.unknown.isEmpty {
                switch req.query["fieldValidation"] {
                case "Strict":
                    return Self.status(400, reason: "BadRequest",
                                       message: cannot + "strict decoding error: " + decoded.unknown.map { "unknown field \"\($0)\"" }.joined(separator: ", "))
                case "Ignore": break
                default: warnings += decoded.unknown.map { ("Warning", "299 - \"unknown field \\\"\($0)\\\"\"") }
                }
            }
            let oldFields = old.flatMap { try? EventStorage.toStorage($0, as: kind).fields }
            metaErrors += EventValidation.validate(decoded.fields, old: oldFields, namespace: r.namespace ?? "", viaEventsAPI: !kind.group.isEmpty)
            storedNew = decoded.stored
        }
        // A Lease's times are metav1.MicroTime, which the real server decodes only with exactly six fractional digits.
        if kind.kind == "Lease" && kind.group == "coordination.k8s.io" {
            for key in ["acquireTime", "renewTime"] {
                guard let v = new["spec"]?[key], v != .null else { continue }
                guard let text = v.stringValue, KubeTime.parse(text, exactMicroseconds: true) != nil else {
                    let detail = v.stringValue.map { KubeTime.parseError($0, micro: true) }
                        ?? "json: cannot unmarshal \(v.goRendered) into Go struct field LeaseSpec.spec.\(key) of type v1.MicroTime"
                    return Self.status(400, reason: "BadRequest",
                                       message: "Lease in version \"\(kind.version)\" cannot be handled as a Lease: " + detail)
                }
            }
        }
        metaErrors += BuiltinValidation.validate(kind, new, old: old)
        if !metaErrors.isEmpty { return Self.invalid(kind, name, metaErrors) }
        let dry = req.query["dryRun"] == "All"
        return state.withLock { s -> EmulatorResponse in
            let k = Self.key(r.namespace, name)
            let current = s.objects[kind.storageKey]?[k]
            if old == nil {
                if current != nil {
                    return Self.status(409, reason: "AlreadyExists", message: "\(kind.qualifiedResource) \"\(name)\" already exists",
                                       details: ["name": .string(name), "group": .string(kind.group), "kind": .string(kind.plural)])
                }
                if kind.namespaced, let ns = r.namespace, s.objects["/v1/namespaces"]?[ns] == nil {
                    return Self.status(404, reason: "NotFound", message: "namespaces \"\(ns)\" not found",
                                       details: ["name": .string(ns), "kind": "namespaces"])
                }
            } else {
                guard let current else { return Self.notFound(kind, name) }
                let currentRV = current["metadata"]?["resourceVersion"]?.stringValue
                if let expectedRV, expectedRV != currentRV {
                    return Self.status(409, reason: "Conflict",
                                       message: "Operation cannot be fulfilled on \(kind.qualifiedResource) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
                                       details: ["name": .string(name), "group": .string(kind.group), "kind": .string(kind.plural)])
                }
                if kind.view(current) != old {
                    // Changed between our read and this write (a patch raced another writer): retry on the latest.
                    return Self.status(409, reason: "Conflict", message: "Operation cannot be fulfilled on \(kind.qualifiedResource) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again")
                }
            }
            var stored = storedNew
            // Events have no generation: their registry strategy never sets one.
            let generation = !kind.isEvent
            if let old, let current {
                var a = current, b = storedNew
                a["metadata"]?["resourceVersion"] = nil; b["metadata"]?["resourceVersion"] = nil
                if a == b { return .json(status: 200, body: old, headers: warnings) }  // no-op: no new version
                if generation, Self.specPart(old, hasStatus: kind.hasStatus) != Self.specPart(new, hasStatus: kind.hasStatus) {
                    stored["metadata"]?["generation"] = .int((old["metadata"]?["generation"]?.intValue ?? 1) + 1)
                }
            } else {
                stored["metadata"]?["uid"] = .string(UUID().uuidString.lowercased())
                stored["metadata"]?["creationTimestamp"] = .string(Self.timestamp())
                if generation { stored["metadata"]?["generation"] = .int(1) }
            }
            if dry {
                stored["metadata"]?["resourceVersion"] = old?["metadata"]?["resourceVersion"]
                return .json(status: old == nil ? 201 : 200, body: kind.view(stored), headers: warnings)
            }
            s.rv += 1
            stored["metadata"]?["resourceVersion"] = .string(String(s.rv))
            s.objects[kind.storageKey, default: [:]][k] = stored
            Self.record(&s, kind: kind, type: old == nil ? "ADDED" : "MODIFIED", object: stored, old: current)
            return .json(status: old == nil ? 201 : 200, body: kind.view(stored), headers: warnings)
        }
    }

    static func validateMeta(_ kind: EmulatedKind, _ o: JSONValue, isNamespace: Bool) -> [FieldError] {
        var errs: [FieldError] = []
        let name = o["metadata"]?["name"]?.stringValue ?? ""
        if isNamespace || kind.kind == "Namespace" {
            if !Names.isDNS1123Label(name) {
                errs.append(.invalid("metadata.name", FieldError.quoted(name), Names.dns1123LabelMessage))
            }
        } else if !Names.isDNS1123Subdomain(name) {
            errs.append(.invalid("metadata.name", FieldError.quoted(name), Names.dns1123SubdomainMessage))
        }
        for (k, v) in o["metadata"]?["labels"]?.objectValue ?? [:] {
            if !LabelSelectorQuery.validKey(k) {
                errs.append(.invalid("metadata.labels", FieldError.quoted(k), "name part must consist of alphanumeric characters, '-', '_' or '.'"))
            }
            guard let s = v.stringValue, LabelSelectorQuery.validValue(s) else {
                errs.append(.invalid("metadata.labels", v.goRendered, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"))
                continue
            }
        }
        return errs
    }
}

extension EmulatorResponse {
    func withStatusOverride(_ code: Int, reason: String) -> EmulatorResponse {
        guard case .json(_, var body, let h) = self else { return self }
        body["code"] = .int(Int64(code))
        body["reason"] = .string(reason)
        return .json(status: code, body: body, headers: h)
    }
}

/// DNS-1123 name checks, worded like the API server.
enum Names {
    static let dns1123SubdomainMessage = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    static let dns1123LabelMessage = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"

    static func isDNS1123Label(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 63 else { return false }
        let ok = s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        return ok && s.first != "-" && s.last != "-"
    }
    static func isDNS1123Subdomain(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNS1123Label(String($0)) }
    }
}
