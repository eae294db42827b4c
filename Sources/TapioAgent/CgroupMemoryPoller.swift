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
    let interval: Duration
    let maxCgroups: Int
    let queue: BoundedQueue<TapioEvent>
    private let counters = Mutex<(events: UInt64, errors: UInt64, last: UInt64, rate: Double)>((0, 0, 0, 0))
    private let task = Mutex<Task<Void, Never>?>(nil)

    public init(interval: Duration, mount: CgroupMount? = CgroupMount.discover(), maxCgroups: Int = 20_000) {
        self.interval = interval
        self.maxCgroups = maxCgroups
        self.mount = mount
        self.queue = BoundedQueue(capacity: 16_384, policy: .dropOldest)
    }

    public func describeHierarchy() -> String {
        guard let m = mount else { return "no memory controller found" }
        return "cgroup \(m.version == .v1 ? "v1" : "v2") at \(m.mountPoint)"
    }

    public func events() -> BoundedQueue<TapioEvent> {
        task.withLock { t in
            if t == nil { t = Task.detached { [self] in await self.loop() } }
        }
        return queue
    }

    public func health() -> SourceHealth {
        let c = counters.withLock { $0 }
        let state: SourceHealth.State = mount == nil ? .failed("no memory cgroup controller mounted") : .running
        return SourceHealth(state: state, lastEventNanos: c.last, events: c.events, errors: c.errors, shed: queue.shed,
                            eventsPerSecond: c.rate)
    }

    private func loop() async {
        guard mount != nil else { return }
        while !Task.isCancelled && !queue.isFinished {
            let started = ContinuousClock.now
            let n = pollOnce()
            counters.withLock { $0.rate = Double(n) }
            try? await Task.sleep(until: started + interval)
        }
    }

    /// Walks the hierarchy once; returns the number of cgroups reported.
    @discardableResult
    public func pollOnce() -> Int {
        guard let mount else { return 0 }
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
        counters.withLock {
            $0.events &+= UInt64(found.count)
            $0.errors &+= errors
            $0.last = now
        }
        return found.count
    }
}
