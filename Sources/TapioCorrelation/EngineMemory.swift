import TapioModel

/// What the engine knows of memory beyond its window, taken out of one engine and given to the next: each pod
/// container's minute history (its cycles, a leak's climb across them, how long it has been watched) with what
/// reading it needs (limit, owner, restart count, the last OOM kill counted), and the cycles its workloads' gone
/// pods went through (``WorkloadCycles``).
///
/// A policy change hands it from the old engine to the new one (``CorrelationEngine/adoptActiveFindings(of:now:published:)``);
/// the agent writes it to a file every minute and at shutdown and reads it back when it starts
/// (``EngineMemoryCodec``), so that an agent restart — an upgrade of Tapio itself, a crash — does not forget what
/// every periodic workload on the node does and raise a fresh "OOM kill predicted" on each one's next climb.
/// The window itself (the last minutes' samples and findings) is not in it: findings live in the Insights the agent
/// adopts when it starts, and the window refills in minutes.
public struct EngineMemory: Sendable {
    struct Container: Sendable {
        var pod: PodRef
        var container: String
        var owner: OwnerRef?
        var memoryLimit: UInt64?
        var memoryRequest: UInt64?
        var hasCgroupSeries: Bool
        var restartCount: Int
        /// The restart count came from the pod's status (seen by this engine or one before it): a higher one on first
        /// sight after a restore is a restart no engine watched.
        var restartsKnown: Bool
        var lastCountedOOMFinishedAt: UInt64
        var lastSeen: UInt64
        var history: MemoryHistory
    }

    var containers: [Container]
    var workloadCycles: WorkloadCycles
    /// When it was taken (engine time: nanoseconds since the Unix epoch).
    public internal(set) var takenAt: UInt64

    /// Pod containers with a minute history.
    public var containerCount: Int { containers.count }
    /// Workloads with kept cycles.
    public var workloadCount: Int { workloadCycles.count }

    public init() {
        containers = []
        workloadCycles = WorkloadCycles()
        takenAt = 0
    }

    init(containers: [Container], workloadCycles: WorkloadCycles, takenAt: UInt64) {
        self.containers = containers
        self.workloadCycles = workloadCycles
        self.takenAt = takenAt
    }
}

extension CorrelationEngine {
    /// Workloads whose cycles are kept (``WorkloadCycles``).
    public var workloadCycleCount: Int { workloadCycles.count }

    /// This engine's memory beyond the window (``EngineMemory``): every pod container with a minute history, most
    /// recently seen first, and the workloads' kept cycles. Cheap enough for the engine's task every minute (copies
    /// share the histories' storage): the cycles of the containers still tracked are noted for their workloads by
    /// ``restore(_:now:keepLastSeen:)``, for those it has no room for.
    public func memory(now: UInt64) -> EngineMemory {
        var containers: [EngineMemory.Container] = []
        containers.reserveCapacity(states.count)
        for s in states where s.history.firstAt > 0 {
            guard case .podContainer(let pod, let container) = s.subject else { continue }
            containers.append(EngineMemory.Container(
                pod: pod, container: container, owner: s.owner, memoryLimit: s.memoryLimit, memoryRequest: s.memoryRequest,
                hasCgroupSeries: s.hasCgroupSeries, restartCount: s.restartCount, restartsKnown: s.restartsKnown,
                lastCountedOOMFinishedAt: s.lastCountedOOMFinishedAt, lastSeen: s.lastSeen, history: s.history))
        }
        containers.sort { $0.lastSeen > $1.lastSeen }
        return EngineMemory(containers: containers, workloadCycles: workloadCycles, takenAt: now)
    }

    /// Takes over `memory` (call before the first event). Each container's history comes back with its limit, owner,
    /// restart count and last counted OOM kill — so a restart or a kill that happened while no engine watched is
    /// news when its pod's status tells of it, and marks the history (its drop is not a cycle) — while there is room
    /// under `maxSubjects` (subjects already held come first; then the most recently seen). A history whose last
    /// minute is older than the history's span is not taken (its next sample would start it afresh), nor a pod
    /// deleted within the window; what those and the ones without room went through is kept for their workloads
    /// (``WorkloadCycles``). No instant later than `now` is taken over as it was: a history whose minutes run more
    /// than a minute past `now`'s (a clock that was ahead when it was written) is left out — it would ignore every
    /// sample until real time caught up —, and other instants (last seen, first sample, last counted kill, a
    /// workload's last note) are taken as `now` at the latest. `keepLastSeen`: a policy change keeps when each container was last seen (a container gone quiet is
    /// forgotten when it would have been); an agent restart counts it as seen now, since no engine watched in
    /// between — a pod deleted meanwhile is forgotten one quiet period later, leaving its cycles to its workload.
    /// Returns how many containers were taken over.
    @discardableResult
    public mutating func restore(_ memory: EngineMemory, now: UInt64, keepLastSeen: Bool = false) -> Int {
        for (key, entry) in memory.workloadCycles.entries {
            var entry = entry
            entry.lastNoted = min(entry.lastNoted, now)
            workloadCycles.merge(key, entry)
        }
        let nowMinute = Int64(now / MemoryHistory.minuteNanos)
        let keptSince = now.subtracting(saturating: WorkloadCycles.keepForNanos)
        var restored = 0
        // Most recently seen first (as ``memory(now:)`` writes them; a file need not be in order).
        for c in memory.containers.sorted(by: { $0.lastSeen > $1.lastSeen }) {
            let subject = Subject.podContainer(c.pod, container: c.container)
            // No instant after `now` comes in: a clock that was ahead (or a kernel timestamp a little ahead of the
            // wall clock) must not leave the new engine waiting for time to catch up.
            let lastSeen = min(c.lastSeen, now)
            // A history whose minutes run past now's (beyond a minute's slack) is not taken: it would merge every
            // sample until real time caught up into minutes it already holds.
            guard c.history.lastMinute <= nowMinute + 1, c.history.lastMinute > nowMinute - Int64(MemoryHistory.capacity),
                  index[subject] != nil || states.count < max(1, config.maxSubjects),
                  let i = slot(for: subject, now: now) else {
                // What it went through stays with its workload, unless that would be forgotten at once anyway (a
                // stale note must not push out a workload noted since).
                guard lastSeen >= keptSince else { continue }
                noteCycles(of: subject, owner: c.owner, history: c.history, limit: SubjectState.effectiveLimit(c.memoryLimit),
                           seen: lastSeen)
                continue
            }
            states[i].history = c.history
            states[i].history.firstAt = min(c.history.firstAt, now)
            // (Without it the first cgroup sample would take the history for a per-process one and start it over.)
            states[i].hasCgroupSeries = c.hasCgroupSeries
            states[i].owner = states[i].owner ?? c.owner
            states[i].memoryLimit = states[i].memoryLimit ?? c.memoryLimit
            states[i].memoryRequest = states[i].memoryRequest ?? c.memoryRequest
            states[i].restartCount = max(states[i].restartCount, c.restartCount)
            if c.restartsKnown {
                states[i].restartsKnown = true
                states[i].restartsTaken = true
            }
            states[i].lastCountedOOMFinishedAt = max(states[i].lastCountedOOMFinishedAt, min(c.lastCountedOOMFinishedAt, now))
            states[i].lastSeen = keepLastSeen ? lastSeen : max(now, states[i].lastSeen)
            restored += 1
        }
        // After the noting: a workload noted long ago makes room for none noted since.
        workloadCycles.prune(now: now)
        timedWorkCache = nil
        return restored
    }
}
