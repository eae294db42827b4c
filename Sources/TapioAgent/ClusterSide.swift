import Logging
import TapioCorrelation
import TapioModel

/// The Kubernetes side of a node (filled in with the client and runtime): the pod/node/event sniffer and the
/// attributor that joins kernel events to pods.
public final class ClusterSide: Sendable {
    public let sources: [any EventSource]
    public let attributor: any Attributor
    public let checklist: [(name: String, state: SourceHealth.State)]

    init(sources: [any EventSource], attributor: any Attributor, checklist: [(name: String, state: SourceHealth.State)]) {
        self.sources = sources
        self.attributor = attributor
        self.checklist = checklist
    }

    /// Connects when a kubeconfig or in-cluster configuration is usable and the API server answers.
    public static func connect(kubeconfig: String?, context: String?, nodeName: String, namespace: String?,
                               logger: Logger) async -> Result<ClusterSide, ClusterUnavailable> {
        .failure(ClusterUnavailable(reason: "the Kubernetes side is not wired into sniff yet"))
    }

    public func close() async {}
}

public struct ClusterUnavailable: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// Attribution with no cluster: processes and cgroups of this machine are subjects of their own.
public struct LocalAttributor: Attributor {
    let index: CgroupIndex?
    public init(index: CgroupIndex? = nil) { self.index = index }

    public func attribute(_ event: NodeEvent) -> (subject: Subject?, context: SubjectContext?) {
        if event.cgroupID != 0, let entry = index?.lookup(event.cgroupID), entry.limitBytes != nil {
            return (.localCgroup(id: event.cgroupID, path: entry.path), SubjectContext(memoryLimitBytes: entry.limitBytes))
        }
        if event.pid == 0 { return (nil, nil) }
        return (.localProcess(pid: event.pid, comm: event.comm), nil)
    }

    public func observe(_ event: ClusterEvent) {}
}
