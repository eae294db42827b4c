/// Where a cgroup hierarchy holding the memory controller is mounted.
public struct CgroupMount: Sendable, Hashable {
    public var version: CgroupVersion
    /// Absolute mount point, e.g. `/sys/fs/cgroup/memory` (v1) or `/sys/fs/cgroup` (v2).
    public var mountPoint: String
    /// The hierarchy path mounted there (`/` except inside containers, where it can be `/docker/<id>`).
    public var root: String

    public init(version: CgroupVersion, mountPoint: String, root: String = "/") {
        self.version = version
        self.mountPoint = mountPoint
        self.root = root
    }

    /// The directory of a cgroup path as `/proc/<pid>/cgroup` names it.
    public func directory(forCgroupPath path: String) -> String {
        var relative = Substring(path)
        if root != "/", relative.hasPrefix(root) { relative = relative.dropFirst(root.utf8.count) }
        if relative.isEmpty || relative == "/" { return mountPoint }
        return mountPoint + (relative.hasPrefix("/") ? "" : "/") + relative
    }

    /// The cgroup path (as `/proc/<pid>/cgroup` would name it) of a directory below the mount point.
    public func cgroupPath(forDirectory directory: String) -> String {
        let tail = directory.dropFirst(mountPoint.utf8.count)
        let base = root == "/" ? "" : root
        return tail.isEmpty ? (root == "/" ? "/" : root) : base + tail
    }

    /// The memory hierarchy in the text of `/proc/self/mountinfo`: a v1 `cgroup` mount with the `memory` option, or
    /// else the `cgroup2` mount when `hasMemoryController(mountPoint)` says its root offers memory.
    public static func memoryMount(mountinfo: String,
                                   hasMemoryController: (String) -> Bool = CgroupMount.unifiedHasMemory) -> CgroupMount? {
        var unified: CgroupMount? = nil
        for line in mountinfo.split(separator: "\n") {
            // `id parent maj:min root mountpoint options [optional…] - fstype source superoptions`
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let root = unescape(left[3]), point = unescape(left[4])
            switch right[0] {
            case "cgroup" where right[2].split(separator: ",").contains("memory"):
                return CgroupMount(version: .v1, mountPoint: point, root: root)
            case "cgroup2" where unified == nil && hasMemoryController(point):
                unified = CgroupMount(version: .v2, mountPoint: point, root: root)
            default: continue
            }
        }
        return unified
    }

    /// Finds the memory hierarchy of this machine from `/proc/self/mountinfo`.
    public static func discover(mountinfoPath: String = "/proc/self/mountinfo") -> CgroupMount? {
        guard case .success(let text) = FileIO.read(mountinfoPath, limit: 1 << 22) else { return nil }
        return memoryMount(mountinfo: text)
    }

    /// True when the unified hierarchy at `mountPoint` lists `memory` in `cgroup.controllers`.
    @Sendable public static func unifiedHasMemory(_ mountPoint: String) -> Bool {
        guard case .success(let text) = FileIO.read(mountPoint + "/cgroup.controllers") else { return false }
        return text.split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("memory")
    }

    /// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var it = Array(field.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "\\"), it.count >= 3, let v = UInt8(String(decoding: it.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(v)
                it = it.dropFirst(3)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
