/// When the engine has timed work. The agent's pipeline waits on ``CorrelationEngine/nanosUntilDue(now:)``; a
/// driver of virtual time (a scenario replay) uses these to jump over idle time instead of ticking through it.
extension CorrelationEngine {
    /// The earliest instant, at or before `limit`, at which ``tick(now:into:)`` has timed work — a partial batch's
    /// timeout, a re-check or resolution of an active insight, forgetting a quiet subject, expiring a deleted pod's
    /// tombstone or an owner's image history — or nil if there is none by then. It may lie in the past (overdue).
    ///
    /// Ticking at each instant this returns, and at no others, does the same work as ticking every second, at
    /// the instants it falls due. After a tick at the returned instant the next one is later, so a driver that
    /// loops on it always moves forward.
    public mutating func nextTimedWork(notAfter limit: UInt64) -> UInt64? {
        var due = UInt64.max
        if batchCount > 0 { due = batchStart.adding(saturating: batchTimeoutNanos) }
        // Housekeeping runs at most once a second: only scan the subjects when it could come first.
        let pace = lastHousekeeping.adding(saturating: 1_000_000_000)
        if pace <= limit, pace < due { due = min(due, max(pace, housekeepingDue())) }
        // `UInt64.max` is "never": a timeout that saturated there can never be reached by `now - start`.
        return due <= limit && due != .max ? due : nil
    }

    /// How long a subject with no active insight is kept after its last event: a window and a resolution period,
    /// so that what comes back finds its history — except a subject that has ended (a bare process that exited or
    /// exec'd, a runtime container its pod's status now names), which cannot come back: kept one re-check period,
    /// long enough for its end to be evaluated.
    func quietPeriod(of s: SubjectState) -> UInt64 {
        if s.hasEnded { return max(recheckNanos, 1) }
        return max(windowNanos.adding(saturating: resolveAfterNanos), 1)
    }

    /// After this instant, with no new events, timed work can only re-state insights whose condition no longer
    /// changes with time (a container still waiting in CrashLoopBackOff, a node still under pressure): every window
    /// has emptied — twice over for what is kept two windows (owners' images, a ClusterHealth group fed by pods'
    /// insights) — every resolution and clean-up is done, and the 10-minute rollout rule has run out.
    public var settledAt: UInt64 {
        lastIngestAt.adding(saturating: windowNanos.multiplied(saturating: 2))
            .adding(saturating: resolveAfterNanos)
            .adding(saturating: bucketNanos)
            .adding(saturating: recheckNanos.multiplied(saturating: 2))
            .adding(saturating: 602_000_000_000)
    }

    /// The earliest instant housekeeping has something to do, ignoring its once-a-second pace (`UInt64.max`:
    /// nothing). Cached until an event, a batch or housekeeping itself could bring it forward.
    private mutating func housekeepingDue() -> UInt64 {
        if let cached = timedWorkCache { return cached }
        var due = UInt64.max
        for s in states {
            if !s.active.isEmpty {
                due = min(due, s.lastEvaluated.adding(saturating: recheckNanos))
                for a in s.active { due = min(due, a.clearSince.adding(saturating: resolveAfterNanos)) }
            } else if s.subject != .cluster {
                due = min(due, s.lastSeen.adding(saturating: quietPeriod(of: s)))
            }
        }
        // Pruned once strictly older than the cutoff, hence the extra nanosecond.
        if let t = tombstoneOrder.first { due = min(due, t.at.adding(saturating: windowNanos).adding(saturating: 1)) }
        let twoWindows = windowNanos.multiplied(saturating: 2)
        for e in ownerImages.values { due = min(due, e.lastSeen.adding(saturating: twoWindows).adding(saturating: 1)) }
        timedWorkCache = due
        return due
    }
}
