/// A token bucket on an injected nanosecond clock: at most `burst` at once, refilled at `perSecond`. Pure logic.
///
/// The Insight writer takes one token per Insight written, so an incident storm on one node costs the API server a
/// bounded rate of writes per agent; what waits stays coalesced per Insight (its newest state is what gets written).
public struct TokenBucket: Sendable, Hashable {
    public let perSecond: Double
    public let burst: Double
    private var tokens: Double
    private var last: UInt64?

    public init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond.isFinite ? max(perSecond, 0.001) : 1
        self.burst = Double(max(burst, 1))
        tokens = self.burst
    }

    /// Takes a token if there is one at `now`.
    public mutating func take(now: UInt64) -> Bool {
        if let last, now > last {
            tokens = min(burst, tokens + Double(now - last) / 1e9 * perSecond)
        }
        if last.map({ now > $0 }) ?? true { last = now }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
