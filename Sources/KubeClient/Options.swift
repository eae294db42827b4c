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

    var query: [(String, String)] {
        var q: [(String, String)] = [("watch", "true"), ("timeoutSeconds", String(timeoutSeconds))]
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
    public init(dryRun: Bool = false, fieldManager: String? = nil) {
        self.dryRun = dryRun; self.fieldManager = fieldManager
    }
    var query: [(String, String)] {
        var q: [(String, String)] = []
        if dryRun { q.append(("dryRun", "All")) }
        if let fieldManager { q.append(("fieldManager", fieldManager)) }
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
        let base = Double(initialBackoff.components.seconds) + Double(initialBackoff.components.attoseconds) / 1e18
        let cap = Double(maxBackoff.components.seconds) + Double(maxBackoff.components.attoseconds) / 1e18
        let d = min(cap, base * pow(2, Double(max(0, attempt - 1))))
        return .milliseconds(Int64((d * Double.random(in: 0.5...1.0)) * 1000))
    }
}

/// The patch flavours the client sends.
public enum PatchType: String, Sendable {
    case merge = "application/merge-patch+json"
    case json = "application/json-patch+json"
    case strategicMerge = "application/strategic-merge-patch+json"
    case apply = "application/apply-patch+yaml"
}
