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
    /// Server-side timeout of each watch request (the watcher resumes after it).
    public var watchTimeoutSeconds: Int
    /// Backoff after failures: starts at `initialBackoff`, doubles to `maxBackoff`, with jitter; reset after success.
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    public init(labelSelector: String? = nil, fieldSelector: String? = nil, pageSize: Int = 500, watchTimeoutSeconds: Int = 290,
                initialBackoff: Duration = .milliseconds(200), maxBackoff: Duration = .seconds(30)) {
        self.labelSelector = labelSelector; self.fieldSelector = fieldSelector; self.pageSize = pageSize
        self.watchTimeoutSeconds = watchTimeoutSeconds; self.initialBackoff = initialBackoff; self.maxBackoff = maxBackoff
    }
}

/// List-then-watch as one `AsyncSequence` of `WatcherEvent`s. Dropped connections resume from the last seen
/// resourceVersion (bookmarks keep it fresh), a 410 `Gone` relists, other failures back off and retry — all inside;
/// the sequence only ends when the task is cancelled. Usage:
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
            case listing(pending: [K], continueToken: String?, resourceVersion: String)
            case listDone(resourceVersion: String)
            case watching(resourceVersion: String, stream: WatchStream<K>.AsyncIterator)
            case resume(resourceVersion: String)
        }
        let client: KubeClient
        let namespace: String?
        let config: WatcherConfig
        let logger: Logger
        var state: State = .empty
        var failures = 0

        init(client: KubeClient, namespace: String?, config: WatcherConfig, logger: Logger) {
            self.client = client; self.namespace = namespace; self.config = config; self.logger = logger
        }

        public mutating func next() async throws -> WatcherEvent<K>? {
            while true {
                try Task.checkCancellation()
                switch state {
                case .empty:
                    state = .listing(pending: [], continueToken: nil, resourceVersion: "")
                    return .initStart
                case .listing(var pending, let token, let rv):
                    if !pending.isEmpty {
                        let first = pending.removeFirst()
                        state = .listing(pending: pending, continueToken: token, resourceVersion: rv)
                        return .initApply(first)
                    }
                    if !rv.isEmpty && token == nil {
                        state = .listDone(resourceVersion: rv)
                        continue
                    }
                    do {
                        let page = try await client.list(K.self, namespace: namespace, options: ListOptions(
                            labelSelector: config.labelSelector, fieldSelector: config.fieldSelector, limit: config.pageSize,
                            continueToken: token))
                        failures = 0
                        let next = page.metadata.continue.flatMap { $0.isEmpty ? nil : $0 }
                        // The first page's version is the list's snapshot version.
                        let listRV = rv.isEmpty ? (page.metadata.resourceVersion ?? "0") : rv
                        state = .listing(pending: page.items, continueToken: next, resourceVersion: listRV)
                    } catch let e as KubeError {
                        if case .gone = e {
                            // The continue token expired: start the list over (still inside this init frame).
                            state = .listing(pending: [], continueToken: nil, resourceVersion: "")
                        }
                        try await backoff(e)
                    }
                case .listDone(let rv):
                    state = .resume(resourceVersion: rv)
                    return .initDone
                case .resume(let rv):
                    do {
                        let stream = try await client.watch(K.self, namespace: namespace, options: WatchOptions(
                            labelSelector: config.labelSelector, fieldSelector: config.fieldSelector, resourceVersion: rv,
                            allowWatchBookmarks: true, timeoutSeconds: config.watchTimeoutSeconds))
                        state = .watching(resourceVersion: rv, stream: stream.makeAsyncIterator())
                    } catch let e as KubeError {
                        if case .gone = e { state = .empty; continue }
                        try await backoff(e)
                    }
                case .watching(let rv, var stream):
                    do {
                        guard let event = try await stream.next() else {
                            // The server ended the watch (timeout): resume where we were.
                            state = .resume(resourceVersion: rv)
                            continue
                        }
                        failures = 0
                        switch event {
                        case .added(let o), .modified(let o):
                            state = .watching(resourceVersion: o.metadata.resourceVersion ?? rv, stream: stream)
                            return .apply(o)
                        case .deleted(let o):
                            state = .watching(resourceVersion: o.metadata.resourceVersion ?? rv, stream: stream)
                            return .delete(o)
                        case .bookmark(let newRV):
                            state = .watching(resourceVersion: newRV.isEmpty ? rv : newRV, stream: stream)
                        case .error(let e):
                            if case .gone = e {
                                logger.debug("watch \(K.plural): resourceVersion \(rv) expired, relisting")
                                state = .empty
                            } else {
                                state = .resume(resourceVersion: rv)
                                try await backoff(e)
                            }
                        }
                    } catch let e as KubeError {
                        // Connection cut mid-stream: resume from the last version we delivered.
                        state = .resume(resourceVersion: rv)
                        try await backoff(e)
                    }
                }
            }
        }

        mutating func backoff(_ error: KubeError) async throws {
            failures += 1
            var delay = Self.jittered(config.initialBackoff, doublings: failures - 1, cap: config.maxBackoff)
            if case .tooManyRequests(let ra?, _) = error { delay = Swift.max(delay, ra) }
            logger.debug("watcher \(K.plural): \(error); retrying in \(delay)")
            try await Task.sleep(for: delay)
        }

        static func jittered(_ base: Duration, doublings: Int, cap: Duration) -> Duration {
            var d = base
            for _ in 0..<Swift.min(Swift.max(0, doublings), 30) where d < cap { d = d * 2 }
            d = Swift.min(d, cap)
            return d * Double.random(in: 0.5...1.0)
        }
    }
}
