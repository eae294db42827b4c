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
    private let walkWanted = Atomic<Bool>(false)
    public init() {}
    public func lookup(_ id: UInt64) -> Entry? { entries.withLock { $0[id] } }
    func replace(_ new: [UInt64: Entry]) { entries.withLock { $0 = new } }
    public var count: Int { entries.withLock { $0.count } }
    /// Asks the poller to walk the kubelet's subtrees soon (within `minWalkGap`), e.g. because a pod on this node
    /// changed and may have a container the last walk did not see.
    public func requestWalk() { walkWanted.store(true, ordering: .relaxed) }
    func takeWalkRequest() -> Bool { walkWanted.exchange(false, ordering: .relaxed) }
}

/// Polls the memory controller of every cgroup that has a memory limit (v1 or v2, through TapioNode's readers):
/// usage, working set and limit as `cgroupMemory` events — the series OOM predictions are made from. Walks the
/// kubelet's subtrees (`kubepods`, `kubepods.slice`) when a pod on the node changed (``LimitedCgroups/requestWalk()``,
/// at most every `minWalkGap`, 2 s) and otherwise every `rewalk` (30 s), so a new pod's containers are picked up
/// as soon as its status names them, and the whole hierarchy every `fullRewalk` (60 s: a node's system services
/// come and go rarely, and on a host with hundreds of them walking them all every 10 s was the agent's largest
/// cost at rest); reads the known limited ones every `interval`, and keeps ``limited`` current. Of each cgroup's
/// samples it sends only those that tell the engine something (``UnchangedSampleFilter``): a change, or the first of
/// an engine bucket or a minute — so an idle container costs one event per bucket, not one a second.
public final class CgroupMemoryPoller: EventSource, Sendable {
    public let name = "cgroup"
    public let limited = LimitedCgroups()
    public let mount: CgroupMount?
    let maxCgroups: Int
    let loop: PollingLoop
    /// The engine's bucket width (``TapioCorrelation/CorrelationConfig/bucketNanos``): an unchanged sample is sent
    /// once per bucket. Follows the policy's window (``setSeriesBucket(nanos:)``).
    private let bucketNanos: Atomic<UInt64>

    /// How often the kubelet's subtrees are walked for new limited cgroups (in between, only the known ones are read).
    let rewalk: Duration
    /// The least time between walks asked for by ``LimitedCgroups/requestWalk()`` (a burst of pod updates is one walk).
    let minWalkGap: Duration
    /// How often the whole hierarchy is.
    let fullRewalk: Duration
    /// The limited cgroups of the last walk, each with its files kept open (``CgroupMemoryHandle``); when the
    /// last walk and the last full one were; the kubelet's subtrees the last full walk found.
    private let state = Mutex<WalkState>(WalkState())
    struct WalkState {
        var known: [UInt64: Known] = [:]
        var lastWalk: ContinuousClock.Instant?
        var lastFullWalk: ContinuousClock.Instant?
        var kubeRoots: [String] = []
        /// A walk was asked for before `minWalkGap` had passed since the last one.
        var walkDeferred = false
        /// Walks that stopped at `maxCgroups` with cgroups left unvisited.
        var truncatedWalks: UInt64 = 0
    }
    /// Whether each path of the last walk is a kubelet aggregate: parsing every path again at every walk was a tenth
    /// of the agent's CPU at rest (506 cgroups on this machine's host). At most `maxCgroups` entries.
    private let aggregates = Mutex<[String: Bool]>([:])

    /// Walks that stopped at the cap (`maxCgroups`) with cgroups left: those past it go unsampled
    /// (`tapio_events_shed{stage="cgroup_poller_walk"}`).
    public var truncatedWalkCount: UInt64 { state.withLock { $0.truncatedWalks } }

    struct Known: Sendable {
        var entry: LimitedCgroups.Entry
        var handle: CgroupMemoryHandle
        var filter = UnchangedSampleFilter()
    }

    /// - Parameter bucketNanos: the engine's bucket width (see ``setSeriesBucket(nanos:)``); 1 sends every sample.
    public init(interval: Duration, rewalk: Duration = .seconds(30), fullRewalk: Duration = .seconds(60),
                minWalkGap: Duration = .seconds(2), bucketNanos: UInt64 = CorrelationConfig().bucketNanos,
                mount: CgroupMount? = CgroupMount.discover(), maxCgroups: Int = 20_000) {
        self.bucketNanos = Atomic(bucketNanos)
        self.rewalk = rewalk
        self.minWalkGap = minWalkGap
        self.fullRewalk = fullRewalk
        self.maxCgroups = maxCgroups
        self.mount = mount
        self.loop = PollingLoop(interval: interval, capacity: 16_384)
    }

    var queue: BoundedQueue<TapioEvent> { loop.queue }

    deinit {
        for (_, k) in state.withLock({ $0.known }) { k.handle.close() }
    }

    /// The engine's bucket width changed with the policy's window: an unchanged sample is sent once per bucket.
    public func setSeriesBucket(nanos: UInt64) { bucketNanos.store(nanos, ordering: .relaxed) }

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

    /// A walk was asked for within `minWalkGap` of the last one and waits for the gap to pass.
    var hasDeferredWalk: Bool { state.withLock { $0.walkDeferred } }

    /// Reads the limited cgroups the last walk found, and walks again every `rewalk` (the whole hierarchy on the
    /// first pass and every `fullRewalk`, or while no kubelet subtree is known): most cgroups have no limit, and a
    /// walk stats and lists every one of them.
    private func pollPass() -> (events: Int, errors: UInt64) {
        guard let mount else { return (0, 0) }
        let now = ContinuousClock.now
        let requested = limited.takeWalkRequest()
        let (walkDue, full) = state.withLock { s in
            let since = s.lastWalk.map { now - $0 }
            let asked = requested || s.walkDeferred
            let due = since.map { $0 >= rewalk || (asked && $0 >= minWalkGap) } ?? true
            s.walkDeferred = asked && !due  // asked too soon after the last walk: walk once the gap has passed
            return (due, s.kubeRoots.isEmpty || (s.lastFullWalk.map { now - $0 >= fullRewalk } ?? true))
        }
        if walkDue { return walk(mount, at: now, full: full) }
        var kept: [UInt64: Known] = [:]
        let errors = resample(state.withLock { $0.known }, into: &kept, at: MonotonicClock.wallNanos())
        state.withLock { $0.known = kept }
        limited.replace(kept.mapValues(\.entry))
        return (kept.count, errors)
    }

    /// Samples known cgroups through their open files into `kept`; closes and counts those removed since the walk.
    private func resample(_ known: [UInt64: Known], into kept: inout [UInt64: Known], at stamp: UInt64) -> UInt64 {
        var errors: UInt64 = 0
        let bucket = bucketNanos.load(ordering: .relaxed)
        for (id, k) in known {
            guard let s = k.handle.sample() else {
                k.handle.close()
                errors += 1
                continue
            }
            var k = k
            offer(id: id, s, filter: &k.filter, at: stamp, bucket: bucket)
            kept[id] = k
        }
        return errors
    }

    /// Sends the sample unless ``UnchangedSampleFilter`` holds it back.
    private func offer(id: UInt64, _ s: UnchangedSampleFilter.Sample, filter: inout UnchangedSampleFilter,
                       at stamp: UInt64, bucket: UInt64) {
        guard let repeats = filter.admit(s, at: stamp, bucketNanos: bucket) else { return }
        queue.push(.node(NodeEvent(timestampNanos: stamp, pid: 0, cgroupID: id, comm: "", kind: .cgroupMemory(
            .init(usageBytes: s.usageBytes, workingSetBytes: s.workingSetBytes, limitBytes: s.limitBytes,
                  unchangedBefore: repeats)))))
    }

    /// Every cgroup of the hierarchy, or of the kubelet's subtrees the last full walk found (up to `maxCgroups`):
    /// the limited ones are sampled and their files kept open (reused when the id, path and limit are unchanged).
    /// A partial walk carries the known cgroups outside those subtrees over, sampled as between walks.
    private func walk(_ mount: CgroupMount, at now: ContinuousClock.Instant, full: Bool) -> (events: Int, errors: UInt64) {
        let (known, knownRoots) = state.withLock { ($0.known, $0.kubeRoots) }
        var previous = known
        let wasAggregate = aggregates.withLock { $0 }
        // A full walk starts the memo afresh (paths that went away leave it); a partial one adds to it.
        var isAggregate: [String: Bool] = full || wasAggregate.count >= maxCgroups ? [:] : wasAggregate
        var found: [UInt64: Known] = [:]
        var roots: [String] = []  // the kubelet's subtrees, found by a full walk
        var stack = full ? [""] : knownRoots
        var visited = 0
        var errors: UInt64 = 0
        let stamp = MonotonicClock.wallNanos()
        let bucket = bucketNanos.load(ordering: .relaxed)
        while let rel = stack.popLast(), visited < maxCgroups {
            visited += 1
            let dir = mount.mountPoint + rel
            guard let handle = opendir(dir) else {
                // Gone since it was listed is the normal race; anything else (out of descriptors, permission)
                // leaves a subtree unwatched and is counted.
                if errno != ENOENT { errors += 1 }
                continue
            }
            defer { closedir(handle) }
            // The kubelet's pod, QoS and kubepods cgroups are limited too, but only sum up containers that are
            // sampled themselves.
            let aggregate = rel.isEmpty || (wasAggregate[rel] ?? CgroupPathParser.isKubeletAggregate(rel))
            if !rel.isEmpty { isAggregate[rel] = aggregate }
            if full, rel.hasSuffix("/kubepods") || rel.hasSuffix("kubepods.slice"),
               !roots.contains(where: { rel.hasPrefix($0 + "/") }) {
                roots.append(rel)
            }
            if !aggregate {
                var st = stat()
                if fstat(dirfd(handle), &st) == 0 {
                    let id = UInt64(st.st_ino)
                    let old = previous.removeValue(forKey: id)
                    do {
                        let reader = CgroupMemoryReader(directory: dir, version: mount.version)
                        // A cgroup known with the same path and limit is read through its open files (one read of
                        // the limit, then as between walks); a new or changed one in full.
                        if var old, let limit = try reader.limit(),
                           old.entry == LimitedCgroups.Entry(path: rel, limitBytes: limit), let s = old.handle.sample() {
                            offer(id: id, s, filter: &old.filter, at: stamp, bucket: bucket)
                            found[id] = old
                        } else if let s = try reader.sample() {
                            let entry = LimitedCgroups.Entry(path: rel, limitBytes: s.limitBytes)
                            old?.handle.close()  // its limit changed: reopen
                            // The filter carries over (a changed limit is a changed sample: sent).
                            var filter = old?.filter ?? UnchangedSampleFilter()
                            offer(id: id, s, filter: &filter, at: stamp, bucket: bucket)
                            if let files = CgroupMemoryHandle.open(directory: dir, version: mount.version) {
                                found[id] = Known(entry: entry, handle: files, filter: filter)
                            } else {
                                errors += 1  // read once per walk, not between walks (out of descriptors?)
                            }
                        } else {
                            old?.handle.close()  // no limit any more
                        }
                    } catch {
                        old?.handle.close()
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
        if !full {
            // Outside the subtrees walked: still there as far as this walk knows; sampled through the open files.
            let outside = previous.filter { _, k in !knownRoots.contains { k.entry.path == $0 || k.entry.path.hasPrefix($0 + "/") } }
            for id in outside.keys { previous[id] = nil }
            errors += resample(outside, into: &found, at: stamp)
        }
        for (_, gone) in previous { gone.handle.close() }
        aggregates.withLock { $0 = isAggregate }
        let truncated = !stack.isEmpty
        state.withLock { s in
            if truncated { s.truncatedWalks &+= 1 }
            s.known = found
            s.lastWalk = now
            if full {
                s.lastFullWalk = now
                s.kubeRoots = roots
            }
        }
        limited.replace(found.mapValues(\.entry))
        return (found.count, errors)
    }
}
