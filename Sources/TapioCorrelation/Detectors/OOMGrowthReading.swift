import Foundation
import TapioModel

/// What an OOM prediction reads the growth as: which curve it follows, its time to the limit, and what that rests on
/// (the window, the long climb's minute maxima, or a cycling workload's peaks). `oomPrediction` turns the reading
/// into a probability (`predictionProbability`) and an Insight (`predictionSpec`).
extension CorrelationEngine {
    /// What memory is doing at this evaluation, before a curve is read: whether it climbs, its cycles, and what a
    /// prediction standing now can be carried on when it does not.
    struct ClimbNow {
        /// Memory grows now, as the window shows it (regular or early).
        var climbing: Bool
        /// The highest memory is now: the window's robust peak, or the envelope's level when higher.
        var running: Double
        var cycle: CycleReading
        /// A leak across cycles, judged on its peaks (also between its climbs while they keep their rhythm).
        var peaks: CycleReading.RisingPeaks?
        /// The long, straight climb's line a standing prediction is carried on through noisy minutes.
        var longLine: TrendFit?
        /// A standing prediction carried on a logarithmic climb's curve through noisy minutes.
        var carriedOnCurve: Bool
    }

    /// The line the prediction rests on when it is not the window's (the cycles' peaks, or the long climb's minute
    /// maxima): its fit, its points and what they are, and its slope's standard error.
    typealias Carrier = (fit: TrendFit, points: Int, of: String, slopeError: Double)

    /// The growth as read: where memory is and how it moves (bytes, bytes/s, bytes/s²; time relative to now), when
    /// it reaches the limit, and what the evidence will say about it.
    struct GrowthReading {
        var level: Double
        var slope: Double
        var accel: Double
        /// Seconds to the limit; nil when the curve does not reach it.
        var tto: Double?
        /// Where a slowing curve levels off, when it does.
        var asymptote: Double?
        /// How long the growth now seen has lasted (seconds); every reading sets it (0 would make the prediction
        /// unsure of anything).
        var growthSpan = 0.0
        /// 0.5 when memory dropped back once before from lower: it may still be a cycle with a higher peak.
        var cycleFactor = 1.0
        var carrier: Carrier?
        /// A leak across cycles: the growth is its peaks' line.
        var peaks: CycleReading.RisingPeaks?
        var compounding: CompoundingFit?
        var logarithmic: LogarithmicFit?
        var knee: KneeFit?
        /// The steady speed-up's time-to-OOM, said beside a compounding one.
        var steadyTime: Double?
        /// A climb read as a steady speed-up on ten minutes or more: the compounding curve that lost to it.
        var rival: CompoundingFit?
        /// Whether the long climb's curves were compared at all (then the window's compounding hint is not repeated:
        /// the longer reading has spoken).
        var judged = false
        var notes: [String] = []
    }

    /// A speed-up whose time-to-OOM is still open: a compounding curve fits the climb as well as the steady
    /// speed-up the prediction follows, and on it the limit comes a tenth or more sooner. On the window alone
    /// (minutes of it) the two always fit about equally well (``MemoryAnalysis/compounding(level:slope:accel:limit:)``),
    /// so there the compounding curve is the one through the parabola's level, slope and acceleration; once ten
    /// minutes or more of the climb were judged a steady speed-up (``GrowthReading/rival``), only while compounding
    /// still leaves less than twice the parabola's squared residuals — the bar by which compounding is chosen
    /// (``CompoundingFit/clearlyBetter``), turned around. A prediction on such a curve stays Info
    /// (``Forecast/curveDoubtHoldSeconds``): the exponential leak's first Warning said a time-to-OOM 31–64 % late
    /// over twelve noise seeds, the quadratic ones' up to 23 % either way.
    struct CurveDoubt {
        /// Seconds to the limit on the compounding curve, and how long its rate takes to double.
        var time: Double
        var doubling: Double
        /// The long climb's compounding fit, when that is the one.
        var rival: CompoundingFit?
    }

    func curveDoubt(_ r: GrowthReading, limit L: Double, timeToOOM t: Double) -> CurveDoubt? {
        guard r.accel > 0, r.compounding == nil, r.knee == nil else { return nil }
        if r.judged {
            guard let g = r.rival, g.advantage * CompoundingFit.clearlyBetter > 1, let time = g.time(toReach: L),
                  time < 0.9 * t else { return nil }
            return CurveDoubt(time: time, doubling: g.doubling, rival: g)
        }
        guard let c = MemoryAnalysis.compounding(level: r.level, slope: r.slope, accel: r.accel, limit: L),
              c.time < 0.9 * t else { return nil }
        return CurveDoubt(time: c.time, doubling: c.doubling)
    }

    enum GrowthOutcome {
        case read(GrowthReading)
        /// Nothing to predict, decided while reading: the curve levels off below the limit, or memory cycles.
        case judged(OOMJudgement)
    }

    /// Reads the growth: on a leak across cycles, its peaks' line; on a standing prediction carried through noisy
    /// minutes, the long climb's line; else the window's curve, or with ten minutes or more of history on the same
    /// climb, the curve that climb follows (`long`, the history's bend, read at most once per evaluation).
    func readGrowth(_ s: SubjectState, _ a: MemoryAnalysis, limit: UInt64, now: UInt64, _ climb: ClimbNow,
                    long: () -> MemoryHistory.Bend?) -> GrowthOutcome {
        let L = Double(limit)
        let nowSec = a.nowSec
        let peak = Double(s.memory.peak)
        let originMinute = Int64(a.originNanos / MemoryHistory.minuteNanos)
        let (climbing, running, cycle, peaks) = (climb.climbing, climb.running, climb.cycle, climb.peaks)
        let shape = a.shape
        var r = GrowthReading(level: shape.level, slope: shape.slope, accel: shape.accel)
        // The long climb's line (its slope's error widened for correlated minutes), whether it carries a standing
        // prediction through noisy minutes or gives a straight climb its speed.
        let onMinuteMaxima = { (line: TrendFit) -> Carrier in
            (fit: line, points: line.count, of: "minute maxima", slopeError: line.slopeStdError * line.autocorrelation)
        }
        if let peaks {
            // A cycling workload whose peaks climb: the peaks' line is the growth, the window's curve only the
            // current climb (its bend or asymptote is the cycle's shape, not the trend's). The level is where memory
            // is now (the climb's height, or between climbs the last value); the kill comes at the top of a climb
            // (see ``CycleReading/RisingPeaks``), also when the peaks' line is already past the limit between two
            // climbs.
            r.carrier = (peaks.trend, peaks.points, "cycle peaks", peaks.trend.slopeStdError)
            r.peaks = peaks
            r.level = climbing ? running : Double(a.lastValue)
            r.slope = peaks.trend.slope
            r.accel = 0
            r.tto = r.level >= L ? 0 : peaks.timeToLimit(limit: L, nowSec: nowSec,
                                                         climb: climbing ? (a.level, a.fit.slope) : nil)
            r.growthSpan = peaks.trend.span
            r.notes.append("Peaks of the last \(peaks.points) cycles climb \(rate(r.slope)) (memory dropped back \(peaks.drops) times before)")
            if !climbing {
                r.notes.append("Between climbs: memory is at \(Formatting.bytes(a.lastValue)), down from "
                    + "\(Formatting.bytes(peak)); the prediction follows the peaks")
            }
        } else if let line = climb.longLine {
            r.carrier = onMinuteMaxima(line)
            r.level = line.value(at: 0)
            r.slope = line.slope
            r.accel = 0
            r.tto = MemoryAnalysis.timeToLimit(level: r.level, slope: r.slope, accel: 0, limit: L).time
            r.growthSpan = line.span
            r.notes.append("The last minutes are too noisy to show the growth; the maxima of the last \(line.count) "
                + "minutes still climb on one line")
        } else {
            // With ten minutes or more of history on the same climb, its bend is read there: far more of the curve
            // than the window holds, so a wandering offset cannot fake a bend, and a slow one still shows.
            // There too, growth that speeds up is read as compounding when that curve fits the climb clearly
            // better than a steady acceleration (see ``ClimbCurve``): the halves' bend is the acceleration between
            // their middles, minutes behind a compounding one, and its time-to-OOM comes out late (+40–56 % on the
            // corpus's exponential leak from ten minutes on). And a flat stretch followed by a straight climb (a
            // leak after a plateau) is read as the straight line it now is, not as a speed-up through the knee.
            if let long = long() {
                r.judged = long.significant && long.accel > 0
                switch long.curve {
                case .compounding(let g) where g.time(toReach: L) != nil:
                    r.compounding = g
                    r.steadyTime = MemoryAnalysis.timeToLimit(level: a.level, slope: max(a.recent?.slope ?? a.fit.slope, 0),
                                                              accel: long.accel, limit: L).time
                    (r.level, r.slope, r.accel) = (g.level, g.slope, g.accel)
                case .knee(let k):
                    (r.level, r.slope, r.accel) = (k.level, k.slope, 0)
                    r.knee = k
                case .line:
                    (r.level, r.slope, r.accel) = (a.level, a.fit.slope, 0)
                    // One straight climb: with twenty minutes or more of it, the growth is read on the whole climb's
                    // minute maxima, not on the window's five minutes, whose slope swings with noise on a slow leak —
                    // while the window agrees with it (see `Forecast.lineAgreement`).
                    if let line = long.line, Self.windowAgrees(a, with: line) {
                        r.slope = line.slope
                        r.carrier = onMinuteMaxima(line)
                    }
                case .logarithmic(let g):
                    // Slowing that never levels off: the time-to-OOM is where the logarithm reaches the limit,
                    // often hours away; read as an approach to a level it came out at a third to a half of that.
                    (r.level, r.slope, r.accel) = (g.level, g.slope, g.accel)
                    r.logarithmic = g
                    if climb.carriedOnCurve {
                        r.notes.append("The last minutes are too noisy to show the growth; the maxima of the last "
                            + "\(g.count) minutes still follow the curve")
                    }
                case .parabola, .compounding:
                    if long.accel > 0 { r.rival = long.compounding }
                    r.accel = long.accel
                    r.slope = max(a.recent?.slope ?? a.fit.slope, 0)
                    r.level = a.level
                }
            }
            if let g = r.compounding {
                r.tto = g.time(toReach: L)
            } else if let g = r.logarithmic {
                r.tto = g.time(toReach: L)
            } else {
                (r.tto, r.asymptote) = MemoryAnalysis.timeToLimit(level: r.level, slope: r.slope, accel: r.accel, limit: L)
            }
            if r.tto == nil, let top = r.asymptote, top < L {
                guard top < (1 - Forecast.asymptoteMargin) * L else { return .judged(.none) }
                return .judged(.levelsOff("memory levels off at ~\(Formatting.bytes(top)) of the \(Formatting.bytes(limit)) limit"))
            }
            // How long the growth now seen has lasted: the window's span, and before it the minutes of the long
            // history that lie on the same curve (within 3σ, 2 % of the limit, or 15 % of the rise back to them).
            // Under a GC sawtooth the window's span is all of it, not only its cycles' peaks: those leave out the
            // cycle the window begins in and the one still climbing, so their span swung by up to two periods as
            // the window slid (`oom-gc-leak-1`, 45-s teeth: growth seen 3m45s, then 3m, then 4m45s at 320–360 s;
            // Warning, Info, Warning on six of eight noise seeds).
            let sigma = a.fit.sigma
            let curve: (Double) -> Double = { [r] d in
                r.compounding?.value(at: d) ?? r.logarithmic?.value(at: d) ?? (r.level + r.slope * d + 0.5 * r.accel * d * d)
            }
            let back = s.history.run(
                before: originMinute, now: now, curve: curve,
                tolerance: { d in max(3 * sigma, 0.02 * L, 0.15 * abs(curve(0) - curve(d))) }, peakAnywhere: a.sawtooth)
            r.growthSpan = (a.sawtooth ? max(a.fit.span, a.nowSec) : a.fit.span) + back
            switch cycle {
            case .steady(let drops):
                return .judged(.settle("memory came back down after each of its last \(drops) climbs"))
            case .once(let highest):
                // Came back down from about here before: a cycle, not a leak (5 % of the limit of slack).
                if r.level <= highest + CycleReading.limitShare * L {
                    return .judged(.settle("memory came back down from \(Formatting.bytes(highest)) before"))
                }
                // New ground after one drop: it may still be a cycle with a higher peak.
                r.cycleFactor = 0.5
                r.notes.append("Memory dropped back once before, from \(Formatting.bytes(highest))")
            case .workload(let highest, let drops, let pod):
                // Another pod of the workload came back down from about here: the same cycle, in a new pod.
                let times = drops == 1 ? "once" : "\(drops) times"
                if r.level <= highest + CycleReading.limitShare * L {
                    return .judged(.settle("this workload's memory came back down from \(Formatting.bytes(highest)) "
                        + "in pod \(pod) (\(times) in its earlier pods)"))
                }
                r.cycleFactor = 0.5
                r.notes.append("This workload's memory came back down \(times) in its earlier pods, from "
                    + "\(Formatting.bytes(highest)) at most (pod \(pod))")
            case .rising, .none:
                // (Climbing peaks were judged above: `peaks` is set whenever memory grows.)
                break
            }
        }
        return .read(r)
    }
}
