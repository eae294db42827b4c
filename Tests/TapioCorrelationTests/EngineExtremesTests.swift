import TapioModel
import Testing

@testable import TapioCorrelation

/// The engine with settings and inputs at the edges of their types: nothing may trap (issue 16).
@Suite("Engine at the extremes", .timeLimit(.minutes(2)))
struct EngineExtremesTests {
    static var extremeConfig: CorrelationConfig {
        var c = CorrelationConfig()
        c.batchSize = 100_000
        c.batchTimeout = GoDuration.maximum
        c.window = GoDuration.maximum
        c.resolveAfter = GoDuration.maximum
        c.updateInterval = GoDuration.maximum
        c.predictionHorizon = GoDuration.maximum
        c.breakerCoolDown = .seconds(Int64.max)
        c.memoryCeilingBytes = .max
        return c
    }

    /// A leak toward a near-16Ei limit, a kill, a crash loop and a node under pressure: every detector runs.
    func feed(_ engine: inout CorrelationEngine, from t0: UInt64, step: UInt64) -> [InsightUpdate] {
        var out: [InsightUpdate] = []
        let pod = PodRef(namespace: "d", name: "a", uid: "u")
        var t = t0
        let info = PodInfo(
            pod: pod, node: "n", owner: OwnerRef(kind: "Deployment", name: "a"), labels: [:], phase: "Running",
            containers: [
                ContainerInfo(
                    name: "app", containerID: nil, image: "a:1", restartCount: 0, ready: true,
                    memoryRequestBytes: .max, memoryLimitBytes: 1 << 59,
                    lastTermination: nil, currentTermination: nil, waitingReason: nil)
            ])
        engine.ingest(.cluster(ClusterEvent(timestampNanos: t, kind: .podUpdated(info))), now: t, into: &out)
        for k in 0..<40 {
            t = t.adding(saturating: step)
            let ws = UInt64(k) << 53
            engine.ingest(
                .node(
                    NodeEvent(
                        timestampNanos: t, pid: .max, cgroupID: .max, comm: "x",
                        kind: .cgroupMemory(.init(usageBytes: .max, workingSetBytes: ws, limitBytes: 1 << 59))),
                    subject: .podContainer(pod, container: "app")), now: t, into: &out)
            engine.tick(now: t, into: &out)
        }
        engine.ingest(
            .node(
                NodeEvent(
                    timestampNanos: t, pid: .max, cgroupID: .max, comm: "x",
                    kind: .oomKill(
                        .init(
                            victimPID: .max, totalVMBytes: .max, anonRSSBytes: .max,
                            fileRSSBytes: .max, shmemRSSBytes: .max))),
                subject: .podContainer(pod, container: "app")), now: t, into: &out)
        let term = Termination(reason: "OOMKilled", exitCode: .min, signal: .max, finishedAtNanos: .max)
        engine.ingest(
            .cluster(
                ClusterEvent(
                    timestampNanos: t,
                    kind: .crashLoopBackOff(
                        ContainerTermination(pod: pod, container: "app", restartCount: .max, termination: term)))),
            now: t, into: &out)
        engine.ingest(
            .cluster(
                ClusterEvent(
                    timestampNanos: t,
                    kind: .nodeCondition(
                        node: "n", condition: "MemoryPressure", status: true, reason: "", message: ""))), now: t,
            into: &out)
        engine.flush(now: t, into: &out)
        for _ in 0..<5 {
            t = t.adding(saturating: step)
            engine.tick(now: t, into: &out)
        }
        _ = engine.nextTimedWork(notAfter: .max)
        _ = engine.nanosUntilDue(now: t)
        _ = engine.settledAt
        return out
    }

    @Test("the largest settings a policy or scenario allows, at ordinary times")
    func extremeSettings() {
        var engine = CorrelationEngine(config: Self.extremeConfig)
        let out = feed(&engine, from: 1_795_000_000 * 1_000_000_000, step: 1_000_000_000)
        #expect(engine.stats.events == 44)
        #expect(out.contains { $0.identity.type == .oomKilled })
    }

    @Test("times near the end of the clock, default and extreme settings", arguments: [false, true])
    func endOfTime(extreme: Bool) {
        var engine = CorrelationEngine(config: extreme ? Self.extremeConfig : CorrelationConfig())
        let out = feed(&engine, from: UInt64.max - 30_000_000_000, step: 1_000_000_000)
        #expect(out.contains { $0.identity.type == .oomKilled })
        #expect(engine.settledAt == .max)
    }

    @Test("durations beyond what nanoseconds in 64 bits hold saturate instead of wrapping")
    func durationsSaturate() {
        #expect(Duration.seconds(Int64.max).nanos == .max)
        #expect(Duration.seconds(-5).nanos == 0)
        #expect(GoDuration.maximum.nanos == UInt64(Int64.max))
        var c = CorrelationConfig()
        c.window = .seconds(Int64.max)
        c.resolveAfter = .seconds(Int64.max)
        var engine = CorrelationEngine(config: c)
        _ = feed(&engine, from: 0, step: .max / 64)
        #expect(engine.settledAt == .max)
    }

    @Test("remediation and formatting take any value")
    func formatting() {
        #expect(
            RemediationAdvice.bumpedLimit(request: .max, peak: .max, ceiling: nil) == UInt64.max / (1 << 20) * (1 << 20)
        )
        #expect(RemediationAdvice.bumpedLimit(request: nil, peak: 100 << 20, ceiling: nil) == 200 << 20)
        #expect(Formatting.quantityMi(.max) == "17592186044416Mi")
        #expect(Formatting.percent(.infinity) == "\(Int.max)%")
        #expect(Formatting.percent(.nan) == "0%")
        #expect(Formatting.duration(seconds: 1e300) != "")
        #expect(Formatting.bytes(.nan) == "nanB")
        #expect(Formatting.bytes(1e300) == "\(Int.max)Ti")
        #expect(Formatting.parseRFC3339("2554-07-21T23:34:33Z") != nil)
        #expect(Formatting.parseRFC3339("2554-07-21T23:34:34Z") == nil)
        #expect(Formatting.parseRFC3339("9999-12-31T23:59:59Z") == nil)
        #expect(Formatting.parseRFC3339("1960-01-01T00:00:00Z") == 0)
        #expect(Formatting.parseRFC3339("2554-07-21T23:34:33.709551615Z") == UInt64.max)
        #expect(Formatting.parseRFC3339("2554-07-21T23:34:33.709551616Z") == nil)
        #expect(Formatting.parseRFC3339("2026-01-01T00:00:00.Z") == nil)
        #expect(Formatting.parseRFC3339("2026-01-01T02:00:00.5+02:00") == 1_767_225_600_500_000_000)
    }

    /// A stored time read and written again is the same text: a Double in between turned .593 into .592.
    @Test func rfc3339MillisecondsSurviveARoundTrip() {
        let base: UInt64 = 1_764_638_930_000_000_000
        for ms: UInt64 in 0..<1000 {
            let text = Formatting.rfc3339(nanos: base + ms * 1_000_000)
            #expect(Formatting.parseRFC3339(text).map(Formatting.rfc3339(nanos:)) == text)
        }
        #expect(Formatting.parseRFC3339("2025-12-02T01:28:50.123456789Z") == 1_764_638_930_123_456_789)
    }

    @Test("a breaker's cool-down that runs past the end of the clock stays open")
    func breakerAtTheEnd() {
        var b = CircuitBreaker(failureThreshold: 1, coolDown: .seconds(Int64.max))
        b.recordFailure(now: .max - 1)
        let allowed = b.allow(now: .max - 1)
        #expect(!allowed)
        #expect(b.state == .open(until: .max))
    }
}
