import Foundation
import Testing
@testable import TapioCorrelation

/// The long history's straight climb (``MemoryHistory/climbLine(now:)``): what carries a slow
/// leak's prediction through minutes whose noise hides its growth in the window.
@Suite("The line of a long straight climb")
struct ClimbLineTests {
    static let mi = 1_048_576.0
    static let t0 = CycleReadingTests.t0

    /// One sample every 5 s of `value(k)` for `seconds` seconds, with seeded white noise of `noise` bytes.
    static func history(seconds: Int, noise: Double = 3 * mi, seed: UInt64 = 7, value: (Int) -> Double)
        -> (MemoryHistory, now: UInt64) {
        var h = MemoryHistory()
        var n = TestNoise(state: seed)
        for k in stride(from: 0, to: seconds, by: 5) {
            h.add(at: t0 + UInt64(k) * 1_000_000_000, value: UInt64(max(0, value(k) + noise * n.gauss())))
        }
        return (h, t0 + UInt64(seconds) * 1_000_000_000)
    }

    @Test("forty minutes of a slow leak under noise are one line, with the leak's slope and level")
    func slowLeakIsALine() throws {
        let rate = 4.6 * Self.mi / 60
        let (h, now) = Self.history(seconds: 2400) { 200 * Self.mi + rate * Double($0) }
        let line = try #require(h.climbLine(now: now))
        #expect(abs(line.slope / rate - 1) < 0.1, "slope \(line.slope * 60 / Self.mi) Mi/min")
        // Minute maxima sit above the mean by the noise's upper tail, a few MiB.
        let level = 200 * Self.mi + rate * 2400
        #expect(abs(line.value(at: 0) - level) < 12 * Self.mi, "level \(line.value(at: 0) / Self.mi)Mi")
    }

    @Test("no line: too short, stopped, levelling off, or flat")
    func notALine() {
        let rate = 4.6 * Self.mi / 60
        // Fifteen minutes: too short.
        let (short, n1) = Self.history(seconds: 900) { 200 * Self.mi + rate * Double($0) }
        #expect(short.climbLine(now: n1) == nil)
        // Climbed for 40 minutes, flat for the last 5 (the last minute 23Mi under the line).
        let (stopped, n2) = Self.history(seconds: 2700) { 200 * Self.mi + rate * Double(min($0, 2400)) }
        #expect(stopped.climbLine(now: n2) == nil)
        // An exponential approach (τ 20 min) to 600Mi: it bends over.
        let (levelling, n3) = Self.history(seconds: 3600) { 600 * Self.mi - 400 * Self.mi * exp(-Double($0) / 1200) }
        #expect(levelling.climbLine(now: n3) == nil)
        // Flat.
        let (flat, n4) = Self.history(seconds: 2400) { _ in 300 * Self.mi }
        #expect(flat.climbLine(now: n4) == nil)
    }
}
