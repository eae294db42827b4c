import TapioModel

/// What an event, a window of state and an insight are about.
///
/// Kubernetes subjects come from the pid/cgroup → pod translator or from the cluster events themselves; local
/// subjects (no Kubernetes at all, e.g. `tapio sniff` on a laptop) are first-class: a leaking process in a cgroup
/// with a memory limit gets an OOM prediction just like a pod's container does.
public enum Subject: Sendable, Hashable {
    /// One container of a pod — the usual subject of memory, OOM and crash-loop insights.
    case podContainer(PodRef, container: String)
    /// A pod as a whole (e.g. a probe failure or an eviction that names no container).
    case pod(PodRef)
    case node(String)
    /// Cluster-wide findings (ClusterHealth).
    case cluster
    /// A container runtime container outside Kubernetes, by its runtime id.
    case localContainer(id: String)
    /// A cgroup outside Kubernetes: its id (the directory's inode, 0 if unknown) and path ("" if unknown).
    case localCgroup(id: UInt64, path: String)
    /// A bare process.
    case localProcess(pid: Int32, comm: String)

    /// The pod this subject belongs to, if any.
    public var pod: PodRef? {
        switch self {
        case .podContainer(let p, _), .pod(let p): p
        default: nil
        }
    }

    /// How insights name this subject (the Insight's `subject`).
    public var resourceRef: ResourceRef {
        switch self {
        case .podContainer(let p, let c):
            ResourceRef(kind: "Pod", namespace: p.namespace, name: p.name, uid: p.uid, container: c)
        case .pod(let p): ResourceRef(kind: "Pod", namespace: p.namespace, name: p.name, uid: p.uid)
        case .node(let n): ResourceRef(kind: "Node", name: n)
        case .cluster: ResourceRef(kind: "Cluster", name: "cluster")
        case .localContainer(let id): ResourceRef(kind: "Container", name: String(id.prefix(12)), uid: id)
        case .localCgroup(let id, let path):
            ResourceRef(kind: "Cgroup", name: path.isEmpty ? "cgroup-\(id)" : path, uid: id == 0 ? nil : String(id))
        case .localProcess(let pid, let comm): ResourceRef(kind: "Process", name: "\(comm)[\(pid)]", uid: String(pid))
        }
    }

    /// A short human name: `ns/pod/container`, `node/n1`, `process comm[42]`.
    public var displayName: String {
        switch self {
        case .podContainer(let p, let c): "\(p.namespace)/\(p.name)/\(c)"
        case .pod(let p): "\(p.namespace)/\(p.name)"
        case .node(let n): "node/\(n)"
        case .cluster: "cluster"
        case .localContainer(let id): "container \(id.prefix(12))"
        case .localCgroup(let id, let path): path.isEmpty ? "cgroup \(id)" : "cgroup \(path)"
        case .localProcess(let pid, let comm): "process \(comm)[\(pid)]"
        }
    }

    /// True for subjects outside Kubernetes.
    public var isLocal: Bool {
        switch self {
        case .localContainer, .localCgroup, .localProcess: true
        default: false
        }
    }
}

/// What the attributor knows about a subject when it hands over an event: the owning workload, the node, the image
/// and the memory request/limit. All optional; the engine also learns them from `podUpdated` cluster events and
/// from the limit in `cgroupMemory` samples, and keeps the last value it saw.
public struct SubjectContext: Sendable, Hashable {
    public var owner: OwnerRef?
    public var node: String?
    public var image: String?
    public var memoryRequestBytes: UInt64?
    public var memoryLimitBytes: UInt64?

    public init(owner: OwnerRef? = nil, node: String? = nil, image: String? = nil, memoryRequestBytes: UInt64? = nil,
                memoryLimitBytes: UInt64? = nil) {
        self.owner = owner
        self.node = node
        self.image = image
        self.memoryRequestBytes = memoryRequestBytes
        self.memoryLimitBytes = memoryLimitBytes
    }
}

/// The engine's input: an event with the subject it is about.
///
/// Cluster events name their subject themselves (pass `subject: nil`); node events need the attributor's answer.
/// A node event with no subject falls back to its cgroup (`localCgroup(id:path:"")`) or, with cgroup id 0, its
/// process (`localProcess`).
public struct AttributedEvent: Sendable, Hashable {
    public var event: TapioEvent
    public var subject: Subject?
    public var context: SubjectContext?

    public init(event: TapioEvent, subject: Subject? = nil, context: SubjectContext? = nil) {
        self.event = event
        self.subject = subject
        self.context = context
    }

    public static func cluster(_ e: ClusterEvent) -> AttributedEvent { AttributedEvent(event: .cluster(e)) }
    public static func node(_ e: NodeEvent, subject: Subject?, context: SubjectContext? = nil) -> AttributedEvent {
        AttributedEvent(event: .node(e), subject: subject, context: context)
    }

    /// Nanoseconds since the Unix epoch.
    public var timestampNanos: UInt64 {
        switch event {
        case .node(let n): n.timestampNanos
        case .cluster(let c): c.timestampNanos
        }
    }
}
