import Foundation

/// Least squares for y = c + b·f(x) with one basis function f: the closed form the long-climb curves share (a line,
/// a compounding curve at a fixed rate, a knee at a fixed place). Nil when f(x) is (nearly) constant over the
/// points, so that c and b cannot be told apart.
enum OneTermFit {
    static func fit(x: [Double], y: [Double], _ f: (Double) -> Double) -> (c: Double, b: Double, ssr: Double)? {
        guard x.count >= 2, x.count == y.count else { return nil }
        var su = 0.0, suu = 0.0, sy = 0.0, suy = 0.0
        for i in x.indices {
            let u = f(x[i])
            su += u; suu += u * u; sy += y[i]; suy += u * y[i]
        }
        let n = Double(x.count)
        let det = n * suu - su * su
        guard det.isFinite, det > 1e-12 * n * suu else { return nil }
        let b = (n * suy - su * sy) / det
        let c = (sy - b * su) / n
        var ssr = 0.0
        for i in x.indices {
            let r = y[i] - c - b * f(x[i])
            ssr += r * r
        }
        return ssr.isFinite ? (c, b, ssr) : nil
    }

    /// The best of `fit(p)` over a parameter p > 0 (the curves' rate or time scale): 32 values on a log grid from
    /// `lower` to `upper`, the best refined by golden-section search between its grid neighbours (a factor 1.6 apart
    /// over the rates' range of 2,000, 2.1 over the logarithm's origins' 10⁵): each step keeps one of the two inner
    /// points, so 28 steps cost 30 solves and leave p known to 10⁻⁵ of itself. Nil when no value fits.
    static func search(from lower: Double, to upper: Double,
                       _ fit: (Double) -> (c: Double, b: Double, ssr: Double)?) -> (p: Double, c: Double, b: Double, ssr: Double)? {
        typealias Fit = (p: Double, c: Double, b: Double, ssr: Double)
        func solve(_ p: Double) -> Fit? { fit(p).map { (p, $0.c, $0.b, $0.ssr) } }
        let steps = 32
        var best: Fit?
        var bestIndex = 0
        var grid: [Double] = []
        grid.reserveCapacity(steps)
        for i in 0..<steps {
            let p = lower * pow(upper / lower, Double(i) / Double(steps - 1))
            grid.append(p)
            if let f = solve(p), f.ssr < (best?.ssr ?? .infinity) { best = f; bestIndex = i }
        }
        guard var b = best else { return nil }
        var lo = grid[max(0, bestIndex - 1)], hi = grid[min(steps - 1, bestIndex + 1)]
        let g = (5.0.squareRoot() - 1) / 2
        var p1 = hi - g * (hi - lo), p2 = lo + g * (hi - lo)
        var f1 = solve(p1), f2 = solve(p2)
        for _ in 0..<28 {
            if let f = f1, f.ssr < b.ssr { b = f }
            if let f = f2, f.ssr < b.ssr { b = f }
            if (f1?.ssr ?? .infinity) <= (f2?.ssr ?? .infinity) {
                hi = p2; p2 = p1; f2 = f1
                p1 = hi - g * (hi - lo); f1 = solve(p1)
            } else {
                lo = p1; p1 = p2; f1 = f2
                p2 = lo + g * (hi - lo); f2 = solve(p2)
            }
        }
        if let f = f1, f.ssr < b.ssr { b = f }
        if let f = f2, f.ssr < b.ssr { b = f }
        return b
    }
}
