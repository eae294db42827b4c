import TapioModel

/// Turns successive observations of one pod into the typed cluster events the engine correlates.
///
/// Level-based: given the previous and the current view of a pod, it says what happened in between —
/// restarts with their termination reason and exit code, a container entering `CrashLoopBackOff`, a container
/// that terminated (e.g. `OOMKilled`, exit 137). Each termination is reported once: a termination is keyed by
/// its container and `finishedAt`, so the same `lastState` seen again after a relist is not a new OOM
/// (the VPA recommender's isNewOOM / isPreviousOOM rule).
public enum PodEventDeriver {
    public static func derive(old: PodInfo?, new: PodInfo, at nanos: UInt64) -> [ClusterEvent] {
        var out = [ClusterEvent(timestampNanos: nanos, kind: .podUpdated(new))]
        let before = Dictionary((old?.containers ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for c in new.containers {
            let prev = before[c.name]
            // A termination seen now, in state or (after the restart) in lastState, that the previous view lacked.
            for t in [c.currentTermination, c.lastTermination].compactMap({ $0 }) {
                let known = [prev?.currentTermination, prev?.lastTermination].contains { $0?.finishedAtNanos == t.finishedAtNanos && $0 != nil }
                if known { continue }
                out.append(ClusterEvent(timestampNanos: nanos, kind: .containerRestarted(
                    ContainerTermination(pod: new.pod, container: c.name, restartCount: c.restartCount, termination: t))))
                break
            }
            if c.waitingReason == "CrashLoopBackOff" && prev?.waitingReason != "CrashLoopBackOff" {
                out.append(ClusterEvent(timestampNanos: nanos, kind: .crashLoopBackOff(
                    ContainerTermination(pod: new.pod, container: c.name, restartCount: c.restartCount,
                                         termination: c.lastTermination ?? c.currentTermination))))
            }
        }
        return out
    }
}

/// Node condition transitions (MemoryPressure, DiskPressure, PIDPressure, Ready) between two views of a Node.
public enum NodeConditionDeriver {
    public struct Condition: Sendable, Hashable {
        public var type: String
        public var status: Bool
        public var reason: String
        public var message: String
        public init(type: String, status: Bool, reason: String, message: String) {
            self.type = type
            self.status = status
            self.reason = reason
            self.message = message
        }
    }

    static let watched: Set<String> = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]

    public static func derive(node: String, old: [Condition]?, new: [Condition], at nanos: UInt64) -> [ClusterEvent] {
        let before = Dictionary((old ?? []).map { ($0.type, $0.status) }, uniquingKeysWith: { a, _ in a })
        return new.filter { watched.contains($0.type) && before[$0.type] != $0.status }
            .filter { old != nil || $0.status != ($0.type == "Ready") }  // first sight: only abnormal states matter
            .map { c in
                ClusterEvent(timestampNanos: nanos, kind: .nodeCondition(node: node, condition: c.type, status: c.status,
                                                                         reason: c.reason, message: c.message))
            }
    }
}
