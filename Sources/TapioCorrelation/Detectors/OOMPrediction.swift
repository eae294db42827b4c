import Foundation
import DequeModule
import TapioModel

/// The OOM prediction: whether memory climbs, how sure the prediction is and when an active one is over — from the
/// window's analysis, the long history's climb and cycles, and the subject's past kills (the README's "OOM
/// predictions: probability and severity" explains each figure). How soon: ``CorrelationEngine/readGrowth``; the
/// Insight's words: ``CorrelationEngine/predictionSpec``.
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
        /// (At most half of `resolveAfter`: ``CorrelationEngine/levelsOffHold``.)
        ///
        /// And a new prediction waits as long after the last evaluation at which that reading had held: a
        /// logarithmic climb read as levelling off for nine minutes was read straight on one evaluation (the
        /// window's bend is noisy) and raised "OOM in 21m" 2.6 hours before its kill. An active prediction is
        /// updated as before, and one due within ``urgentSeconds`` does not wait.
        static let levelsOffHoldSeconds = 120.0
        /// A kill due within ten minutes is not held back by the wait above: two minutes would be a fifth or more of
        /// the time left (a fast leak right after a heap filled up).
        static let urgentSeconds = 600.0
        /// A speed-up read by the window stays read at a lower bar (``MemoryAnalysis/bendHoldZ``) while every memory
        /// evaluation reads it and the next comes within a minute: memory evaluations run with each bucket of
        /// samples (10 s), so a minute without one is a gap in the samples, after which the climb is judged afresh.
        static let speedUpHoldSeconds = 60.0
        /// How far below its severity's bars a standing prediction must fall to lose it
        /// (``CorrelationEngine/predictionSeverity(probability:timeToOOM:standing:)``): 0.05 of probability, or a time-to-OOM
        /// a tenth longer — more than a tread of a staircase or a tooth of a sawtooth moves it.
        static let severityHoldProbability = 0.05
        static let severityHoldTime = 1.1
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
        /// A Warning says a time to act by, and issue 12 asks it to be within a fifth of the truth. While the curve
        /// is open between a steady speed-up and compounding (``CorrelationEngine/CurveDoubt``) it is not: a new
        /// prediction stays Info, saying both times, until the long climb has chosen (ten minutes or more of it)
        /// or the sooner reading leaves five minutes or less (``curveDoubtUrgentSeconds``), and for two minutes
        /// after the last evaluation in doubt — the time a reading that came and went on a noisy climb held at most
        /// (as ``levelsOffHoldSeconds``), while the window alone is read. A prediction standing at Warning or above
        /// is not lowered by it (it may still fall by the usual bars, and then waits like a new one).
        static let curveDoubtHoldSeconds = 120.0
        /// Five minutes: where a likely kill is a Warning on its time alone (``predictionSeverity``), there is no
        /// time left to wait for the curve.
        static let curveDoubtUrgentSeconds = 300.0
    }

    /// Severity from probability and time-to-OOM together: Critical when the kill is likely (≥ 0.7) and within
    /// 10 minutes — or imminent (≤ 60 s) and at least 0.4, since there is no time left to wait for more evidence;
    /// Warning when more likely than not, or 0.3 and within 5 minutes; otherwise Info.
    ///
    /// A prediction standing at a severity keeps it until it is clearly below that severity's bar: its probability
    /// 0.05 under it or its time-to-OOM a tenth past it (`standing`, the severity last said). A staircase's time-to-OOM
    /// steps around ten minutes as each tread comes and goes — 9m51s, 10m3s, 9m52s — and read on the bars alone its
    /// prediction went Critical, Warning, Critical within 40 s (`oom-staircase-1`, `oom-gc-leak-1`: on three of the
    /// corpus's eight noise seeds; a staircase on four of eight draws in `severityIsHeldAtItsBar`), each return an
    /// `escalated` update and a new Event.
    static func predictionSeverity(probability p: Double, timeToOOM t: Double, standing: Severity? = nil) -> Severity {
        func reads(_ severity: Severity) -> Bool {
            let held = standing.map { $0 >= severity } ?? false
            let dp = held ? Forecast.severityHoldProbability : 0, ft = held ? Forecast.severityHoldTime : 1
            switch severity {
            case .critical: return (p >= 0.7 - dp && t <= 600 * ft) || (p >= 0.4 - dp && t <= 60 * ft)
            case .warning: return p >= 0.5 - dp || (p >= 0.3 - dp && t <= 300 * ft)
            default: return true
            }
        }
        if reads(.critical) { return .critical }
        if reads(.warning) { return .warning }
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
        let nowSec = a.nowSec
        // A prediction standing now (only one standing can be carried through a lull, below).
        let standing = s.active.first { $0.identity.type == .oomPrediction }?.spec.prediction?.probability
        // Ramps longer than the window: what did this subject do before? (Sawtooth mode already judges cycles
        // inside the window.) Read when memory grows, or between climbs for a prediction that stands: the common
        // evaluation, memory not growing and nothing predicted, does not pay for it.
        var cycle = a.sawtooth || !(climbing || standing != nil) ? CycleReading.none
            : CycleReading.read(s.history, limit: L, running: running, now: now, nowSec: nowSec)
        // None of its own: did other pods of its workload come back down (a rollout's new pod, a scale-up's)?
        if case .none = cycle, !a.sawtooth, climbing || standing != nil, let w = workloadDrop(s) {
            cycle = .workload(highest: w.peak, drops: w.drops, pod: w.pod)
        }
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

        let climb = ClimbNow(climbing: climbing, running: running, cycle: cycle, peaks: peaks, longLine: longLine,
                             carriedOnCurve: carriedOnCurve)
        let r: GrowthReading
        switch readGrowth(s, a, limit: limit, now: now, climb, long: long) {
        case .read(let reading): r = reading
        case .judged(let judgement): return judgement
        }

        guard let t = r.tto, t <= horizon else { return fellBack.map { .settle($0) } ?? .none }
        if early, t > Forecast.earlyHorizon || t > Forecast.earlyReach * max(a.fit.span, 1) { return .none }
        // A curve just read as levelling off does not become a new prediction on one evaluation's word.
        if standing == nil, t > Forecast.urgentSeconds, s.levelledOffAt > 0, now >= s.levelledOffAt,
           Double(now - s.levelledOffAt) / 1e9 < levelsOffHold {
            return .none
        }
        let probability = predictionProbability(s, a, reading: r, limit: L, timeToOOM: t, horizon: horizon, now: now,
                                                carried: longLine != nil || carriedOnCurve ? standing : nil)
        guard probability >= Forecast.minProbability else { return .none }
        let shownProbability = (probability * 100).rounded() / 100
        // Held at Info while the curve is open, and for a while after it last was while the window alone is read
        // (not the long climb, which has spoken, nor a cycle's peaks or the climb's line): a quadratic leak's window
        // reads it straight now and then, and straight its time-to-OOM came out 50–100 % late (`oom-accelerating-1`,
        // noise seeds 8 and 11, 20–60 s after a reading in doubt).
        let doubt = curveDoubt(r, limit: L, timeToOOM: t)
        let windowOnly = !r.judged && r.peaks == nil && r.carrier == nil && r.logarithmic == nil && r.accel >= 0
        let heldAtInfo = doubt != nil
            || (windowOnly && SubjectState.holds(since: s.curveDoubtedAt, for: Forecast.curveDoubtHoldSeconds, now: now))
        return .predict(InsightIdentity(type: .oomPrediction, subject: s.subject),
                        predictionSpec(s, a, limit: limit, now: now, reading: r, timeToOOM: t,
                                       probability: shownProbability, doubt: doubt, heldAtInfo: heldAtInfo),
                        doubted: doubt != nil)
    }

    /// The chance that the growth really is fast enough to get there within the horizon (from the slope's standard
    /// error), times how much of it has been seen, how far it is extrapolated, and how long the subject has been
    /// watched (the README's "How sure is a prediction?"). For a leak across cycles the growth is the peaks' line,
    /// from where it is now. A prediction carried through noisy minutes on the long climb's line or curve
    /// (`carried`: its probability) only keeps what was said: it is not raised on their word.
    func predictionProbability(_ s: SubjectState, _ a: MemoryAnalysis, reading r: GrowthReading, limit L: Double,
                               timeToOOM t: Double, horizon: Double, now: UInt64, carried: Double?) -> Double {
        let headroom = max(0, L - (r.peaks.map { $0.trend.value(at: a.nowSec) } ?? r.level))
        let needed = headroom / max(horizon, 1)
        let effective = t <= 0 ? .infinity : r.peaks != nil ? r.slope : headroom / t
        let slopeError = r.carrier?.slopeError ?? a.fit.slopeStdError
        let reach = RobustTrend.normalCDF((effective - needed) / max(slopeError, 1e-9))
        let seen = 1 - exp(-max(r.growthSpan, 0) / Forecast.evidenceSeconds)
        let ahead = t / max(r.growthSpan, 1)
        let extrapolation = 1 / (1 + (ahead / Forecast.extrapolation) * (ahead / Forecast.extrapolation))
        let watched = s.history.firstAt > 0 && now > s.history.firstAt ? Double(now - s.history.firstAt) / 1e9 : 0
        let cap = 0.99 - Forecast.youngCap * exp(-watched / Forecast.youngSeconds)
        var probability = min(cap, reach * seen * extrapolation * r.cycleFactor)
        if let carried { probability = min(probability, carried) }
        return probability
    }

    /// The highest drop other pods of `s`'s workload came back down from under its limit (``WorkloadCycles``).
    func workloadDrop(_ s: SubjectState) -> (peak: Double, drops: Int, pod: String)? {
        guard workloadCycles.count > 0, let key = WorkloadCycles.key(s.subject, owner: s.owner), let pod = s.subject.pod
        else { return nil }
        let ownFrom = s.history.minutes.isEmpty ? Int64.max : s.history.minute(0)
        return workloadCycles.highest(key, except: pod.uid, from: ownFrom, limit: s.effectiveLimit.map { Double($0) } ?? 0)
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
