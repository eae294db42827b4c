import Foundation
import Synchronization
import TapioCorrelation
import TapioModel
import TapioNode

/// The memory cgroups with a limit, by id (the directory's inode, as the BPF probes report it) — the ones that can
/// be OOM-killed by their own limit, and so the local subjects worth a prediction.
public final class LimitedCgroups: Sendable {
    public struct Entry: Sendable, Hashable {
        /// Path relative to the hierarchy's mount, e.g. `/kubepods/burstable/pod…/…` or `/system.slice/x.service`.
        public var path: String
        public var limitBytes: UInt64
    }
    private let entries = Mutex<[UInt64: Entry]>([:])
    public init() {}
    public func lookup(_ id: UInt64) -> Entry? { entries.withLock { $0[id] } }
    func replace(_ new: [UInt64: Entry]) { entries.withLock { $0 = new } }
    public var count: Int { entries.withLock { $0.count } }
}

/// Polls the memory controller of every cgroup that has a memory limit (v1 or v2, through TapioNode's readers):
/// usage, working set and limit as `cgroupMemory` events — the series OOM predictions are made from. Walks the
/// hierarchy each time, so new containers are picked up within one interval, and keeps ``limited`` current.
public final class CgroupMemoryPoller: EventSource, Sendable {
    public let name = "cgroup"
    public let limited = LimitedCgroups()
    public let mount: CgroupMount?
    let maxCgroups: Int
    let loop: PollingLoop

    public init(interval: Duration, mount: CgroupMount? = CgroupMount.discover(), maxCgroups: Int = 20_000) {
        self.maxCgroups = maxCgroups
        self.mount = mount
        self.loop = PollingLoop(interval: interval, capacity: 16_384)
    }

    var queue: BoundedQueue<TapioEvent> { loop.queue }

    public func describeHierarchy() -> String {
        guard let m = mount else { return "no memory controller found" }
        return "cgroup \(m.version == .v1 ? "v1" : "v2") at \(m.mountPoint)"
    }

    public func events() -> BoundedQueue<TapioEvent> {
        guard mount != nil else { return loop.queue }
        return loop.start { [self] in pollPass() }
    }

    public func health() -> SourceHealth {
        loop.health(failure: mount == nil ? "no memory cgroup controller mounted" : nil)
    }

    /// Walks the hierarchy once; returns the number of cgroups reported.
    @discardableResult
    public func pollOnce() -> Int { pollPass().events }

    private func pollPass() -> (events: Int, errors: UInt64) {
        guard let mount else { return (0, 0) }
        var found: [UInt64: LimitedCgroups.Entry] = [:]
        var stack = [""]
        var visited = 0
        var errors: UInt64 = 0
        let now = MonotonicClock.wallNanos()
        while let rel = stack.popLast(), visited < maxCgroups {
            visited += 1
            let dir = mount.mountPoint + rel
            var st = stat()
            guard stat(dir, &st) == 0 else { continue }
            if !rel.isEmpty {
                let reader = CgroupMemoryReader(directory: dir, version: mount.version)
                do {
                    let stats = try reader.read()
                    if let limit = stats.limitBytes {
                        let id = UInt64(st.st_ino)
                        found[id] = LimitedCgroups.Entry(path: rel, limitBytes: limit)
                        queue.push(.node(NodeEvent(timestampNanos: now, pid: 0, cgroupID: id, comm: "", kind: .cgroupMemory(
                            .init(usageBytes: stats.usageBytes, workingSetBytes: stats.workingSetBytes, limitBytes: limit)))))
                    }
                } catch {
                    errors += 1  // removed between listing and reading
                }
            }
            guard let children = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for c in children where !c.hasPrefix("memory.") && !c.hasPrefix("cgroup.") && !c.hasPrefix("tasks")
                && !c.hasPrefix("notify_on_release") && !c.hasPrefix("release_agent") && !c.hasPrefix("cpu")
                && !c.hasPrefix("io.") && !c.hasPrefix("pids.") && !c.hasPrefix("hugetlb.") && !c.hasPrefix("rdma.")
                && !c.hasPrefix("misc.") {
                var cst = stat()
                if stat(dir + "/" + c, &cst) == 0, (cst.st_mode & S_IFMT) == S_IFDIR { stack.append(rel + "/" + c) }
            }
        }
        limited.replace(found)
        return (found.count, errors)
    }
}
