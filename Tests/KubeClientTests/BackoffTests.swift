import Foundation
import KubeClient
import TapioTestSupport
import Testing

@Suite("Backoff schedule", .timeLimit(.minutes(1)))
struct BackoffTests {
    let t0 = ContinuousClock.now

    @Test func theFirstFailureAfterAHealthyPeriodIsRetriedAtOnceAndRepeatsDoubleToTheCap() {
        let schedule = BackoffSchedule.reflector
        #expect(schedule.base(failure: 1) == .zero)
        #expect(schedule.base(failure: 2) == .milliseconds(800))
        #expect(schedule.base(failure: 3) == .milliseconds(1600))
        #expect(schedule.base(failure: 4) == .milliseconds(3200))
        #expect(schedule.base(failure: 8) == .seconds(30), "0.8 s × 2⁶ = 51.2 s is capped at 30 s")
        #expect(schedule.base(failure: 10_000) == .seconds(30), "no overflow however long it fails")
        #expect(schedule.base(failure: Int.max) == .seconds(30))
        #expect(schedule.minimumTotal(failures: 4) == .milliseconds(5600))
    }

    @Test func everyWaitIsTheBaseTimesAJitterBetweenOneAndTwo() {
        var fuzz = Fuzz(seed: 3)
        var backoff = Backoff(.reflector)
        var now = t0
        for n in 1...40 {
            let wait = backoff.failure(at: now, using: &fuzz)
            let base = BackoffSchedule.reflector.base(failure: n)
            #expect(wait >= base && wait <= base * 2, "failure \(n): \(wait) outside [\(base), \(base * 2)]")
            now += wait + .milliseconds(1)
        }
        #expect(backoff.failures == 40, "waits of up to a minute never reach the 2-minute reset")
    }

    @Test func onlyTwoMinutesWithoutAFailureStartTheCountOver() {
        var fuzz = Fuzz(seed: 4)
        var backoff = Backoff(.reflector)
        for i in 0..<5 { _ = backoff.failure(at: t0 + .seconds(i * 100), using: &fuzz) }
        #expect(backoff.failures == 5, "failures 100 s apart are consecutive: a good event in between resets nothing")
        let wait = backoff.failure(at: t0 + .seconds(400) + .seconds(120), using: &fuzz)
        #expect(backoff.failures == 1)
        #expect(wait == .zero, "the first failure after a healthy period is retried at once")
    }

    @Test func withoutImmediateFirstTheFirstFailureWaitsTheInitialDelay() {
        let schedule = BackoffSchedule(initial: .milliseconds(100), cap: .seconds(1), immediateFirst: false)
        #expect(schedule.base(failure: 1) == .milliseconds(100))
        #expect(schedule.base(failure: 5) == .seconds(1))
    }

    @Test func hostileRetryAfterValuesAreClampedNotTrapped() {
        func retryAfter(header: String?, body: String = "{}") -> Duration? {
            guard case .tooManyRequests(let ra, _) = KubeError.from(statusCode: 429, body: Data(body.utf8), retryAfterHeader: header)
            else { return nil }
            return ra
        }
        #expect(retryAfter(header: "3") == .seconds(3))
        #expect(retryAfter(header: "99999999999999999999") == .seconds(3600))
        #expect(retryAfter(header: "9223372036854775807") == .seconds(3600))
        #expect(retryAfter(header: "-5") == nil, "not delay-seconds")
        #expect(retryAfter(header: "1e9") == nil)
        #expect(retryAfter(header: "Wed, 21 Oct 2015 07:28:00 GMT") == nil)
        #expect(retryAfter(header: nil, body: #"{"details":{"retryAfterSeconds":9223372036854775807}}"#) == .seconds(3600))
        #expect(retryAfter(header: nil, body: #"{"details":{"retryAfterSeconds":-9223372036854775808}}"#) == .zero)
    }

    @Test func aLimiterLetsOneLinePerIntervalThroughAndCountsTheRest() {
        let limiter = LogLimiter(interval: .seconds(30))
        #expect(limiter.admit("k", now: t0) == 0)
        #expect(limiter.admit("k", now: t0 + .seconds(1)) == nil)
        #expect(limiter.admit("k", now: t0 + .seconds(2)) == nil)
        #expect(limiter.admit("other", now: t0 + .seconds(2)) == 0, "keys are limited apart")
        #expect(limiter.admit("k", now: t0 + .seconds(31)) == 2, "the next line says how many were held back")
        let small = LogLimiter(interval: .seconds(30), capacity: 4)
        for i in 0..<100 { _ = small.admit("key-\(i)", now: t0) }
        #expect(small.admit("key-99", now: t0 + .seconds(1)) == nil, "recent keys survive the eviction of old ones")
    }
}
