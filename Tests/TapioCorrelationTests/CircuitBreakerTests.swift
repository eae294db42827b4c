import Testing
@testable import TapioCorrelation

@Suite("Circuit breaker on a manual clock", .timeLimit(.minutes(2)))
struct CircuitBreakerTests {
    let s: UInt64 = 1_000_000_000

    @Test("it opens after the threshold of consecutive failures and rejects calls while open")
    func opensAfterThreshold() {
        var b = CircuitBreaker(failureThreshold: 3, coolDown: .seconds(10))
        b.recordFailure(now: 1 * s)
        b.recordFailure(now: 2 * s)
        #expect(b.state == .closed)
        do { let ok = b.allow(now: 2 * s); #expect(ok) }
        b.recordFailure(now: 3 * s)
        #expect(b.state == .open(until: 13 * s))
        do { let ok = b.allow(now: 5 * s); #expect(!ok) }
        do { let ok = b.allow(now: 12 * s); #expect(!ok) }
        #expect(b.rejected == 2)
        #expect(b.trips == 1)
    }

    @Test("a success in between resets the failure count")
    func successResets() {
        var b = CircuitBreaker(failureThreshold: 2, coolDown: .seconds(1))
        b.recordFailure(now: 1)
        b.recordSuccess(now: 2)
        b.recordFailure(now: 3)
        #expect(b.state == .closed)
    }

    @Test("after the cool-down it is half-open, and a trial success closes it")
    func halfOpenThenClosed() {
        var b = CircuitBreaker(failureThreshold: 1, coolDown: .seconds(10))
        b.recordFailure(now: 0)
        #expect(b.state(at: 9 * s) == .open(until: 10 * s))
        #expect(b.state(at: 10 * s) == .halfOpen)
        do { let ok = b.allow(now: 10 * s); #expect(ok) }
        #expect(b.state == .halfOpen)
        b.recordSuccess(now: 10 * s)
        #expect(b.state == .closed)
    }

    @Test("a trial failure while half-open opens it again for a full cool-down")
    func halfOpenFailureReopens() {
        var b = CircuitBreaker(failureThreshold: 5, coolDown: .seconds(10), halfOpenSuccesses: 2)
        for k in 0..<5 { b.recordFailure(now: UInt64(k)) }
        do { let ok = b.allow(now: 20 * s); #expect(ok) }
        b.recordSuccess(now: 20 * s)
        #expect(b.state == .halfOpen)  // needs two trial successes
        b.recordFailure(now: 21 * s)
        #expect(b.state == .open(until: 31 * s))
        #expect(b.trips == 2)
    }

    @Test("the engine's breaker sheds samples under a sustained flood but keeps OOM kills, and recovers")
    func engineShedsUnderFlood() {
        var config = CorrelationConfig()
        config.maxEventsPerSecond = 100
        config.breakerFailureThreshold = 2
        config.breakerCoolDown = .seconds(5)
        var engine = CorrelationEngine(config: config)
        let t0: UInt64 = 1_000 * s
        let sample = TestEvents.memory(pod: "flood", ws: 100 << 20, at: t0)
        // Three seconds at 1000 events/s: two overloaded seconds open the breaker.
        for sec in 0..<3 {
            for k in 0..<1000 { _ = engine.ingest([sample], now: t0 + UInt64(sec) * s + UInt64(k) * 1_000_000) }
        }
        #expect(engine.breaker.state(at: t0 + 3 * s) != .closed)
        #expect(engine.stats.shed > 0)
        let shedBefore = engine.stats.shed
        _ = engine.ingest([TestEvents.oomKill(pod: "flood", at: t0 + 3 * s)], now: t0 + 3 * s)
        #expect(engine.stats.shed == shedBefore, "an OOM kill is never shed")
        // Quiet seconds after the cool-down: a trial second under the limit closes it.
        for sec in 9..<12 { _ = engine.ingest([sample], now: t0 + UInt64(sec) * s) }
        #expect(engine.breaker.state == .closed)
    }
}
