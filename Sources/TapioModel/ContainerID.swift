/// Container runtime ids as pod status and cgroup paths spell them.
public enum ContainerID {
    /// `containerd://<id>` (a pod status's `containerID`) → `<id>`, lowercase: the form a cgroup path carries.
    public static func normalized(_ id: String) -> String {
        if let r = id.range(of: "://") { return id[r.upperBound...].lowercased() }
        return id.lowercased()
    }
}
