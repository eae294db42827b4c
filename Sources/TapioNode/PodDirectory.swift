import Synchronization
import TapioModel

/// What the cluster says about one container: the join target of a cgroup's container id.
public struct PodContainer: Sendable, Hashable {
    public var pod: PodRef
    public var containerName: String
    public var owner: OwnerRef?
    public var node: String
    public init(pod: PodRef, containerName: String, owner: OwnerRef?, node: String) {
        self.pod = pod
        self.containerName = containerName
        self.owner = owner
        self.node = node
    }
}

/// Container id → pod, fed with ``TapioModel/PodInfo`` values by whoever watches pods (the node's pod reflector).
///
/// The directory knows nothing about Kubernetes clients: `upsert(_:)` on every pod add/update, `remove(_:)` on
/// delete. Owners come from the `PodInfo` when given; a `ReplicaSet` owner whose name ends in the pod-template hash
/// (`<deployment>-<hash>`) is reported as its `Deployment`. Thread-safe; readers take a short lock.
public final class PodDirectory: Sendable {
    struct State {
        var byContainer: [String: PodContainer] = [:]
        var byPodUID: [String: PodInfo] = [:]
    }
    let state = Mutex(State())
    /// Bumped on every change so cached attributions know to re-join.
    let generationCounter = Atomic<UInt64>(0)

    public init() {}

    /// Changes so far; cached attributions made at an older generation are re-joined on their next hit.
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    /// Adds or replaces a pod and its containers' ids.
    public func upsert(_ info: PodInfo) {
        let owner = Self.resolveOwner(info.owner)
        state.withLock { s in
            if let old = s.byPodUID[info.pod.uid] {
                for c in old.containers { if let id = c.containerID { s.byContainer[ContainerID.normalized(id)] = nil } }
            }
            s.byPodUID[info.pod.uid] = info
            for c in info.containers {
                guard let id = c.containerID else { continue }
                s.byContainer[ContainerID.normalized(id)] = PodContainer(pod: info.pod, containerName: c.name, owner: owner, node: info.node)
            }
        }
        generationCounter.add(1, ordering: .releasing)
    }

    /// Forgets a deleted pod.
    public func remove(_ pod: PodRef) {
        state.withLock { s in
            guard let old = s.byPodUID.removeValue(forKey: pod.uid) else { return }
            for c in old.containers { if let id = c.containerID { s.byContainer[ContainerID.normalized(id)] = nil } }
        }
        generationCounter.add(1, ordering: .releasing)
    }

    /// The container with this runtime id (64 hex, with or without a `containerd://` style prefix).
    public func container(id: String) -> PodContainer? {
        let key = ContainerID.normalized(id)
        return state.withLock { $0.byContainer[key] }
    }

    /// The pod with this UID (for pod-level cgroups that name no container).
    public func pod(uid: String) -> PodInfo? {
        state.withLock { $0.byPodUID[uid] }
    }

    public var podCount: Int { state.withLock { $0.byPodUID.count } }

    /// A ReplicaSet named `<name>-<pod-template-hash>` belongs to Deployment `<name>` (the Deployment controller's
    /// naming convention); anything else is reported as given.
    public static func resolveOwner(_ owner: OwnerRef?) -> OwnerRef? {
        guard let owner, owner.kind == "ReplicaSet", let dash = owner.name.lastIndex(of: "-") else { return owner }
        let hash = owner.name[owner.name.index(after: dash)...]
        // pod-template-hash is a rendered uint32 in the "safe" alphabet (no vowels), 1-10 characters.
        let safe = Set("bcdfghjklmnpqrstvwxz2456789")
        guard !hash.isEmpty, hash.count <= 10, hash.allSatisfy({ safe.contains($0) }) else { return owner }
        return OwnerRef(kind: "Deployment", name: String(owner.name[..<dash]))
    }
}
