import Foundation

// Built-in kinds, with only the fields Tapio reads or writes. Synthesized Decodable ignores everything else.

public struct ResourceRequirements: Codable, Sendable, Hashable {
    public var limits: [String: String]?
    public var requests: [String: String]?
    public init(limits: [String: String]? = nil, requests: [String: String]? = nil) {
        self.limits = limits; self.requests = requests
    }
}

public struct Container: Codable, Sendable, Hashable {
    public var name: String
    public var image: String?
    public var resources: ResourceRequirements?
    public init(name: String, image: String? = nil, resources: ResourceRequirements? = nil) {
        self.name = name; self.image = image; self.resources = resources
    }
}

public struct PodSpec: Codable, Sendable, Hashable {
    public var nodeName: String?
    public var containers: [Container]
    public var restartPolicy: String?
    public var serviceAccountName: String?
    public init(nodeName: String? = nil, containers: [Container], restartPolicy: String? = nil) {
        self.nodeName = nodeName; self.containers = containers; self.restartPolicy = restartPolicy
    }
}

public struct ContainerState: Codable, Sendable, Hashable {
    public struct Waiting: Codable, Sendable, Hashable { public var reason: String?; public var message: String? }
    public struct Running: Codable, Sendable, Hashable { public var startedAt: String? }
    public struct Terminated: Codable, Sendable, Hashable {
        public var exitCode: Int32
        public var signal: Int32?
        public var reason: String?
        public var message: String?
        public var startedAt: String?
        public var finishedAt: String?
        public var containerID: String?
    }
    public var waiting: Waiting?
    public var running: Running?
    public var terminated: Terminated?
}

public struct ContainerStatus: Codable, Sendable, Hashable {
    public var name: String
    public var containerID: String?
    public var image: String?
    public var ready: Bool?
    public var restartCount: Int32?
    public var state: ContainerState?
    public var lastState: ContainerState?
    public init(name: String, containerID: String? = nil, ready: Bool? = nil, restartCount: Int32? = nil) {
        self.name = name; self.containerID = containerID; self.ready = ready; self.restartCount = restartCount
    }
}

public struct PodStatus: Codable, Sendable, Hashable {
    public var phase: String?
    /// Why the pod is in this phase, e.g. `Evicted` (set by the kubelet), and in words.
    public var reason: String?
    public var message: String?
    public var podIP: String?
    public var hostIP: String?
    public var qosClass: String?
    public var conditions: [Condition]?
    public var containerStatuses: [ContainerStatus]?
    public var initContainerStatuses: [ContainerStatus]?
    public init(phase: String? = nil) { self.phase = phase }
}

/// `v1/Pod`.
public struct Pod: KubeResource, Hashable {
    public static let apiVersion = "v1", kind = "Pod", plural = "pods"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: PodSpec?
    public var status: PodStatus?
    public init(metadata: ObjectMeta, spec: PodSpec? = nil, status: PodStatus? = nil) {
        self.metadata = metadata; self.spec = spec; self.status = status
    }
}

public struct NodeStatus: Codable, Sendable, Hashable {
    public var conditions: [Condition]?
    public var capacity: [String: String]?
    public var allocatable: [String: String]?
    public init(conditions: [Condition]? = nil) { self.conditions = conditions }
}

public struct NodeSpec: Codable, Sendable, Hashable {
    public var podCIDR: String?
    public var unschedulable: Bool?
    public var providerID: String?
    public init() {}
}

/// `v1/Node` (cluster-scoped).
public struct Node: KubeResource, Hashable {
    public static let apiVersion = "v1", kind = "Node", plural = "nodes"
    public static let namespaced = false
    public var metadata: ObjectMeta
    public var spec: NodeSpec?
    public var status: NodeStatus?
    public init(metadata: ObjectMeta, spec: NodeSpec? = nil, status: NodeStatus? = nil) {
        self.metadata = metadata; self.spec = spec; self.status = status
    }
}

/// `v1/Namespace` (cluster-scoped).
public struct Namespace: KubeResource, Hashable {
    public struct Status: Codable, Sendable, Hashable { public var phase: String? }
    public static let apiVersion = "v1", kind = "Namespace", plural = "namespaces"
    public static let namespaced = false
    public var metadata: ObjectMeta
    public var status: Status?
    public init(metadata: ObjectMeta) { self.metadata = metadata }
}

/// `events.k8s.io/v1` Event.
public struct Event: KubeResource, Hashable {
    public struct Series: Codable, Sendable, Hashable {
        public var count: Int32
        public var lastObservedTime: String
        public init(count: Int32, lastObservedTime: String) { self.count = count; self.lastObservedTime = lastObservedTime }
    }
    public static let apiVersion = "events.k8s.io/v1", kind = "Event", plural = "events"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var eventTime: String?
    public var series: Series?
    public var reportingController: String?
    public var reportingInstance: String?
    public var action: String?
    public var reason: String?
    public var regarding: ObjectReference?
    public var related: ObjectReference?
    public var note: String?
    public var type: String?
    public var deprecatedCount: Int32?
    public init(metadata: ObjectMeta) { self.metadata = metadata }
}

/// `coordination.k8s.io/v1` Lease.
public struct Lease: KubeResource, Hashable {
    public struct Spec: Codable, Sendable, Hashable {
        public var holderIdentity: String?
        public var leaseDurationSeconds: Int32?
        public var acquireTime: String?
        public var renewTime: String?
        public var leaseTransitions: Int32?
        public init() {}
    }
    public static let apiVersion = "coordination.k8s.io/v1", kind = "Lease", plural = "leases"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public init(metadata: ObjectMeta, spec: Spec? = nil) { self.metadata = metadata; self.spec = spec }
}

public struct PodTemplateSpec: Codable, Sendable, Hashable {
    public var metadata: ObjectMeta?
    public var spec: PodSpec?
    public init(metadata: ObjectMeta? = nil, spec: PodSpec? = nil) { self.metadata = metadata; self.spec = spec }
}

public struct WorkloadStatus: Codable, Sendable, Hashable {
    public var replicas: Int32?
    public var readyReplicas: Int32?
    public var availableReplicas: Int32?
    public var updatedReplicas: Int32?
    public var observedGeneration: Int64?
    public init() {}
}

/// `apps/v1` Deployment.
public struct Deployment: KubeResource, Hashable {
    public struct Spec: Codable, Sendable, Hashable {
        public var replicas: Int32?
        public var selector: LabelSelector
        public var template: PodTemplateSpec
        public init(replicas: Int32? = nil, selector: LabelSelector, template: PodTemplateSpec) {
            self.replicas = replicas; self.selector = selector; self.template = template
        }
    }
    public static let apiVersion = "apps/v1", kind = "Deployment", plural = "deployments"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: WorkloadStatus?
    public init(metadata: ObjectMeta, spec: Spec? = nil) { self.metadata = metadata; self.spec = spec }
}

/// `apps/v1` StatefulSet.
public struct StatefulSet: KubeResource, Hashable {
    public struct Spec: Codable, Sendable, Hashable {
        public var replicas: Int32?
        public var serviceName: String?
        public var selector: LabelSelector
        public var template: PodTemplateSpec
        public init(replicas: Int32? = nil, serviceName: String? = nil, selector: LabelSelector, template: PodTemplateSpec) {
            self.replicas = replicas; self.serviceName = serviceName; self.selector = selector; self.template = template
        }
    }
    public static let apiVersion = "apps/v1", kind = "StatefulSet", plural = "statefulsets"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: WorkloadStatus?
    public init(metadata: ObjectMeta, spec: Spec? = nil) { self.metadata = metadata; self.spec = spec }
}
