import Foundation
import KubeClient
import Logging

/// What a watcher reports. A (re)list is framed by `initStart` … `initApply`* … `initDone`: after `initDone` the
/// objects seen since `initStart` are the complete current set (anything not among them is gone).
public enum WatcherEvent<K: KubeResource>: Sendable {
    case initStart
    case initApply(K)
    case initDone
    /// An object was added or changed.
    case apply(K)
    /// An object was deleted (its last state).
    case delete(K)
}

/// Tuning of a watcher.
public struct WatcherConfig: Sendable {
    public var labelSelector: String?
    public var fieldSelector: String?
    /// List page size.
    public var pageSize: Int
    /// Server-side timeout of each watch request (the watcher resumes after it): each request asks for between this
    /// and twice this (``spreadWatchTimeout()``).
    public var watchTimeoutSeconds: Int
    /// Waits after failures — of a list, of opening a watch, of a watch stream (an `ERROR` event, 410 included, a cut
    /// connection, a line past the limit): client-go's reflector schedule by default (`BackoffSchedule.reflector`).
    public var backoff: BackoffSchedule
    /// A watch that the server ends cleanly sooner than this, with nothing received, counts as a failure (client-go's
    /// "very short watch"): a server that closes every watch at once must not be re-watched in a tight loop.
    public var minimumWatchDuration: Duration
    /// What one watch request asks for: between `watchTimeoutSeconds` and twice that, at random (client-go's spread),
    /// so that thousands of agents started together do not all re-watch in the same second every few minutes.
    public func spreadWatchTimeout() -> Int {
        let t = max(1, watchTimeoutSeconds)
        let (twice, overflow) = t.multipliedReportingOverflow(by: 2)
        return overflow ? t : Int.random(in: t..<twice)
    }

    public var initialBackoff: Duration {
        get { backoff.initial }
        set { backoff.initial = newValue }
    }
    public var maxBackoff: Duration {
        get { backoff.cap }
        set { backoff.cap = newValue }
    }
    public init(labelSelector: String? = nil, fieldSelector: String? = nil, pageSize: Int = 500, watchTimeoutSeconds: Int = 290,
                initialBackoff: Duration = BackoffSchedule.reflector.initial, maxBackoff: Duration = BackoffSchedule.reflector.cap,
                resetBackoffAfter: Duration = BackoffSchedule.reflector.resetAfter, minimumWatchDuration: Duration = .seconds(1)) {
        self.labelSelector = labelSelector; self.fieldSelector = fieldSelector; self.pageSize = pageSize
        self.watchTimeoutSeconds = watchTimeoutSeconds
        backoff = BackoffSchedule(initial: initialBackoff, cap: maxBackoff, resetAfter: resetBackoffAfter)
        self.minimumWatchDuration = minimumWatchDuration
    }
}

/// List-then-watch as one `AsyncSequence` of `WatcherEvent`s. Dropped connections resume from the last seen
/// resourceVersion (bookmarks keep it fresh), a 410 `Gone` relists, other failures back off and retry — all inside;
/// the sequence only ends when the task is cancelled. Repeated failures of any kind wait longer each time
/// (`WatcherConfig.backoff`), are logged at info (the first) or warning (repeats), at most one line per watch and
/// kind of failure per 30 s, and are counted by the client's observer. Usage:
///
///     for try await event in Watcher(client: client, Pod.self, namespace: "default") { … }
public struct Watcher<K: KubeResource>: AsyncSequence, Sendable {
    public typealias Element = WatcherEvent<K>
    let client: KubeClient
    let namespace: String?
    let config: WatcherConfig
    let logger: Logger

    /// `namespace` nil on a namespaced kind watches all namespaces.
    public init(client: KubeClient, _ type: K.Type, namespace: String? = nil, config: WatcherConfig = .init(),
                logger: Logger = Logger(label: "tapio.watcher")) {
        self.client = client; self.namespace = namespace; self.config = config; self.logger = logger
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(client: client, namespace: namespace, config: config, logger: logger)
    }

    /// The state machine behind the sequence (kube-rs's watcher `step`, in Swift).
    public struct Iterator: AsyncIteratorProtocol {
        enum State {
            case empty
            /// `listed` objects over `pages` pages so far in this list (bounded by the client's `ResponseLimits`);
            /// `pending[next...]` are the current page's objects not handed out yet. An index, not `removeFirst`: the
            /// array is also held by `state` while it is read, so each removal would copy the rest of the page — O(n²).
            case listing(pending: [K], next: Int, continueToken: String?, resourceVersion: String, listed: Int, pages: Int)
            case listDone(resourceVersion: String)
            case watching(resourceVersion: String, stream: WatchStream<K>.AsyncIterator, opened: ContinuousClock.Instant,
                          received: Bool)
            case resume(resourceVersion: String)
        }
        let client: KubeClient
        let namespace: String?
        let config: WatcherConfig
        let logger: Logger
        var state: State = .empty
        var backoff: Backoff

        init(client: KubeClient, namespace: String?, config: WatcherConfig, logger: Logger) {
            self.client = client; self.namespace = namespace; self.config = config; self.logger = logger
            backoff = Backoff(config.backoff)
        }

        /// `pods`, `pods spec.nodeName=n1`: the watch in log lines.
        var what: String {
            ([K.plural] + [config.labelSelector, config.fieldSelector].compactMap { $0.flatMap { $0.isEmpty ? nil : $0 } })
                .joined(separator: " ")
        }

        public mutating func next() async throws -> WatcherEvent<K>? {
            while true {
                try Task.checkCancellation()
                switch state {
                case .empty:
                    state = .listing(pending: [], next: 0, continueToken: nil, resourceVersion: "", listed: 0, pages: 0)
                    return .initStart
                case .listing(let pending, let next, let token, let rv, let listed, let pages):
                    if next < pending.count {
                        state = .listing(pending: pending, next: next + 1, continueToken: token, resourceVersion: rv, listed: listed,
                                         pages: pages)
                        return .initApply(pending[next])
                    }
                    if !rv.isEmpty && token == nil {
                        state = .listDone(resourceVersion: rv)
                        continue
                    }
                    do {
                        // No retries inside: this loop's own backoff decides when to ask again, as client-go's
                        // reflector does (retries at both levels would multiply the requests a failing server gets).
                        let page = try await client.list(K.self, namespace: namespace, options: ListOptions(
                            labelSelector: config.labelSelector, fieldSelector: config.fieldSelector, limit: config.pageSize,
                            continueToken: token), retryPolicy: RetryPolicy.none)
                        let next = page.metadata.continue.flatMap { $0.isEmpty ? nil : $0 }
                        // A page that answers the token with itself would be asked for forever, and the first list
                        // never end: start over, after the backoff any failed list waits — in a new init frame, so
                        // what the abandoned pages delivered is not taken for complete.
                        if let next, next == token {
                            state = .empty
                            try await pause(after: KubeError.continueRepeated(K.plural), "list")
                            continue
                        }
                        // New tokens for ever would never finish the list either, and the consumers hold what an
                        // unfinished list delivered (a store's buffer, a controller's pending keys) until it does:
                        // past the client's list limits, start over the same way.
                        let (listedNow, pagesNow) = (listed &+ page.items.count, pages &+ 1)
                        if next != nil, let overrun = client.limits.listOverrun(K.plural, objects: listedNow, pages: pagesNow) {
                            state = .empty
                            try await pause(after: overrun, "list")
                            continue
                        }
                        // The first page's version is the list's snapshot version.
                        let listRV = rv.isEmpty ? Self.version(page.metadata.resourceVersion, else: "0") : rv
                        state = .listing(pending: page.items, next: 0, continueToken: next, resourceVersion: listRV,
                                         listed: listedNow, pages: pagesNow)
                    } catch let e as KubeError {
                        if case .gone = e {
                            // The continue token expired: start the list over in a new init frame. Kept in the old
                            // one, objects of the pages already delivered that were deleted meanwhile would outlive
                            // `initDone`: their deletion predates the new list, so no watch event removes them.
                            state = .empty
                        }
                        try await pause(after: e, "list")
                    }
                case .listDone(let rv):
                    state = .resume(resourceVersion: rv)
                    return .initDone
                case .resume(let rv):
                    do {
                        let stream = try await client.watch(K.self, namespace: namespace, options: WatchOptions(
                            labelSelector: config.labelSelector, fieldSelector: config.fieldSelector, resourceVersion: rv,
                            allowWatchBookmarks: true, timeoutSeconds: config.spreadWatchTimeout()))
                        state = .watching(resourceVersion: rv, stream: stream.makeAsyncIterator(), opened: .now, received: false)
                    } catch let e as KubeError {
                        if case .gone = e {
                            state = .empty
                            try await pause(after: e, "relist")
                        } else {
                            try await pause(after: e, "watch")
                        }
                    }
                case .watching(let rv, var stream, let opened, let received):
                    do {
                        guard let event = try await stream.next() else {
                            // The server ended the watch (its timeout): resume where we were — unless it ended at
                            // once with nothing in it, which a healthy server does not do.
                            state = .resume(resourceVersion: rv)
                            let lasted = ContinuousClock.now - opened
                            if !received && lasted < config.minimumWatchDuration {
                                client.record("WATCH", .streamFailed)
                                try await pause(after: .transport("the server ended the watch after \(KubeClient.describe(lasted)) without an event"),
                                                "watch")
                            }
                            continue
                        }
                        switch event {
                        case .added(let o), .modified(let o):
                            state = .watching(resourceVersion: Self.version(o.metadata.resourceVersion, else: rv), stream: stream,
                                              opened: opened, received: true)
                            return .apply(o)
                        case .deleted(let o):
                            state = .watching(resourceVersion: Self.version(o.metadata.resourceVersion, else: rv), stream: stream,
                                              opened: opened, received: true)
                            return .delete(o)
                        case .undecodable(_, let object):
                            // Counted and logged by the client. Consumers keep the object's last readable state (or
                            // never see it); the next relist leaves it out, so it is then gone for them.
                            state = .watching(resourceVersion: Self.version(object.resourceVersion, else: rv), stream: stream,
                                              opened: opened, received: true)
                        case .bookmark(let newRV):
                            state = .watching(resourceVersion: Self.version(newRV, else: rv), stream: stream, opened: opened,
                                              received: true)
                        case .error(let e):
                            if case .gone = e {
                                state = .empty
                                try await pause(after: e, "relist")
                            } else {
                                state = .resume(resourceVersion: rv)
                                try await pause(after: e, "watch")
                            }
                        }
                    } catch let e as KubeError {
                        // Connection cut mid-stream: resume from the last version we delivered.
                        state = .resume(resourceVersion: rv)
                        try await pause(after: e, "watch")
                    }
                }
            }
        }

        /// The version the server sent, else `last`. An empty one (a broken server or proxy) is no version either: taken
        /// from a list it never ends the list (a list is done once it has a version: it would be asked for again at
        /// once, for ever, without `initDone`), and taken from an event it resumes the next watch from "now", missing
        /// what changed while it was down.
        static func version(_ sent: String?, else last: String) -> String {
            guard let sent, !sent.isEmpty else { return last }
            return sent
        }

        /// Records a failure, says so (rate-limited), and waits as the backoff says.
        mutating func pause(after error: KubeError, _ step: String) async throws {
            var delay = backoff.failure()
            if case .tooManyRequests(let ra?, _) = error { delay = Swift.max(delay, ra) }
            let n = backoff.failures
            let then = delay == .zero ? "at once" : "in \(KubeClient.describe(delay))"
            let message = step == "relist"
                ? "watch \(what): \(error); relisting \(then)"
                : "watch \(what): \(step) failed: \(error); retrying \(then)"
            // The first failure after a healthy period at info, repeats at warning; each at most once per 30 s. A
            // paging loop is a broken server or proxy, however long the list took: always a warning.
            var quiet = n <= 1
            if case .pagingLoop = error { quiet = false }
            client.logLimiter.log(logger, quiet ? .info : .warning, key: "watch \(what) \(step) \(quiet)",
                                  message + (n > 1 ? " (\(n) failures in a row)" : ""))
            if delay > .zero { try await Task.sleep(for: delay) }
        }
    }
}
