import Synchronization
import TapioModel

/// The pod deletions the sniffer saw, kept beside the queues that carry them to the engine. Those queues shed their
/// oldest events when full; a shed deletion left the pod's findings Active until `resolveAfter` ran out. A deletion
/// leaves the log when its event reaches the engine (``forget(_:)``); one still here `Pipeline.deletionGrace` after it
/// was seen, and recorded before a queue shed something (``markShed()``: it may be what was shed), is applied by the
/// pipeline if the engine still holds the pod (``CorrelationEngine/podGone(_:now:into:)``). One merely late in a
/// queue that shed nothing keeps waiting for its event: applied early, it would make the engine ignore the pod's
/// events still queued before it (an OOM kill just before the deletion).
public final class PodDeletionLog: Sendable {
    /// Deletions kept: far more than a node's pods (the kubelet's default is 110) deleted within the grace.
    public static let capacity = 1_024
    /// A deletion neither taken nor forgotten this long after it was seen is let go: its event must have been
    /// ingested unnoticed, or the pod long forgotten.
    static let keepFor: UInt64 = 600_000_000_000
    struct Entry {
        let pod: PodRef
        let at: UInt64
        let id: UInt64
    }
    private struct State {
        var entries: [Entry] = []
        var nextID: UInt64 = 1
        /// Entries with an id up to this were recorded before a queue last shed something.
        var shedThrough: UInt64 = 0
        var dropped: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Notes a deletion seen at `at` (monotonic nanoseconds, ``TapioNode/MonotonicClock/coarseNanos()``); past
    /// ``capacity`` the oldest goes (counted).
    public func record(_ pod: PodRef, at: UInt64) {
        state.withLock { s in
            if s.entries.count >= Self.capacity {
                s.entries.removeFirst()
                s.dropped &+= 1
            }
            s.entries.append(Entry(pod: pod, at: at, id: s.nextID))
            s.nextID &+= 1
        }
    }

    /// A queue between the sniffer and the engine shed an event: any deletion recorded so far may have been it.
    public func markShed() {
        state.withLock { s in s.shedThrough = s.nextID &- 1 }
    }

    /// The deletion of the pod `uid` reached the engine.
    public func forget(_ uid: String) {
        state.withLock { s in
            guard !s.entries.isEmpty else { return }
            s.entries.removeAll { $0.pod.uid == uid }
        }
    }

    /// The deletions recorded at or before `cutoff` and before a shed, oldest first, taken out of the log; those
    /// older than ``keepFor`` (at `now`) are let go.
    public func take(recordedBy cutoff: UInt64, now: UInt64) -> [PodRef] {
        state.withLock { s in
            guard !s.entries.isEmpty else { return [] }
            var due: [PodRef] = []
            s.entries.removeAll { e in
                if e.at <= cutoff, e.id <= s.shedThrough {
                    due.append(e.pod)
                    return true
                }
                return now >= e.at && now - e.at > Self.keepFor
            }
            return due
        }
    }

    /// The deletions waiting in the log, oldest first.
    public var waiting: [PodRef] { state.withLock { $0.entries.map(\.pod) } }
    public var count: Int { state.withLock { $0.entries.count } }
    /// Deletions pushed out of the full log before the pipeline took them (`tapio_events_shed{stage="pod_deletion_log"}`).
    public var dropped: UInt64 { state.withLock { $0.dropped } }
}
