import Foundation

/// Memory read as growth that slows without levelling off, y = c + b·ln(x − origin), x seconds relative to now and
/// `origin` (before the first point) where the climb's clock starts: each doubling of the climb's age adds the same
/// b·ln 2. A cache keyed by ever new values, an index or a log buffer without a bound grow so: fast at first, then
/// slower and slower, but never to a level. Read as an approach to a level, the same climb "levels off" a little
/// above wherever it is now, pass after pass, until that level crosses the limit; its time-to-OOM then came out at
/// a third to a half of the truth, and the prediction was raised and settled again and again as the reading moved
/// (issue 12, long logarithmic climbs). Fitted like ``CompoundingFit``: c and b in closed form for each origin on a
/// log grid, refined by golden-section search (``OneTermFit/search(from:to:_:)``).
struct LogarithmicFit: Sendable, Hashable {
    var offset: Double
    /// Bytes per e-fold of the climb's age.
    var scale: Double
    /// Seconds relative to now (negative).
    var origin: Double
    var ssr: Double
    var count: Int

    /// Bytes at x; −∞ at and before the origin, where the curve has no value (callers check `isFinite`).
    func value(at x: Double) -> Double { x > origin ? offset + scale * log(x - origin) : -.infinity }
    var level: Double { value(at: 0) }
    var slope: Double { scale / -origin }
    var accel: Double { -scale / (origin * origin) }
    /// What each doubling of the climb's age adds.
    var perDoubling: Double { scale * log(2) }

    /// Seconds from now until the curve reaches `limit` (0 when it is there already; nil when the time is not a
    /// finite number, far beyond any horizon).
    func time(toReach limit: Double) -> Double? {
        guard scale > 0, origin < 0 else { return nil }
        if level >= limit { return 0 }
        // ln(t − origin) = (limit − c) / b.
        let t = origin + exp((limit - offset) / scale)
        return t.isFinite && t >= 0 ? t : nil
    }

    /// Fits x (seconds relative to now, at most 0) and y (bytes); nil with fewer than six points, a span under a
    /// minute, or no rising fit (b > 0). The origin lies from a thousandth of the span before the first point
    /// (growth that slowed at once) to a hundred spans before it (nearly a line over the points).
    static func fit(x: [Double], y: [Double]) -> LogarithmicFit? {
        let n = x.count
        guard n >= 6, n == y.count, let lo = x.min(), let hi = x.max(), hi - lo >= 60, hi <= 0 else { return nil }
        let span = hi - lo
        guard let b = OneTermFit.search(from: 0.001 * span, to: 100 * span, { d in
            OneTermFit.fit(x: x, y: y) { log($0 - lo + d) }
        }), b.b > 0 else { return nil }
        return LogarithmicFit(offset: b.c, scale: b.b, origin: lo - b.p, ssr: b.ssr, count: n)
    }

    /// The squared residuals of the best approach to a level through the same points, y = c − A·e^(−x/T) (the
    /// reading a slowing climb gets otherwise: a heap filling toward -Xmx, a cache warming up to its size), with T
    /// from a twentieth of the span to a hundred spans; nil when no rising one fits.
    static func levellingSSR(x: [Double], y: [Double]) -> Double? {
        guard x.count >= 6, let lo = x.min(), let hi = x.max(), hi - lo >= 60 else { return nil }
        let span = hi - lo
        guard let b = OneTermFit.search(from: 0.01 / span, to: 20 / span, { q in
            OneTermFit.fit(x: x, y: y) { exp(-q * $0) }
        }), b.b < 0 else { return nil }
        return b.ssr
    }
}
