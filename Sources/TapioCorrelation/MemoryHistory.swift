import DequeModule

/// A subject's memory beyond the window: one entry per minute (its maximum and minimum) for the last
/// ``capacity`` minutes, so the engine remembers what a workload did over the last two hours at a fixed cost —
/// at most 128 × 8 = 1,024 bytes of entries per subject, plus the deque's header, four kill minutes and a few
/// scalars.
///
/// Values are stored in units of 64 KiB in 32 bits (up to 256 TiB, saturating): a minute's envelope needs no
/// finer grain than that, and it halves the bytes per minute.
///
/// What it is for: ramps longer than the window that come back down (a batch phase, a periodic flush) look like a
/// leak inside the window. Here their earlier peaks and drops are still visible, so a ramp that has dropped back
/// from this height before is recognised as a cycle (see ``cycles(minDrop:)``), and a leak that grows from
/// cycle to cycle is seen in the trend of its peaks. It also tells how long memory has been climbing along the
/// curve now seen (``run(before:now:curve:tolerance:)``), which the prediction's confidence grows with.
struct MemoryHistory: Sendable {
    struct Minute: Sendable, Hashable {
        var max: UInt32
        var min: UInt32
        var empty: Bool { max == 0 && min == .max }
    }

    /// Minutes kept: two hours and a bit, enough to see one whole earlier cycle of a workload with a one-hour
    /// period before its current ramp.
    static let capacity = 128
    static let unitShift: UInt64 = 16
    static let minuteNanos: UInt64 = 60_000_000_000

    var minutes: Deque<Minute> = []
    /// Minutes (numbers since the epoch) with an OOM kill, the kernel probe's or the pod status's, at most 8: the
    /// drop that follows a kill is the kernel's doing, not the workload's, and must not count as a cycle.
    var oomMarks = MinuteMarks()
    /// Minutes a container restarted in (any reason; when the agent saw its restart count rise), at most 16. The drop
    /// a restart makes is a new container starting low, not the workload giving memory back: this container's own
    /// reading counts it as a cycle (a container restarted before it climbs higher than last time), the cycles kept
    /// for its workload's other pods do not (``cyclesLivedThrough(minDrop:)``).
    var restartMarks = MinuteMarks()
    /// The minute number (since the epoch) of `minutes.last`.
    var lastMinute: Int64 = 0
    /// The first sample's instant: how long this subject has been watched.
    var firstAt: UInt64 = 0

    static func units(_ bytes: UInt64) -> UInt32 { UInt32(clamping: bytes >> unitShift) }
    static func bytes(_ units: UInt32) -> Double { Double(units) * Double(1 << unitShift) }

    @inline(__always)
    mutating func add(at t: UInt64, value: UInt64) {
        let m = Int64(t / Self.minuteNanos)
        let v = Self.units(value)
        if minutes.isEmpty {
            firstAt = t
            lastMinute = m
            minutes.append(Minute(max: v, min: v))
            return
        }
        if m == lastMinute {
            let i = minutes.count - 1
            if v > minutes[i].max { minutes[i].max = v }
            if v < minutes[i].min { minutes[i].min = v }
        } else if m > lastMinute {
            // Minutes without samples stay empty; a gap longer than the history starts it afresh.
            let gap = m - lastMinute
            if gap > Int64(Self.capacity) {
                minutes.removeAll()
            } else {
                for _ in 1..<gap {
                    if minutes.count >= Self.capacity { minutes.removeFirst() }
                    minutes.append(Minute(max: 0, min: .max))
                }
            }
            // Room is made before appending, and the full size reserved once the subject has lived a quarter of
            // an hour: the deque never grows past 128 entries (an append at 128 would double it to 256), and
            // short-lived subjects do not pay for two hours.
            while minutes.count >= Self.capacity { minutes.removeFirst() }
            if minutes.count == 16 { minutes.reserveCapacity(Self.capacity) }
            minutes.append(Minute(max: v, min: v))
            lastMinute = m
        } else {
            // A late sample for an earlier minute still in the history.
            let back = lastMinute - m
            if back < Int64(minutes.count) {
                let i = minutes.count - 1 - Int(back)
                if v > minutes[i].max { minutes[i].max = v }
                if v < minutes[i].min { minutes[i].min = v }
            }
        }
    }

    /// Marks a container restart (any reason) at `t`: see ``restartMarks``.
    mutating func markRestart(at t: UInt64) { restartMarks.mark(Int64(t / Self.minuteNanos), capacity: Self.restartMarksKept) }

    mutating func markOOM(at t: UInt64) { oomMarks.mark(Int64(t / Self.minuteNanos), capacity: Self.oomMarksKept) }

    static let oomMarksKept = 8
    static let restartMarksKept = 16

    /// The minute number of entry `i`.
    @inline(__always) func minute(_ i: Int) -> Int64 { lastMinute - Int64(minutes.count - 1 - i) }

    /// Whether an OOM kill fell in minute `m` or the one before (its drop may show a minute later).
    @inline(__always) func killed(near m: Int64) -> Bool { oomMarks.near(m) }

    /// A finished cycle: its peak's minute (since the epoch), the peak (bytes), how early in that minute it most
    /// likely was (seconds), and the minute memory dropped in.
    typealias Cycle = (minute: Int64, peak: Double, early: Double, drop: Int64)

    /// Earlier cycles: each a peak (bytes) and its minute, closed by a drop of at least a quarter of the peak (and
    /// of `minDrop`) that no OOM kill caused. A quarter: GC and cache trimming move memory by a few percent, a
    /// finished batch phase or a restart by far more. The running (unfinished) cycle is not included.
    ///
    /// `early` is how long before its minute's end the peak most likely was: half a minute when the drop's own
    /// minute holds it (memory climbed on, then fell, inside it), none when the minute before does (a climbing
    /// minute's maximum is at its end).

    /// The cycles other pods of the workload may go by (``WorkloadCycles``): those of ``cycles(minDrop:)`` that no
    /// restart made (nor a kill, as there) and that the container lived on past for two minutes or more — a drop in a
    /// pod's last minutes may be its shutdown, not a cycle.
    func cycles(minDrop: Double) -> [Cycle] {
        var out: [Cycle] = []
        var peak: UInt32 = 0
        var peakIndex = 0
        // The lowest point since the last drop (0 before the first: the first cycle's climb may predate the
        // history).
        var low: UInt32 = 0
        for (i, x) in minutes.enumerated() where !x.empty {
            let p = Self.bytes(peak)
            if peak > 0, Self.bytes(x.min) <= p - max(0.25 * p, minDrop) {
                // A drop inside this minute: memory most likely climbed on in it first, so its maximum is the
                // cycle's peak when higher (the minute before would read the peak up to a minute of climb low).
                let top = x.max > peak ? (minute(i), Self.bytes(x.max), 30.0) : (minute(peakIndex), p, 0.0)
                // A cycle is a climb and a drop: a drop that goes on into the next minute has climbed nothing since
                // the last one, and is the same drop, not a second cycle.
                let climbed = top.1 - Self.bytes(low) >= max(0.25 * top.1, minDrop)
                // A kill from the minute before the peak to the drop's: a container killed under CrashLoopBackOff
                // comes back (and its memory shows the drop) up to five minutes after the kill.
                if climbed, !oomMarks.within(top.0 - 1, minute(i)) { out.append((top.0, top.1, top.2, minute(i))) }
                // The next cycle starts at the trough.
                peak = x.min
                peakIndex = i
                low = x.min
                continue
            }
            if x.max >= peak { peak = x.max; peakIndex = i }
            low = Swift.min(low, x.min)
        }
        return out
    }

    /// The cycles other pods of the workload may go by (``WorkloadCycles``): those of ``cycles(minDrop:)`` that no
    /// restart made (nor a kill, as there) and that the container lived on past for two minutes or more — a drop in a
    /// pod's last minutes may be its shutdown, not a cycle.
    func cyclesLivedThrough(minDrop: Double) -> [Cycle] {
        // A restart from the minute before the peak to the minute after the drop (the new container's first sample
        // can precede the status that tells of it), or marks that have been dropped there.
        cycles(minDrop: minDrop).filter { c in
            c.drop <= lastMinute - 2 && !restartMarks.within(c.minute - 1, c.drop + 1)
        }
    }

    /// Seconds from a cycle's peak to `now`: `early` seconds before the end of minute `m` (see
    /// ``cycles(minDrop:)``), or before `now` when that minute is still running, but not before the minute began.
    func secondsSince(peakIn m: Int64, early: Double, now: UInt64) -> Double {
        let start = UInt64(clamping: m) &* Self.minuteNanos
        let end = Swift.min(start &+ Self.minuteNanos, now)
        let peak = Swift.max(start, end &- Swift.min(end, UInt64(early * 1e9)))
        return peak <= now ? Double(now - peak) / 1e9 : 0
    }

    /// Seconds before minute `before` over which the history follows `curve` (bytes as a function of seconds
    /// relative to `now`, negative into the past): going back minute by minute, each minute's maximum must lie within
    /// `tolerance(Δ)` of the curve at that minute's end, where a steady climb peaks — or, with `peakAnywhere` (under a
    /// GC sawtooth, whose tops come anywhere in a minute), of the curve somewhere in it: between its values at the
    /// minute's start and end. Checked at the end alone, a 45-s tooth's top up to 45 s of climb below it broke the
    /// run now and then, and the growth seen fell back by up to twelve minutes (`GrowthSeenTests`). Stops at the
    /// first minute that does not, an empty one or a kill. This is how long the growth now seen has really been
    /// going on.
    func run(before: Int64, now: UInt64, curve: (Double) -> Double, tolerance: (Double) -> Double,
             peakAnywhere: Bool = false) -> Double {
        guard !minutes.isEmpty, before <= lastMinute + 1 else { return 0 }
        var i = minutes.count - 1 - Int(clamping: lastMinute - (before - 1))
        var run = 0.0
        while i >= 0, i < minutes.count {
            let x = minutes[i]
            let m = minute(i)
            if x.empty || killed(near: m + 1) { break }
            let back = secondsSinceEnd(ofMinute: m, now: now)
            // A curve without a value there (a logarithm before its origin) does not reach back that far.
            let atEnd = curve(-back)
            guard atEnd.isFinite else { break }
            let atStart = peakAnywhere ? curve(-secondsSince(peakIn: m, early: 60, now: now)) : atEnd
            guard atStart.isFinite else { break }
            let top = Self.bytes(x.max), slack = tolerance(back)
            guard top >= Swift.min(atStart, atEnd) - slack, top <= Swift.max(atStart, atEnd) + slack else { break }
            run += 60
            i -= 1
        }
        return run
    }

    /// Seconds from the end of minute `m` to `now` (0 when it has not ended): how long ago a climbing minute's
    /// maximum was seen.
    @inline(__always) func secondsSinceEnd(ofMinute m: Int64, now: UInt64) -> Double {
        secondsSince(peakIn: m, early: 0, now: now)
    }

    /// The bend of the envelope over the recent history: the maxima of the finished minutes since the last drop
    /// (a minute whose maximum is over a third above the next one's minimum), gap or kill, at most `maxMinutes`,
    /// fitted in two halves. Nil with fewer than ten minutes. `accel` is bytes/s²; it is `significant` when the
    /// halves' slopes differ by more than ``MemoryAnalysis/bendZ`` standard errors, widened for correlated minutes
    /// (detectors re-test every bucket: at a lower bar, noise would bend the curve now and then), or, for one that
    /// slows down, when the whole climb's parabola leaves under half a line's squared residuals (``slowsDown(x:y:)``).
    /// With ten minutes seen there is no hurry to read a levelling off (the window's own reading does that early), and
    /// over the corpus's noise seeds a three-error bar for it here scored worse (mean Brier 0.163 against 0.160).
    ///
    /// `curve` says which curve the same minutes follow (each maximum placed at its minute's end, relative to `now`)
    /// when they speed up: over ten minutes or more a compounding curve, a parabola and a flat stretch followed by a
    /// straight line can be told apart, and the halves' bend (the acceleration between their middles) lags behind a
    /// compounding one and invents one at a knee. When it slows down, a logarithm (which never levels off) and an
    /// approach to a level are told apart the same way, over all of the climb the history holds.
    func bend(now: UInt64, maxMinutes: Int = 60) -> Bend? {
        let (t, y) = climbMinutes(now: now, maxMinutes: maxMinutes)
        guard t.count >= 10 else { return nil }
        let h = t.count / 2
        guard let o = RobustTrend.theilSen(t: Array(t[..<h]), y: Array(y[..<h]), correlated: true),
              let r = RobustTrend.theilSen(t: Array(t[h...]), y: Array(y[h...]), correlated: true) else { return nil }
        let oMid = t[..<h].reduce(0, +) / Double(h), rMid = t[h...].reduce(0, +) / Double(t.count - h)
        guard rMid > oMid else { return nil }
        let z = RobustTrend.slopeChangeZ(from: o, to: r)
        let accel = (r.slope - o.slope) / (rMid - oMid)
        // A slowing bend shows in the halves' slopes, or in the whole climb's fit: a parabola that leaves under half a
        // line's squared residuals. The halves' errors are widened for correlated minutes, and a curve's own bend
        // leaves each half's minutes correlated around its line: a logarithmic climb's halves, their slopes three to
        // five times apart, stayed under four errors for its first hour.
        var significant = abs(z) > MemoryAnalysis.bendZ
        if !significant, accel < 0, Self.slowsDown(x: t, y: y) { significant = true }
        // No significant bend is a line; only growth that clearly bends is worth the fits (a few thousand
        // exponentials or logarithms).
        var curve = significant ? ClimbCurve.parabola : .line
        var compounding: CompoundingFit?
        if significant, accel > 0 { (curve, compounding) = ClimbCurve.judged(x: t, y: y) }
        // A slowing bend is judged on all of the climb the history holds (up to 127 finished minutes): a logarithm's bend is in
        // its early part, and over its last hour alone it is nearly straight. There it must show in the whole
        // climb's fit too, as a speed-up must (``ClimbCurve/judge(x:y:)``): over an hour a slow leak's wandering
        // offset can tilt its halves apart by four standard errors either way, and read as slowing, its
        // time-to-OOM came out 40–60 % long in its last hour.
        if significant, accel < 0 {
            let whole = climbMinutes(now: now, maxMinutes: Self.capacity)
            curve = ClimbCurve.judgeSlowing(x: whole.ends, y: whole.y)
        }
        // The last hour's line, when the logarithm's check below fitted it (read again for ``Bend/line``).
        var hourLine: TrendFit?
        if !significant, t.count == maxMinutes {
            // A climb older than the halves look at, straight over its last hour, may still be a logarithm — if the
            // logarithm also runs along that hour's line. A warm-up ramp followed by a straight leak bends the whole
            // climb as much, and the logarithm through both rises at three quarters of the leak's speed by its last
            // hour and ever slower: its time-to-OOM was three times the leak's (a review's sketch).
            let whole = climbMinutes(now: now, maxMinutes: Self.capacity)
            if whole.ends.count > t.count, Self.slowsDown(x: whole.ends, y: whole.y),
               case .logarithmic(let g) = ClimbCurve.judgeSlowing(x: whole.ends, y: whole.y),
               let first = t.first, let last = t.last, last > first,
               let hour = RobustTrend.theilSen(t: t, y: y, correlated: true) {
                hourLine = hour
                let along = (g.value(at: last) - g.value(at: first)) / (last - first)
                if abs(along - hour.slope) <= MemoryAnalysis.bendZ * hour.slopeStdError * hour.autocorrelation {
                    curve = .logarithmic(g)
                }
            }
        }
        var line: TrendFit?
        if case .line = curve, t.count >= Self.lineMinutes, let last = t.last, let top = y.last,
           let fit = hourLine ?? RobustTrend.theilSen(t: t, y: y, correlated: true), fit.slope > 0,
           fit.slope >= MemoryAnalysis.bendZ * fit.slopeStdError * fit.autocorrelation,
           top >= fit.value(at: last) - 3 * fit.sigma {
            line = fit
        }
        return Bend(accel: accel, significant: significant, minutes: t.count, curve: curve, line: line,
                    compounding: compounding)
    }

    /// The finished minutes since the last drop (a minute whose maximum is over a third above the next one's
    /// minimum), gap or kill, at most `maxMinutes`, oldest first: each one's end relative to `now` (seconds, ≤ 0;
    /// a climbing minute's maximum falls there) and its maximum.
    func climbMinutes(now: UInt64, maxMinutes: Int) -> (ends: [Double], y: [Double]) {
        var ends: [Double] = [], y: [Double] = []
        var i = minutes.count - 2  // the running minute is not finished
        var laterMin: Double?
        while i >= 0, ends.count < maxMinutes {
            let x = minutes[i]
            if x.empty || killed(near: minute(i) + 1) { break }
            if let later = laterMin, Self.bytes(x.max) * 0.75 > later { break }
            ends.append(-secondsSinceEnd(ofMinute: minute(i), now: now))
            y.append(Self.bytes(x.max))
            laterMin = Self.bytes(x.min)
            i -= 1
        }
        return (ends.reversed(), y.reversed())
    }

    /// The finished minutes among the last `count` before `now`'s that hold samples, oldest first: each one's end
    /// relative to `now` (seconds, ≤ 0), its maximum and its minimum (bytes). Minutes without samples are left out,
    /// not read as zero (an idle process is sampled only when it runs), but counted among the `count`.
    func lastMinutes(_ count: Int, now: UInt64) -> (ends: [Double], max: [Double], min: [Double]) {
        var ends: [Double] = [], maxima: [Double] = [], minima: [Double] = []
        // The running minute is not finished; nor, for an evaluation before this minute's first sample, is any later
        // one stored. The minutes between the last stored one and `now`'s had no samples: they count as empty.
        let current = Int64(now / Self.minuteNanos)
        var i = minutes.count - 1
        while i >= 0, minute(i) >= current { i -= 1 }
        var seen = minutes.isEmpty ? 0 : Int(clamping: Swift.max(0, current - 1 - lastMinute))
        while i >= 0, seen < count {
            let x = minutes[i]
            if !x.empty {
                ends.append(-secondsSinceEnd(ofMinute: minute(i), now: now))
                maxima.append(Self.bytes(x.max))
                minima.append(Self.bytes(x.min))
            }
            seen += 1
            i -= 1
        }
        return (ends.reversed(), maxima.reversed(), minima.reversed())
    }

    /// Whether points bend down clearly in a parabola's fit: it leaves under half a line's squared residuals
    /// (``CompoundingFit/clearlyBetter``) and its acceleration is negative.
    static func slowsDown(x: [Double], y: [Double]) -> Bool {
        guard let p = MemoryAnalysis.fitParabola(t: x, y: y, at: 0), p.accel < 0,
              let line = ClimbCurve.lineSSR(x: x, y: y) else { return false }
        return line > CompoundingFit.clearlyBetter * p.ssr
    }

    /// How many finished minutes a straight climb needs before ``Bend/line`` is read: twenty minutes hold a slow
    /// leak's growth several times over its noise.
    static let lineMinutes = 20

    /// The line the minute maxima of a long, straight climb follow (``Bend/line``), when there is one.
    func climbLine(now: UInt64) -> TrendFit? { bend(now: now)?.line }

    struct Bend: Sendable {
        var accel: Double
        var significant: Bool
        var minutes: Int
        /// Which curve the climb follows: `.line` without a significant bend (or `.logarithmic` for a climb older
        /// than the halves look at whose whole held climb is one), as ``ClimbCurve/judgeSlowing(x:y:)`` finds for one
        /// that slows down, else as ``ClimbCurve/judge(x:y:)`` finds.
        var curve: ClimbCurve
        /// For a climb read as a line (`curve` is `.line`: no significant bend, or halves apart that the whole climb's
        /// fit does not bear out) over ``MemoryHistory/lineMinutes`` or more (since the last drop, up to
        /// an hour): the line its minute maxima follow (time in seconds relative to `now`) — a Theil–Sen slope of at
        /// least ``MemoryAnalysis/bendZ`` standard errors (widened for correlated minutes), the last finished minute
        /// on the line or above it (within 3σ). A slow leak is such a climb for hours, while the window's minutes of
        /// noise can hide its growth for a while, or swing its slope by a quarter.
        var line: TrendFit?
        /// For a climb that speeds up: the compounding curve weighed against the others, whichever won.
        var compounding: CompoundingFit?
    }

    mutating func reset() {
        minutes.removeAll()
        oomMarks = MinuteMarks()
        restartMarks = MinuteMarks()
        lastMinute = 0
        firstAt = 0
    }
}

/// Minutes marked with an event (an OOM kill, a restart), oldest first, at most a capacity: past it the oldest goes,
/// and ``completeSince`` says from which minute on every mark is still there.
struct MinuteMarks: Sendable, Hashable {
    private(set) var minutes: [Int64] = []
    /// Marks before this minute may have been dropped (0: none was).
    private(set) var completeSince: Int64 = 0

    init() {}

    /// Marks read back (``EngineMemoryCodec``): nil unless strictly in order.
    init?(minutes: [Int64], completeSince: Int64) {
        guard zip(minutes, minutes.dropFirst()).allSatisfy({ $0 < $1 }) else { return nil }
        self.minutes = minutes
        self.completeSince = completeSince
    }

    mutating func mark(_ m: Int64, capacity: Int) {
        guard !minutes.contains(m) else { return }
        // In order (a status can tell of a kill after a later one's kernel event): the oldest is the one to drop.
        let at = minutes.firstIndex { $0 > m } ?? minutes.count
        minutes.insert(m, at: at)
        if minutes.count > max(1, capacity) {
            let gone = minutes.removeFirst()
            completeSince = Swift.max(completeSince, gone + 1)
        }
    }

    /// A mark in minute `m` or the one before.
    @inline(__always) func near(_ m: Int64) -> Bool { minutes.contains { $0 == m || $0 == m - 1 } }

    /// A mark in minutes `from` through `to`, or there may have been one there that was dropped.
    func within(_ from: Int64, _ to: Int64) -> Bool {
        from < completeSince || minutes.contains { $0 >= from && $0 <= to }
    }
}
