/// The Kubernetes QoS class a kubelet encodes in a pod's cgroup path.
public enum QoSClass: String, Sendable, Hashable, Codable {
    case guaranteed, burstable, besteffort
}

/// The container runtime a cgroup leaf names. `nil` in an ``CgroupIdentity`` means the leaf was a bare 64-hex id
/// (cgroupfs driver), which containerd and dockerd both use.
public enum ContainerRuntime: String, Sendable, Hashable, Codable {
    case containerd, crio, docker
}

/// What a cgroup path says about Kubernetes: everything is optional because plain cgroups
/// (`/system.slice/foo.service`) and local containers are subjects too.
public struct CgroupIdentity: Sendable, Hashable {
    /// The pod UID with dashes (systemd's `_` turned back into `-`).
    public var podUID: String?
    public var qos: QoSClass?
    /// The 64-hex container id, lowercase.
    public var containerID: String?
    public var runtime: ContainerRuntime?

    public init(podUID: String? = nil, qos: QoSClass? = nil, containerID: String? = nil, runtime: ContainerRuntime? = nil) {
        self.podUID = podUID
        self.qos = qos
        self.containerID = containerID
        self.runtime = runtime
    }
}
