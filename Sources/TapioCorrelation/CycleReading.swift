/// What a subject's long history says about ramps longer than the window that dropped back (batch phases, periodic
/// flushes, caches rebuilt on a schedule): read from the minute history's drops, for the OOM prediction.
enum CycleReading: Sendable {
    /// No drop in the history: nothing to say.
    case none
    /// One drop, from `highest`: a climb back to about there is the same cycle again; above it, it may still be one
    /// with a higher peak.
    case once(highest: Double)
    /// No drop of its own, but other pods of its workload came back down, from `highest` at most (see
    /// ``WorkloadCycles``): read as ``once(highest:)`` is, with the pod named.
    case workload(highest: Double, drops: Int, pod: String)
    /// Two or more drops whose peaks do not clearly climb: a cycle, not a leak.
    case steady(drops: Int)
    /// Two or more drops whose peaks climb: a leak across cycles.
    case rising(RisingPeaks)

    /// Peaks that climb from cycle to cycle (Theil–Sen over the peaks, z ≥ 2).
    struct RisingPeaks: Sendable {
        /// The peaks' line, in seconds since the analysis' origin.
        var trend: TrendFit
        /// Drops in the history, and the points of the line: the drops' peaks (and with only two, the running
        /// climb's when it is already higher than both).
        var drops: Int
        var points: Int
        /// When the last drop's peak was (same clock), and the median time between the drops' peaks.
        var lastPeak: Double
        var period: Double

        /// Seconds from `nowSec` to the kill. Memory reaches the limit at the top of a climb, not where the peaks'
        /// line crosses it between two of them: the kill comes on the first climb, in the rhythm, whose peak on the
        /// line reaches the limit (the crossing itself would be up to a period early — "0s" while the last climb
        /// is still ahead). When that is the climb in progress (`climb`: its level now and rate, when memory is
        /// growing), its own rate says when; a later one's peak is the estimate.
        func timeToLimit(limit: Double, nowSec: Double, climb: (level: Double, slope: Double)?) -> Double? {
            guard trend.slope > 0 else { return nil }
            let crossing = (limit - trend.intercept) / trend.slope
            guard period > 0 else { return max(0, crossing - nowSec) }
            // Counted from the last drop's peak: climb 1 is the one in progress, or the next when memory is between
            // climbs (no climb has peaked since the last drop).
            let k = max(1, ((crossing - lastPeak) / period).rounded(.up))
            let climbTime = climb.flatMap { c in c.slope > 0 ? max(0, limit - c.level) / c.slope : nil }
            if k == 1, let climbTime { return climbTime }
            var due = lastPeak + k * period
            // A climb that is late (its rhythm's peak already past) is expected at the next peak of the rhythm,
            // strictly after now.
            if due <= nowSec { due += ((nowSec - due) / period).rounded(.down) * period + period }
            // A climb in progress that runs late may be the one, if it keeps climbing: the sooner of the two.
            if let climbTime, nowSec > lastPeak + period { return min(climbTime, due - nowSec) }
            return due - nowSec
        }
    }

    /// A cycle's share of the limit: a drop ends a cycle when it gives back this much of the limit (and a quarter of
    /// its peak, whichever is more), and a climb back to within this much of an earlier peak is that cycle again.
    static let limitShare = 0.05

    /// The earlier cycles in `history` under `limit` (bytes; 0 without one), drops counted as ``limitShare`` says.
    static func cycles(in history: MemoryHistory, limit: Double) -> [MemoryHistory.Cycle] {
        history.cycles(minDrop: limitShare * limit)
    }

    /// The cycles in `history` its workload's other pods may go by (``MemoryHistory/cyclesLivedThrough(minDrop:)``),
    /// drops counted as in ``cycles(in:limit:)``.
    static func cyclesLivedThrough(in history: MemoryHistory, limit: Double) -> [MemoryHistory.Cycle] {
        history.cyclesLivedThrough(minDrop: limitShare * limit)
    }

    /// Reads `history` against the current climb. `running` is the highest the memory is now (the window's robust
    /// peak, or the envelope's level when higher). The peaks are placed in seconds on the analysis' clock, where
    /// `now` (nanoseconds) is `nowSec`.
    static func read(_ history: MemoryHistory, limit: Double, running: Double, now: UInt64,
                     nowSec: Double) -> CycleReading {
        let cycles = Self.cycles(in: history, limit: limit)
        guard let highest = cycles.map(\.peak).max() else { return .none }
        if cycles.count == 1 { return .once(highest: highest) }
        // Each peak is placed where in its minute it most likely was (see ``MemoryHistory/cycles(minDrop:)``).
        var t = cycles.map { nowSec - history.secondsSince(peakIn: $0.minute, early: $0.early, now: now) }
        var gaps = zip(t.dropFirst(), t).map { $0 - $1 }
        let period = RobustTrend.median(&gaps)
        let lastPeak = t[t.count - 1]
        var y = cycles.map(\.peak)
        // With only two drops the running climb makes the third point, when it is already higher than both. Not
        // with more: in mid-climb it is a low bound of its own peak, and it would pull the line down — the kill
        // then read a whole period late.
        if cycles.count < 3, running > highest { t.append(nowSec); y.append(running) }
        guard let trend = RobustTrend.theilSen(t: t, y: y), trend.slope > 0, trend.zScore >= 2 else {
            return .steady(drops: cycles.count)
        }
        return .rising(RisingPeaks(trend: trend, drops: cycles.count, points: y.count, lastPeak: lastPeak,
                                   period: period))
    }
}
