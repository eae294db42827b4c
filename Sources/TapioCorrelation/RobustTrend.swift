import Foundation

/// A straight-line fit that outliers cannot drag: the Theil–Sen estimator (median of pairwise slopes, median
/// intercept) with robust residual statistics. Times are seconds; values are whatever unit the caller uses.
struct TrendFit: Sendable, Hashable {
    /// Units per second.
    var slope: Double
    /// Value at t = 0.
    var intercept: Double
    /// Residual spread: the larger of 1.4826 × median |residual| (robust) and the residual standard deviation.
    var sigma: Double
    /// Share of variance the line explains (0…1; 0 for a constant series).
    var rSquared: Double
    /// Standard error of the slope from `sigma` and the spread of the times.
    var slopeStdError: Double
    var count: Int
    /// Seconds between the first and last point.
    var span: Double

    func value(at t: Double) -> Double { intercept + slope * t }

    /// The slope in units of its standard error (∞ for a noiseless nonzero slope).
    var zScore: Double {
        if slopeStdError > 0 { return slope / slopeStdError }
        return slope == 0 ? 0 : (slope > 0 ? .infinity : -.infinity)
    }
}

enum RobustTrend {
    /// Theil–Sen over the points; nil with fewer than 3 points or no time spread.
    static func theilSen(t: [Double], y: [Double]) -> TrendFit? {
        let n = t.count
        guard n >= 3, y.count == n else { return nil }
        var slopes: [Double] = []
        slopes.reserveCapacity(n * (n - 1) / 2)
        for i in 0..<(n - 1) {
            for j in (i + 1)..<n where t[j] != t[i] {
                slopes.append((y[j] - y[i]) / (t[j] - t[i]))
            }
        }
        guard !slopes.isEmpty else { return nil }
        let slope = median(&slopes)
        var offsets = (0..<n).map { y[$0] - slope * t[$0] }
        let intercept = median(&offsets)
        var absResiduals = (0..<n).map { abs(y[$0] - (intercept + slope * t[$0])) }
        let sigma = 1.4826 * median(&absResiduals)
        let tMean = t.reduce(0, +) / Double(n)
        let yMean = y.reduce(0, +) / Double(n)
        var sst = 0.0, sse = 0.0, stt = 0.0
        for i in 0..<n {
            let r = y[i] - (intercept + slope * t[i])
            sse += r * r
            sst += (y[i] - yMean) * (y[i] - yMean)
            stt += (t[i] - tMean) * (t[i] - tMean)
        }
        let r2 = sst > 0 ? max(0, 1 - sse / sst) : 0
        // The larger of the robust and the classical spread: the median ignores outliers for the line itself, but
        // with few points (a handful of GC-cycle peaks) the MAD claims a precision the data lacks.
        let classical = n > 2 ? (sse / Double(n - 2)).squareRoot() : 0
        let spread = max(sigma, classical)
        let se = stt > 0 ? spread / stt.squareRoot() : .infinity
        return TrendFit(slope: slope, intercept: intercept, sigma: spread, rSquared: r2, slopeStdError: se, count: n,
                        span: (t.max() ?? 0) - (t.min() ?? 0))
    }

    /// The median (the array is reordered).
    static func median(_ a: inout [Double]) -> Double {
        precondition(!a.isEmpty)
        a.sort()
        let m = a.count / 2
        return a.count % 2 == 1 ? a[m] : (a[m - 1] + a[m]) / 2
    }

    /// Standard normal CDF.
    static func normalCDF(_ x: Double) -> Double {
        if x == .infinity { return 1 }
        if x == -.infinity { return 0 }
        return 0.5 * erfc(-x / 2.0.squareRoot())
    }
}
