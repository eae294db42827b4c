/// Reads kubelet cgroup layouts (DESIGN.md §5) out of a cgroup path.
///
/// Handles the cgroupfs driver (`/kubepods/burstable/pod<uid>/<id>`), the systemd driver
/// (`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/…`), container leaves
/// of containerd (`<64hex>`, `cri-containerd-<64hex>.scope`), CRI-O (`crio-<64hex>`, `crio-<64hex>.scope`; the
/// `crio-conmon-` monitor is not the container), docker and cri-dockerd (`<64hex>`, `docker-<64hex>.scope`), the
/// `<slice>:<prefix>:<id>` form, and any prefix above the kubepods tree (kind's `/kubelet.slice/kubelet-kubepods.slice`,
/// a nested `/docker/<id>/kubepods/…`). Pure functions; no I/O.
public enum CgroupPathParser {
    /// The identity encoded in `path` (a cgroup path relative to its hierarchy, as `/proc/<pid>/cgroup` shows it).
    public static func identity(of path: String) -> CgroupIdentity {
        var result = CgroupIdentity()
        let components = path.split(separator: "/")
        var sawKubepods = false
        var podIndex: Int? = nil
        for (index, raw) in components.enumerated() {
            let component = raw
            // `kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>`: the slice part and the container part.
            let colonParts = component.split(separator: ":", omittingEmptySubsequences: false)
            let name = colonParts.count == 3 ? colonParts[0] : component
            if name == "kubepods" || name.hasSuffix("kubepods.slice") { sawKubepods = true; continue }
            if podIndex == nil {
                if let (uid, qos) = systemdPod(name) {
                    result.podUID = uid
                    if let qos { result.qos = qos }
                    podIndex = index
                } else if !sawKubepods {
                    // cgroupfs names are only meaningful below a kubepods directory.
                } else if let qos = cgroupfsQoS(name) {
                    result.qos = qos
                } else if let uid = cgroupfsPod(name) {
                    result.podUID = uid
                    podIndex = index
                } else if let qos = systemdQoSSlice(name) {
                    result.qos = qos
                }
            }
            if colonParts.count == 3, index == components.count - 1,
               let runtime = runtime(ofPrefix: colonParts[1]), isContainerID(colonParts[2]) {
                result.containerID = String(colonParts[2])
                result.runtime = runtime
            }
        }
        if result.podUID != nil, result.qos == nil { result.qos = .guaranteed }
        // The container is the leaf, below the pod when there is one.
        if result.containerID == nil, let leaf = components.last,
           podIndex.map({ $0 < components.count - 1 }) ?? (result.podUID == nil) {
            let parent: Substring? = components.count >= 2 ? components[components.count - 2] : nil
            if let (id, runtime) = containerLeaf(leaf, parent: parent, underPod: podIndex != nil) {
                result.containerID = id
                result.runtime = runtime
            }
        }
        return result
    }

    /// True for the cgroups the kubelet makes above its containers: `kubepods` itself, a QoS class and a pod
    /// (cgroupfs or systemd names). The kubelet puts memory limits on them too (node allocatable, the sum of a pod's
    /// container limits), but whatever they hold is in the containers below, which have their own limits: sampling
    /// them would predict each container's OOM twice, once about a cgroup no Insight can name.
    public static func isKubeletAggregate(_ path: String) -> Bool {
        let components = path.split(separator: "/")
        guard let leaf = components.last, identity(of: path).containerID == nil else { return false }
        if leaf == "kubepods" || leaf.hasSuffix("kubepods.slice") { return true }
        if systemdPod(leaf) != nil || systemdQoSSlice(leaf) != nil { return true }
        let underKubepods = components.dropLast().contains { $0 == "kubepods" || $0.hasSuffix("kubepods.slice") }
        return underKubepods && (cgroupfsQoS(leaf) != nil || cgroupfsPod(leaf) != nil)
    }

    /// The pod UID of a cgroupfs pod directory `pod<uid>`.
    static func cgroupfsPod(_ name: Substring) -> String? {
        guard name.hasPrefix("pod") else { return nil }
        let uid = name.dropFirst(3)
        return isPodUID(uid) ? String(uid) : nil
    }

    static func cgroupfsQoS(_ name: Substring) -> QoSClass? {
        switch name {
        case "burstable": .burstable
        case "besteffort": .besteffort
        default: nil
        }
    }

    /// `kubepods-burstable.slice` (also with a `kubelet-` prefix from kind).
    static func systemdQoSSlice(_ name: Substring) -> QoSClass? {
        guard name.hasSuffix(".slice") else { return nil }
        if name.hasSuffix("kubepods-burstable.slice") { return .burstable }
        if name.hasSuffix("kubepods-besteffort.slice") { return .besteffort }
        return nil
    }

    /// `kubepods[-qos]-pod<uid with _>.slice`; nil QoS means the name had none (guaranteed).
    static func systemdPod(_ name: Substring) -> (String, QoSClass?)? {
        guard name.hasSuffix(".slice"), name.contains("kubepods") else { return nil }
        let stem = name.dropLast(6)
        guard let dash = stem.lastIndex(of: "-") else { return nil }
        let last = stem[stem.index(after: dash)...]
        guard last.hasPrefix("pod") else { return nil }
        let uid = String(last.dropFirst(3).map { $0 == "_" ? "-" : $0 })
        guard !last.dropFirst(3).contains("-"), isPodUID(Substring(uid)) else { return nil }
        let head = stem[..<dash]
        let qos: QoSClass? = head.hasSuffix("-burstable") ? .burstable : head.hasSuffix("-besteffort") ? .besteffort : nil
        return (uid, qos)
    }

    /// A container leaf, or nil for lookalikes (conmon, short or uppercase ids).
    static func containerLeaf(_ leaf: Substring, parent: Substring?, underPod: Bool) -> (String, ContainerRuntime?)? {
        if isContainerID(leaf) {
            // Bare ids: containerd and dockerd (cgroupfs) look alike; `/docker/<id>` is a plain docker container.
            if underPod { return (String(leaf), nil) }
            return parent == "docker" ? (String(leaf), .docker) : nil
        }
        if leaf.hasPrefix("crio-conmon-") { return nil }
        for (prefix, runtime) in scopePrefixes where leaf.hasPrefix(prefix) {
            var id = leaf.dropFirst(prefix.utf8.count)
            if id.hasSuffix(".scope") { id = id.dropLast(6) } else if runtime != .crio { continue }
            if isContainerID(id) { return (String(id), runtime) }
        }
        return nil
    }

    private static let scopePrefixes: [(String, ContainerRuntime)] = [
        ("cri-containerd-", .containerd), ("crio-", .crio), ("docker-", .docker),
    ]

    static func runtime(ofPrefix prefix: Substring) -> ContainerRuntime? {
        switch prefix {
        case "cri-containerd", "containerd": .containerd
        case "crio": .crio
        case "docker", "cri-dockerd": .docker
        default: nil
        }
    }

    /// Exactly 64 lowercase hex digits (runtimes print ids lowercase; uppercase is not an id).
    public static func isContainerID(_ s: some StringProtocol) -> Bool {
        var count = 0
        for c in s.utf8 {
            guard (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) else { return false }
            count += 1
        }
        return count == 64
    }

    /// A UUID (8-4-4-4-12 lowercase hex) or a static pod's 32-hex config hash.
    static func isPodUID(_ s: Substring) -> Bool {
        let bytes = Array(s.utf8)
        func hex(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) }
        if bytes.count == 32 { return bytes.allSatisfy(hex) }
        guard bytes.count == 36 else { return false }
        for (i, c) in bytes.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 { if c != UInt8(ascii: "-") { return false } } else if !hex(c) { return false }
        }
        return true
    }
}
