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
/// hierarchy every `rewalk` (10 s), so new containers are picked up within that, reads the known limited ones every
/// `interval`, and keeps ``limited`` current.
public final class CgroupMemoryPoller: EventSource, Sendable {
    public let name = "cgroup"
    public let limited = LimitedCgroups()
    public let mount: CgroupMount?
    let maxCgroups: Int
    let loop: PollingLoop

    /// How often the whole hierarchy is walked for new limited cgroups (in between, only the known ones are read).
    let rewalk: Duration
    private let state = Mutex<(known: [UInt64: LimitedCgroups.Entry], lastWalk: ContinuousClock.Instant?)>(([:], nil))

    public init(interval: Duration, rewalk: Duration = .seconds(10), mount: CgroupMount? = CgroupMount.discover(),
                maxCgroups: Int = 20_000) {
        self.rewalk = rewalk
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

    /// Reads the limited cgroups the last walk found, and walks the whole hierarchy again every `rewalk` (and on
    /// the first pass): most cgroups have no limit, and a walk stats and lists every one of them.
    private func pollPass() -> (events: Int, errors: UInt64) {
        guard let mount else { return (0, 0) }
        let now = ContinuousClock.now
        let walkDue = state.withLock { s in s.lastWalk.map { now - $0 >= rewalk } ?? true }
        if walkDue { return walk(mount, at: now) }
        let known = state.withLock { $0.known }
        var found: [UInt64: LimitedCgroups.Entry] = [:]
        var errors: UInt64 = 0
        let stamp = MonotonicClock.wallNanos()
        for (id, entry) in known {
            do {
                // Its limit was lifted: no longer ours to watch (the next walk agrees).
                guard let s = try CgroupMemoryReader(directory: mount.mountPoint + entry.path, version: mount.version).sample()
                else { continue }
                found[id] = LimitedCgroups.Entry(path: entry.path, limitBytes: s.limitBytes)
                push(id: id, s, at: stamp)
            } catch {
                errors += 1  // removed since the walk
            }
        }
        state.withLock { $0.known = found }
        limited.replace(found)
        return (found.count, errors)
    }

    private func push(id: UInt64, _ s: (usageBytes: UInt64, workingSetBytes: UInt64, limitBytes: UInt64), at stamp: UInt64) {
        queue.push(.node(NodeEvent(timestampNanos: stamp, pid: 0, cgroupID: id, comm: "", kind: .cgroupMemory(
            .init(usageBytes: s.usageBytes, workingSetBytes: s.workingSetBytes, limitBytes: s.limitBytes)))))
    }

    /// Every cgroup of the hierarchy (up to `maxCgroups`): the limited ones are sampled and remembered.
    private func walk(_ mount: CgroupMount, at now: ContinuousClock.Instant) -> (events: Int, errors: UInt64) {
        var found: [UInt64: LimitedCgroups.Entry] = [:]
        var stack = [""]
        var visited = 0
        var errors: UInt64 = 0
        let stamp = MonotonicClock.wallNanos()
        while let rel = stack.popLast(), visited < maxCgroups {
            visited += 1
            let dir = mount.mountPoint + rel
            guard let handle = opendir(dir) else { continue }
            defer { closedir(handle) }
            if !rel.isEmpty {
                var st = stat()
                if fstat(dirfd(handle), &st) == 0 {
                    do {
                        if let s = try CgroupMemoryReader(directory: dir, version: mount.version).sample() {
                            let id = UInt64(st.st_ino)
                            found[id] = LimitedCgroups.Entry(path: rel, limitBytes: s.limitBytes)
                            push(id: id, s, at: stamp)
                        }
                    } catch {
                        errors += 1  // removed between listing and reading
                    }
                }
            }
            // Child cgroups are the subdirectories; the control files are regular files (d_type says which).
            while let entry = readdir(handle) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                stack.append(rel + "/" + name)
            }
        }
        state.withLock { s in
            s.known = found
            s.lastWalk = now
        }
        limited.replace(found)
        return (found.count, errors)
    }
}
