import DequeModule
import TapioModel

/// The correlation engine: attributed events in, insight updates out. Pure logic on an injected clock — the
/// caller passes `now` (nanoseconds since the Unix epoch; for replays, the scenario's virtual time).
///
/// Events update per-subject state as they arrive (no per-event allocation on the hot path: fixed-width buckets
/// in deques, one dictionary lookup by subject). Detectors run in batches: after `batchSize` events or once
/// `batchTimeout` has passed since the batch began (checked on every ``ingest(_:now:into:)`` and ``tick(now:into:)``),
/// and only for subjects whose state changed meaningfully (a memory bucket completed, an OOM kill, a restart…).
/// Once a second of engine time, housekeeping re-checks active insights, resolves those whose condition has been
/// clear for `resolveAfter`, and forgets subjects that went quiet.
///
/// Memory is bounded: at most `maxSubjects` subjects (the least recently seen is evicted and counted), each
/// holding at most a window of downsampled state.
///
/// Not thread-safe by design (a value type): own it from one task.
public struct CorrelationEngine: Sendable {
    /// Counters for metrics and the status line.
    public struct Stats: Sendable, Hashable {
        public var events: UInt64 = 0
        /// Events dropped because the engine's breaker was open.
        public var shed: UInt64 = 0
        public var batches: UInt64 = 0
        public var evaluations: UInt64 = 0
        /// Subjects dropped to stay under `maxSubjects`.
        public var evictedSubjects: UInt64 = 0
        /// Subjects forgotten after going quiet or being deleted.
        public var forgottenSubjects: UInt64 = 0
        public var updatesEmitted: UInt64 = 0
        /// Per-pod insights not announced because a ClusterHealth insight covers them.
        public var suppressed: UInt64 = 0
        /// Node events about pods already deleted.
        public var ignoredLate: UInt64 = 0
    }

    public let config: CorrelationConfig
    public internal(set) var stats = Stats()
    /// The breaker in front of the engine (opens on sustained overload; see `CorrelationConfig.maxEventsPerSecond`).
    public private(set) var breaker: CircuitBreaker

    var states: [SubjectState] = []
    var index: [Subject: Int] = [:]
    /// Creation order for eviction, with a second chance for subjects seen since they were queued.
    var arrival: Deque<(subject: Subject, generation: UInt64, stamp: UInt64)> = []
    var podSubjects: [String: [Subject]] = [:]
    /// Bare-process subjects by pid. A process is usually two subjects: a forked child touches memory under its
    /// parent's name before it execs (`bash`), then under its own (`curl`); the exit names only the second. Without
    /// this, the first was kept for the whole quiet period — hundreds of them after a burst of pod starts.
    var processSubjects: [Int32: [Subject]] = [:]
    var tombstones: [String: UInt64] = [:]
    var tombstoneOrder: Deque<(uid: String, at: UInt64)> = []
    var dirty: [(index: Int, generation: UInt64)] = []
    var memoryDirty: [Bool] = []
    var nextGeneration: UInt64 = 1
    var batchCount = 0
    /// An OOM kill arrived since the last flush (see ``flushIfUrgent(now:into:)``).
    var urgent = false
    var batchStart: UInt64 = 0
    var currentSecond: UInt64 = 0
    var eventsThisSecond: Double = 0
    var lastHousekeeping: UInt64 = 0
    var startedAt: UInt64?
    /// The latest `now` an event was ingested at (see ``settledAt``).
    var lastIngestAt: UInt64 = 0
    /// The result of ``nextTimedWork(notAfter:)``'s scan over the subjects, kept until something could bring it
    /// forward (nil: out of date; `UInt64.max`: nothing scheduled).
    var timedWorkCache: UInt64?
    var cluster = ClusterHealthTracker()
    var ownerImages: [String: OwnerImages] = [:]
    /// The drops pods went through, by workload (noted when a pod goes, and every few minutes for those still here):
    /// a new pod's first ramp of a cycling workload is that cycle again.
    var workloadCycles = WorkloadCycles()
    /// When housekeeping next notes the live subjects' cycles (``WorkloadCycles/sweepNanos``).
    var nextCycleSweep: UInt64 = 0
    /// Updates produced while applying an event (a pod deletion resolves its insights), handed out right after.
    var pending: [InsightUpdate] = []

    let bucketNanos: UInt64
    let windowNanos: UInt64
    let batchTimeoutNanos: UInt64
    let resolveAfterNanos: UInt64
    let updateIntervalNanos: UInt64
    /// How often housekeeping re-evaluates an active insight.
    let recheckNanos: UInt64

    public init(config: CorrelationConfig = CorrelationConfig()) {
        self.config = config
        self.windowNanos = max(config.windowNanos, 1_000_000_000)
        self.bucketNanos = config.bucketNanos
        self.batchTimeoutNanos = config.batchTimeoutNanos
        self.resolveAfterNanos = config.resolveAfter.nanos
        self.updateIntervalNanos = config.updateInterval.nanos
        self.recheckNanos = min(updateIntervalNanos, max(resolveAfterNanos / 2, 1_000_000_000))
        self.breaker = CircuitBreaker(failureThreshold: max(1, config.breakerFailureThreshold),
                                      coolDown: config.breakerCoolDown)
        states.reserveCapacity(min(max(0, config.maxSubjects), 4096))
        cluster.nodeOnly = config.clusterHealthByNodeOnly
    }

    /// Subjects currently tracked (≤ `maxSubjects`).
    public var trackedSubjects: Int { states.count }

    /// Entries of the engine's maps and queues that live across batches, by name (`tapio_state_entries`): each is
    /// bounded by `maxSubjects` or the window, and this is how a soak sees which one grows.
    public var sizes: [(structure: String, entries: Int)] {
        // Subjects by kind too: after a burst of pod starts the total rises, and which kind holds the rise
        // (short-lived host processes, containers seen before their pod's status named them) says why.
        var podContainers = 0, pods = 0, localContainers = 0, cgroups = 0, processes = 0, exited = 0
        for s in states {
            switch s.subject {
            case .podContainer: podContainers += 1
            case .pod: pods += 1
            case .localContainer: localContainers += 1
            case .localCgroup: cgroups += 1
            case .localProcess: if s.hasEnded { exited += 1 } else { processes += 1 }
            case .node, .cluster: break
            }
        }
        return [("engine_subjects", states.count), ("engine_subjects_pod_container", podContainers),
                ("engine_subjects_pod", pods), ("engine_subjects_local_container", localContainers),
                ("engine_subjects_local_cgroup", cgroups), ("engine_subjects_local_process", processes),
                ("engine_subjects_exited_process", exited), ("engine_arrival_queue", arrival.count),
                ("engine_pod_subjects", podSubjects.count), ("engine_process_subjects", processSubjects.count), ("engine_tombstones", tombstoneOrder.count),
                ("engine_owner_images", ownerImages.count), ("engine_workload_cycles", workloadCycles.count)]
    }

    /// The active insights, as their latest updates (for a status line or a full resync of a sink).
    /// Read in place: the pipeline asks once a second, and copying every subject's state out (as a `flatMap` over
    /// `states` does) retained and released each of its buffers — 6 % of the agent's CPU at rest on a real node.
    public var activeInsights: [InsightUpdate] {
        var out: [InsightUpdate] = []
        for i in states.indices where !states[i].active.isEmpty {
            for a in states[i].active where a.announced {
                out.append(InsightUpdate(identity: a.identity, spec: a.spec, change: .updated, observedAt: a.lastDetected,
                                         firstSeenAt: a.firstSeen, occurrences: a.occurrences))
            }
        }
        return out
    }

    /// Takes over `old`'s active findings: a policy change starts a new engine (new windows and thresholds), and a
    /// finding the new one did not detect again stayed Active in the cluster for good — nothing resolved it. Each stays
    /// active here as it was: detected again, it is updated, not announced anew; not detected for this engine's
    /// `window` (the evidence it needs, which the old engine's state does not bring) and then its `resolveAfter`, it
    /// is resolved as usual — a hold counted from the first policy change since it was last detected, not restarted by
    /// later ones. `published` says which were let out to people (a finding the policies' selectors held
    /// back is announced when this engine detects it, if they now let it out). The pods deleted within the window
    /// come too, so late events about them are still ignored. Call on a new engine, before its first event.
    public mutating func adoptActiveFindings(of old: CorrelationEngine, now: UInt64,
                                             published: (InsightIdentity) -> Bool = { _ in true }) {
        for (uid, at) in old.tombstoneOrder where old.tombstones[uid] == at {
            tombstones[uid] = at
            tombstoneOrder.append((uid, at))
        }
        while tombstoneOrder.count > max(1, config.maxSubjects), let t = tombstoneOrder.popFirst() {
            if tombstones[t.uid] == t.at { tombstones[t.uid] = nil }
        }
        for s in old.states where !s.active.isEmpty {
            guard let i = slot(for: s.subject, now: now) else { continue }
            states[i].active = s.active.map { a in
                var a = a
                a.announced = a.announced && published(a.identity)
                // Held already by an earlier adoption and not detected since: that hold stands. Restarted by every
                // policy change, it kept a finding no engine saw again Active for good while the changes came more
                // often than `window` + `resolveAfter`. Detected since, it gets a whole window again.
                if a.heldFrom == 0 || a.lastDetected >= a.heldFrom {
                    a.heldFrom = now
                    a.heldUntil = now.adding(saturating: windowNanos)
                }
                return a
            }
            // A ClusterHealth finding still covers its pods' own findings, as it did.
            for a in s.active where a.identity.type == .clusterHealth { cluster.activeDetails.insert(a.identity.detail) }
        }
        // What memory did beyond the window is not the policy's: each pod container's minute history comes (its
        // cycles, and a leak's climb across them), and with them what the workloads' gone pods went through. Taken
        // after the findings and only while there is room: a history must not push out a subject with a finding.
        restore(old.memory(now: now), now: now, keepLastSeen: true)
        timedWorkCache = nil
    }

    // MARK: Input

    /// Feeds events in order; returns the updates they caused.
    public mutating func ingest(_ events: [AttributedEvent], now: UInt64) -> [InsightUpdate] {
        var out: [InsightUpdate] = []
        for e in events { ingest(e, now: now, into: &out) }
        return out
    }

    /// Feeds one event; appends any updates to `out` (the allocation-free form for hot loops).
    public mutating func ingest(_ event: AttributedEvent, now: UInt64, into out: inout [InsightUpdate]) {
        if startedAt == nil {
            startedAt = now
            lastHousekeeping = now
            batchStart = now
        }
        stats.events &+= 1
        if now > lastIngestAt { lastIngestAt = now }
        account(now: now)
        if event.isSheddable, !breaker.allow(now: now) {
            stats.shed &+= 1
        } else {
            apply(event, now: now)
            if case .node(let n) = event.event, n.isUrgent { urgent = true }
        }
        handOutPending(into: &out)
        if batchCount == 0 { batchStart = now }
        batchCount &+= 1
        if batchCount >= config.batchSize || now &- batchStart >= batchTimeoutNanos {
            flush(now: now, into: &out)
        }
    }

    /// A pod deletion learned beside the event stream (a queued `podDeleted` event may have been shed by a full
    /// queue): applied only while the engine still holds subjects of the pod, whose findings then resolve now rather
    /// than after `resolveAfter`. Returns whether it did anything.
    @discardableResult
    public mutating func podGone(_ pod: PodRef, now: UInt64, into out: inout [InsightUpdate]) -> Bool {
        guard podSubjects[pod.uid] != nil else { return false }
        ingest(.cluster(ClusterEvent(timestampNanos: now, kind: .podDeleted(pod))), now: now, into: &out)
        return true
    }

    /// Events fed since the last batch ran (0: no batch is open).
    public var pendingBatchCount: Int { batchCount }

    /// Nanoseconds from `now` until ``tick(now:into:)`` has work: the partial batch's timeout, else the next
    /// once-a-second housekeeping. A consumer can wait this long for events instead of ticking periodically.
    public func nanosUntilDue(now: UInt64) -> UInt64 {
        let due = batchCount > 0 ? batchStart.adding(saturating: batchTimeoutNanos)
            : lastHousekeeping.adding(saturating: 1_000_000_000)
        return due > now ? due - now : 0
    }

    /// Runs the pending batch now if it holds an OOM kill: a kill is news that should not wait for the batch to
    /// fill or time out. Call after feeding a group of events (the pipeline does, after each batch it dequeues), so
    /// the kill's companions (the victim's exit) are evaluated with it.
    public mutating func flushIfUrgent(now: UInt64, into out: inout [InsightUpdate]) {
        guard urgent else { return }
        flush(now: now, into: &out)
    }

    /// Lets time pass with no events: runs a batch whose timeout expired, and housekeeping (resolutions).
    public mutating func tick(now: UInt64) -> [InsightUpdate] {
        var out: [InsightUpdate] = []
        tick(now: now, into: &out)
        return out
    }

    public mutating func tick(now: UInt64, into out: inout [InsightUpdate]) {
        if startedAt == nil {
            startedAt = now
            lastHousekeeping = now
        }
        account(now: now)
        if batchCount > 0, now &- batchStart >= batchTimeoutNanos {
            flush(now: now, into: &out)
        } else if now &- lastHousekeeping >= 1_000_000_000 {
            housekeeping(now: now, into: &out)
        }
        handOutPending(into: &out)
    }

    /// Updates made outside an evaluation (a deleted pod's resolutions, an evicted subject's) go out with the
    /// next call that returns updates: an ingest, a tick or a flush — the last flush of an engine included.
    @inline(__always)
    private mutating func handOutPending(into out: inout [InsightUpdate]) {
        guard !pending.isEmpty else { return }
        out.append(contentsOf: pending)
        pending.removeAll(keepingCapacity: true)
    }

    /// Runs the pending batch now, whatever its size (e.g. at the end of a replay).
    public mutating func flush(now: UInt64) -> [InsightUpdate] {
        var out: [InsightUpdate] = []
        flush(now: now, into: &out)
        return out
    }

    /// Overload accounting per second of engine time: a second with more than `maxEventsPerSecond` events is a
    /// failure for the breaker, any other a success.
    @inline(__always)
    private mutating func account(now: UInt64) {
        let second = now / 1_000_000_000
        if second != currentSecond {
            if eventsThisSecond > config.maxEventsPerSecond {
                breaker.recordFailure(now: now)
            } else if eventsThisSecond > 0 {
                breaker.recordSuccess(now: now)
            }
            currentSecond = second
            eventsThisSecond = 0
        }
        eventsThisSecond += 1
    }

    // MARK: Batches

    mutating func flush(now: UInt64, into out: inout [InsightUpdate]) {
        stats.batches &+= 1
        timedWorkCache = nil
        batchCount = 0
        urgent = false
        var i = 0
        while i < dirty.count {
            let d = dirty[i]
            i += 1
            if d.index < states.count, states[d.index].generation == d.generation, states[d.index].dirty {
                evaluate(d.index, now: now, forceMemory: false, into: &out)
            }
        }
        dirty.removeAll(keepingCapacity: true)
        if cluster.touched {
            cluster.touched = false
            if let c = slot(for: .cluster, now: now) { evaluate(c, now: now, forceMemory: false, into: &out) }
        }
        if now &- lastHousekeeping >= 1_000_000_000 { housekeeping(now: now, into: &out) }
        handOutPending(into: &out)
    }

    @inline(__always)
    mutating func markDirty(_ i: Int, memory: Bool = false) {
        if memory { memoryDirty[i] = true }
        if !states[i].dirty {
            states[i].dirty = true
            dirty.append((i, states[i].generation))
        }
    }

    // MARK: Subjects

    /// The slot of a subject, created if needed (evicting to stay under the cap); nil for a deleted pod's subject.
    @inline(__always)
    mutating func slot(for subject: Subject, now: UInt64) -> Int? {
        if let i = index[subject] { return i }
        return create(subject, now: now)
    }

    private mutating func create(_ subject: Subject, now: UInt64) -> Int? {
        if let p = subject.pod, tombstones[p.uid] != nil {
            stats.ignoredLate &+= 1
            return nil
        }
        evictIfFull(now: now)
        timedWorkCache = nil
        let i = states.count
        let g = nextGeneration
        nextGeneration &+= 1
        states.append(SubjectState(subject: subject, generation: g, now: now))
        memoryDirty.append(false)
        index[subject] = i
        arrival.append((subject, g, now))
        if let p = subject.pod { podSubjects[p.uid, default: []].append(subject) }
        if case .localProcess(let pid, _) = subject { processSubjects[pid, default: []].append(subject) }
        return i
    }

    private mutating func evictIfFull(now: UInt64) {
        var attempts = 0
        while states.count >= max(1, config.maxSubjects), let front = arrival.popFirst() {
            attempts += 1
            guard let i = index[front.subject], states[i].generation == front.generation else { continue }
            let s = states[i]
            // Kept, to the back of the queue: the cluster subject, which goes last whatever the stale entries the count
            // of attempts also sees (evicted, its ClusterHealth finding would resolve, then be announced again by the
            // next batch: a second Event); and, while attempts last, a subject seen since it was queued.
            if (s.subject == .cluster && states.count > 1) || (attempts <= states.count && s.lastSeen > front.stamp) {
                arrival.append((front.subject, front.generation, s.lastSeen))
                continue
            }
            evict(i, now: now)
        }
    }

    /// Forgets a subject to make room, resolving what it had announced: nothing would resolve it after, and its
    /// Insight would stay Active for good. The evidence says why, for no one can say the problem is gone.
    private mutating func evict(_ i: Int, now: UInt64) {
        var out: [InsightUpdate] = []
        // Every finding goes through `resolved`, announced or not: it also ends a ClusterHealth finding's cover.
        for var a in states[i].active {
            if a.announced, a.spec.evidence.count < 64 {
                a.spec.evidence.append(Evidence(
                    source: "tapio", description: "Tapio stopped tracking this subject: more than \(config.maxSubjects) "
                        + "subjects were tracked here (maxSubjects) and this one was seen least recently",
                    observedAt: Formatting.rfc3339(nanos: now)))
            }
            resolved(a, now: now, into: &out)
        }
        pending.append(contentsOf: out)
        states[i].active.removeAll()
        remove(i)
        stats.evictedSubjects &+= 1
    }

    /// Keeps the drops of a pod container's history under its workload, for the next pod (``WorkloadCycles``).
    mutating func noteCycles(of s: SubjectState) {
        noteCycles(of: s.subject, owner: s.owner, history: s.history, limit: s.effectiveLimit, seen: s.lastSeen)
    }

    /// The same for a container known only by its parts (one ``restore(_:now:keepLastSeen:)`` has no room for).
    mutating func noteCycles(of subject: Subject, owner: OwnerRef?, history: MemoryHistory, limit: UInt64?, seen: UInt64) {
        guard owner != nil, let pod = subject.pod else { return }
        // The drops first: most subjects have none, and then no key is built.
        let cycles = CycleReading.cyclesLivedThrough(in: history, limit: limit.map { Double($0) } ?? 0)
        guard !cycles.isEmpty, let key = WorkloadCycles.key(subject, owner: owner) else { return }
        workloadCycles.note(key, pod: pod, cycles: cycles, now: seen)
    }

    /// Removes slot `i` (swapping the last slot into its place), keeping the cycles its memory went through for the
    /// next pod of its workload (``WorkloadCycles``).
    mutating func remove(_ i: Int) {
        let subject = states[i].subject
        noteCycles(of: states[i])
        index[subject] = nil
        if let p = subject.pod, var list = podSubjects[p.uid] {
            list.removeAll { $0 == subject }
            podSubjects[p.uid] = list.isEmpty ? nil : list
        }
        if case .localProcess(let pid, _) = subject, var list = processSubjects[pid] {
            list.removeAll { $0 == subject }
            processSubjects[pid] = list.isEmpty ? nil : list
        }
        let last = states.count - 1
        if i != last {
            states.swapAt(i, last)
            memoryDirty.swapAt(i, last)
            index[states[i].subject] = i
            if states[i].dirty { dirty.append((i, states[i].generation)) }
        }
        states.removeLast()
        memoryDirty.removeLast()
    }

    // MARK: Housekeeping

    mutating func housekeeping(now: UInt64, into out: inout [InsightUpdate]) {
        lastHousekeeping = now
        timedWorkCache = nil
        // Expired bookkeeping goes first, so the evaluations below see the window as of `now`.
        let cutoff = now.subtracting(saturating: windowNanos)
        while let t = tombstoneOrder.first, t.at < cutoff {
            tombstoneOrder.removeFirst()
            if tombstones[t.uid] == t.at { tombstones[t.uid] = nil }
        }
        cluster.prune(before: cutoff)
        workloadCycles.prune(now: now)
        // Replicas side by side: what one's history holds of cycles is kept for the others every few minutes, not
        // only when a pod goes, so a scale-up's new pod reads it too.
        if now >= nextCycleSweep {
            nextCycleSweep = now.adding(saturating: WorkloadCycles.sweepNanos)
            for i in states.indices where states[i].owner != nil { noteCycles(of: states[i]) }
        }
        if ownerImages.count > 0 {
            let old = now.subtracting(saturating: windowNanos.multiplied(saturating: 2))
            ownerImages = ownerImages.filter { $0.value.lastSeen >= old }
        }
        var doomed: [Int] = []
        for i in states.indices {
            if !states[i].active.isEmpty {
                if now &- states[i].lastEvaluated >= recheckNanos {
                    evaluate(i, now: now, forceMemory: true, into: &out)
                }
                resolveStale(i, now: now, into: &out)
            }
            if states[i].active.isEmpty, states[i].subject != .cluster,
               now > states[i].lastSeen, now - states[i].lastSeen >= quietPeriod(of: states[i]) {
                doomed.append(i)
            }
        }
        for i in doomed.reversed() {
            remove(i)
            stats.forgottenSubjects &+= 1
        }
        compactArrival()
    }

    /// Drops queue entries of subjects that are gone: without this, a stream of short-lived subjects would grow
    /// the eviction queue by one entry per subject ever seen.
    private mutating func compactArrival() {
        guard arrival.count > 2 * states.count + 1024 else { return }
        arrival = Deque(arrival.filter { e in index[e.subject].map { states[$0].generation == e.generation } ?? false })
    }

    private mutating func resolveStale(_ i: Int, now: UInt64, into out: inout [InsightUpdate]) {
        var k = 0
        while k < states[i].active.count {
            let a = states[i].active[k]
            if now >= a.clearSince, now - a.clearSince >= resolveAfterNanos {
                states[i].active.remove(at: k)
                resolved(a, now: now, into: &out)
            } else {
                k += 1
            }
        }
    }

    mutating func resolved(_ a: ActiveInsight, now: UInt64, into out: inout [InsightUpdate]) {
        if a.identity.type == .clusterHealth { cluster.deactivate(a.identity.detail) }
        guard a.announced else { return }
        var spec = a.spec
        spec.summary = "Resolved: " + spec.summary
        out.append(InsightUpdate(identity: a.identity, spec: spec, change: .resolved, observedAt: now,
                                 firstSeenAt: a.firstSeen, occurrences: a.occurrences))
        stats.updatesEmitted &+= 1
    }

    // MARK: Evaluation

    mutating func evaluate(_ i: Int, now: UInt64, forceMemory: Bool, into out: inout [InsightUpdate]) {
        stats.evaluations &+= 1
        states[i].dirty = false
        let memory = forceMemory || memoryDirty[i]
        memoryDirty[i] = false
        states[i].lastEvaluated = now
        states[i].trim(now: now, windowNanos: windowNanos, bucketNanos: bucketNanos)
        var found: [(InsightIdentity, InsightSpec)] = []
        let subject = states[i].subject
        switch subject {
        case .node:
            if let d = nodePressure(i, now: now) { found.append(d) }
        case .cluster:
            found.append(contentsOf: clusterHealth(now: now))
        case .pod:
            if let d = network(i, now: now) { found.append(d) }
        default:
            if memory {
                let m = memoryDetectors(i, now: now)
                states[i].speedUpAt = m.speedsUp ? now : 0
                if m.doubted { states[i].curveDoubtedAt = now }
                found.append(contentsOf: m.found)
                if let why = m.settle { settleOOMPrediction(i, because: why, now: now, into: &out) }
                if let why = m.levelsOff {
                    let since = states[i].levellingOffSince ?? now
                    states[i].levellingOffSince = since
                    if now >= since, Double(now - since) / 1e9 >= levelsOffHold {
                        // Held: the curve levels off. A new prediction waits a while after this (`oomPrediction`).
                        states[i].levelledOffAt = now
                        settleOOMPrediction(i, because: why, now: now, into: &out)
                    }
                } else {
                    states[i].levellingOffSince = nil
                }
            }
            if let d = oomKilled(i, now: now) { found.append(d) }
            if let d = crashLoop(i, now: now) { found.append(d) }
            if let d = network(i, now: now) { found.append(d) }
        }
        for (identity, spec) in found { upsert(i, identity, spec, now: now, into: &out) }
    }

    /// How long a levelling-off reading must hold to settle a prediction, and how long a new one waits after it last
    /// held (``Forecast/levelsOffHoldSeconds``): at most half of `resolveAfter`, since an unrefreshed prediction
    /// would lapse at its end without saying why.
    var levelsOffHold: Double { min(Forecast.levelsOffHoldSeconds, Double(resolveAfterNanos) / 2e9) }

    private mutating func upsert(_ i: Int, _ identity: InsightIdentity, _ spec: InsightSpec, now: UInt64,
                                 into out: inout [InsightUpdate]) {
        if let pod = identity.subject.pod, ClusterHealthTracker.tracked.contains(identity.type) {
            cluster.note(type: identity.type, pod: pod, image: states[i].image, node: states[i].node, now: now)
        }
        let covered = cluster.covers(type: identity.type, pod: identity.subject.pod, image: states[i].image,
                                     node: states[i].node)
        let visible = spec.severity >= config.minSeverity && !covered
        if let k = states[i].active.firstIndex(where: { $0.identity == identity }) {
            var a = states[i].active[k]
            let old = a.spec
            a.spec = spec
            a.lastDetected = now
            a.occurrences += 1
            var change: InsightChange?
            if !a.announced {
                if visible { change = .new; a.announced = true } else if covered { stats.suppressed &+= 1 }
            } else if spec.severity > old.severity || Self.probabilityCrossed(old.prediction, spec.prediction) {
                change = .escalated
            } else if now &- a.lastEmitted >= updateIntervalNanos, spec != old {
                change = .updated
            }
            if let c = change {
                a.lastEmitted = now
                out.append(InsightUpdate(identity: identity, spec: spec, change: c, observedAt: now,
                                         firstSeenAt: a.firstSeen, occurrences: a.occurrences))
                stats.updatesEmitted &+= 1
            }
            states[i].active[k] = a
        } else {
            let a = ActiveInsight(identity: identity, spec: spec, firstSeen: now, lastDetected: now, lastEmitted: now,
                                  occurrences: 1, announced: visible)
            states[i].active.append(a)
            if visible {
                out.append(InsightUpdate(identity: identity, spec: spec, change: .new, observedAt: now, firstSeenAt: now,
                                         occurrences: 1))
                stats.updatesEmitted &+= 1
            } else if covered {
                stats.suppressed &+= 1
            }
        }
    }

    /// Resolves an active OOM prediction at once when its evidence is gone (memory fell back, or the curve levels off
    /// below the limit), saying why, instead of leaving a stale prediction up for `resolveAfter`.
    mutating func settleOOMPrediction(_ i: Int, because why: String, now: UInt64, into out: inout [InsightUpdate]) {
        guard let k = states[i].active.firstIndex(where: { $0.identity.type == .oomPrediction }) else { return }
        var a = states[i].active.remove(at: k)
        timedWorkCache = nil
        let reason = why.prefix(1).uppercased() + why.dropFirst()
        a.spec.summary = "\(reason). Before: " + a.spec.summary
        if a.spec.evidence.count < 64 {
            a.spec.evidence.append(Evidence(source: states[i].hasCgroupSeries ? "cgroup" : "ebpf", description: reason,
                                            observedAt: Formatting.rfc3339(nanos: now)))
        }
        resolved(a, now: now, into: &out)
    }

    static func probabilityCrossed(_ old: Prediction?, _ new: Prediction?) -> Bool {
        guard let o = old?.probability, let n = new?.probability else { return false }
        return (o < 0.5 && n >= 0.5) || (o < 0.8 && n >= 0.8)
    }
}

extension AttributedEvent {
    /// High-volume events that an open breaker may drop; the rare, decisive ones always pass.
    @inline(__always) var isSheddable: Bool {
        guard case .node(let n) = event else { return false }
        switch n.kind {
        case .memorySample, .cgroupMemory, .processExec, .processFork: return true
        case .tcp(let t): return t.kind == .retransmit
        case .oomKill, .processExit: return false
        }
    }
}

/// Images seen recently for one owner's container (a rollout shows as two).
struct OwnerImages: Sendable {
    var images: [String]
    var lastSeen: UInt64
}
