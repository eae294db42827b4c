import KubeClient
import KubeRuntime
import Synchronization
import TapioCorrelation
import TapioModel
import TapioNode

/// Attribution with a cluster: kernel event → memory cgroup (by id) → container id (from the cgroup path, any
/// kubelet layout) → the pod on this node whose status names that container. Events from cgroups that are not
/// a known pod's fall back to local attribution (processes and cgroups of the node itself).
public final class PodAttributor: Attributor {
    let pods: ReflectorStore<Pod>
    let cgroups: CgroupIndex?
    let local: LocalAttributor
    /// cgroup id → identity parsed from its path; bounded (cleared when full: ids are cheap to re-parse).
    private let parsed = Mutex<[UInt64: CgroupIdentity]>([:])

    public init(pods: ReflectorStore<Pod>, cgroups: CgroupIndex?) {
        self.pods = pods
        self.cgroups = cgroups
        self.local = LocalAttributor(index: cgroups)
    }

    public func attribute(_ event: NodeEvent) -> (subject: Subject?, context: SubjectContext?) {
        guard event.cgroupID != 0, let identity = identity(of: event.cgroupID), let cid = identity.containerID,
              let pod = pods.byIndex(KubeSniffer.containerIndex, cid).first
        else { return local.attribute(event) }
        let info = PodConversion.podInfo(pod)
        guard let container = info.containers.first(where: { $0.containerID == cid }) else { return local.attribute(event) }
        return (.podContainer(info.pod, container: container.name),
                SubjectContext(owner: info.owner, node: info.node, image: container.image,
                               memoryRequestBytes: container.memoryRequestBytes, memoryLimitBytes: container.memoryLimitBytes))
    }

    public func observe(_ event: ClusterEvent) {}

    func identity(of id: UInt64) -> CgroupIdentity? {
        if let hit = parsed.withLock({ $0[id] }) { return hit }
        guard let path = cgroups?.lookup(id)?.path else { return nil }
        let identity = CgroupPathParser.identity(of: path)
        parsed.withLock { p in
            if p.count >= 100_000 { p.removeAll(keepingCapacity: true) }
            p[id] = identity
        }
        return identity
    }
}
