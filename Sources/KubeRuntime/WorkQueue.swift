import Foundation

/// A queue of keys for a controller, shaped like client-go's workqueue: a key waiting is held once however often it
/// is added; a key being processed is never handed out again until `done(_:)`, and if it was added meanwhile it
/// comes back once afterwards. Per-key failure counts drive exponential backoff (`backoff(for:)`).
public actor WorkQueue {
    private var queue: [String] = []
    private var head = 0
    private var queued: Set<String> = []
    private var processing: Set<String> = []
    private var dirty: Set<String> = []
    private var failures: [String: Int] = [:]
    private var waiters: [CheckedContinuation<String?, Never>] = []
    private var shuttingDown = false
    public let baseDelay: Duration
    public let maxDelay: Duration

    /// Backoff per key starts at `baseDelay` (5 ms) and doubles per failure up to `maxDelay` (1000 s).
    public init(baseDelay: Duration = .milliseconds(5), maxDelay: Duration = .seconds(1000)) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Adds a key (no-op if it is already waiting; remembered if it is being processed).
    public func add(_ key: String) {
        guard !shuttingDown else { return }
        if processing.contains(key) { dirty.insert(key); return }
        guard queued.insert(key).inserted else { return }
        if let w = waiters.first {
            waiters.removeFirst()
            queued.remove(key)
            processing.insert(key)
            w.resume(returning: key)
        } else {
            queue.append(key)
        }
    }

    /// The next key, waiting if there is none; nil once shut down. The caller must call `done(_:)` with it.
    public func get() async -> String? {
        if let k = popReady() { return k }
        if shuttingDown { return nil }
        return await withCheckedContinuation { waiters.append($0) }
    }

    private func popReady() -> String? {
        guard head < queue.count else { return nil }
        let k = queue[head]
        head += 1
        if head > 1024 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
        queued.remove(k)
        processing.insert(k)
        return k
    }

    /// Marks `key` processed; re-queues it if it was added while being processed.
    public func done(_ key: String) {
        processing.remove(key)
        if dirty.remove(key) != nil { add(key) }
    }

    /// Records a failure and returns how long to wait before retrying: base × 2^(failures-1), capped.
    public func backoff(for key: String) -> Duration {
        let n = failures[key, default: 0]
        failures[key] = n + 1
        var d = baseDelay
        for _ in 0..<min(n, 40) where d < maxDelay { d = d * 2 }
        return min(d, maxDelay)
    }

    /// Clears the failure count of a key after a success.
    public func forget(_ key: String) { failures[key] = nil }

    public func failureCount(_ key: String) -> Int { failures[key, default: 0] }

    /// Number of keys waiting.
    public var count: Int { queue.count - head }

    /// Wakes all waiting `get()` calls with nil; later adds are ignored.
    public func shutDown() {
        shuttingDown = true
        let w = waiters
        waiters = []
        for c in w { c.resume(returning: nil) }
    }
}
