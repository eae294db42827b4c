import Testing
@testable import TapioCorrelation

/// The long history's reading of cycles (ramps longer than the window that drop back) and of a leak that grows
/// across them: each drop counted once, each peak read where it was, and the kill placed on the climb that reaches
/// the limit, not where the peaks' line crosses it between two climbs.
@Suite("Cycle reading")
struct CycleReadingTests {
    static let mi = 1_048_576.0
    /// A minute boundary, so the series' minutes are the test's minutes.
    static let t0: UInt64 = 29_916_000 * MemoryHistory.minuteNanos

    /// One sample a second of `value(k)` bytes for `seconds` seconds.
    static func history(seconds: Int, value: (Int) -> Double) -> MemoryHistory {
        var h = MemoryHistory()
        for k in 0..<seconds { h.add(at: t0 + UInt64(k) * 1_000_000_000, value: UInt64(value(k))) }
        return h
    }

    /// Ramps of `ramp` seconds every `period`, from `base` up by `height` (MiB), each peak `growth` MiB higher.
    static func ramps(period: Int, ramp: Int, base: Double = 100, height: Double = 200, growth: Double = 0)
        -> (Int) -> Double {
        { k in
            let phase = k % period
            let floor = (base + growth * Double(k / period)) * mi
            return phase < ramp ? floor + height * mi * Double(phase) / Double(ramp) : floor
        }
    }

    @Test("a drop inside a minute is one cycle, its peak read from that minute")
    func oneDropOneCycle() {
        // Drops at 200 s, 440 s, 680 s (in the middle of minutes 3, 7 and 11), peaks at 300Mi.
        let h = Self.history(seconds: 900, value: Self.ramps(period: 240, ramp: 200))
        let c = h.cycles(minDrop: 0)
        // Counted from the minute before, the same drop showed twice (its minute and the next low one).
        #expect(c.count == 3, "\(c)")
        let first = Self.t0 / MemoryHistory.minuteNanos
        #expect(c.map(\.minute) == [3, 7, 11].map { Int64(first) + $0 }, "\(c)")
        // The peak is the drop minute's maximum (~300Mi), not the minute before's (~282Mi).
        #expect(c.allSatisfy { $0.peak >= 298 * Self.mi }, "\(c.map { $0.peak / Self.mi })")
        #expect(c.allSatisfy { $0.early == 30 })
    }

    @Test("a drop that goes on into the next minute is still one cycle")
    func aDropAcrossAMinuteIsOneCycle() {
        // Climbs 100 → 400Mi over 150 s, then falls over 40 s straddling a minute's end (from 150 s to 190 s of
        // each 240-s cycle: minute 2 holds the peak and 325Mi, minute 3 goes on down to 100Mi), then stays low.
        let h = Self.history(seconds: 960) { k in
            let phase = Double(k % 240)
            if phase < 150 { return (100 + 300 * phase / 150) * Self.mi }
            if phase < 190 { return (400 - 300 * (phase - 150) / 40) * Self.mi }
            return 100 * Self.mi
        }
        let c = h.cycles(minDrop: 0)
        // Drops at 150–190, 390–430, 630–670 and 870–910 s: four, not eight.
        #expect(c.count == 4, "\(c.map { ($0.minute, $0.peak / Self.mi) })")
        #expect(c.allSatisfy { $0.peak >= 390 * Self.mi }, "\(c.map { $0.peak / Self.mi })")
    }

    @Test("peaks that climb are a leak across cycles; peaks that do not are a cycle")
    func risingAndSteady() throws {
        let limit = 1024 * Self.mi
        let now = Self.t0 + 1200 * 1_000_000_000
        let steady = Self.history(seconds: 1200, value: Self.ramps(period: 240, ramp: 180))
        guard case .steady(let drops) = CycleReading.read(steady, limit: limit, running: 0, now: now, nowSec: 1200)
        else { Issue.record("steady peaks read as \(CycleReading.read(steady, limit: limit, running: 0, now: now, nowSec: 1200))"); return }
        // Drops at 180, 420, 660, 900 and 1140 s.
        #expect(drops == 5)

        let rising = Self.history(seconds: 1200, value: Self.ramps(period: 240, ramp: 180, growth: 60))
        guard case .rising(let p) = CycleReading.read(rising, limit: limit, running: 0, now: now, nowSec: 1200)
        else { Issue.record("rising peaks not read as rising"); return }
        #expect(p.drops == 5 && p.points == 5)
        #expect(abs(p.period - 240) < 1, "period \(p.period)")
        // 60Mi a cycle of 240 s.
        #expect(abs(p.trend.slope * 240 / Self.mi - 60) < 6, "\(p.trend.slope * 240 / Self.mi) Mi a cycle")
    }

    @Test("the kill is placed on the climb whose peak reaches the limit, at the rate of a climb in progress")
    func killOnTheClimb() throws {
        // Peaks at 0, 100, 200, 300 s climbing 10 bytes a second: 1000, 2000, 3000, 4000. Limit 6500: the line
        // crosses it at 550 s, between two climbs; the climb peaking at 600 s is the one that gets there.
        let trend = TrendFit(slope: 10, intercept: 1000, sigma: 0, rSquared: 1, slopeStdError: 0.1, count: 4, span: 300)
        let p = CycleReading.RisingPeaks(trend: trend, drops: 4, points: 4, lastPeak: 300, period: 100)
        #expect(p.timeToLimit(limit: 6500, nowSec: 320, climb: nil) == 280)
        // In the climb due at 400 s (its peak on the line 5000, short of the limit): the same.
        #expect(p.timeToLimit(limit: 6500, nowSec: 350, climb: (4000, 50)) == 250)
        // Two climbs later (peaks at 400 and 500 s), in the climb due at 600 s, which does reach it: its own rate
        // says when (2000 bytes at 50 a second).
        var later = p
        later.lastPeak = 500
        #expect(later.timeToLimit(limit: 6500, nowSec: 550, climb: (4500, 50)) == 40)
        // Between climbs after the line has crossed the limit (550 s), that climb late: the next peak in the
        // rhythm, never "0s".
        #expect(later.timeToLimit(limit: 6500, nowSec: 620, climb: nil) == 80)
        // Exactly at a due instant: the next one, not "0s".
        #expect(later.timeToLimit(limit: 6500, nowSec: 700, climb: nil) == 100)
        // A late climb still in progress, heading for the limit before the next due peak: its own time.
        var late = p
        late.lastPeak = 400
        #expect(late.timeToLimit(limit: 6500, nowSec: 520, climb: (6000, 50)) == 10)
        // A flat line says nothing.
        var flat = p
        flat.trend.slope = 0
        #expect(flat.timeToLimit(limit: 6500, nowSec: 320, climb: nil) == nil)
    }
}
