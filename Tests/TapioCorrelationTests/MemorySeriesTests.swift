import Testing
@testable import TapioCorrelation

/// The window's buckets and what counts as a reclaim drop in them.
@Suite("Memory series", .timeLimit(.minutes(1)))
struct MemorySeriesTests {
    static let mi: UInt64 = 1 << 20
    static let t0: UInt64 = 1_795_000_000 * 1_000_000_000
    static let bucket: UInt64 = 10_000_000_000
    static let window: UInt64 = 300_000_000_000

    /// One sample a second from `from` to `to` seconds.
    static func feed(_ s: inout MemorySeries, from: Int, to: Int, value: (Int) -> UInt64) {
        for k in from..<to {
            _ = s.add(at: t0 + UInt64(k) * 1_000_000_000, value: value(k), bucketNanos: bucket, windowNanos: window)
        }
    }

    /// The drops counted in the buckets that start at or after second `from`.
    static func drops(_ s: MemorySeries, from: Int) -> UInt32 {
        let first = Int64((t0 + UInt64(from) * 1_000_000_000) / bucket)
        return s.buckets.filter { $0.index >= first }.reduce(0) { $0 + $1.drops }
    }

    @Test("a GC sawtooth's teeth keep counting as reclaim once its floor has outgrown ten of them")
    func teethOfTheSameSizeKeepCounting() {
        // 40Mi teeth every 20 s on a floor climbing 0.5Mi/s from 150Mi: a tooth is 21 % of the peak at first, under
        // 10 % from ~650 s on.
        var s = MemorySeries()
        let value = { (k: Int) -> UInt64 in 150 * Self.mi + UInt64(k) * Self.mi / 2 + UInt64(k % 20) * 2 * Self.mi }
        Self.feed(&s, from: 0, to: 1000, value: value)
        // The last five minutes (floor 400–500Mi, peaks 438–538Mi: teeth 7–9 %) hold fifteen teeth.
        #expect(Self.drops(s, from: 700) == 15)
        #expect(MemoryAnalysis.analyze(s, now: Self.t0 + 999 * 1_000_000_000)?.sawtooth == true)
    }

    @Test("a dip under 10 % counts only within a window of a reclaim at most twice its size")
    func smallDipsCountOnlyAfterAReclaim() {
        // Teeth of 38Mi every 20 s on a 530Mi floor: 7 % of their peak.
        let teeth = { (k: Int) -> UInt64 in 530 * Self.mi + UInt64(k % 20) * 2 * Self.mi }
        var alone = MemorySeries()
        Self.feed(&alone, from: 0, to: 300, value: teeth)
        #expect(Self.drops(alone, from: 0) == 0)
        // After a reclaim of 70Mi (600 → 530Mi, 12 %), the same teeth count: each is over half of it.
        var after = MemorySeries()
        Self.feed(&after, from: 0, to: 100) { _ in 600 * Self.mi }
        Self.feed(&after, from: 100, to: 101) { _ in 530 * Self.mi }
        #expect(Self.drops(after, from: 0) == 1)
        Self.feed(&after, from: 101, to: 300, value: teeth)
        #expect(Self.drops(after, from: 110) == 9)  // at 120, 140, …, 280 s
        // After a reclaim of 150Mi, they do not: under half of it.
        var big = MemorySeries()
        Self.feed(&big, from: 0, to: 100) { _ in 680 * Self.mi }
        Self.feed(&big, from: 100, to: 300, value: teeth)
        #expect(Self.drops(big, from: 0) == 1)
        // Dips counted by half a reclaim's size do not lower the bar for the next: after a 100Mi reclaim, a 51Mi dip
        // counts, a 26Mi one then does not (it would, were the 51Mi dip's size remembered).
        var chain = MemorySeries()
        Self.feed(&chain, from: 0, to: 100) { _ in 700 * Self.mi }
        Self.feed(&chain, from: 100, to: 130) { _ in 600 * Self.mi }
        Self.feed(&chain, from: 130, to: 160) { _ in 651 * Self.mi }
        Self.feed(&chain, from: 160, to: 190) { _ in 600 * Self.mi }
        Self.feed(&chain, from: 190, to: 220) { _ in 626 * Self.mi }
        Self.feed(&chain, from: 220, to: 250) { _ in 600 * Self.mi }
        #expect(Self.drops(chain, from: 0) == 2, "the reclaim and the 51Mi dip; not the 26Mi one")
        // And a window after the last reclaim, they do not either.
        var later = MemorySeries()
        Self.feed(&later, from: 0, to: 100) { _ in 600 * Self.mi }
        Self.feed(&later, from: 100, to: 450) { _ in 530 * Self.mi }
        Self.feed(&later, from: 450, to: 700, value: teeth)
        #expect(Self.drops(later, from: 450) == 0)
    }
}
