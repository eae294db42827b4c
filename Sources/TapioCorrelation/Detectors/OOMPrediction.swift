import Foundation
import DequeModule
import TapioModel

/// The OOM prediction: how sure, how soon, and when an active one is over — from the window's analysis, the long
/// history's climb and cycles, and the subject's past kills (the README's "OOM predictions: probability and
/// severity" explains each figure).
extension CorrelationEngine {
    /// How an OOM prediction is judged. Each figure is documented with its reason here and in the README
    /// ("How sure is a prediction?"); they were set from the shapes' arithmetic, not fitted scenario by scenario.
    enum Forecast {
        /// Below this probability nothing is said: a tenth is where an early hint stops being noise to a person.
        static let minProbability = 0.10
        /// Evidence grows with how long the growth now seen has lasted: 1 − e^(−seconds/60). A minute of clean
        /// growth is worth about 0.63, three minutes 0.95 — the first minute of a ramp is what a GC tooth, a cache
        /// fill and a batch phase all look like.
        static let evidenceSeconds = 60.0
        /// Extrapolating far beyond what was watched is less sure: the factor 1 / (1 + (r/4)²) with r the
        /// time-to-OOM over the duration of the growth. Four times as far ahead as watched halves it.
        static let extrapolation = 4.0
        /// However clean the climb, a subject watched only briefly may still turn out to cycle: Tapio recognises
        /// cycles up to an hour long (the history holds two), and until it has watched a subject that long it
        /// cannot rule out that this climb is the first ramp of one. So the probability is capped at
        /// 0.99 − 0.25·e^(−watched/1 h): 0.74 at first, 0.9 after an hour, 0.96 after two.
        static let youngCap = 0.25
        static let youngSeconds = 3600.0
        /// Early warning, before 90 s of growth: only a clean, steep climb — at least 30 s of it (three buckets),
        /// no reclaim drop, every bucket's maximum at or above the last one's (within 1 % of the limit), slope z ≥ 6,
        /// R² ≥ 0.9, 10 % of the limit climbed, the limit within 10 minutes and no further ahead than 1.3 times
        /// the climb watched so far. The last figure trades the first tooth of a slow GC sawtooth against a fast
        /// leak: a leak that kills 80 s after it starts is within 1.3 times from 40 s on (40 s before the kill);
        /// a 56-s tooth climbing 350Mi toward a 1Gi limit is ~1.5 times its climb away at its last full bucket
        /// (but, in an unlucky phase, can come as close as ~1.15 just before it drops: then it gets an early
        /// prediction that the drop settles at once).
        static let earlySpan = 30.0
        static let earlyZ = 6.0
        static let earlyR2 = 0.9
        static let earlyRise = 0.10
        static let earlyHorizon = 600.0
        static let earlyReach = 1.3
        /// Growth has stopped when the envelope's last third — a minute or more of it — rises less than a fifth as
        /// fast as the window's line and not clearly at all (z < 2): a step become a plateau, a leak that was
        /// fixed, growth levelling off under a raised limit. An active prediction is then settled at once instead
        /// of standing for `resolveAfter` while its time-to-OOM recedes without end. The staircase's treads (30–60 s
        /// in the corpus) are shorter than that tail, so a staircase keeps its prediction.
        static let stallSeconds = 60.0
        static let stallShare = 0.2
        static let stallZ = 2.0
        /// …and only where the growth seen before would have shown in that tail: at the window's slope it would
        /// have risen four of the tail's noise widths. A slow leak under noise (a few MiB an hour) has tails that look flat by
        /// chance; calling those a stop would settle and re-raise its prediction again and again.
        static let stallVisible = 4.0
        /// A curve that levels off within 5 % below the limit is not called safe: the asymptote is an estimate, and
        /// one that wanders around the limit would settle and re-raise the prediction pass after pass. Nor is memory
        /// that has gone flat that close to the limit: that is a cgroup held there by reclaim, the last state
        /// before the kill.
        static let asymptoteMargin = 0.05
        /// Between the climbs of a cycling workload whose peaks climb, its prediction stands while the next climb
        /// is due: up to 1.5 cycle periods (the median time between its drops' peaks) after the last peak. Past
        /// that the rhythm is broken — the workload stopped, or changed — and the peaks' line, extrapolated with no
        /// new peak to hold it, would only grow more sure of a kill that is not coming.
        static let cycleRhythm = 1.5
        /// A curve read as levelling off below the limit settles an active prediction once every evaluation for two
        /// minutes has read it so. The reading comes from the window's bend at three standard errors (early, for a
        /// heap filling toward -Xmx); on a straight leak under a wandering offset it came and went — settled, then
        /// raised again 10–50 s later, up to four times in one leak's first five minutes (`oom-linear-1`, noise
        /// seed 2), each a new alert. Measured on 24 noise draws of that leak: its runs lasted at most 79 s, while
        /// curves that do level off (τ 150 s and 300 s) read it without a break for 350–1,080 s, from 70–190 s on.
        static let levelsOffHoldSeconds = 120.0
        /// A straight climb of twenty minutes or more grows at its line's speed (over the climb's minute maxima) while
        /// the window's slope is within 0.75–1.5 times the line's. Over eight noise seeds of the corpus, a straight
        /// climb's window ran at 0.63–1.41 of its line (1st–99th percentile 0.73–1.26): a slow leak's window swings
        /// with noise, and its time-to-OOM with it (`oom-slow-1`: raised 75 minutes before the kill saying 59, lapsed,
        /// raised again). A climb that slows down has a window at 0.27–0.60 of its line (the logarithmic ones, whose
        /// line would put the limit 39 minutes away); one faster than 1.5 times has sped up, which the bend reads —
        /// when the two slopes are also apart by more than noise explains (``windowAgrees(_:with:)``): a slow climb's
        /// window, a few MiB of growth under as much noise, left the band by chance (0.74 of its line on the corpus's
        /// 3-hour leak, 39–50 % off for that update; a logarithmic climb's at 2.6 times, 66 % short at its first Warning).
        static let lineAgreement = 0.75...1.5
    }

    /// Severity from probability and time-to-OOM together: Critical when the kill is likely (≥ 0.7) and within
    /// 10 minutes — or imminent (≤ 60 s) and at least 0.4, since there is no time left to wait for more evidence;
    /// Warning when more likely than not, or 0.3 and within 5 minutes; otherwise Info.
    static func predictionSeverity(probability p: Double, timeToOOM t: Double) -> Severity {
        if (p >= 0.7 && t <= 600) || (p >= 0.4 && t <= 60) { return .critical }
        if p >= 0.5 || (p >= 0.3 && t <= 300) { return .warning }
        return .info
    }

    /// Whether the window's slope agrees with the long climb's line (`Forecast.lineAgreement`): within the band, or
    /// outside it by no more than noise explains — the two slopes apart by at most ``MemoryAnalysis/bendZ`` standard
    /// errors, each widened by the larger of its own and the window's autocorrelation factor (how the halves' test
    /// widens them), the bar a speed-up must clear in the window. A slow climb's window
    /// sees a few MiB of growth under as much noise: outside the band, it spoke for the whole climb by chance.
    static func windowAgrees(_ a: MemoryAnalysis, with line: TrendFit) -> Bool {
        if Forecast.lineAgreement.contains(a.fit.slope / line.slope) { return true }
        let z = RobustTrend.slopeChangeZ(from: line, to: a.fit, autocorrelation: a.parabola?.autocorrelation ?? 1)
        return abs(z) <= MemoryAnalysis.bendZ
    }

    func oomPrediction(_ s: SubjectState, _ a: MemoryAnalysis, now: UInt64) -> OOMJudgement {
        guard let limit = s.effectiveLimit else { return .none }
        // The kill just happened: the series before it predicts nothing new (the restart starts a new one).
        if let k = s.lastKernelOOM?.at, s.memory.lastAt <= k { return .none }
        let L = Double(limit)
        let horizon = Double(config.predictionHorizon.nanos) / 1e9
        // Memory came back down by a quarter or more from the window's peak: whatever was climbing is over.
        let peak = Double(s.memory.peak)
        let fellBack = Double(a.lastValue) <= 0.75 * peak
            ? "memory fell back to \(Formatting.bytes(a.lastValue)) from \(Formatting.bytes(peak))" : nil
        let regular = growing(a) && (a.tailSlope.map { $0 >= 0.3 * a.fit.slope } ?? true)
        let early = !regular && a.fit.span < max(90, 0.3 * Double(windowNanos) / 1e9) && earlyClimb(s, a, limit: L)
        // Memory grows now, as the window shows it (regular or early).
        let climbing = regular || early
        // The highest memory is now: the window's robust peak, or the envelope's level when higher.
        let running = max(Double(a.robustPeak), a.shape.level)
        let originMinute = Int64(a.originNanos / MemoryHistory.minuteNanos)
        let nowSec = a.nowSec
        // A prediction standing now (only one standing can be carried through a lull, below).
        let standing = s.active.first { $0.identity.type == .oomPrediction }?.spec.prediction?.probability
        // Ramps longer than the window: what did this subject do before? (Sawtooth mode already judges cycles
        // inside the window.) Read when memory grows, or between climbs for a prediction that stands: the common
        // evaluation, memory not growing and nothing predicted, does not pay for it.
        let cycle = a.sawtooth || !(climbing || standing != nil) ? CycleReading.none
            : CycleReading.read(s.history, limit: L, running: running, now: now, nowSec: nowSec)
        // A leak across cycles is judged on its peaks — between its climbs too, while they keep their rhythm: the
        // drop after a climb is the pattern, not the end of the growth, and settling there would raise a new
        // prediction (a new alert) on every climb.
        var peaks: CycleReading.RisingPeaks?
        if case .rising(let p) = cycle, climbing || nowSec - p.lastPeak <= Forecast.cycleRhythm * p.period {
            peaks = p
        }
        // A prediction already standing on a long, straight climb is not dropped while the window's noise hides
        // the growth for a few minutes (a slow leak rises a few MiB in the window, its noise as much): it stands,
        // updated from the climb's own line, while the last 20 minutes or more still follow it. Settled, then
        // raised again a minute later, it was a new alert each time (up to four for `oom-slow-1` over noise seeds).
        // It only carries what was said: its probability is not raised on the line's word (decelerating growth, a
        // logarithmic one, is nearly straight over an hour too), and the window must not grow clearly slower than
        // the line (its slope at least half the line's). A climb read as a logarithm carries its prediction the same
        // way, on its own curve (growing a MiB a minute after two hours, its window shows the growth half the time).
        // The long climb's reading, made once per evaluation when it is needed (a few thousand fits).
        var longBend: MemoryHistory.Bend??
        func long() -> MemoryHistory.Bend? {
            if let b = longBend { return b }
            let b = a.sawtooth ? nil : s.history.bend(now: now)
            longBend = .some(b)
            return b
        }
        var longLine: TrendFit?
        var carriedOnCurve = false
        if !climbing, peaks == nil, fellBack == nil, !a.sawtooth, standing != nil, let bend = long() {
            if let line = bend.line, a.fit.slope >= 0.5 * line.slope {
                longLine = line
            } else if case .logarithmic(let g) = bend.curve, a.fit.slope >= 0.5 * g.slope {
                carriedOnCurve = true
            }
        }
        guard climbing || peaks != nil || longLine != nil || carriedOnCurve else {
            if let fellBack { return .settle(fellBack) }
            if let tail = a.tail, !a.sawtooth, tail.span >= Forecast.stallSeconds, tail.zScore < Forecast.stallZ,
               a.fit.slope <= 0 || tail.slope <= Forecast.stallShare * a.fit.slope,
               a.fit.slope * tail.span >= Forecast.stallVisible * tail.sigma,
               tail.value(at: a.nowSec) < (1 - Forecast.asymptoteMargin) * L {
                return .settle("memory stopped growing: \(Formatting.bytes(tail.value(at: a.nowSec))) of the "
                    + "\(Formatting.bytes(limit)) limit, flat for the last \(Formatting.duration(seconds: tail.span))")
            }
            return .none
        }

        var (level, slope, accel) = a.shape
        var compounding: CompoundingFit?
        var logarithmic: LogarithmicFit?
        var knee: KneeFit?
        // The steady speed-up's time-to-OOM, said beside a compounding one; and whether the long climb's curves were
        // compared at all (then the window's compounding hint is not repeated: the longer reading has spoken).
        var steadyTime: Double?
        var judged = false
        var tto: Double?
        var asymptote: Double?
        var notes: [String] = []
        var growthSpan: Double
        var cycleFactor = 1.0
        // The line the prediction rests on when it is not the window's (the cycles' peaks, or the long climb's
        // minute maxima): its fit, its points and what they are, and its slope's standard error.
        var carrier: (fit: TrendFit, points: Int, of: String, slopeError: Double)?
        // The long climb's line (its slope's error widened for correlated minutes), whether it carries a standing
        // prediction through noisy minutes or gives a straight climb its speed.
        let onMinuteMaxima = { (line: TrendFit) in
            (fit: line, points: line.count, of: "minute maxima", slopeError: line.slopeStdError * line.autocorrelation)
        }
        if let peaks {
            // A cycling workload whose peaks climb: the peaks' line is the growth, the window's curve only the
            // current climb (its bend or asymptote is the cycle's shape, not the trend's). The level is where memory
            // is now (the climb's height, or between climbs the last value); the kill comes at the top of a climb
            // (see ``CycleReading/RisingPeaks``), also when the peaks' line is already past the limit between two
            // climbs.
            carrier = (peaks.trend, peaks.points, "cycle peaks", peaks.trend.slopeStdError)
            level = climbing ? running : Double(a.lastValue)
            slope = peaks.trend.slope
            accel = 0
            tto = level >= L ? 0 : peaks.timeToLimit(limit: L, nowSec: nowSec,
                                                     climb: climbing ? (a.level, a.fit.slope) : nil)
            growthSpan = peaks.trend.span
            notes.append("Peaks of the last \(peaks.points) cycles climb \(rate(slope)) (memory dropped back \(peaks.drops) times before)")
            if !climbing {
                notes.append("Between climbs: memory is at \(Formatting.bytes(a.lastValue)), down from "
                    + "\(Formatting.bytes(peak)); the prediction follows the peaks")
            }
        } else if let line = longLine {
            carrier = onMinuteMaxima(line)
            level = line.value(at: 0)
            slope = line.slope
            accel = 0
            tto = MemoryAnalysis.timeToLimit(level: level, slope: slope, accel: 0, limit: L).time
            growthSpan = line.span
            notes.append("The last minutes are too noisy to show the growth; the maxima of the last \(line.count) "
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
                judged = long.significant && long.accel > 0
                switch long.curve {
                case .compounding(let g) where g.time(toReach: L) != nil:
                    compounding = g
                    steadyTime = MemoryAnalysis.timeToLimit(level: a.level, slope: max(a.recent?.slope ?? a.fit.slope, 0),
                                                            accel: long.accel, limit: L).time
                    (level, slope, accel) = (g.level, g.slope, g.accel)
                case .knee(let k):
                    (level, slope, accel) = (k.level, k.slope, 0)
                    knee = k
                case .line:
                    (level, slope, accel) = (a.level, a.fit.slope, 0)
                    // One straight climb: with twenty minutes or more of it, the growth is read on the whole climb's
                    // minute maxima, not on the window's five minutes, whose slope swings with noise on a slow leak —
                    // while the window agrees with it (see `Forecast.lineAgreement`).
                    if let line = long.line, Self.windowAgrees(a, with: line) {
                        slope = line.slope
                        carrier = onMinuteMaxima(line)
                    }
                case .logarithmic(let g):
                    // Slowing that never levels off: the time-to-OOM is where the logarithm reaches the limit,
                    // often hours away; read as an approach to a level it came out at a third to a half of that.
                    (level, slope, accel) = (g.level, g.slope, g.accel)
                    logarithmic = g
                    if carriedOnCurve {
                        notes.append("The last minutes are too noisy to show the growth; the maxima of the last "
                            + "\(g.count) minutes still follow the curve")
                    }
                case .parabola, .compounding:
                    accel = long.accel
                    slope = max(a.recent?.slope ?? a.fit.slope, 0)
                    level = a.level
                }
            }
            if let g = compounding {
                tto = g.time(toReach: L)
            } else if let g = logarithmic {
                tto = g.time(toReach: L)
            } else {
                (tto, asymptote) = MemoryAnalysis.timeToLimit(level: level, slope: slope, accel: accel, limit: L)
            }
            if tto == nil, let top = asymptote, top < L {
                guard top < (1 - Forecast.asymptoteMargin) * L else { return .none }
                return .levelsOff("memory levels off at ~\(Formatting.bytes(top)) of the \(Formatting.bytes(limit)) limit")
            }
            // How long the growth now seen has lasted: the window's span, and before it the minutes of the long
            // history that lie on the same curve (within 3σ, 2 % of the limit, or 15 % of the rise back to them).
            let sigma = a.fit.sigma
            let curve: (Double) -> Double = { [compounding, logarithmic, level, slope, accel] d in
                compounding?.value(at: d) ?? logarithmic?.value(at: d) ?? (level + slope * d + 0.5 * accel * d * d)
            }
            let back = s.history.run(
                before: originMinute, now: now, curve: curve,
                tolerance: { d in max(3 * sigma, 0.02 * L, 0.15 * abs(curve(0) - curve(d))) })
            growthSpan = a.fit.span + back
            switch cycle {
            case .steady(let drops):
                return .settle("memory came back down after each of its last \(drops) climbs")
            case .once(let highest):
                // Came back down from about here before: a cycle, not a leak (5 % of the limit of slack).
                if level <= highest + 0.05 * L {
                    return .settle("memory came back down from \(Formatting.bytes(highest)) before")
                }
                // New ground after one drop: it may still be a cycle with a higher peak.
                cycleFactor = 0.5
                notes.append("Memory dropped back once before, from \(Formatting.bytes(highest))")
            case .rising, .none:
                // (Climbing peaks were judged above: `peaks` is set whenever memory grows.)
                break
            }
        }

        guard let t = tto, t <= horizon else { return fellBack.map { .settle($0) } ?? .none }
        if early, t > Forecast.earlyHorizon || t > Forecast.earlyReach * max(a.fit.span, 1) { return .none }
        // The chance that the growth really is fast enough to get there within the horizon (from the slope's
        // standard error), times how much of it has been seen, how far it is extrapolated, and how long the
        // subject has been watched. For a leak across cycles the growth is the peaks' line, from where it is now.
        let headroom = max(0, L - (peaks.map { $0.trend.value(at: nowSec) } ?? level))
        let needed = headroom / max(horizon, 1)
        let effective = t <= 0 ? .infinity : peaks != nil ? slope : headroom / t
        let slopeError = carrier?.slopeError ?? a.fit.slopeStdError
        let reach = RobustTrend.normalCDF((effective - needed) / max(slopeError, 1e-9))
        let seen = 1 - exp(-max(growthSpan, 0) / Forecast.evidenceSeconds)
        let r = t / max(growthSpan, 1)
        let extrapolation = 1 / (1 + (r / Forecast.extrapolation) * (r / Forecast.extrapolation))
        let watched = s.history.firstAt > 0 && now > s.history.firstAt ? Double(now - s.history.firstAt) / 1e9 : 0
        let cap = 0.99 - Forecast.youngCap * exp(-watched / Forecast.youngSeconds)
        var probability = min(cap, reach * seen * extrapolation * cycleFactor)
        if longLine != nil || carriedOnCurve, let standing { probability = min(probability, standing) }
        guard probability >= Forecast.minProbability else { return .none }
        let shownProbability = (probability * 100).rounded() / 100

        // How well the line the prediction rests on fits, from how many points, over how much of the window.
        let basis = carrier.map { (fit: $0.fit, points: $0.points) } ?? (fit: a.fit, points: a.fit.count)
        var confidence = basis.fit.rSquared.squareRoot()
            * (1 - exp(-Double(basis.points) / 6))
            * min(1, basis.fit.span / (Double(windowNanos) / 1e9)).squareRoot()
        let ooms = s.oomIncidents.count
        if ooms > 0 { confidence += (1 - confidence) * 0.5 }
        confidence = (min(0.99, max(0.01, confidence)) * 100).rounded() / 100
        let severity = Self.predictionSeverity(probability: shownProbability, timeToOOM: t)
        let ttoText = Formatting.duration(seconds: t)
        let expected = now.adding(saturating: UInt64.rounding(clamping: t * 1e9))
        let at = Formatting.rfc3339(nanos: now)
        let source = s.hasCgroupSeries ? "cgroup" : "ebpf"
        var evidence = [
            Evidence(source: source,
                     description: "Working set \(Formatting.bytes(a.lastValue)) of a \(Formatting.bytes(limit)) limit",
                     observedAt: at, value: Double(a.lastValue), unit: "bytes"),
            Evidence(source: source,
                     description: "Growing \(rate(slope)) (\(carrier.map { lineSentence($0.fit, points: $0.points, of: $0.of) } ?? fitSentence(a)); growing for \(Formatting.duration(seconds: growthSpan)))",
                     observedAt: at, value: slope, unit: "bytes/s"),
        ]
        if let g = compounding {
            let ratio = g.advantage < 100 ? "\(Int.rounding(clamping: g.advantage))" : "over 100"
            var text = "Growth compounds: the rate doubles every \(Formatting.duration(seconds: g.doubling)) (over the "
                + "last \(g.count) minutes this curve fits \(ratio) times better than a steady speed-up"
            if let steady = steadyTime, steady > t {
                text += ", which would reach the limit later, in \(Formatting.duration(seconds: steady))"
            }
            evidence.append(Evidence(source: source, description: text + ")", observedAt: at, value: g.doubling,
                                     unit: "seconds"))
        } else if let k = knee {
            evidence.append(Evidence(
                source: source,
                description: "Steady growth since it began \(Formatting.duration(seconds: -k.knee)) ago after a flat "
                    + "stretch: a straight line from there fits better than a speed-up",
                observedAt: at, value: -k.knee, unit: "seconds"))
        } else if accel > 0 {
            var text = "Growth is speeding up: the recent half of the window grows \(rate(a.recent?.slope ?? slope)), the older \(rate(a.older?.slope ?? slope))"
            // The same points fit a compounding curve as well: say how much sooner the limit comes on it, when that is
            // a tenth or more sooner (closer than that the two readings say the same).
            if !judged, let c = MemoryAnalysis.compounding(level: level, slope: slope, accel: accel, limit: L),
               c.time < 0.9 * t {
                text += "; if the rate keeps doubling every \(Formatting.duration(seconds: c.doubling)) as it does now, "
                    + "the limit comes sooner, in ~\(Formatting.duration(seconds: c.time))"
            }
            evidence.append(Evidence(source: source, description: text, observedAt: at, value: accel, unit: "bytes/s²"))
        } else if let g = logarithmic {
            evidence.append(Evidence(
                source: source,
                description: "Growth slows but does not level off: memory has risen about \(Formatting.bytes(g.perDoubling)) "
                    + "each time the climb's age doubled (over the last \(g.count) minutes this curve fits clearly better "
                    + "than one levelling off)",
                observedAt: at, value: g.perDoubling, unit: "bytes"))
        } else if accel < 0, let top = asymptote {
            evidence.append(Evidence(source: source, description: "Growth is slowing: on this curve it levels off at ~\(Formatting.bytes(top)), above the \(Formatting.bytes(limit)) limit",
                                     observedAt: at, value: top, unit: "bytes"))
        }
        for n in notes { evidence.append(Evidence(source: source, description: n, observedAt: at)) }
        if ooms > 0 {
            evidence.append(Evidence(source: s.oomKilledByStatus ? "kubernetes" : "ebpf",
                                     description: "OOM-killed \(ooms) time\(ooms == 1 ? "" : "s") in the last \(Formatting.duration(seconds: Double(windowNanos) / 1e9))",
                                     observedAt: at, value: Double(ooms), unit: "count"))
        }
        var actions: [RemediationAction] = []
        if let inc = RemediationAdvice.increaseLimit(
            subject: s.subject, owner: s.owner, current: limit, request: s.memoryRequest,
            // The container is heading for its limit: like VPA after an OOM, size from the limit it will reach.
            peak: max(a.robustPeak, limit), ceiling: config.memoryCeilingBytes,
            reason: "At the current rate the limit is reached in \(ttoText).") {
            actions.append(inc)
        }
        actions.append(RemediationAdvice.memoryDiagnostics(subject: s.subject, previous: ooms > 0 || s.restartCount > 0))
        let spec = InsightSpec(
            type: .oomPrediction, severity: severity,
            title: "OOM kill predicted in \(ttoText) for \(s.subject.displayName)",
            summary: "Memory grows \(rate(slope)) toward its \(Formatting.bytes(limit)) limit "
                + "(now \(Formatting.bytes(a.lastValue)), \(Formatting.percent(Double(a.lastValue) / L)) of it); "
                + "OOM kill in about \(ttoText), probability \(Formatting.percent(shownProbability)), "
                + "confidence \(Formatting.percent(confidence)).",
            subject: s.subject.resourceRef, resources: resources(s), evidence: evidence,
            prediction: Prediction(kind: "OOMKill", probability: shownProbability,
                                   confidence: confidence, timeToEvent: ttoText,
                                   expectedAt: Formatting.rfc3339(nanos: expected)),
            remediation: Remediation(actions: actions))
        return .predict(InsightIdentity(type: .oomPrediction, subject: s.subject), spec)
    }

    /// The buckets of a climb that began inside the window: the longest run at the end whose every bucket's
    /// maximum is at least 0.5 % of the limit above the one before (a leak due at the limit within ~30 minutes
    /// climbs that much per 10-s bucket; a flat or noisy stretch does not), plus the bucket just opened. Nil unless
    /// it holds five buckets or more and is shorter than the window's series.
    func recentClimb(_ series: MemorySeries, limit: UInt64?) -> Deque<MemorySeries.Bucket>? {
        guard let l = limit, series.buckets.count > 5 else { return nil }
        let step = l / 200
        var k = series.buckets.count - 2
        while k > 0, series.buckets[k].max >= series.buckets[k - 1].max.adding(saturating: step) { k -= 1 }
        guard k > 0, series.buckets.count - k >= 5 else { return nil }
        return Deque(series.buckets[k...])
    }

    /// A clean, steep climb toward the limit, too young for ``growing(_:)`` (see ``Forecast``'s early figures).
    func earlyClimb(_ s: SubjectState, _ a: MemoryAnalysis, limit L: Double) -> Bool {
        guard !a.sawtooth, a.dropBuckets == 0, a.fit.slope > 0, a.fit.span >= Forecast.earlySpan,
              a.fit.zScore >= Forecast.earlyZ, a.fit.rSquared >= Forecast.earlyR2,
              a.fit.slope * a.fit.span >= Forecast.earlyRise * L else { return false }
        var previous: UInt64 = 0
        let slack = UInt64(0.01 * L)
        for b in s.memory.buckets where b.maxAt >= a.originNanos {
            if b.max.adding(saturating: slack) < previous { return false }
            previous = max(previous, b.max)
        }
        return true
    }
}
