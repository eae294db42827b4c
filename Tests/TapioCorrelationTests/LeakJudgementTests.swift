import Foundation
import Testing
import TapioTestTraits
import TapioModel
@testable import TapioCorrelation

/// What counts as a leak: growth that has lasted a quarter of an hour (``CorrelationEngine/leakSeconds``), not
/// five minutes of a process warming up. Each case runs on several noise draws.
@Suite("What counts as a leak", .cpuBound, .timeLimit(.minutes(5)))
struct LeakJudgementTests {
    static let mi = Double(1 << 20)
    static let t0 = TestEvents.memoryStart

    func replay(seconds: Int, limit: UInt64? = nil, kills: [Int] = [], config: CorrelationConfig = CorrelationConfig(),
                value: (Double) -> Double?) -> [InsightUpdate] {
        TestEvents.replayMemory(seconds: seconds, limit: limit, kills: kills, config: config, value: value)
    }

    func seconds(_ u: InsightUpdate) -> Double { Double(u.observedAt - Self.t0) / 1e9 }

    func firstLeak(_ u: [InsightUpdate]) -> InsightUpdate? {
        u.first { $0.identity.type == .memoryLeak && $0.change == .new }
    }

    /// 12Mi more with a four-minute time constant: a connection pool filling (its growth falls under the threshold
    /// before 15 minutes); 40Mi more with a ten-minute one: a cache warming (it still grows four times the threshold
    /// at 15 minutes, but its later half under half as fast as its earlier one).
    @Test("a process warming up grows for minutes and levels off: growth without a limit (Info), never a leak",
          arguments: [(1, 240.0, 12.0), (2, 240, 12), (3, 240, 12), (4, 240, 12), (5, 600, 40), (6, 600, 40), (7, 600, 40),
                      (8, 600, 40)])
    func warmUpIsNotALeak(seed: Int, tau: Double, mib: Double) {
        var r = TestNoise(state: UInt64(seed) &* 0x9e37_79b9_7f4a_7c15 | 1)
        let u = replay(seconds: 2700) { t in
            40 * Self.mi + mib * Self.mi * (1 - exp(-t / tau)) + 0.1 * Self.mi * r.gauss()
        }
        #expect(u.contains { $0.identity.type == .unboundedMemoryGrowth }, "the growth itself was not seen")
        #expect(firstLeak(u) == nil, "called a leak at \(firstLeak(u).map(seconds) ?? 0) s")
    }

    @Test("growth that goes on is a leak once it has lasted a quarter of an hour, and not before", arguments: 1...4)
    func lastingGrowthIsALeak(seed: Int) throws {
        var r = TestNoise(state: UInt64(seed) &* 0x2545_f491_4f6c_dd1d | 1)
        let rate = 30 * Self.mi / 3600  // 30Mi/h: three times the default threshold
        let u = replay(seconds: 1500) { t in 200 * Self.mi + rate * t + 0.2 * Self.mi * r.gauss() }
        let growth = try #require(u.first { $0.identity.type == .unboundedMemoryGrowth })
        let leak = try #require(firstLeak(u), "never called a leak")
        #expect(seconds(growth) < 600, "growth first reported at \(seconds(growth)) s")
        #expect(seconds(leak) >= 900, "called a leak after \(seconds(leak)) s")
        #expect(seconds(leak) <= 1020, "called a leak only after \(seconds(leak)) s")
        let lasted = try #require(leak.spec.evidence.first { $0.description.hasPrefix("Has grown for") })
        let perHour = try #require(lasted.value)
        #expect(abs(perHour - rate * 3600) <= 0.25 * rate * 3600, "\(perHour / Self.mi) Mi/h")
    }

    @Test("a leaking process sampled only now and then (idle in between) is still a leak", arguments: 1...4)
    func sparseSamplesStillALeak(seed: Int) throws {
        var r = TestNoise(state: UInt64(seed) &* 0x94d0_49bb_1331_11eb | 1)
        let rate = 30 * Self.mi / 3600
        // Every fourth minute has no sample at all, and the others only their first 20 s.
        let u = replay(seconds: 1500) { t in
            let minute = Int(t / 60), second = Int(t) % 60
            guard minute % 4 != 3, second < 20 else { return nil }
            return 200 * Self.mi + rate * t + 0.2 * Self.mi * r.gauss()
        }
        let leak = try #require(firstLeak(u), "never called a leak")
        #expect(seconds(leak) >= 900, "called a leak after \(seconds(leak)) s")
    }

    /// The kill's drop breaks the rise of the minutes' low points until it has left the quarter of an hour.
    @Test("an OOM kill that frees memory starts the quarter of an hour again", arguments: 1...4)
    func killStartsAgain(seed: Int) throws {
        var r = TestNoise(state: UInt64(seed) &* 0xbf58_476d_1ce4_e5b9 | 1)
        let rate = 30 * Self.mi / 3600
        // The kill at 12 minutes takes 20Mi away; the growth goes on from there at the same rate.
        let u = replay(seconds: 2100, limit: 1 << 30, kills: [720]) { t in
            (t < 720 ? 200 * Self.mi : 180 * Self.mi) + rate * t + 0.2 * Self.mi * r.gauss()
        }
        let leak = try #require(firstLeak(u), "never called a leak")
        #expect(seconds(leak) >= 720 + 840, "called a leak \(seconds(leak) - 720) s after the kill")
    }

    @Test("a ramp that came back down before is that cycle again, not a leak; only its first climb is", arguments: 1...4)
    func cycleIsNotALeak(seed: Int) {
        var r = TestNoise(state: UInt64(seed) &* 0x9e37_79b9_7f4a_7c15 | 1)
        // Every 30 minutes: 22.5 minutes from 200Mi up to 400Mi, then back (a batch phase); three cycles.
        let u = replay(seconds: 5400) { t in
            let phase = t.truncatingRemainder(dividingBy: 1800)
            let up = min(phase, 1350) / 1350
            return 200 * Self.mi + 200 * Self.mi * (phase < 1350 ? up : 0) + 0.5 * Self.mi * r.gauss()
        }
        let raised = u.filter { $0.identity.type == .memoryLeak && $0.change == .new }.map(seconds)
        #expect(raised.count == 1 && raised.allSatisfy { $0 < 1800 }, "raised at \(raised) s")
        // Nor is the cycle's climb growth that only the node will stop.
        let growth = u.filter { $0.identity.type == .unboundedMemoryGrowth && $0.change == .new }.map(seconds)
        #expect(!growth.isEmpty && growth.allSatisfy { $0 < 1800 }, "UnboundedMemoryGrowth raised at \(growth) s")
    }

    @Test("a leak called once stays one Insight for an hour of slow growth", arguments: 1...4)
    func slowLeakIsOneInsight(seed: Int) throws {
        var r = TestNoise(state: UInt64(seed) &* 0x94d0_49bb_1331_11eb | 1)
        // 12Mi/h, just over the default threshold (10 MB/h, 9.5Mi/h), under minute-to-minute noise.
        let rate = 12 * Self.mi / 3600
        let u = replay(seconds: 4500) { t in 300 * Self.mi + rate * t + 0.1 * Self.mi * r.gauss() }
        let changes = u.filter { $0.identity.type == .memoryLeak && $0.change != .updated }
            .map { "\($0.change) at \(Int(seconds($0))) s" }
        #expect(changes.count == 1 && changes.first?.hasPrefix("new") == true, "\(changes)")
    }

    @Test("with a window of 15 minutes or more the window itself is the quarter of an hour", arguments: 1...2)
    func longWindow(seed: Int) throws {
        var r = TestNoise(state: UInt64(seed) &* 0x2545_f491_4f6c_dd1d | 1)
        var config = CorrelationConfig()
        config.window = .seconds(1200)
        let rate = 30 * Self.mi / 3600
        let u = replay(seconds: 1500, config: config) { t in 200 * Self.mi + rate * t + 0.2 * Self.mi * r.gauss() }
        let leak = try #require(firstLeak(u), "never called a leak")
        // The window asks for a fit over three quarters of itself: 15 of its 20 minutes.
        #expect(seconds(leak) >= 900 && seconds(leak) <= 1020, "called a leak after \(seconds(leak)) s")
        #expect(!leak.spec.evidence.contains { $0.description.hasPrefix("Has grown for") },
                "the quarter hour is checked again")
    }

    @Test("after climbs that came back down, one that goes on past them is new ground: a leak", arguments: 1...2)
    func newGroundAfterCycles(seed: Int) throws {
        var r = TestNoise(state: UInt64(seed) &* 0xbf58_476d_1ce4_e5b9 | 1)
        // Two climbs of 22.5 minutes from 200Mi to 400Mi and back, then one that goes on at the same rate.
        let u = replay(seconds: 6600) { t in
            let phase = t.truncatingRemainder(dividingBy: 1800)
            let up = t < 3600 ? (phase < 1350 ? phase / 1350 : 0) : (t - 3600) / 1350
            return 200 * Self.mi + 200 * Self.mi * up + 0.5 * Self.mi * r.gauss()
        }
        let raised = u.filter { $0.identity.type == .memoryLeak && $0.change == .new }.map(seconds)
        // Past 420Mi (the earlier peaks and 5 % of them) 22.5 minutes after the third climb began.
        #expect(raised.count == 2 && raised.last.map { $0 >= 3600 + 1350 } == true, "raised at \(raised) s")
    }

    /// Under a limit the slack is 5 % of the limit, as for the OOM prediction: a second climb 2 % higher is the cycle.
    @Test("under a limit, a second climb a little higher than the first is still that cycle", arguments: 1...4)
    func cycleUnderALimit(seed: Int) {
        var r = TestNoise(state: UInt64(seed) &* 0x2545_f491_4f6c_dd1d | 1)
        // Two climbs of 22.5 minutes from 200Mi, to 400Mi and then to 404Mi, under a 1Gi limit.
        let u = replay(seconds: 3300, limit: 1 << 30) { t in
            let phase = t.truncatingRemainder(dividingBy: 1800)
            let top = t < 1800 ? 200.0 : 204.0
            return 200 * Self.mi + top * Self.mi * (phase < 1350 ? phase / 1350 : 0) + 0.5 * Self.mi * r.gauss()
        }
        let raised = u.filter { $0.identity.type == .memoryLeak && $0.change == .new }.map(seconds)
        #expect(raised.count == 1 && raised.allSatisfy { $0 < 1800 }, "raised at \(raised) s")
    }

    /// Recorded on a real node: a control plane under the API test suite and the real-cluster tier. Its processes grow
    /// in steps and level off; the engine used to call five of them leaking, 7–8 times on each of twelve alignments of
    /// the minutes. Minutes are counted from the epoch, so where a recording starts within its minute moves every
    /// minute's maximum and minimum: the rule must not hang on one.
    @Test("a real control plane's steps are not a leak, wherever its minutes start", arguments: [0, 15, 30, 45])
    func recordedControlPlane(shift: Int) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scenarios/unbounded-growth-control-plane-recorded.jsonl")
        let text = try String(contentsOf: url, encoding: .utf8)
        let moved = text.replacingOccurrences(of: "\"start\": \"2026-12-05T14:26:30Z\"",
                                              with: "\"start\": \"2026-12-05T14:26:\(String(format: "%02d", shift))Z\"")
        #expect(moved != text || shift == 30, "the scenario's start is not where this test moves it from")
        let u = try ScenarioReplay.run(text: moved)
        #expect(u.contains { $0.identity.type == .unboundedMemoryGrowth }, "the growth itself was not seen")
        let leaks = u.filter { $0.identity.type == .memoryLeak && $0.change == .new }.map(\.spec.title)
        #expect(leaks.isEmpty, "\(leaks)")
    }
}
