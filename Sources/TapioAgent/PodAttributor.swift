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
    /// The directory is fed by a pod watch directly (``followPods(of:)``): the cluster events reaching
    /// ``observe(_:)`` are then older than what it holds, and must not overwrite it.
    private let fedDirectly = Atomic(false)

    public init(limited: LimitedCgroups?, mount: CgroupMount? = CgroupMount.discover()) {
        let directory = PodDirectory()
        self.directory = directory
        self.translator = PodTranslator(mount: mount, directory: directory)
        self.limited = limited
    }

    public func attribute(_ event: NodeEvent) -> (subject: Subject?, context: SubjectContext?) {
        translator.observe(event)
        var attribution: Attribution? = event.cgroupID != 0 ? translator.attribution(cgroupID: event.cgroupID) : nil
        // The cgroup id alone can mislead in two ways, both seen on a real node: a cgroup created since the last
        // walk of the hierarchy is unknown for a moment (a container's first samples), and some memory samples
        // of a process in a pod carry the root memory cgroup's id (`/`). Either way the samples made a subject of
        // the bare process ("sh[1274] has no memory limit and keeps growing") instead of its pod's container.
        // The process's own /proc/<pid>/cgroup (cached per pid) says where it is.
        if event.pid > 0, attribution == nil || attribution?.cgroupPath == "/",
           let byPid = translator.attribution(pid: event.pid) {
            attribution = byPid
        }
        return subject(of: event, attribution)
    }

    /// An OOM kill, or the SIGKILL exit of its victim, whose subject is not yet a pod's container although it may
    /// become one: the cgroup is unknown (created since the last walk) or kubelet-shaped while the pod directory
    /// does not know the container yet (the kubelet reports a container's id after it starts).
    public func shouldRetry(_ event: NodeEvent, subject: Subject?) -> Bool {
        switch event.kind {
        case .oomKill: break
        case .processExit(let x) where x.signal == 9: break
        default: return false
        }
        if case .podContainer = subject { return false }
        guard event.cgroupID != 0, let index = translator.index else { return false }
        guard let path = index.knownPath(forID: event.cgroupID) else { return true }
        // Waiting for a pod only makes sense where a cluster side feeds the directory.
        return directory.podCount > 0 && CgroupPathParser.identity(of: path).podUID != nil
    }

    /// Fresh attributions for held events: one walk of the hierarchy at most for the whole batch.
    public func reattribute(_ events: [NodeEvent]) -> [(subject: Subject?, context: SubjectContext?)] {
        var walked = false
        return events.map { event in
            var a: Attribution?
            if event.cgroupID != 0 {
                let known = translator.index?.knownPath(forID: event.cgroupID) != nil
                if known || !walked {
                    walked = walked || !known
                    a = translator.freshAttribution(cgroupID: event.cgroupID)
                }
            }
            return subject(of: event, a ?? translator.attribution(cgroupID: event.cgroupID))
        }
    }

    private func subject(of event: NodeEvent, _ attribution: Attribution?) -> (subject: Subject?, context: SubjectContext?) {
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

    /// Feeds the pod directory from `sniffer`'s watch as each change arrives, instead of from the cluster events
    /// that reach ``observe(_:)`` through a queue that may shed them. Call before the pipeline starts.
    public func followPods(of sniffer: KubeSniffer) {
        fedDirectly.store(true, ordering: .releasing)
        sniffer.feed(directory)
    }

    public func observe(_ event: ClusterEvent) {
        let fed = fedDirectly.load(ordering: .acquiring)
        switch event.kind {
        case .podUpdated(let info):
            if !fed { directory.upsert(info) }
            // A pod changed on this node: a container its status now names may have a cgroup the poller has not
            // walked yet (its periodic walk is 30 s apart).
            limited?.requestWalk()
        case .podDeleted(let pod): if !fed { directory.remove(pod) }
        default: break
        }
    }
}
