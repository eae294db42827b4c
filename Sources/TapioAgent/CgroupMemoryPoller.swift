import Foundation
import Synchronization
import TapioCorrelation
import TapioModel

/// Which memory cgroups this machine has, by id (the directory's inode, as the BPF probes report it).
public final class CgroupIndex: Sendable {
    public struct Entry: Sendable, Hashable {
        /// Path relative to the hierarchy's mount, e.g. `/kubepods/burstable/pod…/…` or `/system.slice/x.service`.
        public var path: String
        public var limitBytes: UInt64?
    }
    private let entries = Mutex<[UInt64: Entry]>([:])
    public init() {}
    public func lookup(_ id: UInt64) -> Entry? { entries.withLock { $0[id] } }
    func replace(_ new: [UInt64: Entry]) { entries.withLock { $0 = new } }
    public var count: Int { entries.withLock { $0.count } }
}

/// Polls the memory controller's files of every cgroup that has a memory limit (cgroup v1 or v2): usage,
/// working set (usage − inactive file, as the kubelet computes it) and limit, as `cgroupMemory` events —
/// the series OOM predictions are made from. Also keeps ``index`` current for attribution.
public final class CgroupMemoryPoller: EventSource, Sendable {
    public enum Hierarchy: Sendable, Hashable {
        case v1(String)
        case v2(String)
        case none
    }

    public let name = "cgroup"
    public let index = CgroupIndex()
    public let hierarchy: Hierarchy
    let interval: Duration
    let maxCgroups: Int
    let queue: BoundedQueue<TapioEvent>
    private let counters = Mutex<(events: UInt64, errors: UInt64, last: UInt64, rate: Double)>((0, 0, 0, 0))
    private let task = Mutex<Task<Void, Never>?>(nil)

    public init(interval: Duration, root: String = "/sys/fs/cgroup", maxCgroups: Int = 20_000) {
        self.interval = interval
        self.maxCgroups = maxCgroups
        self.hierarchy = Self.detect(root: root)
        self.queue = BoundedQueue(capacity: 16_384, policy: .dropOldest)
    }

    /// v1 when the memory controller has its own mount under `root`, v2 when the unified root lists `memory`.
    static func detect(root: String) -> Hierarchy {
        if FileManager.default.fileExists(atPath: root + "/memory/memory.limit_in_bytes") { return .v1(root + "/memory") }
        if let c = readSmall(root + "/cgroup.controllers"), c.split(separator: " ").contains(where: { $0.hasPrefix("memory") }) {
            return .v2(root)
        }
        if let c = readSmall(root + "/unified/cgroup.controllers"), c.contains("memory") { return .v2(root + "/unified") }
        return .none
    }

    public func describeHierarchy() -> String {
        switch hierarchy {
        case .v1(let p): "cgroup v1 at \(p)"
        case .v2(let p): "cgroup v2 at \(p)"
        case .none: "no memory controller found"
        }
    }

    public func events() -> BoundedQueue<TapioEvent> {
        task.withLock { t in
            if t == nil { t = Task.detached { [self] in await self.loop() } }
        }
        return queue
    }

    public func health() -> SourceHealth {
        let c = counters.withLock { $0 }
        let state: SourceHealth.State = hierarchy == .none ? .failed("no memory cgroup controller mounted") : .running
        return SourceHealth(state: state, lastEventNanos: c.last, events: c.events, errors: c.errors, shed: queue.shed,
                            eventsPerSecond: c.rate)
    }

    private func loop() async {
        guard hierarchy != .none else { return }
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
        let (mount, v2): (String, Bool) = switch hierarchy {
        case .v1(let p): (p, false)
        case .v2(let p): (p, true)
        case .none: ("", false)
        }
        guard !mount.isEmpty else { return 0 }
        var found: [UInt64: CgroupIndex.Entry] = [:]
        var stack = [""]
        let now = wallNanos()
        var reported = 0
        while let rel = stack.popLast(), found.count < maxCgroups {
            let dir = mount + rel
            guard let id = inode(dir) else { continue }
            let limit = readLimit(dir, v2: v2)
            found[id] = CgroupIndex.Entry(path: rel.isEmpty ? "/" : rel, limitBytes: limit)
            // Only limited cgroups can be OOM-killed by their own limit: those are the ones worth a series.
            if limit != nil, let usage = readUInt(dir + (v2 ? "/memory.current" : "/memory.usage_in_bytes")) {
                let inactive = statValue(dir + "/memory.stat", key: v2 ? "inactive_file" : "total_inactive_file") ?? 0
                let ws = usage > inactive ? usage - inactive : 0
                queue.push(.node(NodeEvent(timestampNanos: now, pid: 0, cgroupID: id, comm: "",
                                           kind: .cgroupMemory(.init(usageBytes: usage, workingSetBytes: ws, limitBytes: limit)))))
                reported += 1
            }
            if let children = try? FileManager.default.contentsOfDirectory(atPath: dir) {
                for c in children where !c.contains(".") || c.hasSuffix(".slice") || c.hasSuffix(".scope") || c.hasSuffix(".service") {
                    var isDir: ObjCBool = false
                    if FileManager.default.fileExists(atPath: dir + "/" + c, isDirectory: &isDir), isDir.boolValue {
                        stack.append(rel + "/" + c)
                    }
                }
            }
        }
        index.replace(found)
        counters.withLock {
            $0.events &+= UInt64(reported)
            $0.last = now
        }
        return reported
    }

    func readLimit(_ dir: String, v2: Bool) -> UInt64? {
        if v2 {
            guard let s = readSmall(dir + "/memory.max")?.trimmingCharacters(in: .whitespacesAndNewlines), s != "max" else { return nil }
            return UInt64(s)
        }
        // v1 reports "unlimited" as a huge page-aligned number (PAGE_COUNTER_MAX × page size).
        guard let v = readUInt(dir + "/memory.limit_in_bytes"), v < (1 << 62) else { return nil }
        return v
    }
}

func readUInt(_ path: String) -> UInt64? {
    readSmall(path).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
}

func statValue(_ path: String, key: String) -> UInt64? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: " ")
        if parts.count == 2, parts[0] == key { return UInt64(parts[1]) }
    }
    return nil
}

func inode(_ path: String) -> UInt64? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return UInt64(st.st_ino)
}
