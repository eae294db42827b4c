import Foundation

/// Memory read as flat, then growing in a straight line from a knee: y = c + b·max(0, x − knee), x seconds relative to
/// now. The shape of a leak that starts after a plateau, or of the next ramp of a cycling workload after its flat
/// part: a parabola or a compounding curve bends through the knee and reads an acceleration the growth does not
/// have now. Least squares over knees on a grid (six between each pair of points), c and b in closed form
/// (``OneTermFit``).
struct KneeFit: Sendable, Hashable {
    var level: Double
    var slope: Double
    /// Seconds relative to now (negative), or the first point's time when the fit is a plain line.
    var knee: Double
    var ssr: Double

    /// Fits x (seconds relative to now) and y (bytes); nil with fewer than six points or no rising line after the
    /// knee. At least two points lie before the knee and three after it: a "flat stretch" of one point is none.
    static func fit(x: [Double], y: [Double]) -> KneeFit? {
        let n = x.count
        guard n >= 6, n == y.count else { return nil }
        var best: KneeFit?
        let steps = 6
        for i in 1..<(n - 3) {
            for j in 0..<steps {
                let knee = x[i] + (x[i + 1] - x[i]) * Double(j) / Double(steps)
                guard let (c, b, ssr) = OneTermFit.fit(x: x, y: y, { max(0, $0 - knee) }) else { continue }
                if b > 0, ssr.isFinite, ssr < (best?.ssr ?? .infinity) {
                    best = KneeFit(level: c + b * max(0, -knee), slope: b, knee: knee, ssr: ssr)
                }
            }
        }
        return best
    }
}
