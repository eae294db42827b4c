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
        if sawtooth {
            var ups = 0
            for i in 1..<peaksY.count where peaksY[i] > peaksY[i - 1] { ups += 1 }
            sustained = Double(ups) >= 0.7 * Double(peaksY.count - 1)
        } else {
            let mid = (peaksT.first! + peaksT.last!) / 2
            let olderIdx = peaksT.indices.filter { peaksT[$0] <= mid }
            let recentIdx = peaksT.indices.filter { peaksT[$0] > mid }
            if let older = RobustTrend.theilSen(t: olderIdx.map { peaksT[$0] }, y: olderIdx.map { peaksY[$0] }),
               let recent = RobustTrend.theilSen(t: recentIdx.map { peaksT[$0] }, y: recentIdx.map { peaksY[$0] }) {
                // A step then a plateau has one flat half; a leak grows in both.
                sustained = older.slope > 0 && recent.slope > 0 && Swift.min(older.slope, recent.slope) >= 0.3 * fit.slope
            } else {
                sustained = false
            }
        }

        let nowSec = sec(now)
        // The fitted level, not the last maximum: one noisy bucket must not pull the prediction in.
        let level = fit.value(at: nowSec)
        var maxima = b.map(\.max)
        maxima.sort()
        let robustPeak = maxima.count >= 5 ? maxima[maxima.count - 2] : (maxima.last ?? 0)
        return MemoryAnalysis(originNanos: origin, fit: fit, floorSlope: floorSlope, floorZ: floorZ, sustained: sustained,
                              sawtooth: sawtooth, cycles: cycles, level: level, robustPeak: robustPeak,
                              lastValue: s.lastValue)
    }

    /// Growth per hour (bytes).
    var bytesPerHour: Double { fit.slope * 3600 }
}
