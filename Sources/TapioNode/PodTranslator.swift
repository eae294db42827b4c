import Logging
import Synchronization
import TapioModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Turns the pid and cgroup id every kernel event carries into an ``Attribution`` (cgroup, container, pod).
///
/// Lookups hit a bounded LRU (entries and estimated bytes) behind one `Mutex`: no actor hop, no allocation on a hit.
/// Pid entries expire after `ttl` (pids are reused) and are dropped by ``invalidate(pid:)`` on exit events; failed
/// lookups are remembered for `negativeTTL` so a burst of events from a vanished pid does not re-read /proc.
/// ``run()`` scans /proc every `scanInterval` to warm the cache before events arrive.
public final class PodTranslator: Sendable {
    public struct Configuration: Sendable {
        public var maximumEntries: Int = 100_000
        public var maximumBytes: Int = 64 << 20
        /// Lifetime of a pid's entry (guards against pid reuse when an exit event was lost).
        public var ttl: Duration = .seconds(30)
        /// Lifetime of a failed lookup.
        public var negativeTTL: Duration = .seconds(2)
        public var maximumNegativeEntries: Int = 16_384
        public var scanInterval: Duration = .seconds(10)
        /// Where /proc is (tests and containers with the host's /proc mounted elsewhere).
        public var procRoot: String = "/proc"
        public init() {}
    }

    /// Counters for the metrics layer: a plain snapshot.
    public struct Stats: Sendable, Hashable {
        public var hits: UInt64 = 0
        public var misses: UInt64 = 0
        public var evictions: UInt64 = 0
        public var negativeHits: UInt64 = 0
        /// Entries dropped because they outlived the TTL unused.
        public var swept: UInt64 = 0
        public var expirations: UInt64 = 0
        public var invalidations: UInt64 = 0
        public var scans: UInt64 = 0
        public var lastScanNanos: UInt64 = 0
        public var totalScanNanos: UInt64 = 0
        public var lastScanProcesses: Int = 0
        public var entries: Int = 0
        public var estimatedBytes: Int = 0
        /// Failed lookups remembered (``Configuration/maximumNegativeEntries`` at most).
        public var negativeEntries: Int = 0
        public init() {}
    }

    public let configuration: Configuration
    public let mount: CgroupMount?
    public let index: CgroupIndex?
    public let directory: PodDirectory?
    let clock: @Sendable () -> UInt64
    let ttlNanos: UInt64
    let negativeTTLNanos: UInt64
    /// How long a cgroup path's id is trusted without a stat (see ``CgroupIndex/id(forPath:maxAge:)``).
    let pathIDMaxAgeNanos: UInt64 = 5_000_000_000
    let logger: Logger

    struct State {
        var lru: LRUTable<Attribution>
        var negative: [UInt64: UInt64] = [:]
        var stats = Stats()
        var lastSweep: UInt64 = 0
    }
    let state: Mutex<State>

    /// - Parameters:
    ///   - mount: the memory hierarchy (``CgroupMount/discover(mountinfoPath:)`` by default); without one, pids
    ///     still resolve to their cgroup path with id 0, and cgroup ids do not resolve.
    ///   - directory: the cluster side's pods; nil on a machine with no cluster.
    ///   - clock: monotonic nanoseconds, injected for tests.
    public init(configuration: Configuration = Configuration(), mount: CgroupMount? = CgroupMount.discover(),
                directory: PodDirectory? = nil, clock: @escaping @Sendable () -> UInt64 = MonotonicClock.coarseNanos,
                logger: Logger = Logger(label: "tapio.node.translator")) {
        self.configuration = configuration
        self.mount = mount
        self.index = mount.map { CgroupIndex(mount: $0, clock: clock) }
        self.directory = directory
        self.clock = clock
        self.ttlNanos = configuration.ttl.nanos
        self.negativeTTLNanos = configuration.negativeTTL.nanos
        self.logger = logger
        self.state = Mutex(State(lru: LRUTable(maximumEntries: configuration.maximumEntries,
                                               maximumBytes: configuration.maximumBytes)))
    }

    @inline(__always) static func pidKey(_ pid: Int32) -> UInt64 { 1 << 63 | UInt64(UInt32(bitPattern: pid)) }

    private enum Probe { case hit(Attribution), stale(Attribution), negative, miss }

    /// The cached lookup: the entry if fresh, else nil and a note of what to do.
    @inline(__always) private func probe(_ key: UInt64, now: UInt64, generation: UInt64) -> Probe {
        state.withLock { s in
            if let slot = s.lru.slot(of: key) {
                if now &- s.lru.stamps[Int(slot)] <= ttlNanos, let v = s.lru.value(at: slot) {
                    s.lru.touch(slot)
                    if s.lru.tags[Int(slot)] == generation {
                        s.stats.hits &+= 1
                        return .hit(v)
                    }
                    return .stale(v)
                }
                s.lru.remove(key)
                s.stats.expirations &+= 1
            }
            if !s.negative.isEmpty, let until = s.negative[key] {
                if now < until {
                    s.stats.negativeHits &+= 1
                    return .negative
                }
                s.negative[key] = nil
            }
            s.stats.misses &+= 1
            return .miss
        }
    }

    /// Who `pid` belongs to, or nil when its /proc entry cannot be read (exited, or no such pid).
    public func attribution(pid: Int32) -> Attribution? {
        let key = Self.pidKey(pid)
        let now = clock()
        let generation = directory?.generation ?? 0
        switch probe(key, now: now, generation: generation) {
        case .hit(let a): return a
        case .negative: return nil
        case .stale(let old):
            let fresh = Attribution.join(cgroupID: old.cgroupID, cgroupPath: old.cgroupPath, identity: old.identity, directory: directory)
            store(key, fresh, now: now, generation: generation)
            return fresh
        case .miss:
            guard let fresh = resolve(pid: pid, now: now, generation: generation) else {
                storeNegative(key, now: now)
                return nil
            }
            store(key, fresh, now: now, generation: generation)
            return fresh
        }
    }

    /// Who cgroup `id` belongs to; resolves removed cgroups for the index's retention. Nil when unknown.
    public func attribution(cgroupID id: UInt64) -> Attribution? {
        guard id != 0, id < 1 << 63 else { return nil }
        let now = clock()
        let generation = directory?.generation ?? 0
        switch probe(id, now: now, generation: generation) {
        case .hit(let a): return a
        case .negative: return nil
        case .stale(let old):
            let fresh = Attribution.join(cgroupID: id, cgroupPath: old.cgroupPath, identity: old.identity, directory: directory)
            store(id, fresh, now: now, generation: generation)
            return fresh
        case .miss:
            guard let path = index?.path(forID: id) else {
                storeNegative(id, now: now)
                return nil
            }
            let fresh = Attribution.make(cgroupID: id, cgroupPath: path, directory: directory)
            store(id, fresh, now: now, generation: generation)
            return fresh
        }
    }

    /// Like ``attribution(cgroupID:)``, for a rare event that must not be lost to a cache (an OOM kill in a
    /// container seconds old): ignores a negative entry and re-joins with the pod directory, and walks the
    /// hierarchy when the id is unknown however recent the last walk was. The caller bounds how often it asks.
    public func freshAttribution(cgroupID id: UInt64) -> Attribution? {
        guard id != 0, id < 1 << 63 else { return nil }
        let now = clock()
        let generation = directory?.generation ?? 0
        state.withLock { s in _ = s.negative.removeValue(forKey: id) }
        guard let index else { return nil }
        var path = index.knownPath(forID: id)
        if path == nil {
            index.refresh()
            path = index.knownPath(forID: id)
        }
        guard let path else {
            storeNegative(id, now: now)
            return nil
        }
        let fresh = Attribution.make(cgroupID: id, cgroupPath: path, directory: directory)
        store(id, fresh, now: now, generation: generation)
        return fresh
    }

    /// Attribution for an event: by pid first (precise), else by its cgroup id (the pid may have exited).
    public func attribution(for event: NodeEvent) -> Attribution? {
        if event.pid > 0, let a = attribution(pid: event.pid) { return a }
        return attribution(cgroupID: event.cgroupID)
    }

    /// Drops a pid's entry (and any negative entry): call on process exit, since the pid may be reused.
    public func invalidate(pid: Int32) {
        let key = Self.pidKey(pid)
        state.withLock { s in
            if s.lru.remove(key) { s.stats.invalidations &+= 1 }
            s.negative[key] = nil
        }
    }

    /// Keeps the cache in step with process events: exits invalidate; a fork's child inherits the parent's entry
    /// (a child starts in its parent's cgroup).
    public func observe(_ event: NodeEvent) {
        switch event.kind {
        case .processExit: invalidate(pid: event.pid)
        case .processFork(let child):
            let now = clock()
            state.withLock { s in
                let childKey = Self.pidKey(child)
                s.negative[childKey] = nil
                guard let slot = s.lru.slot(of: Self.pidKey(event.pid)), let parent = s.lru.value(at: slot) else {
                    s.lru.remove(childKey)
                    return
                }
                let tag = s.lru.tags[Int(slot)]
                s.lru.insert(childKey, parent, stamp: now, tag: tag, cost: Self.cost(of: parent))
                s.stats.evictions = s.lru.evictions
            }
        default: break
        }
    }

    /// Drops everything cached (after a pod directory resync, for instance).
    public func removeAll() {
        state.withLock { s in
            s.lru.removeAll()
            s.negative.removeAll()
        }
    }

    public var stats: Stats {
        state.withLock { s in
            var out = s.stats
            out.evictions = s.lru.evictions
            out.entries = s.lru.count
            out.estimatedBytes = s.lru.bytes
            out.negativeEntries = s.negative.count
            return out
        }
    }

    /// Reads /proc/<pid>/cgroup and builds the attribution, sharing the instance cached for the cgroup id.
    func resolve(pid: Int32, now: UInt64, generation: UInt64) -> Attribution? {
        guard let entry = ProcCgroupFile.read(pid: pid, procRoot: configuration.procRoot) else { return nil }
        var id: UInt64 = 0
        if let mount, mount.version == entry.version {
            if let known = index?.id(forPath: entry.path, maxAge: pathIDMaxAgeNanos) {
                id = known
            } else if let statted = FileIO.inode(of: mount.directory(forCgroupPath: entry.path)) {
                id = statted
                index?.remember(id: id, path: entry.path)
            }
        }
        if id != 0 {
            let shared: Attribution? = state.withLock { s in
                guard let slot = s.lru.slot(of: id), s.lru.tags[Int(slot)] == generation,
                      now &- s.lru.stamps[Int(slot)] <= ttlNanos, let a = s.lru.value(at: slot),
                      a.cgroupPath == entry.path else { return nil }
                return a
            }
            if let shared { return shared }
        }
        let fresh = Attribution.make(cgroupID: id, cgroupPath: entry.path, directory: directory)
        if id != 0 { store(id, fresh, now: now, generation: generation) }
        return fresh
    }

    private func store(_ key: UInt64, _ value: Attribution, now: UInt64, generation: UInt64) {
        let cost = Self.cost(of: value)
        state.withLock { s in
            s.lru.insert(key, value, stamp: now, tag: generation, cost: cost)
            // Expired entries are otherwise only replaced when their key is looked up again: on a host that starts
            // and ends thousands of processes, dead pids' entries piled up towards the bound (100,000) — a slow,
            // steady growth of the agent's memory. Once per TTL, the stale end of the LRU goes.
            if now &- s.lastSweep >= ttlNanos {
                s.lastSweep = now
                s.stats.swept &+= UInt64(s.lru.removeStaleFromTail(before: now &- ttlNanos, limit: 100_000))
            }
        }
    }

    private func storeNegative(_ key: UInt64, now: UInt64) {
        state.withLock { s in
            if s.negative.count >= configuration.maximumNegativeEntries {
                s.negative = s.negative.filter { $0.value > now }
                if s.negative.count >= configuration.maximumNegativeEntries { s.negative.removeAll(keepingCapacity: true) }
            }
            s.negative[key] = now &+ negativeTTLNanos
        }
    }

    /// Conservative per-entry cost: bookkeeping plus the whole attribution (shared instances are counted per entry,
    /// so the byte bound errs on the safe side).
    static func cost(of a: Attribution) -> Int { LRUTable<Attribution>.slotOverheadBytes + a.estimatedBytes }

    // MARK: Scanner

    /// One pass over /proc: resolves every pid not freshly cached, and re-walks the cgroup hierarchy so cgroup ids
    /// resolve without a miss. Returns the number of processes seen.
    @discardableResult public func scanOnce() -> Int {
        let start = MonotonicClock.preciseNanos()
        index?.refresh()
        var seen = 0
        if let dir = opendir(configuration.procRoot) {
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let pid: Int32? = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    var v: Int32 = 0
                    var any = false
                    for c in raw {
                        if c == 0 { break }
                        guard c >= 0x30, c <= 0x39 else { return nil }
                        v = v &* 10 &+ Int32(c - 0x30)
                        any = true
                    }
                    return any ? v : nil
                }
                guard let pid else { continue }
                seen += 1
                let key = Self.pidKey(pid)
                let now = clock()
                let generation = directory?.generation ?? 0
                let fresh = state.withLock { s -> Bool in
                    guard let slot = s.lru.slot(of: key) else { return false }
                    return now &- s.lru.stamps[Int(slot)] <= ttlNanos / 2 && s.lru.tags[Int(slot)] == generation
                }
                if fresh { continue }
                if let a = resolve(pid: pid, now: now, generation: generation) { store(key, a, now: now, generation: generation) }
            }
        }
        let elapsed = MonotonicClock.preciseNanos() &- start
        state.withLock { s in
            s.stats.scans &+= 1
            s.stats.lastScanNanos = elapsed
            s.stats.totalScanNanos &+= elapsed
            s.stats.lastScanProcesses = seen
        }
        return seen
    }

    /// Scans /proc every `configuration.scanInterval` until cancelled (a service group's `run`). Returns on
    /// cancellation.
    public func run() async throws {
        while !Task.isCancelled {
            let n = scanOnce()
            logger.trace("scanned /proc", metadata: ["processes": "\(n)"])
            do { try await Task.sleep(for: configuration.scanInterval) } catch is CancellationError { return }
        }
    }
}
