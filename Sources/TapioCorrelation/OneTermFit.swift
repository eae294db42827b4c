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
}
