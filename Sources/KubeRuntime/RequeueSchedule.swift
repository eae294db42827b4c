import Synchronization

/// Which delayed requeues a controller still has to carry out: at most one per key, the earliest — pure logic on
/// any monotonic clock (nanoseconds).
///
/// Without it every reconcile that returned `.requeue(after:)` started a timer of its own, and a reconcile caused by a
/// watch event started one more: each change of an object added a requeue cycle that never ended (measured: the
/// operator reconciled its one TapioPolicy 0.7 times a second instead of every 30 s after a few hundred heartbeats
/// and status writes). client-go's delaying queue keeps the earliest time per item, as this does.
public struct RequeueSchedule: Sendable {
    private var due: [String: UInt64] = [:]

    public init() {}

    /// Records a requeue of `key` at `at`; true when a timer must be started for it (no earlier one is pending).
    public mutating func schedule(_ key: String, at: UInt64) -> Bool {
        if let pending = due[key], pending <= at { return false }
        due[key] = at
        return true
    }

    /// A timer for `key` set for `at` went off; true when it is still the one that counts (then it is spent).
    public mutating func fire(_ key: String, at: UInt64) -> Bool {
        guard due[key] == at else { return false }
        due[key] = nil
        return true
    }

    /// Requeues pending.
    public var count: Int { due.count }
}

/// The controller's schedule, shared by its timer tasks.
final class RequeueTimers: Sendable {
    let state = Mutex(RequeueSchedule())
}
