#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Clocks the node side uses; injected everywhere as `@Sendable () -> UInt64` so tests can drive time.
public enum MonotonicClock {
    /// CLOCK_MONOTONIC_COARSE in nanoseconds: a few nanoseconds through the vDSO, millisecond-grained — plenty for
    /// cache TTLs and cheap enough for the translator's hot path.
    @Sendable public static func coarseNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Nanoseconds since the Unix epoch (event timestamps).
    @Sendable public static func wallNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        // Clamped: a wall clock set before 1970 (a node whose RTC lost its battery) must not trap.
        return UInt64(clamping: ts.tv_sec) &* 1_000_000_000 &+ UInt64(clamping: ts.tv_nsec)
    }
}

extension MonotonicClock {
    /// CLOCK_MONOTONIC in nanoseconds (durations worth reporting).
    @Sendable public static func preciseNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
