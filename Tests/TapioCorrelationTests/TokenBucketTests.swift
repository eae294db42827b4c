import TapioCorrelation
import Testing

@Suite struct TokenBucketTests {
    static let second: UInt64 = 1_000_000_000

    @Test func aBurstIsAllowedThenTheRateHolds() {
        var b = TokenBucket(perSecond: 10, burst: 50)
        var burst = 0
        for _ in 0..<60 where b.take(now: 0) { burst += 1 }
        #expect(burst == 50, "the burst, then nothing at the same instant")
        let halfToken = b.take(now: Self.second / 20)
        let oneToken = b.take(now: Self.second / 10)
        #expect(!halfToken && oneToken, "a token every 100 ms")
        // Over a minute of asking at every millisecond, at most the rate is granted.
        var granted = 0
        var t = Self.second / 10
        while t < 61 * Self.second {
            t += 1_000_000
            if b.take(now: t) { granted += 1 }
        }
        #expect(granted <= 610 && granted >= 598, "\(granted)")
    }

    @Test func aClockThatGoesBackGrantsNothingExtra() {
        var b = TokenBucket(perSecond: 1, burst: 1)
        let results = [b.take(now: 5 * Self.second), b.take(now: Self.second), b.take(now: 5 * Self.second + Self.second / 2),
                       b.take(now: 6 * Self.second)]
        #expect(results == [true, false, false, true])
    }
}
