import TapioModel
@testable import TapioCorrelation

/// Small builders for engine inputs.
enum TestEvents {
    static func ref(_ name: String, ns: String = "default") -> PodRef { PodRef(namespace: ns, name: name, uid: "uid-\(ns)-\(name)") }

    static func memory(pod: String, ws: UInt64, limit: UInt64? = 512 << 20, at: UInt64) -> AttributedEvent {
        .node(NodeEvent(timestampNanos: at, pid: 1, cgroupID: 7, comm: "app",
                        kind: .cgroupMemory(.init(usageBytes: ws, workingSetBytes: ws, limitBytes: limit))),
              subject: .podContainer(ref(pod), container: "app"),
              context: SubjectContext(owner: OwnerRef(kind: "Deployment", name: pod), node: "node-1"))
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
}
