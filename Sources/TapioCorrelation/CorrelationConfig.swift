import TapioModel

/// The engine's knobs. Every field maps onto a TapioPolicy field (the agent does the mapping); the defaults are
/// the policy's defaults (DESIGN.md §4).
public struct CorrelationConfig: Sendable, Hashable {
    /// Detectors run after this many events…
    public var batchSize: Int = 100
    /// …or when this much time has passed since the batch began, whichever comes first.
    public var batchTimeout: Duration = .milliseconds(100)
    /// How far back per-subject state reaches.
    public var window: Duration = .seconds(300)
    /// Sustained growth above this is a leak (`probes.memory.leakThreshold`, default 10 MB per hour).
    public var leakThresholdBytesPerHour: Double = 10_000_000
    /// Updates below this severity are not emitted.
    public var minSeverity: Severity = .info
    /// The highest memory limit remediation may suggest (`remediation.memoryCeiling`).
    public var memoryCeilingBytes: UInt64?
    /// An insight resolves once its condition has been clear this long.
    public var resolveAfter: Duration = .seconds(300)
    /// An unchanged insight is re-emitted as `updated` at most this often (changes of severity are immediate).
    public var updateInterval: Duration = .seconds(30)
    /// OOM predictions further out than this are not made.
    public var predictionHorizon: Duration = .seconds(3600)
    /// At most this many subjects are tracked; the least recently seen is evicted (counted) to make room.
    public var maxSubjects: Int = 50_000
    /// Engine breaker: consecutive overloaded seconds that open it…
    public var breakerFailureThreshold: Int = 3
    /// …how long it stays open before a trial second…
    public var breakerCoolDown: Duration = .seconds(10)
    /// …and the event rate (per second of event time) above which a second counts as overloaded. While the breaker
    /// is open, high-volume samples (memory samples, TCP retransmits, exec/fork) are shed and counted; cluster
    /// events, OOM kills, exits and TCP failures still pass, so insights degrade instead of the process.
    public var maxEventsPerSecond: Double = 5_000_000
    /// Restarts within the window that count as a crash loop even before `CrashLoopBackOff` is reported.
    public var crashLoopRestarts: Int = 5
    /// TCP failures (refused, reset, socket errors; retransmits count 1/10) within the window needed for a
    /// NetworkIssue, together with a restart or probe failure.
    public var networkFailureThreshold: Int = 5
    /// Distinct pods with the same failure sharing an image, node or namespace that make it a ClusterHealth issue.
    public var clusterHealthMinPods: Int = 5
    /// Group failing pods by node only. The agent sees one node's pods: an image or namespace group there is one
    /// node's slice of what the operator sees whole across nodes, and two agents would write one cluster-wide name.
    public var clusterHealthByNodeOnly: Bool = false

    public init() {}

    @inline(__always) var windowNanos: UInt64 { window.nanos }
    /// The width of the engine's memory buckets: a thirtieth of the window (at least a second's window and a
    /// millisecond's bucket). The cgroup poller sends an unchanged sample once per bucket, so it needs the same figure.
    public var bucketNanos: UInt64 { Swift.max(Swift.max(windowNanos, 1_000_000_000) / 30, 1_000_000) }
    /// The step of the engine's long history (``MemoryHistory``): the cgroup poller sends an unchanged sample once
    /// per step too.
    public static var historyStepNanos: UInt64 { MemoryHistory.minuteNanos }
    @inline(__always) var batchTimeoutNanos: UInt64 { batchTimeout.nanos }
}
