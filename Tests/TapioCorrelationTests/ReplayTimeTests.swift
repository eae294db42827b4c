import TapioModel
import Testing
import TapioTestTraits

@testable import TapioCorrelation

/// Replay jumps over idle virtual time: the engine is ticked where its timed work falls due, not every second.
/// Work is counted in ticks (``ScenarioReplayer/timedWorkTicks``), so nothing here waits or measures time.
@Suite("Replay on virtual time", .cpuBound, .timeLimit(.minutes(3)))
struct ReplayTimeTests {
    func replay(_ lines: [String], config: CorrelationConfig? = nil) throws -> (updates: [InsightUpdate], ticks: UInt64)
    {
        var replay = ScenarioReplayer(config: config)
        var out: [InsightUpdate] = []
        for (n, l) in lines.enumerated() { try replay.consume(line: l, number: n + 1) { out.append($0) } }
        try replay.finish { out.append($0) }
        return (out, replay.timedWorkTicks)
    }

    static let crashLoop = [
        #"{"t": 0, "type": "pod", "pod": "d/a", "owner": "Deployment/a", "containers": [{"name": "app", "image": "a:1"}]}"#,
        #"{"t": 1, "type": "crashLoop", "pod": "d/a", "container": "app", "restarts": 6, "reason": "Error", "exitCode": 1}"#,
    ]

    @Test("a gap of 10^10 s between two events costs a handful of ticks")
    func hugeIdleGap() throws {
        let (_, ticks) = try replay([
            #"{"tapioScenario": 1}"#,
            #"{"t": 0, "type": "memory", "cgroup": "/x", "workingSet": "100Mi"}"#,
            #"{"t": 1e10, "type": "memory", "cgroup": "/x", "workingSet": "100Mi"}"#,
        ])
        // The first sample's batch timeout and its subject's clean-up; then nothing is due until the next event.
        #expect(ticks <= 5, "\(ticks) ticks")
    }

    @Test("an insight that stays active through a 10^10 s gap is re-checked until the engine settles, then skipped")
    func persistentInsightOverAHugeGap() throws {
        let (updates, ticks) = try replay([#"{"tapioScenario": 1, "duration": 1e10}"#] + Self.crashLoop)
        // Settling takes two windows, resolveAfter and ten minutes (~26 min): one re-check every 30 s, not 10^10.
        #expect(ticks < 200, "\(ticks) ticks")
        #expect(updates.contains { $0.identity.type == .crashLoop && $0.change == .new })
        // Still in CrashLoopBackOff at the end: never resolved.
        #expect(!updates.contains { $0.identity.type == .crashLoop && $0.change == .resolved })
        let last = try #require(updates.last)
        let end: UInt64 = (1_795_000_000 + 10_000_000_000) * 1_000_000_000
        #expect(last.observedAt >= end, "one tick at the end brings the insight up to date")
    }

    @Test("a huge window is capped at 10,000 ticks per idle stretch")
    func hugeWindowIsCapped() throws {
        var config = CorrelationConfig()
        config.window = GoDuration.maximum
        config.resolveAfter = GoDuration.maximum
        let (updates, ticks) = try replay([#"{"tapioScenario": 1, "duration": 1e10}"#] + Self.crashLoop, config: config)
        #expect(ticks <= UInt64(ScenarioReplayer.maxTimedWorkPerStretch) + 5, "\(ticks) ticks")
        #expect(updates.contains { $0.identity.type == .crashLoop && $0.change == .new })
    }

    @Test("an insight resolves at its due instant across a long gap, not at the next event")
    func resolutionInsideAGap() throws {
        var config = CorrelationConfig()
        config.resolveAfter = .seconds(120)
        let (updates, _) = try replay(
            [
                #"{"tapioScenario": 1}"#,
                #"{"t": 0, "type": "pod", "pod": "d/a", "containers": [{"name": "app", "limit": "256Mi"}]}"#,
                #"{"t": 1, "type": "oomKill", "pod": "d/a", "container": "app", "pid": 7, "anon": "250Mi"}"#,
                #"{"t": 100000, "type": "exec", "pid": 1}"#,
            ], config: config)
        let resolved = try #require(updates.first { $0.identity.type == .oomKilled && $0.change == .resolved })
        let seconds = Double(resolved.observedAt - 1_795_000_000 * 1_000_000_000) / 1e9
        // The kill ages out of the 5 m window, then 2 m without it: resolved about 7 minutes in.
        #expect(seconds > 300 && seconds < 600, "resolved at \(seconds) s")
    }

    @Test("jumping to due instants finds what ticking every second found", arguments: Scenarios.all)
    func sameAsTickingEverySecond(name: String) throws {
        let scenario = try Scenarios.load(name)
        let jumped = ScenarioReplay.run(scenario)
        let stepped = Self.tickingEverySecond(scenario)
        func summary(_ u: [InsightUpdate]) -> [String] {
            u.filter { $0.change != .updated }.map { "\($0.change.rawValue) \($0.identity.name)" }
        }
        #expect(summary(jumped) == summary(stepped))
    }

    /// The replay loop before issue 16: a tick every virtual second between events and up to the end.
    static func tickingEverySecond(_ scenario: Scenario) -> [InsightUpdate] {
        var engine = CorrelationEngine(config: scenario.config)
        var out: [InsightUpdate] = []
        let second: UInt64 = 1_000_000_000
        var clock = scenario.startNanos
        for (at, e) in scenario.events {
            while clock + second <= at {
                clock += second
                engine.tick(now: clock, into: &out)
            }
            if at > clock { clock = at }
            engine.ingest(e, now: at, into: &out)
        }
        while clock + second <= scenario.endNanos {
            clock += second
            engine.tick(now: clock, into: &out)
        }
        engine.flush(now: clock, into: &out)
        return out
    }
}
