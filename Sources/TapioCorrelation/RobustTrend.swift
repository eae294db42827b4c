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
    /// How much wider the slope's standard error really is because neighbouring residuals move together (see
    /// ``RobustTrend/autocorrelationFactor(_:)``): computed for the fits the bend tests read (`correlated: true`),
    /// 1 otherwise.
    var autocorrelation: Double = 1

    func value(at t: Double) -> Double { intercept + slope * t }

    /// The slope in units of its standard error (∞ for a noiseless nonzero slope).
    var zScore: Double {
        if slopeStdError > 0 { return slope / slopeStdError }
        return slope == 0 ? 0 : (slope > 0 ? .infinity : -.infinity)
    }
}

enum RobustTrend {
    /// Theil–Sen over the points (in time order); nil with fewer than 3 points or no time spread. With
    /// `correlated`, the residuals' autocorrelation is measured too (the other fits do not pay for it).
    static func theilSen(t: [Double], y: [Double], correlated: Bool = false) -> TrendFit? {
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
        var residuals: [Double] = []
        if correlated { residuals.reserveCapacity(n) }
        for i in 0..<n {
            let r = y[i] - (intercept + slope * t[i])
            if correlated { residuals.append(r) }
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
                        span: (t.max() ?? 0) - (t.min() ?? 0),
                        autocorrelation: correlated ? autocorrelationFactor(residuals) : 1)
    }

    /// How far the slope changes from one stretch of a curve to the next, in standard errors (0 when they are not
    /// finite; ±∞ for a change between two noiseless stretches): the halves' test of a bend. Each slope's error is
    /// widened by its residuals' autocorrelation, or by `autocorrelation` when that is larger (measured on more
    /// points than a half holds).
    static func slopeChangeZ(from older: TrendFit, to recent: TrendFit, autocorrelation: Double = 1) -> Double {
        let o = older.slopeStdError * max(older.autocorrelation, autocorrelation)
        let r = recent.slopeStdError * max(recent.autocorrelation, autocorrelation)
        let se = (o * o + r * r).squareRoot()
        let diff = recent.slope - older.slope
        guard se.isFinite else { return 0 }
        if se == 0 { return diff == 0 ? 0 : (diff > 0 ? .infinity : -.infinity) }
        return diff / se
    }

    /// The factor by which a standard error computed as if residuals were independent understates the real one,
    /// when they are not: √((1 + ρ) / (1 − ρ)), ρ the lag-1 autocorrelation of the residuals in time order (the
    /// effective-sample-size correction for AR(1) noise used for trends in climate series, Santer et al. 2008).
    /// Memory wanders — page cache and allocator slack drift for tens of seconds, longer than a bucket — and with
    /// 20–30 buckets such drift makes a three-standard-error bend by chance far more often than one time in 300.
    /// ρ is clamped to [0, 0.9]: negative correlation is not credited, and one strong run cannot make the error
    /// infinite. 1 with fewer than four residuals.
    static func autocorrelationFactor(_ residuals: [Double]) -> Double {
        let n = residuals.count
        guard n >= 4 else { return 1 }
        let mean = residuals.reduce(0, +) / Double(n)
        var num = 0.0, den = 0.0
        for i in 0..<n {
            let d = residuals[i] - mean
            den += d * d
            if i > 0 { num += d * (residuals[i - 1] - mean) }
        }
        guard den > 0 else { return 1 }
        let rho = min(0.9, max(0, num / den))
        return ((1 + rho) / (1 - rho)).squareRoot()
    }

    /// The median (the array is reordered). By selection, not a sort: a Theil–Sen line over an hour of minute maxima
    /// takes the median of 1,770 pairwise slopes at every evaluation of a long straight climb.
    static func median(_ a: inout [Double]) -> Double {
        precondition(!a.isEmpty)
        let m = a.count / 2
        select(&a, m)
        guard a.count % 2 == 0 else { return a[m] }
        // The m smallest now lie before a[m]: the lower middle value is the largest of them.
        var lower = a[0]
        for i in 1..<m where a[i] > lower { lower = a[i] }
        return (lower + a[m]) / 2
    }

    /// Reorders `a` so that `a[k]` holds the value a sort would put there, with none greater before it and none
    /// smaller after it (Hoare's selection, median-of-three pivots). Past 2·log2(n) rounds, an input that keeps
    /// defeating the pivots has what is left sorted instead, so its cost stays O(n log n).
    static func select(_ a: inout [Double], _ k: Int) {
        var lo = 0, hi = a.count - 1
        var rounds = 0
        let maxRounds = 2 * (Int.bitWidth - a.count.leadingZeroBitCount)
        while lo < hi {
            rounds += 1
            if rounds > maxRounds {
                a[lo...hi].sort()
                return
            }
            let mid = lo + (hi - lo) / 2
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j {
                    a.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return }
        }
    }

    /// Standard normal CDF.
    static func normalCDF(_ x: Double) -> Double {
        if x == .infinity { return 1 }
        if x == -.infinity { return 0 }
        return 0.5 * erfc(-x / 2.0.squareRoot())
    }
}
