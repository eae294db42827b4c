import Foundation

/// Options for list calls.
public struct ListOptions: Sendable, Hashable {
    /// `app=web,tier in (a,b),!canary`.
    public var labelSelector: String?
    /// `spec.nodeName=n1,status.phase!=Succeeded`.
    public var fieldSelector: String?
    /// Page size; the server returns a `continue` token when more remain.
    public var limit: Int?
    public var continueToken: String?
    /// "0" lets the server answer from cache; nil reads the latest.
    public var resourceVersion: String?
    public init(labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil,
                continueToken: String? = nil, resourceVersion: String? = nil) {
        self.labelSelector = labelSelector; self.fieldSelector = fieldSelector; self.limit = limit
        self.continueToken = continueToken; self.resourceVersion = resourceVersion
    }

    var query: [(String, String)] {
        var q: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { q.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { q.append(("fieldSelector", fieldSelector)) }
        if let limit { q.append(("limit", String(limit))) }
        if let continueToken { q.append(("continue", continueToken)) }
        if let resourceVersion { q.append(("resourceVersion", resourceVersion)) }
        return q
    }
}

/// Options for watch calls.
public struct WatchOptions: Sendable, Hashable {
    public var labelSelector: String?
    public var fieldSelector: String?
    /// Start after this version; nil or "0" starts with synthetic ADDED events for what exists.
    public var resourceVersion: String?
    public var allowWatchBookmarks: Bool
    /// The server ends the watch after this long; watchers simply resume.
    public var timeoutSeconds: Int
    public init(labelSelector: String? = nil, fieldSelector: String? = nil, resourceVersion: String? = nil,
                allowWatchBookmarks: Bool = true, timeoutSeconds: Int = 290) {
        self.labelSelector = labelSelector; self.fieldSelector = fieldSelector; self.resourceVersion = resourceVersion
        self.allowWatchBookmarks = allowWatchBookmarks; self.timeoutSeconds = timeoutSeconds
    }

    /// `timeoutSeconds` within 1 s … 1 day, so the client's own deadline (this plus a margin) always fits a timer.
    var clampedTimeoutSeconds: Int { min(max(timeoutSeconds, 1), 86_400) }

    var query: [(String, String)] {
        var q: [(String, String)] = [("watch", "true"), ("timeoutSeconds", String(clampedTimeoutSeconds))]
        if allowWatchBookmarks { q.append(("allowWatchBookmarks", "true")) }
        if let labelSelector, !labelSelector.isEmpty { q.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { q.append(("fieldSelector", fieldSelector)) }
        if let resourceVersion { q.append(("resourceVersion", resourceVersion)) }
        return q
    }
}

/// Options common to writes.
public struct WriteOptions: Sendable, Hashable {
    /// `dryRun=All`: the server validates and answers as if it wrote, but stores nothing.
    public var dryRun: Bool
    /// Names the writer in `managedFields`.
    public var fieldManager: String?
    /// DELETE only: how long the object may take to terminate; 0 deletes at once. A pod bound to a node is
    /// otherwise kept, terminating, until its kubelet confirms it stopped.
    public var gracePeriodSeconds: Int64?
    /// DELETE only: the object is deleted only if it is still this one (uid) and unchanged since it was read
    /// (resourceVersion); otherwise the server answers 409 Conflict. So what was judged on a read is what is deleted.
    public var preconditions: Preconditions?
    public init(dryRun: Bool = false, fieldManager: String? = nil, gracePeriodSeconds: Int64? = nil,
                preconditions: Preconditions? = nil) {
        self.dryRun = dryRun; self.fieldManager = fieldManager; self.gracePeriodSeconds = gracePeriodSeconds
        self.preconditions = preconditions
    }

    /// `DeleteOptions.preconditions` (meta/v1).
    public struct Preconditions: Sendable, Hashable, Codable {
        public var uid: String?
        public var resourceVersion: String?
        public init(uid: String? = nil, resourceVersion: String? = nil) { self.uid = uid; self.resourceVersion = resourceVersion }
    }

    /// The DELETE request's body (a `DeleteOptions`), when preconditions ask for one.
    var deleteBody: Data? {
        guard let preconditions else { return nil }
        struct Body: Encodable { let kind = "DeleteOptions"; let apiVersion = "v1"; let preconditions: Preconditions }
        return try? JSONEncoder().encode(Body(preconditions: preconditions))
    }
    var query: [(String, String)] {
        var q: [(String, String)] = []
        if dryRun { q.append(("dryRun", "All")) }
        if let fieldManager { q.append(("fieldManager", fieldManager)) }
        if let gracePeriodSeconds { q.append(("gracePeriodSeconds", String(gracePeriodSeconds))) }
        return q
    }
}

/// When and how often a request is retried.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, including the first.
    public var maxAttempts: Int
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    /// Longest Retry-After the client will wait before giving up with `.tooManyRequests`.
    public var maxRetryAfter: Duration
    public init(maxAttempts: Int = 5, initialBackoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(5),
                maxRetryAfter: Duration = .seconds(60)) {
        self.maxAttempts = maxAttempts; self.initialBackoff = initialBackoff; self.maxBackoff = maxBackoff
        self.maxRetryAfter = maxRetryAfter
    }
    public static let none = RetryPolicy(maxAttempts: 1)

    /// Full jitter: a random delay in [backoff/2, backoff], backoff doubling per attempt (attempt counts from 1).
    public func backoff(attempt: Int) -> Duration {
        let d = min(maxBackoff.inSeconds, initialBackoff.inSeconds * pow(2, Double(min(max(0, attempt - 1), 64))))
        return .clamped(seconds: d * Double.random(in: 0.5...1.0))
    }
}

/// What the client accepts from a server, so a broken or hostile one cannot make it hold unbounded memory or
/// follow redirects forever.
public struct ResponseLimits: Sendable, Hashable {
    /// The largest body of an ordinary (non-watch) response. 64 MiB: a page of the 500 objects the client asks
    /// for at most, at a generous 100 KiB each (pods with long managedFields), is ~50 MiB.
    public var maxBodyBytes: Int
    /// The longest line of a watch stream (one event). 16 MiB: etcd stores objects up to 1.5 MiB, and the
    /// JSON of one object (with escaping) stays far below ten times that.
    public var maxWatchLineBytes: Int
    /// Redirects followed per request: 10, as Go's net/http (and so client-go and kubectl) follows.
    public var maxRedirects: Int
    /// Objects one paged list (`listAll`, a watcher's list) gathers before it is abandoned: 1,000,000. Kubernetes'
    /// scalability thresholds are 150,000 pods and 5,000 nodes per cluster; a list past this is a server (or proxy)
    /// handing out continue tokens that never end, and following it would hold every page in memory for good.
    public var maxListObjects: Int
    /// Pages one paged list follows before it is abandoned: 20,000 (10 million objects at the 500 a page asks for).
    /// Bounds the same endless paging when its pages are empty, which costs no memory but never finishes the list.
    public var maxListPages: Int

    public init(maxBodyBytes: Int = 64 << 20, maxWatchLineBytes: Int = 16 << 20, maxRedirects: Int = 10,
                maxListObjects: Int = 1_000_000, maxListPages: Int = 20_000) {
        self.maxBodyBytes = max(1, maxBodyBytes); self.maxWatchLineBytes = max(1, maxWatchLineBytes)
        self.maxRedirects = max(0, maxRedirects)
        self.maxListObjects = max(1, maxListObjects); self.maxListPages = max(1, maxListPages)
    }

    /// Whether a list that has gathered `objects` over `pages` pages has gone past the limits: the error to stop it
    /// with, or nil to go on.
    public func listOverrun(_ resource: String, objects: Int, pages: Int) -> KubeError? {
        if objects > maxListObjects {
            return .pagingLoop("listing \(resource): more than \(maxListObjects) objects over \(pages) pages and still a continue token; the list was abandoned")
        }
        if pages >= maxListPages {
            return .pagingLoop("listing \(resource): \(pages) pages (\(objects) objects) and still a continue token; the list was abandoned")
        }
        return nil
    }

    /// `16 MiB`, `512 KiB`, `100 bytes`.
    static func describe(_ bytes: Int) -> String {
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}

/// The patch flavours the client sends.
public enum PatchType: String, Sendable {
    case merge = "application/merge-patch+json"
    case json = "application/json-patch+json"
    case strategicMerge = "application/strategic-merge-patch+json"
    case apply = "application/apply-patch+yaml"
}
