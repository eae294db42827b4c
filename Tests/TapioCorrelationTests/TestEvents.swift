import TapioModel
@testable import TapioCorrelation

/// Small builders for engine inputs.
enum TestEvents {
    static func ref(_ name: String, ns: String = "default") -> PodRef { PodRef(namespace: ns, name: name, uid: "uid-\(ns)-\(name)") }

    /// A cgroup memory sample of pod `pod`'s container `app`, owned by Deployment `owner` (default: named as the pod).
    static func memory(pod: String, ws: UInt64, limit: UInt64? = 512 << 20, owner: String? = nil, at: UInt64) -> AttributedEvent {
        .node(NodeEvent(timestampNanos: at, pid: 1, cgroupID: 7, comm: "app",
                        kind: .cgroupMemory(.init(usageBytes: ws, workingSetBytes: ws, limitBytes: limit))),
              subject: .podContainer(ref(pod), container: "app"),
              context: SubjectContext(owner: OwnerRef(kind: "Deployment", name: owner ?? pod), node: "node-1"))
    }

    static func oomKill(pod: String, at: UInt64) -> AttributedEvent {
        .node(NodeEvent(timestampNanos: at, pid: 42, cgroupID: 7, comm: "app",
                        kind: .oomKill(.init(victimPID: 42, totalVMBytes: 1 << 30, anonRSSBytes: 500 << 20,
                                             fileRSSBytes: 0, shmemRSSBytes: 0))),
              subject: .podContainer(ref(pod), container: "app"))
    }

    static func restart(pod: String, count: Int, reason: String, at: UInt64) -> AttributedEvent {
        let exit: Int32 = reason == "OOMKilled" ? 137 : 0
        return .cluster(ClusterEvent(timestampNanos: at, kind: .containerRestarted(ContainerTermination(
            pod: ref(pod), container: "app", restartCount: count,
            termination: Termination(reason: reason, exitCode: exit, signal: 0, finishedAtNanos: at)))))
    }

    /// The start of ``replayMemory(seconds:limit:kills:config:value:)``'s series.
    static let memoryStart: UInt64 = 1_795_000_000 * 1_000_000_000

    /// One pod container's memory through an engine: a sample a second from ``memoryStart`` for `seconds` (none where
    /// `value` is nil), an OOM kill at each of `kills` (seconds), under `limit`; every Insight update it made.
    static func replayMemory(seconds: Int, limit: UInt64?, kills: [Int] = [], config: CorrelationConfig = CorrelationConfig(),
                             value: (Double) -> Double?) -> [InsightUpdate] {
        var engine = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        for k in 0...seconds {
            let t = memoryStart + UInt64(k) * 1_000_000_000
            if kills.contains(k) { engine.ingest(oomKill(pod: "p", at: t), now: t, into: &out) }
            guard let v = value(Double(k)) else { continue }
            engine.ingest(memory(pod: "p", ws: UInt64(max(0, v)), limit: limit, at: t), now: t, into: &out)
        }
        return out
    }
}
