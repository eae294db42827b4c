import Synchronization
import TapioCorrelation
import TapioModel
import TapioNode

/// Says which subject a kernel event is about, through TapioNode's translator: event → memory cgroup (by id, or by
/// pid through /proc) → container id (any kubelet layout) → the pod whose status names that container.
///
/// Without a pod: a container of another runtime is a `localContainer`; a process in a memory-limited cgroup is
/// about that cgroup (its limit is what the process can hit); any other process is a subject of its own. The
/// translator's cache is kept honest by the exit and fork events that pass through here.
public final class NodeAttributor: Attributor {
    public let translator: PodTranslator
    public let directory: PodDirectory
    let limited: LimitedCgroups?

    public init(limited: LimitedCgroups?, mount: CgroupMount? = CgroupMount.discover()) {
        let directory = PodDirectory()
        self.directory = directory
        self.translator = PodTranslator(mount: mount, directory: directory)
        self.limited = limited
    }

    public func attribute(_ event: NodeEvent) -> (subject: Subject?, context: SubjectContext?) {
        translator.observe(event)
        let attribution: Attribution? = event.cgroupID != 0
            ? translator.attribution(cgroupID: event.cgroupID)
            : (event.pid > 0 ? translator.attribution(pid: event.pid) : nil)
        if let a = attribution, let pod = a.pod, let container = a.containerName {
            let spec = directory.pod(uid: pod.uid)?.containers.first { $0.name == container }
            return (.podContainer(pod, container: container),
                    SubjectContext(owner: a.owner, node: a.node, image: spec?.image,
                                   memoryRequestBytes: spec?.memoryRequestBytes, memoryLimitBytes: spec?.memoryLimitBytes))
        }
        let cgroupID = attribution?.cgroupID ?? event.cgroupID
        let limit = limited?.lookup(cgroupID)
        if let id = attribution?.containerID {
            return (.localContainer(id: id), limit.map { SubjectContext(memoryLimitBytes: $0.limitBytes) })
        }
        if let limit {
            return (.localCgroup(id: cgroupID, path: limit.path), SubjectContext(memoryLimitBytes: limit.limitBytes))
        }
        if event.pid > 0 { return (.localProcess(pid: event.pid, comm: event.comm), nil) }
        return (nil, nil)
    }

    public func observe(_ event: ClusterEvent) {
        switch event.kind {
        case .podUpdated(let info): directory.upsert(info)
        case .podDeleted(let pod): directory.remove(pod)
        default: break
        }
    }
}
