import Foundation

/// Memory read as compounding growth, y = c + A·e^(k·x), x seconds relative to now (negative into the past): the
/// rate grows in proportion to itself, as growth that feeds on itself does (a retry queue, a cache keyed by what it
/// already holds, a leak per live object). Fitted by least squares: for each rate k on a grid, c and A are linear
/// and solved in closed form; the best of 32 rates on a log grid is refined by golden-section search between its
/// grid neighbours.
///
/// Over a few minutes this curve and a parabola fit the same points about equally well; over ten minutes or more of
/// a climb they part (issue 12: over the corpus's twelve noise seeds, the exponential leak's minute maxima left the
/// parabola 0.7–12.5 times the squared residuals of this curve at 10–14 minutes (median 3) and 6.3–186 times from
/// 15 minutes; the quadratic leaks' 0.01–1.7, below 0.9 from 15 minutes). ``parabolaSSR`` is kept beside ``ssr`` so
/// the detector can tell which growth it is watching.
struct CompoundingFit: Sendable, Hashable {
    /// The curve's offset (bytes): where memory would level out going back in time.
    var offset: Double
    /// Bytes above the offset now.
    var amplitude: Double
    /// Per second.
    var rate: Double
    /// Sum of squared residuals of this curve, and of a least-squares parabola through the same points.
    var ssr: Double
    var parabolaSSR: Double
    var count: Int

    /// The parabola's squared residuals over this curve's: above ``clearlyBetter`` compounding is the better reading.
    var advantage: Double { ssr > 0 ? parabolaSSR / ssr : (parabolaSSR > 0 ? .infinity : 1) }
    /// Compounding is read only when it leaves at most half the parabola's squared residuals. The two models have
    /// three parameters each, so the ratio needs no correction for size; half, because minute maxima move together
    /// (a wandering offset), which makes any likelihood ratio read from them look surer than it is. On the corpus's
    /// seeds, with ten minutes or more, quadratic leaks stayed below 1.7 (below 0.9 from fifteen minutes), the
    /// exponential leak was above it in 65 % of the evaluations at 10–14 minutes and in all from fifteen (≥ 6.3).
    static let clearlyBetter = 2.0

    var level: Double { offset + amplitude }
    var slope: Double { rate * amplitude }
    var accel: Double { rate * rate * amplitude }
    /// How long the rate takes to double.
    var doubling: Double { log(2) / rate }

    func value(at x: Double) -> Double { offset + amplitude * exp(rate * x) }

    /// Seconds from now until the curve reaches `limit` (0 when it is there already; nil when it never does).
    func time(toReach limit: Double) -> Double? {
        guard amplitude > 0, rate > 0 else { return nil }
        if level >= limit { return 0 }
        // e^(k·t) = 1 + (limit − level) / A.
        let t = log1p((limit - level) / amplitude) / rate
        return t.isFinite && t >= 0 ? t : nil
    }

    /// The compounding curve through a level, slope and acceleration now (both positive): k = accel / slope, and
    /// A = slope / k above the offset. Nil otherwise.
    static func through(level: Double, slope: Double, accel: Double) -> CompoundingFit? {
        guard slope > 0, accel > 0, level.isFinite else { return nil }
        let k = accel / slope, a = slope / k
        guard k.isFinite, a.isFinite else { return nil }
        return CompoundingFit(offset: level - a, amplitude: a, rate: k, ssr: 0, parabolaSSR: 0, count: 0)
    }

    /// Fits x (seconds relative to now, at most 0) and y (bytes); nil with fewer than six points, a span under a
    /// minute, or no growing fit (k > 0, A > 0). `parabolaSSR`: the least-squares parabola's squared residuals on
    /// the same points, when the caller has them already.
    static func fit(x: [Double], y: [Double], parabolaSSR known: Double? = nil) -> CompoundingFit? {
        let n = x.count
        guard n >= 6, n == y.count, let lo = x.min(), let hi = x.max(), hi - lo >= 60 else { return nil }
        let span = hi - lo
        // Rates from a hundredth of an e-fold over the span (nearly a line) to twenty e-folds (a rate that grew
        // 5·10⁸-fold within the span).
        guard let b = OneTermFit.search(from: 0.01 / span, to: 20 / span, { k in OneTermFit.fit(x: x, y: y) { exp(k * $0) } })
        else { return nil }
        guard b.p > 0, b.b > 0, let parabola = known ?? parabolaSSR(x: x, y: y) else { return nil }
        return CompoundingFit(offset: b.c, amplitude: b.b, rate: b.p, ssr: b.ssr, parabolaSSR: parabola, count: n)
    }

    /// The squared residuals of the least-squares parabola through the points.
    static func parabolaSSR(x: [Double], y: [Double]) -> Double? {
        guard let p = MemoryAnalysis.fitParabola(t: x, y: y, at: 0) else { return nil }
        return p.ssr
    }
}

/// Which curve a climb of ten minutes or more that speeds up really follows (``MemoryHistory/bend(now:maxMinutes:)``),
/// judged by least squares among three readings with three parameters each.
enum ClimbCurve: Sendable {
    /// A straight line: the halves' slopes do not differ significantly, or they do but the parabola does not leave
    /// at most half a line's squared residuals. The halves'
    /// slopes can differ by their test's four standard errors when an hour of a slow leak wanders (the corpus's
    /// slow leaks over twelve noise seeds: about 300 evaluations read an acceleration that was not there); a curve
    /// that matters bends far more than that.
    case line
    /// Flat, then a straight line: the knee leaves at most half the squared residuals of both other curves (the
    /// same bar as compounding, for the same reason). The growth now does not speed up.
    case knee(KneeFit)
    /// Compounding fits clearly better than a parabola (``CompoundingFit/clearlyBetter``), and better than a knee.
    case compounding(CompoundingFit)
    /// Neither: a steady acceleration, or a slowing read as an approach to a level, from the halves' slopes.
    case parabola
    /// Growth that slows without levelling off: a logarithm fits the climb clearly better than an approach to a
    /// level (``LogarithmicFit``).
    case logarithmic(LogarithmicFit)

    /// On the corpus's twelve noise seeds (every evaluation with a significant bend): for the leaks after a plateau
    /// the parabola left 160–600 times the knee's squared residuals and compounding 55–260 times; for the periodic
    /// ramps after their flat part 1.8–60 and 1.4–54 times; for the accelerating and slow leaks at most 0.8 (the
    /// knee never fit them best). Compounding was chosen only for the exponential leak. A straight line's squared
    /// residuals over the parabola's (a Python sketch, seeds 0–5): 1.00–1.31 for the slow leaks, 30–1,170 for the
    /// accelerating ones from ten minutes on.
    static func judge(x: [Double], y: [Double]) -> ClimbCurve { judged(x: x, y: y).curve }

    /// ``judge(x:y:)``'s verdict with the compounding curve it weighed (nil when a line won before it was fitted, or
    /// none fits): read `.parabola`, the climb may still compound, and its ``CompoundingFit/advantage`` says how well.
    static func judged(x: [Double], y: [Double]) -> (curve: ClimbCurve, compounding: CompoundingFit?) {
        guard let parabola = CompoundingFit.parabolaSSR(x: x, y: y) else { return (.parabola, nil) }
        if let line = lineSSR(x: x, y: y), line <= CompoundingFit.clearlyBetter * parabola { return (.line, nil) }
        let compounding = CompoundingFit.fit(x: x, y: y, parabolaSSR: parabola)
        if let k = KneeFit.fit(x: x, y: y), k.ssr * CompoundingFit.clearlyBetter <= parabola,
           k.ssr * CompoundingFit.clearlyBetter <= (compounding?.ssr ?? .infinity) {
            return (.knee(k), compounding)
        }
        if let g = compounding, g.advantage >= CompoundingFit.clearlyBetter { return (.compounding(g), g) }
        return (.parabola, compounding)
    }

    /// Which curve a climb of ten minutes or more that slows down follows: a line when the parabola does not leave
    /// at most half its squared residuals (``straightAfterAll(x:y:)``), a logarithm when it leaves at most half the
    /// squared residuals of the best approach to a level (the bar of ``CompoundingFit/clearlyBetter``, for the same
    /// reason), else the halves' own reading (`.parabola`: an approach to the level their slopes point at).
    static func judgeSlowing(x: [Double], y: [Double]) -> ClimbCurve {
        if straightAfterAll(x: x, y: y) { return .line }
        guard let g = LogarithmicFit.fit(x: x, y: y), let levelling = LogarithmicFit.levellingSSR(x: x, y: y),
              g.ssr * CompoundingFit.clearlyBetter <= levelling else { return .parabola }
        return .logarithmic(g)
    }

    /// Whether points whose halves bend are straight after all, as ``judge(x:y:)`` reads a speed-up: the parabola
    /// leaves at least half a line's squared residuals.
    static func straightAfterAll(x: [Double], y: [Double]) -> Bool {
        guard let parabola = CompoundingFit.parabolaSSR(x: x, y: y), let line = lineSSR(x: x, y: y) else { return false }
        return line <= CompoundingFit.clearlyBetter * parabola
    }

    /// The squared residuals of the least-squares line through the points; nil when all x are equal.
    static func lineSSR(x: [Double], y: [Double]) -> Double? {
        OneTermFit.fit(x: x, y: y) { $0 }?.ssr
    }
}
