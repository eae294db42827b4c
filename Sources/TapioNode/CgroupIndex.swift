import Synchronization
import TapioModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Maps cgroup ids (directory inodes, as BPF reports them) to cgroup paths by walking the memory hierarchy.
///
/// Paths of cgroups that have since been removed stay resolvable for `retention` after they were last seen, so
/// events of exited containers still attribute. A miss triggers a walk at most once per `minimumRewalkInterval`.
/// Thread-safe.
public final class CgroupIndex: Sendable {
    public let mount: CgroupMount
    let retentionNanos: UInt64
    let minimumRewalkNanos: UInt64
    let maximumEntries: Int
    let clock: @Sendable () -> UInt64

    struct Entry { var path: String; var lastSeen: UInt64 }
    struct State {
        var byID: [UInt64: Entry] = [:]
        /// The reverse map for cgroups present at the last walk or lookup, so a pid lookup can skip a stat.
        var byPath: [String: (id: UInt64, lastSeen: UInt64)] = [:]
        var lastWalk: UInt64? = nil
        var walks: UInt64 = 0
        var truncatedWalks: UInt64 = 0
    }
    let state = Mutex(State())

    /// - Parameters:
    ///   - clock: monotonic nanoseconds (injected for tests).
    public init(mount: CgroupMount, retention: Duration = .seconds(600), minimumRewalkInterval: Duration = .seconds(1),
                maximumEntries: Int = 200_000, clock: @escaping @Sendable () -> UInt64 = MonotonicClock.coarseNanos) {
        self.mount = mount
        self.retentionNanos = retention.nanos
        self.minimumRewalkNanos = minimumRewalkInterval.nanos
        self.maximumEntries = maximumEntries
        self.clock = clock
    }

    /// Cgroups known by id (removed ones kept for the retention) and by path (present at the last walk).
    public var entries: (ids: Int, paths: Int) { state.withLock { ($0.byID.count, $0.byPath.count) } }

    /// Number of full walks of the hierarchy so far.
    public var walkCount: UInt64 { state.withLock { $0.walks } }
    /// Walks that stopped at `maximumEntries` directories (a node where something makes cgroups without end).
    public var truncatedWalkCount: UInt64 { state.withLock { $0.truncatedWalks } }

    /// The cgroup path (relative to the hierarchy, like `/proc/<pid>/cgroup`) of `id`, walking the hierarchy when
    /// the id is unknown and the last walk is old enough.
    public func path(forID id: UInt64) -> String? {
        let now = clock()
        let (cached, mayWalk) = state.withLock { s -> (String?, Bool) in
            if let e = s.byID[id] { return (e.path, false) }
            return (nil, s.lastWalk.map { now &- $0 >= minimumRewalkNanos } ?? true)
        }
        if let cached { return cached }
        guard mayWalk else { return nil }
        refresh()
        return state.withLock { $0.byID[id]?.path }
    }

    /// The path of `id` if a walk or a pid lookup has seen it; never walks.
    public func knownPath(forID id: UInt64) -> String? {
        state.withLock { $0.byID[id]?.path }
    }

    /// Records a directory seen elsewhere (a pid lookup), so its id resolves without a walk.
    public func remember(id: UInt64, path: String) {
        let now = clock()
        state.withLock { s in
            if s.byID.count >= maximumEntries, s.byID[id] == nil { return }
            s.byID[id] = Entry(path: path, lastSeen: now)
            s.byPath[path] = (id, now)
        }
    }

    /// The id of the cgroup at `path` if it was seen (by a walk or ``remember(id:path:)``) within `maxAge`; nil
    /// otherwise, and the caller stats the directory. Bounded age because a service restart recreates its cgroup
    /// under the same path with a new inode.
    public func id(forPath path: String, maxAge: UInt64) -> UInt64? {
        let now = clock()
        return state.withLock { s in
            guard let e = s.byPath[path], now &- e.lastSeen <= maxAge else { return nil }
            return e.id
        }
    }

    /// Walks the whole hierarchy now: adds new cgroups, refreshes seen ones, forgets removed ones older than the
    /// retention.
    public func refresh() {
        let now = clock()
        var found: [(UInt64, String)] = []
        // The walk holds what it finds until the end: it stops at the cap rather than after the whole tree.
        let truncated = !walk(directory: mount.mountPoint, into: &found)
        state.withLock { s in
            if truncated { s.truncatedWalks &+= 1 }
            for (id, dir) in found where s.byID.count < maximumEntries || s.byID[id] != nil {
                let path = mount.cgroupPath(forDirectory: dir)
                s.byID[id] = Entry(path: path, lastSeen: now)
                s.byPath[path] = (id, now)
            }
            s.byID = s.byID.filter { now &- $0.value.lastSeen <= retentionNanos }
            // Paths not seen in this walk are gone (or will get a new inode): only ids outlive their cgroup.
            s.byPath = s.byPath.filter { $0.value.lastSeen == now }
            s.lastWalk = now
            s.walks &+= 1
        }
    }

    /// Adds `directory` and the cgroups below it to `found`; false when it stopped at `maximumEntries`.
    ///
    /// The order decides what a walk cut at the cap still knows, so it is the kubelet's tree first (a directory
    /// named `kubepods…` at any depth — the cgroupfs and systemd drivers' names, under a `--cgroup-root` too — or
    /// `kubelet…`, as kind nests it), each level before the next: pods and their containers sit three or four levels
    /// down, and a runaway elsewhere on the node (a service making cgroups without end, a pod nesting them deep) then
    /// costs the other cgroups' attribution, not the pods'. Breadth-first with a queue rather than recursion also
    /// keeps a deep nest from growing the stack.
    private func walk(directory root: String, into found: inout [(UInt64, String)]) -> Bool {
        guard found.count < maximumEntries else { return false }
        var st = stat()
        guard stat(root, &st) == 0 else { return true }
        found.append((UInt64(st.st_ino), root))
        // Two queues of directories still to list: the kubelet's subtrees, then the rest. Each holds only
        // directories already in `found`, so neither outgrows the cap.
        var kubelet: [String] = [], other: [String] = [root]
        var kubeletHead = 0, otherHead = 0
        while true {
            let directory: String, inKubelet: Bool
            if kubeletHead < kubelet.count {
                directory = kubelet[kubeletHead]; kubeletHead += 1; inKubelet = true
            } else if otherHead < other.count {
                directory = other[otherHead]; otherHead += 1; inKubelet = false
            } else {
                return true
            }
            guard let dir = opendir(directory) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                guard found.count < maximumEntries else { return false }
                guard fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                let path = directory + "/" + name
                found.append((UInt64(st.st_ino), path))
                if inKubelet || name.contains("kubepods") || name.hasPrefix("kubelet") {
                    kubelet.append(path)
                } else {
                    other.append(path)
                }
            }
        }
    }
}
