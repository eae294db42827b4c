/// A circuit breaker as a pure state machine on an injected clock (nanoseconds), for the engine's input and for
/// every sink.
///
/// - closed: calls pass; `failureThreshold` consecutive failures open it.
/// - open: calls are rejected (and counted in ``rejected``) until `coolDown` has passed, then it is half-open.
/// - half-open: calls pass as trials; `halfOpenSuccesses` successes close it, one failure opens it again.
///
/// ```swift
/// var b = CircuitBreaker(failureThreshold: 3, coolDown: .seconds(10))
/// if b.allow(now: t) { do { try send(); b.recordSuccess(now: t) } catch { b.recordFailure(now: t) } }
/// ```
public struct CircuitBreaker: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case closed
        /// Open until this instant (nanoseconds).
        case open(until: UInt64)
        case halfOpen
    }

    public let failureThreshold: Int
    public let coolDownNanos: UInt64
    public let halfOpenSuccesses: Int
    public private(set) var state: State = .closed
    public private(set) var consecutiveFailures = 0
    private var trialSuccesses = 0
    /// Calls rejected while open.
    public private(set) var rejected: UInt64 = 0
    /// Times the breaker opened.
    public private(set) var trips: UInt64 = 0

    public init(failureThreshold: Int, coolDown: Duration, halfOpenSuccesses: Int = 1) {
        precondition(failureThreshold > 0 && halfOpenSuccesses > 0)
        self.failureThreshold = failureThreshold
        self.coolDownNanos = coolDown.nanos
        self.halfOpenSuccesses = halfOpenSuccesses
    }

    /// The state at `now` (an expired open state reads as half-open) without counting anything.
    public func state(at now: UInt64) -> State {
        if case .open(let until) = state, now >= until { return .halfOpen }
        return state
    }

    /// Whether a call may proceed at `now`; a rejected call is counted.
    public mutating func allow(now: UInt64) -> Bool {
        switch state {
        case .closed, .halfOpen:
            return true
        case .open(let until):
            if now >= until {
                state = .halfOpen
                trialSuccesses = 0
                return true
            }
            rejected &+= 1
            return false
        }
    }

    public mutating func recordSuccess(now: UInt64) {
        switch state {
        case .closed:
            consecutiveFailures = 0
        case .halfOpen:
            trialSuccesses += 1
            if trialSuccesses >= halfOpenSuccesses {
                state = .closed
                consecutiveFailures = 0
            }
        case .open:
            break  // a late result of a call made before the trip says nothing about now
        }
    }

    public mutating func recordFailure(now: UInt64) {
        switch state {
        case .closed:
            consecutiveFailures += 1
            if consecutiveFailures >= failureThreshold { trip(now) }
        case .halfOpen:
            trip(now)
        case .open:
            break
        }
    }

    private mutating func trip(_ now: UInt64) {
        state = .open(until: now.adding(saturating: coolDownNanos))
        trips &+= 1
        trialSuccesses = 0
        consecutiveFailures = 0
    }
}
