import Foundation
import Logging
import Synchronization

/// Lets one log line per key through per `interval` and counts the rest, so a retry loop against a failing server
/// is visible at info/warning level without flooding the log: the line that gets through says how many were
/// held back since the previous one.
public final class LogLimiter: Sendable {
    struct Entry { var last: ContinuousClock.Instant; var suppressed: Int }
    public let interval: Duration
    /// Most distinct keys remembered; beyond it the oldest half is forgotten (keys include request paths).
    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

    public init(interval: Duration = .seconds(30), capacity: Int = 256) {
        self.interval = interval
        self.capacity = capacity
    }

    /// Distinct keys remembered (≤ `capacity`).
    public var count: Int { entries.withLock { $0.count } }

    /// nil when `key` already logged within `interval` (the occurrence is counted); otherwise how many
    /// occurrences were held back since the last line that got through.
    public func admit(_ key: String, now: ContinuousClock.Instant = .now) -> Int? {
        entries.withLock { e -> Int? in
            if var entry = e[key] {
                if now - entry.last < interval {
                    entry.suppressed += 1
                    e[key] = entry
                    return nil
                }
                e[key] = Entry(last: now, suppressed: 0)
                return entry.suppressed
            }
            if e.count >= capacity {
                for (k, _) in e.sorted(by: { $0.value.last < $1.value.last }).prefix(capacity / 2) { e[k] = nil }
            }
            e[key] = Entry(last: now, suppressed: 0)
            return 0
        }
    }

    /// Logs `message` at `level` unless `key` logged within `interval`; appends the count held back.
    public func log(_ logger: Logger, _ level: Logger.Level, key: String, _ message: @autoclosure () -> String) {
        guard let held = admit(key) else { return }
        let suffix = held > 0 ? " (\(held) more like this in the last \(interval))" : ""
        logger.log(level: level, "\(message())\(suffix)")
    }
}
