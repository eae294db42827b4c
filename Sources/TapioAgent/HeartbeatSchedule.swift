import KubeClient

/// When the agent writes its heartbeat Lease — pure logic with an injected clock (seconds on any monotonic scale).
///
/// At once when what the Lease reports changed (the applied policies, their errors, the node's problems), so the
/// operator's "node applied the policy" is as fresh as before; otherwise only every `period` (default 120 s), so an
/// agent at rest writes once per `period` instead of every 10 s (at 5,000 nodes: 42 writes/s, not 500). A failed write
/// is retried after `retry`. The Lease's duration is ``leaseDurationSeconds``: 3 periods, so one lost renewal and its
/// retries still keep the agent alive in the operator's eyes. The first period after the first write is shortened by
/// `phase` (the agent draws it at random): agents started together — a DaemonSet rollout, a cluster restart — then
/// spread their renewals over the period instead of all writing in the same second.
public struct HeartbeatSchedule: Sendable {
    /// What the Lease says.
    public struct Report: Sendable, Equatable {
        public var applied: [String: Int64]
        public var errors: [String: String]
        public var problems: [String]
        public init(applied: [String: Int64] = [:], errors: [String: String] = [:], problems: [String] = []) {
            self.applied = applied
            self.errors = errors
            self.problems = problems
        }
    }

    public let period: Double
    public let retry: Double
    private var written: Report?
    private var writtenAt: Double?
    private var failedAt: Double?
    /// The fraction of `period` the first renewal waits (0.1–1), then spent.
    private var phase: Double

    public init(period: Duration, retry: Duration = .seconds(5), phase: Double = 1) {
        self.period = max(1, period.inSeconds)
        self.retry = max(0.1, retry.inSeconds)
        self.phase = phase.isFinite ? min(max(phase, 0.1), 1) : 1
    }

    /// The wait after the last write when nothing changes.
    private var interval: Double { period * phase }

    /// The Lease's `leaseDurationSeconds`: three periods (bounded to what the field holds).
    public var leaseDurationSeconds: Int32 { Int32(clamping: Int64((period * 3).rounded(.up))) }

    /// Whether `report` must be written at `now`.
    public func due(_ report: Report, now: Double) -> Bool {
        if let f = failedAt { return now - f >= retry }
        guard let w = written, let at = writtenAt else { return true }
        return w != report || now - at >= interval
    }

    /// How long until the next write is due if nothing changes.
    public func wait(now: Double) -> Double {
        if let f = failedAt { return max(0, retry - (now - f)) }
        guard let at = writtenAt else { return 0 }
        return max(0, interval - (now - at))
    }

    public mutating func wrote(_ report: Report, at now: Double) {
        if written != nil { phase = 1 }
        written = report
        writtenAt = now
        failedAt = nil
    }

    public mutating func failed(at now: Double) { failedAt = now }
}
