import Foundation

/// How long to wait after consecutive failures, the way client-go's reflector does it
/// (`wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)`): the base delay starts at `initial`, doubles
/// per consecutive failure up to `cap`, and each wait is the base times a random factor in `[1, 1 + jitter)`. The
/// count starts over only after `resetAfter` without any failure — a single good event does not reset it, so a
/// server that fails every request right after accepting it still gets ever slower retries.
///
/// One difference from client-go: with `immediateFirst`, the first failure after a healthy period is retried at
/// once (a 410 after a compaction or a dropped connection is routine; the cache should not lag for it). Only
/// repeated failures wait: with the defaults 0, 0.8–1.6 s, 1.6–3.2 s, 3.2–6.4 s, … up to 30–60 s.
public struct BackoffSchedule: Sendable, Hashable {
    public var initial: Duration
    public var cap: Duration
    /// A failure this long after the previous one starts the count over.
    public var resetAfter: Duration
    /// Each wait is `base × (1 + jitter × u)` with `u` uniform in [0, 1).
    public var jitter: Double
    /// Whether the first failure after a healthy period is retried without waiting.
    public var immediateFirst: Bool

    public init(initial: Duration = .milliseconds(800), cap: Duration = .seconds(30), resetAfter: Duration = .seconds(120),
                jitter: Double = 1.0, immediateFirst: Bool = true) {
        self.initial = initial; self.cap = cap; self.resetAfter = resetAfter; self.jitter = jitter
        self.immediateFirst = immediateFirst
    }

    /// client-go's reflector figures.
    public static let reflector = BackoffSchedule()

    /// The base delay (before jitter) after the `n`th consecutive failure (n counts from 1).
    public func base(failure n: Int) -> Duration {
        let step = immediateFirst ? n - 1 : n
        guard step > 0 else { return .zero }
        let initialSeconds = initial.inSeconds, capSeconds = cap.inSeconds
        // Doubling in Double: no integer overflow however long the failures last.
        let d = Swift.min(capSeconds, initialSeconds * pow(2, Double(Swift.min(step - 1, 64))))
        return .clamped(seconds: d)
    }

    /// The least total wait `n` consecutive failures can cost: a lower bound tests can assert on any machine.
    public func minimumTotal(failures n: Int) -> Duration {
        (1...Swift.max(1, n)).reduce(Duration.zero) { $0 + base(failure: $1) }
    }
}

/// The state of one backoff: consecutive failures and when the last one happened. A value type driven by the
/// caller's clock and random numbers, so tests need neither sleeps nor luck.
public struct Backoff: Sendable {
    public let schedule: BackoffSchedule
    /// Consecutive failures since the last reset.
    public private(set) var failures = 0
    private var lastFailure: ContinuousClock.Instant?

    public init(_ schedule: BackoffSchedule = .reflector) { self.schedule = schedule }

    /// Records a failure at `now` and returns how long to wait before trying again.
    public mutating func failure<R: RandomNumberGenerator>(at now: ContinuousClock.Instant, using random: inout R) -> Duration {
        if let last = lastFailure, now - last >= schedule.resetAfter { failures = 0 }
        lastFailure = now
        if failures < Int.max { failures += 1 }
        let base = schedule.base(failure: failures)
        guard base > .zero, schedule.jitter > 0 else { return base }
        let factor = 1 + Swift.min(schedule.jitter, 10) * Double.random(in: 0..<1, using: &random)
        return .clamped(seconds: base.inSeconds * factor)
    }

    public mutating func failure(at now: ContinuousClock.Instant = .now) -> Duration {
        var g = SystemRandomNumberGenerator()
        return failure(at: now, using: &g)
    }
}

extension Duration {
    /// The duration in seconds as a `Double` (never traps).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// A duration from seconds, with NaN and negatives as zero and anything beyond a year as a year: every wait
    /// the client computes passes through here, so no value a server sends can overflow a timer.
    public static func clamped(seconds: Double) -> Duration {
        guard seconds.isFinite, seconds > 0 else { return .zero }
        let s = Swift.min(seconds, 365 * 24 * 3600)
        return .nanoseconds(Int64(s * 1e9))
    }
}
