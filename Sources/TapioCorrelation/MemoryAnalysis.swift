import Foundation

/// What the memory detectors (OOM prediction, leak, unbounded growth) read from a subject's series, computed once
/// per evaluation.
///
/// Two modes. With reclaim drops in at least two buckets (a GC sawtooth whose period is longer than a bucket) the
/// trend is fitted to the per-cycle peaks, so a bounded sawtooth has a flat trend however steep each tooth is.
/// Otherwise it is fitted to the bucket maxima (shorter sawtooth periods vanish inside a bucket's maximum).
/// Either way the fit is Theil–Sen, so a single spike cannot tilt it.
struct MemoryAnalysis: Sendable {
    /// Times are seconds since `originNanos`.
    var originNanos: UInt64
    var fit: TrendFit
    /// Fitted to the floors (bucket minima, or per-cycle troughs): reclaim that brings memory back keeps this flat.
    var floorSlope: Double
    /// How clearly the floor rises (its slope in standard errors).
    var floorZ: Double
    /// Growth holds across the window, not only in a step (halves agree, or most cycles peak higher).
    var sustained: Bool
    var sawtooth: Bool
    var cycles: Int
    /// The envelope's level now (bytes).
    var level: Double
    /// Peak in the window with one spike rejected (the second-highest bucket maximum when there are ≥ 5 buckets).
    var robustPeak: UInt64
    var lastValue: UInt64
    /// The older and the recent half of the envelope fitted apart (window mode only), and their mid-times: the
    /// curve's bend is read from how the two slopes differ.
    var older: TrendFit?
    var recent: TrendFit?
    var olderMid: Double = 0
    var recentMid: Double = 0
    /// Now, in seconds since `originNanos`.
    var nowSec: Double = 0
    /// Reclaim drops inside the window (0 for a clean climb).
    var dropBuckets: Int = 0
    /// The last third of the envelope fitted alone (at least four points; window mode only): a step that has
    /// become a plateau still tilts the whole window's line, but no longer this one.
    var tail: TrendFit?
    var tailSlope: Double? { tail?.slope }
    /// A parabola fitted to the whole envelope by least squares (window mode, six points or more): level, slope
    /// and acceleration at `nowSec`, and the acceleration in standard errors.
    var parabola: Parabola?
    /// A speed-up was read in this subject's window at the evaluation before — on the whole window or on the climb
    /// inside it that the prediction was read on (``CorrelationEngine/Forecast/speedUpHoldSeconds``): the bend then
    /// keeps counting at ``bendHoldZ``, not ``bendZ``, in either (set by the detector from the subject's state).
    var speedUpHeld = false

    struct Parabola: Sendable {
        var level: Double
        var slope: Double
        var accel: Double
        /// The acceleration in standard errors, the error widened for correlated residuals.
        var z: Double
        /// ``RobustTrend/autocorrelationFactor(_:)`` of the residuals: with the bend taken out, what is left
        /// shows how much the noise wanders. The halves' test borrows it (half the points cannot show it).
        var autocorrelation: Double
        /// Points fitted, and the sum of their squared residuals.
        var count: Int
        var ssr: Double = 0
    }

    /// A bend that speeds growth up is read from at least this many envelope points (two minutes of 10-s buckets,
    /// after the first and last are left out): below that a parabola's three parameters leave too few degrees of
    /// freedom for its error to be trusted, and each half of the window too few points to show how the noise
    /// wanders. On the corpus swept over twelve noise seeds, fewer points and three standard errors gave linear
    /// leaks a first Warning up to 57 % early (a chance bend just as the probability crossed 0.5).
    static let bendMinPoints = 12
    /// …and only beyond four standard errors: the detectors re-test every bucket, and at three a wandering
    /// offset bends a straight leak now and then (the same reasoning as ``CorrelationEngine/growing(_:)``'s z ≥ 4).
    static let bendZ = 4.0
    /// A speed-up already read keeps counting while its bend stays beyond two standard errors (a Schmitt trigger: in
    /// at four, out below two). At four alone, a quadratic leak whose bend sits near three errors was read speeding
    /// up and straight by turns: over the corpus's noise seeds 0–7 `oom-accelerating-1`'s prediction fell back from
    /// Warning to Info seven times (seed 5: Warning at 430 s, Info at 480, Warning at 490, Info at 520–650 s), its
    /// time-to-OOM swinging between ~17 and 39–44 minutes; with the hold three times. Its bend's z still swings
    /// 1.3–4.9 from one evaluation to the next, so a dip below two ends the hold. A straight leak's chance bend past
    /// four sits on a wandering offset and falls back within a few evaluations; the hold ends with it, or with a drop:
    /// on `oom-linear-3`'s shape under a wandering offset, 26 of 1,400 readings bent without the hold and 40 (2.9 %)
    /// with it (`BendReadingTests.wanderIsNotABend`).
    static let bendHoldZ = 2.0
    /// A bend that levels off still counts from six points and three standard errors: it makes no time-to-OOM
    /// shorter, and a heap filling toward -Xmx bends over within its first minutes — read later, it would stand as
    /// a Critical prediction until then. A leak that only seemed to level off keeps climbing, and the next
    /// evaluations see it.
    static let levelZ = 3.0

    /// Least squares y = a + b·x + c·x² on x = t − mean(t); nil when it is degenerate.
    static func fitParabola(t: [Double], y: [Double], at now: Double) -> Parabola? {
        let n = t.count
        guard n >= 6, n == y.count else { return nil }
        let mt = t.reduce(0, +) / Double(n)
        var s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, sy = 0.0, sxy = 0.0, sx2y = 0.0
        for i in 0..<n {
            let x = t[i] - mt, x2 = x * x
            s1 += x; s2 += x2; s3 += x2 * x; s4 += x2 * x2
            sy += y[i]; sxy += x * y[i]; sx2y += x2 * y[i]
        }
        // The normal equations' symmetric matrix [[n, s1, s2], [s1, s2, s3], [s2, s3, s4]], inverted by cofactors
        // (a symmetric matrix's cofactor matrix is symmetric too).
        let s0 = Double(n)
        let c00 = s2 * s4 - s3 * s3, c01 = s2 * s3 - s1 * s4, c02 = s1 * s3 - s2 * s2
        let c11 = s0 * s4 - s2 * s2, c12 = s1 * s2 - s0 * s3, c22 = s0 * s2 - s1 * s1
        let det = s0 * c00 + s1 * c01 + s2 * c02
        guard det.isFinite, abs(det) > 1e-12 else { return nil }
        let a = (c00 * sy + c01 * sxy + c02 * sx2y) / det
        let b = (c01 * sy + c11 * sxy + c12 * sx2y) / det
        let c = (c02 * sy + c12 * sxy + c22 * sx2y) / det
        var ssr = 0.0
        var residuals = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let x = t[i] - mt
            let e = y[i] - (a + b * x + c * x * x)
            residuals[i] = e
            ssr += e * e
        }
        // The standard error of c: the residual variance times the inverse's last diagonal entry, widened when the
        // residuals are correlated (a wandering offset bends a parabola by chance).
        let factor = RobustTrend.autocorrelationFactor(residuals)
        let se = (ssr / Double(n - 3) * c22 / det).squareRoot() * factor
        let x = now - mt
        let z = se > 0 ? c / se : (c == 0 ? 0 : .infinity)
        return Parabola(level: a + b * x + c * x * x, slope: b + 2 * c * x, accel: 2 * c, z: z, autocorrelation: factor,
                        count: n, ssr: ssr)
    }

    static func analyze(_ s: MemorySeries, now: UInt64) -> MemoryAnalysis? {
        var b = s.buckets
        // One reclaim drop alone cannot tell a GC sawtooth from a leak that freed something once: fit only what
        // came after it (the new regime), and wait for a second drop before reading cycles.
        let dropBuckets = b.reduce(0) { $0 + ($1.drops > 0 ? 1 : 0) }
        if dropBuckets == 1, let d = b.firstIndex(where: { $0.drops > 0 }) { b.removeFirst(d) }
        guard b.count >= 5, let first = b.first else { return nil }
        let origin = first.maxAt
        @inline(__always) func sec(_ t: UInt64) -> Double { t >= origin ? Double(t - origin) / 1e9 : -Double(origin - t) / 1e9 }

        var peaksT: [Double] = [], peaksY: [Double] = []
        var floorsT: [Double] = [], floorsY: [Double] = []
        let sawtooth = dropBuckets >= 2
        var cycles = 0
        if sawtooth {
            var cycMax: UInt64 = 0, cycMaxAt: UInt64 = 0
            var closedMax: Double = 0
            var first = true
            for x in b {
                if x.max >= cycMax { cycMax = x.max; cycMaxAt = x.maxAt }
                if x.drops > 0 {
                    // The first cycle began before the window: its peak may lie outside it, so it is not a peak.
                    if !first { peaksT.append(sec(cycMaxAt)); peaksY.append(Double(cycMax)) }
                    first = false
                    floorsT.append(sec(x.maxAt)); floorsY.append(Double(x.min))
                    closedMax = Swift.max(closedMax, Double(cycMax))
                    cycles += 1
                    cycMax = 0
                }
            }
            // The running cycle counts only once it has climbed above every finished one: real new ground.
            if cycMax > 0, Double(cycMax) > closedMax { peaksT.append(sec(cycMaxAt)); peaksY.append(Double(cycMax)) }
        } else {
            for x in b {
                peaksT.append(sec(x.maxAt)); peaksY.append(Double(x.max))
                floorsT.append(sec(x.maxAt)); floorsY.append(Double(x.min))
            }
        }
        guard let fit = RobustTrend.theilSen(t: peaksT, y: peaksY) else { return nil }
        let floorFit = RobustTrend.theilSen(t: floorsT, y: floorsY)
        let floorSlope = floorFit?.slope ?? fit.slope
        let floorZ = floorFit?.zScore ?? fit.zScore

        var sustained: Bool
        var older: TrendFit?, recent: TrendFit?
        var olderMid = 0.0, recentMid = 0.0
        if sawtooth {
            var ups = 0
            for i in 1..<peaksY.count where peaksY[i] > peaksY[i - 1] { ups += 1 }
            sustained = Double(ups) >= 0.7 * Double(peaksY.count - 1)
        } else {
            let mid = (peaksT.first! + peaksT.last!) / 2
            let olderIdx = peaksT.indices.filter { peaksT[$0] <= mid }
            let recentIdx = peaksT.indices.filter { peaksT[$0] > mid }
            older = RobustTrend.theilSen(t: olderIdx.map { peaksT[$0] }, y: olderIdx.map { peaksY[$0] }, correlated: true)
            recent = RobustTrend.theilSen(t: recentIdx.map { peaksT[$0] }, y: recentIdx.map { peaksY[$0] }, correlated: true)
            if !olderIdx.isEmpty { olderMid = olderIdx.reduce(0.0) { $0 + peaksT[$1] } / Double(olderIdx.count) }
            if !recentIdx.isEmpty { recentMid = recentIdx.reduce(0.0) { $0 + peaksT[$1] } / Double(recentIdx.count) }
            if let older, let recent {
                // A step then a plateau has one flat half; a leak grows in both.
                sustained = older.slope > 0 && recent.slope > 0 && Swift.min(older.slope, recent.slope) >= 0.3 * fit.slope
            } else {
                sustained = false
            }
        }

        var tail: TrendFit?
        if !sawtooth {
            let k = Swift.max(4, peaksT.count / 3)
            if peaksT.count >= k + 1 {
                tail = RobustTrend.theilSen(t: Array(peaksT.suffix(k)), y: Array(peaksY.suffix(k)))
            }
        }
        let nowSec = sec(now)
        // Without the first and the last bucket: either may be partly filled, and a maximum over fewer samples is
        // lower — at the ends of the window that reads as a bend to least squares (not to Theil–Sen).
        let parabola = sawtooth ? nil
            : fitParabola(t: Array(peaksT.dropFirst().dropLast()), y: Array(peaksY.dropFirst().dropLast()), at: nowSec)
        // The fitted level, not the last maximum: one noisy bucket must not pull the prediction in.
        let level = fit.value(at: nowSec)
        var maxima = b.map(\.max)
        maxima.sort()
        let robustPeak = maxima.count >= 5 ? maxima[maxima.count - 2] : (maxima.last ?? 0)
        return MemoryAnalysis(originNanos: origin, fit: fit, floorSlope: floorSlope, floorZ: floorZ, sustained: sustained,
                              sawtooth: sawtooth, cycles: cycles, level: level, robustPeak: robustPeak,
                              lastValue: s.lastValue, older: older, recent: recent, olderMid: olderMid,
                              recentMid: recentMid, nowSec: nowSec, dropBuckets: dropBuckets, tail: tail,
                              parabola: parabola)
    }

    /// The growth now, with its bend: level (bytes), slope (bytes/s) and acceleration (bytes/s²) at `nowSec`.
    ///
    /// A bend that speeds growth up counts only when it is larger than ``bendZ`` standard errors, read from
    /// ``bendMinPoints`` or more (one that levels off: ``levelZ``): a staircase or noise bends a line by chance, and
    /// a straight line is the safer reading then. First the least-squares parabola over the whole envelope
    /// (its acceleration against its standard error); failing that, the change between the two halves' slopes over
    /// the time between their middles, against the halves' slope errors combined — with that bend the level and
    /// slope come from the recent half, which is closer to what happens next.
    var shape: (level: Double, slope: Double, accel: Double) {
        // The parabola through every point sees a bend sooner than two halves' slopes (each from half the points);
        // the halves still catch one it misses (a least-squares fit gives a spike more weight than Theil–Sen).
        guard let p = parabola else { return (level, fit.slope, 0) }
        let speedUpZ = speedUpHeld && dropBuckets == 0 ? Self.bendHoldZ : Self.bendZ
        func counts(_ z: Double) -> Bool {
            z > 0 ? p.count >= Self.bendMinPoints && z > speedUpZ : -z > Self.levelZ
        }
        if counts(p.z) { return (p.level, p.slope, p.accel) }
        guard let o = older, let r = recent, recentMid > olderMid,
              counts(RobustTrend.slopeChangeZ(from: o, to: r, autocorrelation: p.autocorrelation))
        else { return (level, fit.slope, 0) }
        let diff = r.slope - o.slope
        let accel = diff / (recentMid - olderMid)
        let slope = r.slope + accel * (nowSec - recentMid)
        // The recent half's line through its middle, carried on to now along the bend.
        let dt = nowSec - recentMid
        let mid = r.value(at: recentMid)
        let level = mid + r.slope * dt + 0.5 * accel * dt * dt
        return (level, slope, accel)
    }

    /// Whether ``shape`` reads growth speeding up (the bend counted, held or not).
    var speedsUp: Bool { shape.accel > 0 }

    /// Seconds from now until the curve reaches `limit`, and where it levels off when it bends over (nil: it does
    /// not level off). Accelerating growth follows the parabola; decelerating growth is read as an exponential
    /// approach to an asymptote (the shape of a heap filling toward -Xmx or a cache warming up), whose level is
    /// `level + slope² / |accel|`: below the limit there is no OOM to predict (time nil).
    static func timeToLimit(level y: Double, slope s: Double, accel a: Double, limit L: Double)
        -> (time: Double?, asymptote: Double?) {
        let h = L - y
        if h <= 0 { return (0, nil) }
        if a < 0 {
            guard s > 0 else { return (nil, y) }
            let T = s / -a
            let top = y + s * T
            guard top > L else { return (nil, top) }
            return (-T * log(1 - h / (top - y)), top)
        }
        if a > 0 {
            let t = (-max(s, 0) + (max(s, 0) * max(s, 0) + 2 * a * h).squareRoot()) / a
            return (t.isFinite ? t : nil, nil)
        }
        return (s > 0 ? h / s : nil, nil)
    }

    /// Accelerating growth read as compounding instead: the rate growing in proportion to itself (k = accel / slope,
    /// memory = level + slope/k·(e^(k·t) − 1)), as growth that feeds on itself does — a retry queue, a cache keyed
    /// by what it already holds. On a window of minutes this and the parabola fit the same points about equally well
    /// (issue 12: least-squares residuals within 6 % of each other at the corpus's first Warnings of its exponential
    /// and most quadratic leaks), but the compounding curve reaches the limit sooner, so until ten minutes of the climb
    /// can tell them apart (``ClimbCurve``) a prediction shows both: the parabola's time as the headline (within 23 %
    /// for quadratic leaks over twelve noise seeds, 31–64 % late for the exponential one) and this one in the evidence
    /// (+9 … +36 % for the exponential leak, −35 … +11 % for the quadratic ones, seeds 0–7). Nil unless both slope and
    /// acceleration are positive and the limit lies ahead. `doubling` is how long the rate takes to double.
    static func compounding(level y: Double, slope s: Double, accel a: Double, limit L: Double)
        -> (time: Double, doubling: Double)? {
        guard L > y, let c = CompoundingFit.through(level: y, slope: s, accel: a), let t = c.time(toReach: L) else { return nil }
        return (t, c.doubling)
    }

    /// Growth per hour (bytes).
    var bytesPerHour: Double { fit.slope * 3600 }
}
