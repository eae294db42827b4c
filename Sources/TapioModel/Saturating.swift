/// Checked and saturating arithmetic for instants and sizes (nanoseconds and bytes as `UInt64`).
///
/// The engine's clock is whatever its caller passes — wall time in the agent, a scenario's virtual time in a
/// replay — and its settings come from policies and scenario headers, so sums of instants and durations can reach
/// `UInt64.max`. Saturating there keeps "never" meaning never instead of wrapping to the past or trapping.
/// In TapioModel so every module converts durations and adds instants the same way (the engine, the node caches,
/// the bounded queue's timed waits).
extension UInt64 {
    /// `self + other`, or `UInt64.max` where that overflows.
    @inlinable package func adding(saturating other: UInt64) -> UInt64 {
        let (v, o) = addingReportingOverflow(other)
        return o ? .max : v
    }

    /// `self × other`, or `UInt64.max` where that overflows.
    @inlinable package func multiplied(saturating other: UInt64) -> UInt64 {
        let (v, o) = multipliedReportingOverflow(by: other)
        return o ? .max : v
    }

    /// `self - other`, or 0 where `other` is larger.
    @inlinable package func subtracting(saturating other: UInt64) -> UInt64 { self > other ? self - other : 0 }

    /// A non-negative finite `Double` rounded to the nearest whole number, if it fits; nil for negative, NaN,
    /// infinite and too large values. (`UInt64(_: Double)` traps on all of those.)
    @inlinable package static func rounding(exactly d: Double) -> UInt64? {
        guard d.isFinite, d >= 0 else { return nil }
        let r = d.rounded()
        // 2^64 is the first Double that does not fit.
        guard r < 18_446_744_073_709_551_616.0 else { return nil }
        return UInt64(r)
    }

    /// Like ``rounding(exactly:)`` but clamped: negative and NaN give 0, too large gives `UInt64.max`.
    @inlinable package static func rounding(clamping d: Double) -> UInt64 {
        if d.isNaN || d <= 0 { return 0 }
        return rounding(exactly: d) ?? .max
    }
}

extension Int {
    /// A `Double` rounded to a whole number and clamped to `Int`'s range (NaN gives 0).
    @inlinable package static func rounding(clamping d: Double) -> Int {
        if d.isNaN { return 0 }
        let r = d.rounded()
        // ±2^63 is the first Double outside Int's range.
        if r >= 9_223_372_036_854_775_808.0 { return .max }
        if r < -9_223_372_036_854_775_808.0 { return .min }
        return Int(r)
    }
}

extension Duration {
    /// Whole nanoseconds, saturating: negative durations are 0, durations beyond `UInt64.max` ns (~584 years) are
    /// `UInt64.max`.
    @inlinable package var nanos: UInt64 {
        let c = components
        // `components` rounds toward zero: −0.5 s is (0 s, −5·10¹⁷ as), which would trap below.
        if c.seconds < 0 || c.attoseconds < 0 { return 0 }
        return UInt64(c.seconds).multiplied(saturating: 1_000_000_000)
            .adding(saturating: UInt64(c.attoseconds / 1_000_000_000))
    }
}
