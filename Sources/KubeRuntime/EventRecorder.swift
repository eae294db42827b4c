import Foundation
import KubeClient
import Logging
import Synchronization

/// Tuning of the event recorder.
public struct EventRecorderConfig: Sendable {
    /// Events waiting to be sent beyond this are dropped and counted (`shedCount`).
    public var queueCapacity: Int
    /// After the second occurrence, a series is written at most this often (client-go: 30 minutes).
    public var seriesUpdateInterval: Duration
    /// Distinct series remembered; the least recently used are forgotten beyond this.
    public var cacheCapacity: Int
    /// A series with nothing left to write and no new occurrence for this long is forgotten (a later occurrence
    /// starts a new Event): most notes carry figures that change, so most series never repeat, and keeping each
    /// until the capacity pushed it out made the cache a slow, steady growth of the agent's memory.
    public var seriesIdleExpiry: Duration
    public init(queueCapacity: Int = 1000, seriesUpdateInterval: Duration = .seconds(30 * 60), cacheCapacity: Int = 1024,
                seriesIdleExpiry: Duration = .seconds(60 * 60)) {
        self.queueCapacity = queueCapacity; self.seriesUpdateInterval = seriesUpdateInterval; self.cacheCapacity = cacheCapacity
        self.seriesIdleExpiry = seriesIdleExpiry
    }
}

public enum EventType: String, Sendable {
    case normal = "Normal"
    case warning = "Warning"
}

/// Records `events.k8s.io/v1` Events the way client-go's events broadcaster does: the first occurrence creates an
/// Event, the second identical one (same regarding object, reason, action, type, note, reporter) sets
/// `series.count = 2`, later ones only bump a local count that is written at most every `seriesUpdateInterval`
/// (and by `run`'s heartbeat). `record` never blocks: it queues, and sheds beyond `queueCapacity`. Fields are cut
/// to the API's limits (reason, action ≤ 128 bytes; note ≤ 1024 bytes). 429s are retried after `Retry-After`.
public final class EventRecorder: Sendable {
    public let client: KubeClient
    public let reportingController: String
    public let reportingInstance: String
    public let config: EventRecorderConfig
    let logger: Logger

    struct Pending: Sendable {
        var regarding: ObjectReference
        var related: ObjectReference?
        var type: EventType
        var reason: String
        var action: String
        var note: String
        var at: Date
        /// Set on the Event when it is created (a series keeps the first occurrence's).
        var annotations: [String: String] = [:]
    }
    struct SeriesKey: Hashable {
        var regarding: ObjectReference
        var reason: String, action: String, type: String, note: String
    }
    struct Series {
        var name: String
        var namespace: String
        var count: Int32
        var sentCount: Int32
        var lastSent: ContinuousClock.Instant
        var lastObserved: Date
        var touched: UInt64
    }
    struct State {
        var queue: [Pending] = []
        var shed = 0
        var failed = 0
        var cache: [SeriesKey: Series] = [:]
        var tick: UInt64 = 0
        /// The last name suffix used: each new Event's is above it (``nameSuffix(_:)``).
        var lastSuffix: UInt64 = 0
    }
    let state = Mutex(State())
    let signal: AsyncStream<Void>.Continuation
    let signals: AsyncStream<Void>

    public init(client: KubeClient, reportingController: String, reportingInstance: String,
                config: EventRecorderConfig = .init(), logger: Logger = Logger(label: "tapio.events")) {
        self.client = client
        self.reportingController = Self.truncate(reportingController, 128)
        self.reportingInstance = Self.truncate(reportingInstance, 128)
        self.config = config
        self.logger = logger
        (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Events dropped because the queue was full.
    public var shedCount: Int { state.withLock { $0.shed } }
    /// Events waiting to be sent (≤ `queueCapacity`) and series remembered (≤ `cacheCapacity`).
    public var entries: (queued: Int, series: Int) { state.withLock { ($0.queue.count, $0.cache.count) } }
    /// Events that could not be written.
    public var failedCount: Int { state.withLock { $0.failed } }

    /// Queues an event about `regarding`. Never blocks. `annotations` go on the Event object when it is created
    /// (for alerting tools that read structured data next to the note).
    public func record(regarding: ObjectReference, related: ObjectReference? = nil, type: EventType, reason: String,
                       action: String, note: String, annotations: [String: String] = [:]) {
        let p = Pending(regarding: regarding, related: related, type: type, reason: Self.truncate(reason, 128),
                        action: Self.truncate(action, 128), note: Self.truncate(note, 1024), at: Date(),
                        annotations: annotations)
        let queued = state.withLock { s -> Bool in
            guard s.queue.count < config.queueCapacity else { s.shed += 1; return false }
            s.queue.append(p)
            return true
        }
        if queued { signal.yield() }
    }

    /// Sends queued events until cancelled, and writes pending series counts once their interval has passed.
    public func run() async {
        let heartbeat = min(config.seriesUpdateInterval, .seconds(60))
        await withTaskGroup(of: Void.self) { g in
            g.addTask { [signal] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeat)
                    signal.yield()
                }
            }
            for await _ in signals {
                await drain()
                if Task.isCancelled { break }
            }
            g.cancelAll()
        }
    }

    /// Sends everything queued now, then pending series updates that are due. `run` calls it; tests may call it
    /// directly instead of running `run`.
    public func drain() async {
        while true {
            let batch = state.withLock { s -> [Pending] in
                defer { s.queue.removeAll() }
                return s.queue
            }
            if batch.isEmpty { break }
            for p in batch { await send(p) }
        }
        await flushDueSeries()
    }

    static func truncate(_ s: String, _ maxBytes: Int) -> String {
        guard s.utf8.count > maxBytes else { return s }
        var out = ""
        var n = 0
        for ch in s {
            let l = String(ch).utf8.count
            if n + l > maxBytes { break }
            out.append(ch)
            n += l
        }
        return out
    }

    func send(_ p: Pending) async {
        let key = SeriesKey(regarding: p.regarding, reason: p.reason, action: p.action, type: p.type.rawValue, note: p.note)
        let clock = ContinuousClock()
        enum Step { case create, patch(Series), nothing }
        let step = state.withLock { s -> Step in
            s.tick += 1
            guard var series = s.cache[key] else { return .create }
            // Saturates: the API field is an int32, and one more than its largest would trap.
            series.count = series.count == .max ? .max : series.count + 1
            series.lastObserved = p.at
            series.touched = s.tick
            s.cache[key] = series
            if series.count == 2 || clock.now - series.lastSent >= config.seriesUpdateInterval { return .patch(series) }
            return .nothing
        }
        switch step {
        case .nothing: return
        case .create: await create(p, key: key)
        case .patch(let series): await patchSeries(series, key: key, p: p)
        }
    }

    /// A name suffix for an Event observed at `at`: its time in nanoseconds as client-go writes it, but above every
    /// suffix this recorder used before. The time alone repeats: a `Date` holds about a quarter of a microsecond (238 ns
    /// steps here; in a tight loop 83 % of readings repeated one), so events about one object recorded in one burst —
    /// an OOM kill, the prediction it settles and a crash loop — could get one name, and all but the first were
    /// refused as AlreadyExists and lost (2–6 of a burst of 200; the series-cache test lost some now and then).
    func uniqueSuffix(_ at: Date) -> UInt64 {
        state.withLock { s in
            let n = Swift.max(Self.nameSuffix(at), s.lastSuffix &+ 1)
            s.lastSuffix = n
            return n
        }
    }

    func create(_ p: Pending, key: SeriesKey) async {
        await create(p, key: key, suffix: uniqueSuffix(p.at), retry: true)
    }

    func create(_ p: Pending, key: SeriesKey, suffix: UInt64, retry: Bool) async {
        var ev = Event(metadata: ObjectMeta(
            name: Self.eventName(regarding: p.regarding.name, suffix: suffix),
            namespace: (p.regarding.namespace?.isEmpty ?? true) ? "default" : p.regarding.namespace,
            annotations: p.annotations.isEmpty ? nil : p.annotations))
        ev.eventTime = MicroTime.string(p.at)
        ev.reportingController = reportingController
        ev.reportingInstance = reportingInstance
        ev.action = p.action
        ev.reason = p.reason
        ev.regarding = p.regarding
        ev.related = p.related
        ev.note = p.note
        ev.type = p.type.rawValue
        do {
            let toCreate = ev
            let created = try await withRetryAfter { try await self.client.create(toCreate) }
            state.withLock { s in
                s.cache[key] = Series(name: created.metadata.name ?? "", namespace: created.metadata.namespace ?? "default",
                                      count: 1, sentCount: 1, lastSent: ContinuousClock().now, lastObserved: p.at, touched: s.tick)
                evictIfNeeded(&s)
            }
        } catch KubeError.conflict(let reason, _) where reason == "AlreadyExists" && retry {
            // Another recorder (another node's agent) named an Event about the same object in the same instant.
            await create(p, key: key, suffix: uniqueSuffix(Date()), retry: false)
        } catch {
            state.withLock { $0.failed += 1 }
            logger.debug("event \(p.reason) for \(p.regarding.name ?? ""): \(error)")
        }
    }

    func patchSeries(_ series: Series, key: SeriesKey, p: Pending) async {
        let patch = "{\"series\":{\"count\":\(series.count),\"lastObservedTime\":\"\(MicroTime.string(series.lastObserved))\"}}"
        do {
            _ = try await withRetryAfter {
                try await self.client.mergePatch(Event.self, namespace: series.namespace, name: series.name, patch: Data(patch.utf8))
            }
            state.withLock { s in
                s.cache[key]?.sentCount = series.count
                s.cache[key]?.lastSent = ContinuousClock().now
            }
        } catch KubeError.notFound {
            // Someone deleted the Event (or it expired): start a new one.
            state.withLock { _ = $0.cache.removeValue(forKey: key) }
            await create(p, key: key)
        } catch {
            state.withLock { $0.failed += 1 }
            logger.debug("event series \(series.name): \(error)")
        }
    }

    /// Series kept for later occurrences (for tests and metrics).
    public var cachedSeries: Int { state.withLock { $0.cache.count } }

    func flushDueSeries() async {
        let clock = ContinuousClock()
        let expiry = config.seriesIdleExpiry
        state.withLock { s in
            s.cache = s.cache.filter { $0.value.count > $0.value.sentCount || clock.now - $0.value.lastSent < expiry }
        }
        let due = state.withLock { s in
            s.cache.filter { $0.value.count > $0.value.sentCount && clock.now - $0.value.lastSent >= config.seriesUpdateInterval }
        }
        for (key, series) in due {
            await patchSeries(series, key: key, p: Pending(regarding: key.regarding, related: nil, type: EventType(rawValue: key.type) ?? .normal,
                                                           reason: key.reason, action: key.action, note: key.note, at: series.lastObserved))
        }
    }

    func evictIfNeeded(_ s: inout State) {
        guard s.cache.count > config.cacheCapacity else { return }
        // Down to seven eighths at once, so the sort is paid once per capacity/8 new series, not on each.
        let keep = config.cacheCapacity - config.cacheCapacity / 8
        let oldest = s.cache.sorted { $0.value.touched < $1.value.touched }.prefix(s.cache.count - keep)
        for (k, _) in oldest { s.cache[k] = nil }
    }

    /// An Event's name, `<object>.<suffix in hex>` as client-go writes it, fitted into the 253 characters a name may
    /// have: client-go's is refused (422, the Event lost) for an object whose name is longer than about 236. The
    /// object's name is cut, and then any '.' or '-' it ends with, so the whole stays a DNS subdomain.
    static func eventName(regarding name: String?, suffix: UInt64) -> String {
        let hex = String(suffix, radix: 16)
        var prefix = name.flatMap { $0.isEmpty ? nil : $0 } ?? "event"
        let room = 253 - 1 - hex.utf8.count
        if prefix.utf8.count > room {
            prefix = truncate(prefix, room)
            while let last = prefix.last, last == "." || last == "-" { prefix.removeLast() }
            if prefix.isEmpty { prefix = "event" }
        }
        return "\(prefix).\(hex)"
    }

    /// client-go's event name suffix: the time in nanoseconds (a clock before 1970 or past 2554 is clamped, not a trap).
    static func nameSuffix(_ at: Date) -> UInt64 {
        let n = at.timeIntervalSince1970 * 1e9
        guard n.isFinite, n > 0 else { return 0 }
        return n >= 1.8e19 ? UInt64.max : UInt64(n)
    }

    /// The client already honours Retry-After within its retry budget; when that is exhausted, wait once more.
    func withRetryAfter<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        do { return try await body() } catch KubeError.tooManyRequests(let ra, _) {
            // Retry-After is clamped to an hour when parsed; wait at most a minute here.
            let wait = min(ra ?? .seconds(1), .seconds(60))
            client.logLimiter.log(logger, .info, key: "events 429", "the API server throttles Events; retrying once in \(KubeClient.describe(wait))")
            try await Task.sleep(for: wait)
            return try await body()
        }
    }
}
