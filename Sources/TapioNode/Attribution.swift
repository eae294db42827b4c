import TapioModel

/// Who a pid or cgroup id belongs to: always the cgroup, and as much of container and pod as is known.
///
/// A final class with immutable fields, so a cached lookup hands out one reference (one retain) rather than copying
/// a dozen strings; many pids of one container share one instance.
public final class Attribution: Sendable, Hashable, CustomStringConvertible {
    /// The memory cgroup id (directory inode); 0 when it could not be read.
    public let cgroupID: UInt64
    /// The cgroup path relative to its hierarchy, e.g. `/kubepods/burstable/pod<uid>/<id>` or `/system.slice/foo.service`.
    public let cgroupPath: String
    public let podUID: String?
    public let qos: QoSClass?
    public let containerID: String?
    public let runtime: ContainerRuntime?
    /// Filled from the ``PodDirectory`` when the cluster side knows the container (or the pod, for pod-level cgroups).
    public let pod: PodRef?
    public let containerName: String?
    public let owner: OwnerRef?
    public let node: String?

    public init(cgroupID: UInt64, cgroupPath: String, identity: CgroupIdentity, pod: PodRef? = nil,
                containerName: String? = nil, owner: OwnerRef? = nil, node: String? = nil) {
        self.cgroupID = cgroupID
        self.cgroupPath = cgroupPath
        self.podUID = identity.podUID
        self.qos = identity.qos
        self.containerID = identity.containerID
        self.runtime = identity.runtime
        self.pod = pod
        self.containerName = containerName
        self.owner = owner
        self.node = node
    }

    public var identity: CgroupIdentity { CgroupIdentity(podUID: podUID, qos: qos, containerID: containerID, runtime: runtime) }

    /// Builds the attribution of a cgroup, joined with the directory when one is given.
    public static func make(cgroupID: UInt64, cgroupPath: String, directory: PodDirectory?) -> Attribution {
        join(cgroupID: cgroupID, cgroupPath: cgroupPath, identity: CgroupPathParser.identity(of: cgroupPath), directory: directory)
    }

    static func join(cgroupID: UInt64, cgroupPath: String, identity: CgroupIdentity, directory: PodDirectory?) -> Attribution {
        if let directory, let id = identity.containerID, let c = directory.container(id: id) {
            var identity = identity
            if identity.podUID == nil { identity.podUID = c.pod.uid }
            return Attribution(cgroupID: cgroupID, cgroupPath: cgroupPath, identity: identity, pod: c.pod,
                               containerName: c.containerName, owner: c.owner, node: c.node)
        }
        if let directory, let uid = identity.podUID, let info = directory.pod(uid: uid) {
            return Attribution(cgroupID: cgroupID, cgroupPath: cgroupPath, identity: identity, pod: info.pod,
                               owner: PodDirectory.resolveOwner(info.owner), node: info.node)
        }
        return Attribution(cgroupID: cgroupID, cgroupPath: cgroupPath, identity: identity)
    }

    /// Approximate heap bytes this object holds (object header, fields, out-of-line string storage).
    public var estimatedBytes: Int {
        func s(_ v: String?) -> Int { guard let v, v.utf8.count > 15 else { return 0 }; return 32 + v.utf8.count }
        return 16 + 8 + 16 + 17 + 2 + 17 + 49 + 17 + 33 + 17
            + s(cgroupPath) + s(podUID) + s(containerID) + s(pod?.namespace) + s(pod?.name) + s(pod?.uid)
            + s(containerName) + s(owner?.name) + s(owner?.kind) + s(node)
    }

    public static func == (a: Attribution, b: Attribution) -> Bool {
        a === b || (a.cgroupID == b.cgroupID && a.cgroupPath == b.cgroupPath && a.identity == b.identity && a.pod == b.pod
            && a.containerName == b.containerName && a.owner == b.owner && a.node == b.node)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(cgroupID)
        hasher.combine(cgroupPath)
    }

    public var description: String {
        var parts = ["cgroup=\(cgroupPath)"]
        if let pod { parts.append("pod=\(pod.namespace)/\(pod.name)") } else if let podUID { parts.append("podUID=\(podUID)") }
        if let containerName { parts.append("container=\(containerName)") }
        if let containerID { parts.append("id=\(containerID.prefix(12))") }
        return parts.joined(separator: " ")
    }
}
