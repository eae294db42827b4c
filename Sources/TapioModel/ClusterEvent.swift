/// Typed events from the Kubernetes side (the Kubernetes sniffer turns watch events into these).
public struct ClusterEvent: Sendable, Hashable {
    /// Nanoseconds since the Unix epoch.
    public var timestampNanos: UInt64
    public var kind: Kind

    public init(timestampNanos: UInt64, kind: Kind) {
        self.timestampNanos = timestampNanos
        self.kind = kind
    }

    public enum Kind: Sendable, Hashable {
        /// A pod was seen (added or changed): its identity, containers and their state.
        case podUpdated(PodInfo)
        case podDeleted(PodRef)
        /// A container restarted; `reason`/`exitCode` from `lastState.terminated`.
        case containerRestarted(ContainerTermination)
        /// `state.waiting.reason == CrashLoopBackOff`.
        case crashLoopBackOff(ContainerTermination)
        /// A probe failure: a running container of the node's pod turned not ready (derived from the pod's status;
        /// scenarios may also give a kubelet `Unhealthy` event's text).
        case probeFailed(pod: PodRef, container: String?, probe: String, message: String)
        /// The kubelet evicted the pod (`status.reason: Evicted`; `message` is the pod's `status.message`).
        case evicted(pod: PodRef, message: String)
        /// A node condition changed (MemoryPressure, DiskPressure, PIDPressure, Ready).
        case nodeCondition(node: String, condition: String, status: Bool, reason: String, message: String)
    }
}

/// How the correlation engine and sinks name a pod.
public struct PodRef: Sendable, Hashable, Codable, Comparable {
    public var namespace: String
    public var name: String
    public var uid: String
    public init(namespace: String, name: String, uid: String) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
    }
    public static func < (a: PodRef, b: PodRef) -> Bool { (a.namespace, a.name, a.uid) < (b.namespace, b.name, b.uid) }
}

/// The workload that owns a pod (resolved through owner references: ReplicaSet → Deployment).
public struct OwnerRef: Sendable, Hashable, Codable {
    public var kind: String
    public var name: String
    public init(kind: String, name: String) {
        self.kind = kind
        self.name = name
    }
}

public struct PodInfo: Sendable, Hashable {
    public var pod: PodRef
    public var node: String
    public var owner: OwnerRef?
    public var labels: [String: String]
    public var phase: String
    public var containers: [ContainerInfo]
    /// `status.reason` (`Evicted` when the kubelet evicted the pod) and `status.message`.
    public var reason: String?
    public var message: String?
    /// The pod has a `deletionTimestamp`: its containers stop on purpose.
    public var deleting: Bool
    public init(pod: PodRef, node: String, owner: OwnerRef?, labels: [String: String], phase: String, containers: [ContainerInfo],
                reason: String? = nil, message: String? = nil, deleting: Bool = false) {
        self.pod = pod
        self.node = node
        self.owner = owner
        self.labels = labels
        self.phase = phase
        self.containers = containers
        self.reason = reason
        self.message = message
        self.deleting = deleting
    }
}

public struct ContainerInfo: Sendable, Hashable {
    public var name: String
    /// The 64-hex runtime id without the `containerd://` prefix, when running.
    public var containerID: String?
    public var image: String
    public var restartCount: Int
    public var ready: Bool
    public var memoryRequestBytes: UInt64?
    public var memoryLimitBytes: UInt64?
    /// `lastState.terminated`, if any.
    public var lastTermination: Termination?
    /// `state.terminated`, if the container is terminated now.
    public var currentTermination: Termination?
    /// `state.waiting.reason`, if waiting.
    public var waitingReason: String?
    public init(name: String, containerID: String?, image: String, restartCount: Int, ready: Bool,
                memoryRequestBytes: UInt64?, memoryLimitBytes: UInt64?, lastTermination: Termination?,
                currentTermination: Termination?, waitingReason: String?) {
        self.name = name
        self.containerID = containerID
        self.image = image
        self.restartCount = restartCount
        self.ready = ready
        self.memoryRequestBytes = memoryRequestBytes
        self.memoryLimitBytes = memoryLimitBytes
        self.lastTermination = lastTermination
        self.currentTermination = currentTermination
        self.waitingReason = waitingReason
    }
}

public struct Termination: Sendable, Hashable, Codable {
    public var reason: String
    public var exitCode: Int32
    public var signal: Int32
    /// Nanoseconds since the Unix epoch.
    public var finishedAtNanos: UInt64
    public init(reason: String, exitCode: Int32, signal: Int32, finishedAtNanos: UInt64) {
        self.reason = reason
        self.exitCode = exitCode
        self.signal = signal
        self.finishedAtNanos = finishedAtNanos
    }
}

public struct ContainerTermination: Sendable, Hashable {
    public var pod: PodRef
    public var container: String
    public var restartCount: Int
    public var termination: Termination?
    public init(pod: PodRef, container: String, restartCount: Int, termination: Termination?) {
        self.pod = pod
        self.container = container
        self.restartCount = restartCount
        self.termination = termination
    }
}

/// Either side's event, as the correlation engine consumes it.
public enum TapioEvent: Sendable, Hashable {
    case node(NodeEvent)
    case cluster(ClusterEvent)
}
