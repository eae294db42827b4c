import Synchronization
import TapioModel
import TapioNode

/// Holds the few kernel events that must not be pinned on the wrong subject — an OOM kill and its victim's exit —
/// while the caches catch up with a container seconds old: the cgroup directory may have appeared after the last
/// walk of the hierarchy, and the kubelet reports a container's id only after the container started (an OOM kill at
/// start-up is common). Each held event is asked about again on a backoff schedule (~7.5 s in all) and released as
/// soon as it names a pod's container, or with whatever is known when the schedule runs out.
///
/// Bounded: when `capacity` events are held, a new one goes through at once as it was attributed (counted as
/// `overflow`); nothing is dropped.
final class AttributionRetry: Sendable {
    struct Held: Sendable {
        var event: NodeEvent
        var attempt: Int
        /// When it was first held (monotonic nanoseconds); the schedule counts from here.
        var since: UInt64
        var due: UInt64
    }

    /// Delays before each new attempt, from the first sighting.
    static let schedule: [UInt64] = [100, 400, 1_000, 2_000, 4_000].map { $0 * 1_000_000 }

    /// Totals by outcome: `held`, `resolved` (a pod's container after a retry), `unresolved` (released as known
    /// when the schedule ran out), `overflow` (not held: the hold was full).
    struct Counters: Sendable, Hashable {
        var held: UInt64 = 0
        var resolved: UInt64 = 0
        var unresolved: UInt64 = 0
        var overflow: UInt64 = 0
        var byOutcome: [String: UInt64] {
            ["held": held, "resolved": resolved, "unresolved": unresolved, "overflow": overflow]
        }
    }

    let capacity: Int
    private let state = Mutex<(held: [Held], counters: Counters)>(([], Counters()))
    /// Yields when an event is held, so the retry loop can sleep while nothing is.
    let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(capacity: Int = 1024) {
        self.capacity = capacity
        (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Nanoseconds until the earliest held event is due (0: now); nil when nothing is held.
    func nanosUntilNextDue(now: UInt64) -> UInt64? {
        state.withLock { s in
            s.held.map(\.due).min().map { $0 > now ? $0 - now : 0 }
        }
    }

    var counters: Counters { state.withLock { $0.counters } }
    var count: Int { state.withLock { $0.held.count } }

    /// Holds `event` for a fresh attribution later; false when full (the caller passes it on as it is).
    func hold(_ event: NodeEvent, now: UInt64) -> Bool {
        let kept = state.withLock { s in
            guard s.held.count < capacity else {
                s.counters.overflow &+= 1
                return false
            }
            s.counters.held &+= 1
            s.held.append(Held(event: event, attempt: 0, since: now, due: now &+ Self.schedule[0]))
            return true
        }
        if kept { wake.yield() }
        return kept
    }

    /// Removes and returns the events due at `now`, in arrival order.
    func takeDue(now: UInt64) -> [Held] {
        state.withLock { s in
            guard s.held.contains(where: { $0.due <= now }) else { return [] }
            let due = s.held.filter { $0.due <= now }
            s.held.removeAll { $0.due <= now }
            return due
        }
    }

    /// Everything still held (shutdown: released as attributed so far).
    func takeAll() -> [Held] {
        state.withLock { s in
            defer { s.held.removeAll() }
            return s.held
        }
    }

    /// Puts a still-unsettled event back for its next attempt; false when its schedule is spent (release it).
    func again(_ h: Held) -> Bool {
        let next = h.attempt + 1
        guard next < Self.schedule.count else {
            state.withLock { $0.counters.unresolved &+= 1 }
            return false
        }
        state.withLock { s in
            s.held.append(Held(event: h.event, attempt: next, since: h.since, due: h.since &+ Self.schedule[next]))
        }
        return true
    }

    func noteResolved() { state.withLock { $0.counters.resolved &+= 1 } }
}
