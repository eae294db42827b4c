import Synchronization
import TapioModel

/// The pod deletions the sniffer saw, kept beside its event queue. The engine hears of a deletion through bounded
/// queues that shed their oldest events when full; a shed deletion left the pod's findings Active until
/// `resolveAfter` ran out. The pipeline takes each deletion from here once it is `Pipeline.deletionGrace` old — by
/// then its queued event has normally reached the engine — and applies it if the engine still holds the pod
/// (``CorrelationEngine/podGone(_:now:into:)``).
public final class PodDeletionLog: Sendable {
    /// Deletions kept: far more than a node's pods (the kubelet's default is 110) deleted within the grace.
    public static let capacity = 1_024
    private struct State {
        var entries: [(pod: PodRef, at: UInt64)] = []
        var dropped: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Notes a deletion seen at `at` (wall-clock nanoseconds); past ``capacity`` the oldest goes (counted).
    public func record(_ pod: PodRef, at: UInt64) {
        state.withLock { s in
            if s.entries.count >= Self.capacity {
                s.entries.removeFirst()
                s.dropped &+= 1
            }
            s.entries.append((pod, at))
        }
    }

    /// The deletions recorded at or before `cutoff`, oldest first, taken out of the log.
    public func take(recordedBy cutoff: UInt64) -> [PodRef] {
        state.withLock { s in
            let due = s.entries.prefix { $0.at <= cutoff }.count
            guard due > 0 else { return [] }
            defer { s.entries.removeFirst(due) }
            return s.entries.prefix(due).map(\.pod)
        }
    }

    /// Deletions pushed out of the full log before the pipeline took them (`tapio_events_shed{stage="pod_deletion_log"}`).
    public var dropped: UInt64 { state.withLock { $0.dropped } }
}
