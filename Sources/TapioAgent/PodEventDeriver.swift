import TapioModel

/// Turns successive observations of one pod into the typed cluster events the engine correlates.
///
/// Level-based: given the previous and the current view of a pod, it says what happened in between —
/// restarts with their termination reason and exit code, a container entering `CrashLoopBackOff`, a container
/// that terminated (e.g. `OOMKilled`, exit 137). Each termination is reported once: a termination is keyed by
/// its container and `finishedAt`, so the same `lastState` seen again after a relist is not a new OOM
/// (the VPA recommender's isNewOOM / isPreviousOOM rule).
///
/// Probe failures and evictions come from the pod too, not from the kubelet's `Unhealthy` and `Evicted` Events: those
/// can only be watched cluster-wide (an Event's field selectors do not include the node), so every agent would
/// receive every node's — N² for N nodes. A readiness probe failure shows as a running container turning not ready;
/// a liveness failure as the restart it causes (``ClusterEvent/Kind/containerRestarted``); an eviction as
/// `status.reason: Evicted`. What is lost is the kubelet's wording of the probe failure (its HTTP status, say).
public enum PodEventDeriver {
    public static func derive(old: PodInfo?, new: PodInfo, at nanos: UInt64) -> [ClusterEvent] {
        var out = [ClusterEvent(timestampNanos: nanos, kind: .podUpdated(new))]
        if new.reason == "Evicted" && old?.reason != "Evicted" {
            out.append(ClusterEvent(timestampNanos: nanos, kind: .evicted(pod: new.pod, message: new.message ?? "")))
        }
        let before = Dictionary((old?.containers ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for c in new.containers {
            let prev = before[c.name]
            if let prev, readinessLost(prev, c), !new.deleting, new.phase == "Running" {
                out.append(ClusterEvent(timestampNanos: nanos, kind: .probeFailed(
                    pod: new.pod, container: c.name, probe: "readiness",
                    message: "container \(c.name) became not ready while running")))
            }
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

    /// Ready before, not ready now, and the same container still running (no restart, no termination, not
    /// waiting): only a failing readiness probe does that.
    static func readinessLost(_ prev: ContainerInfo, _ c: ContainerInfo) -> Bool {
        prev.ready && !c.ready && c.restartCount == prev.restartCount && c.containerID != nil
            && c.containerID == prev.containerID && c.currentTermination == nil && c.waitingReason == nil
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
