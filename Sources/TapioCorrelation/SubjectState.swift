import DequeModule
import TapioModel

/// An insight that is currently active, with what the engine needs to decide what to emit next.
struct ActiveInsight: Sendable {
    var identity: InsightIdentity
    var spec: InsightSpec
    var firstSeen: UInt64
    var lastDetected: UInt64
    var lastEmitted: UInt64
    var occurrences: Int
    /// Whether a person has been told (it reached `minSeverity` and was not covered by a ClusterHealth insight).
    var announced: Bool
    /// Counted as detected until then: a finding adopted by a new engine (``CorrelationEngine/adoptActiveFindings``)
    /// waits for that engine to have seen a window before `resolveAfter` starts.
    var heldUntil: UInt64 = 0
    /// When that hold began (the adoption): a finding not detected since keeps it through later adoptions.
    var heldFrom: UInt64 = 0

    /// Since when it has gone undetected, for `resolveAfter`.
    var clearSince: UInt64 { max(lastDetected, heldUntil) }
}

/// Time-bucketed TCP trouble for the network detector.
struct NetBucket: Sendable, Hashable {
    var index: Int64
    var refused: UInt32 = 0
    var resets: UInt32 = 0
    var retransmits: UInt32 = 0
    var errors: UInt32 = 0
}

/// A remote endpoint with how often it was involved; at most a few are kept (the most frequent win).
struct RemoteCount: Sendable, Hashable {
    var address: String
    var port: UInt16
    var count: UInt32
    var lastAt: UInt64
}

/// A kernel process exit or OOM kill seen for the subject, kept as evidence for crash-loop and OOM insights.
struct KernelExit: Sendable, Hashable {
    var at: UInt64
    var pid: Int32
    var comm: String
    var exitCode: Int32
    var signal: Int32
    var oom: Bool
    var rssBytes: UInt64
}

/// Everything the engine remembers about one subject. Each part is bounded: time-bucketed deques trimmed to
/// the window, small capped lists for discrete events.
struct SubjectState: Sendable {
    var subject: Subject
    /// Creation sequence number: tells a slot's current occupant from an earlier one with the same index.
    var generation: UInt64
    var firstSeen: UInt64
    var lastSeen: UInt64
    var lastEvaluated: UInt64 = 0
    var dirty = false

    // Context (attributor, podUpdated, cgroup files).
    var owner: OwnerRef?
    var node: String?
    var image: String?
    var memoryRequest: UInt64?
    var memoryLimit: UInt64?

    // Memory.
    var memory = MemorySeries()
    /// Minute maxima and minima for the last two hours (≤ 1 KiB): what the window forgets. Kept across restarts
    /// of the container (a restart that comes back down is a cycle the workload goes through); kills are marked.
    var history = MemoryHistory()
    /// True once cgroup samples arrive: process RSS samples are then ignored for this subject.
    var hasCgroupSeries = false
    var peakWorkingSet: UInt64 = 0
    /// Since when every evaluation has read the memory curve as levelling off below the limit (nil: the last one
    /// did not): the reading settles an OOM prediction once it has held for
    /// ``CorrelationEngine/Forecast/levelsOffHoldSeconds``.
    var levellingOffSince: UInt64?
    /// The last evaluation at which that reading had held for the hold or longer (0: never): a new OOM prediction
    /// waits as long after it (``CorrelationEngine/Forecast/levelsOffHoldSeconds``).
    var levelledOffAt: UInt64 = 0
    /// The last evaluation at which the window read growth speeding up (0: none yet): the next one within
    /// ``CorrelationEngine/Forecast/speedUpHoldSeconds`` keeps the reading at a lower bar
    /// (``MemoryAnalysis/bendHoldZ``).
    var speedUpAt: UInt64 = 0
    /// The last evaluation whose OOM prediction rested on a curve in doubt (0: none yet): a new prediction stays
    /// Info for ``CorrelationEngine/Forecast/curveDoubtHoldSeconds`` after it (``CorrelationEngine/CurveDoubt``).
    var curveDoubtedAt: UInt64 = 0

    /// Whether a reading last made at `at` (0: never) still holds at `now`, `seconds` on (both ends included).
    static func holds(since at: UInt64, for seconds: Double, now: UInt64) -> Bool {
        at > 0 && now >= at && Double(now - at) / 1e9 <= seconds
    }

    /// A new container, series or limit: what the old curve did says nothing about the new one.
    mutating func forgetCurveReadings() {
        levellingOffSince = nil
        levelledOffAt = 0
        speedUpAt = 0
        curveDoubtedAt = 0
    }

    /// The memory limit as the cgroup or the pod reports it; a changed one forgets the levelling-off reading, judged
    /// against the old limit (and the speed-up's hold with it).
    mutating func noteLimit(_ bytes: UInt64) {
        guard bytes != memoryLimit else { return }
        memoryLimit = bytes
        forgetCurveReadings()
    }

    // OOM kills.
    /// Kernel kills and pod-status OOMKilled terminations, each counted once (time of the incident).
    var oomIncidents: Deque<UInt64> = []
    var lastKernelOOM: KernelExit?
    /// `finishedAt` of the newest pod-status OOM termination already counted (VPA's isNewOOM).
    var lastCountedOOMFinishedAt: UInt64 = 0
    var oomKilledByStatus = false
    var lastExit: KernelExit?
    /// When the subject could receive no more events: its process exited or exec'd another program, or the
    /// runtime container turned out to be a pod's (later events name the pod's container). Forgotten one re-check
    /// period after — unless it was seen again since (a reused pid).
    var endedAt: UInt64?
    var hasEnded: Bool { endedAt.map { $0 >= lastSeen } ?? false }

    // Restarts, crash loop, probes.
    var restartCount = 0
    /// The restart count is the pod status's (this engine has seen it, or one before it did).
    var restartsKnown = false
    /// …and it was taken over from an engine that watched before this one (``EngineMemory``): a higher count on this
    /// engine's first sight is then news (a restart while no engine watched), not history from before Tapio.
    var restartsTaken = false
    var restartTimes: Deque<UInt64> = []
    var lastTermination: Termination?
    var waitingReason: String?
    var crashLoopSince: UInt64?
    var probeFailures: Deque<UInt64> = []
    var lastProbeMessage: String?
    var lastProbe: String?

    // Network.
    var net: Deque<NetBucket> = []
    var remotes: [RemoteCount] = []

    // Node subjects.
    var conditions: [String: NodeConditionState] = [:]
    var evictions: Deque<(at: UInt64, pod: PodRef)> = []

    var active: [ActiveInsight] = []

    init(subject: Subject, generation: UInt64, now: UInt64) {
        self.subject = subject
        self.generation = generation
        self.firstSeen = now
        self.lastSeen = now
    }

    mutating func apply(_ c: SubjectContext) {
        if let o = c.owner { owner = o }
        if let n = c.node { node = n }
        if let i = c.image { image = i }
        if let r = c.memoryRequestBytes { memoryRequest = r }
        // Through `noteLimit`: a changed limit forgets what was read of the curve against the old one.
        if let l = c.memoryLimitBytes { noteLimit(l) }
    }

    /// The memory limit, if it is a real one (cgroup v1 reports "unlimited" as a page-rounded 2^63).
    var effectiveLimit: UInt64? { Self.effectiveLimit(memoryLimit) }

    static func effectiveLimit(_ limit: UInt64?) -> UInt64? {
        guard let l = limit, l > 0, l < (1 << 60) else { return nil }
        return l
    }

    mutating func trim(now: UInt64, windowNanos: UInt64, bucketNanos: UInt64) {
        let cutoff = now > windowNanos ? now - windowNanos : 0
        while let f = oomIncidents.first, f < cutoff { oomIncidents.removeFirst() }
        while let f = restartTimes.first, f < cutoff { restartTimes.removeFirst() }
        while let f = probeFailures.first, f < cutoff { probeFailures.removeFirst() }
        while let f = evictions.first, f.at < cutoff { evictions.removeFirst() }
        let oldest = Int64(cutoff / bucketNanos)
        while let f = net.first, f.index < oldest { net.removeFirst() }
        if net.isEmpty { remotes.removeAll() }
    }
}

struct NodeConditionState: Sendable, Hashable {
    var status: Bool
    var since: UInt64
    var reason: String
    var message: String
}
