import TapioAgent
import TapioModel
import Testing

@Suite(.timeLimit(.minutes(2))) struct PodEventDeriverTests {
    static let pod = PodRef(namespace: "shop", name: "api-1", uid: "u1")
    static let oom = Termination(reason: "OOMKilled", exitCode: 137, signal: 0, finishedAtNanos: 1_000)

    static func info(restarts: Int, last: Termination? = nil, current: Termination? = nil, waiting: String? = nil) -> PodInfo {
        PodInfo(pod: pod, node: "n1", owner: nil, labels: [:], phase: "Running", containers: [
            ContainerInfo(name: "app", containerID: String(repeating: "a", count: 64), image: "shop/api:1",
                          restartCount: restarts, ready: waiting == nil, memoryRequestBytes: nil, memoryLimitBytes: nil,
                          lastTermination: last, currentTermination: current, waitingReason: waiting),
        ])
    }

    func restarts(_ events: [ClusterEvent]) -> [ContainerTermination] {
        events.compactMap { if case .containerRestarted(let t) = $0.kind { t } else { nil } }
    }

    @Test func aRestartAfterAnOOMIsReportedOnceAcrossRepeatedObservations() {
        let before = Self.info(restarts: 0)
        let after = Self.info(restarts: 1, last: Self.oom)
        let first = PodEventDeriver.derive(old: before, new: after, at: 2_000)
        #expect(restarts(first).map(\.termination?.reason) == ["OOMKilled"])
        // The same status seen again (a resync or relist) is not a second OOM.
        #expect(restarts(PodEventDeriver.derive(old: after, new: after, at: 3_000)).isEmpty)
        // A later kill with a new finishedAt is.
        var again = Self.oom
        again.finishedAtNanos = 5_000
        #expect(restarts(PodEventDeriver.derive(old: after, new: Self.info(restarts: 2, last: again), at: 6_000)).count == 1)
    }

    @Test func theKillIsNotCountedTwiceWhenItMovesFromStateToLastState() {
        let terminated = Self.info(restarts: 0, current: Self.oom)
        #expect(restarts(PodEventDeriver.derive(old: Self.info(restarts: 0), new: terminated, at: 1_500)).count == 1)
        let restarted = Self.info(restarts: 1, last: Self.oom)
        #expect(restarts(PodEventDeriver.derive(old: terminated, new: restarted, at: 2_000)).isEmpty)
    }

    @Test func enteringCrashLoopBackOffIsReportedOnTheTransition() {
        let looping = Self.info(restarts: 5, last: Self.oom, waiting: "CrashLoopBackOff")
        let events = PodEventDeriver.derive(old: Self.info(restarts: 5, last: Self.oom), new: looping, at: 1)
        #expect(events.contains { if case .crashLoopBackOff(let t) = $0.kind { t.restartCount == 5 } else { false } })
        let still = PodEventDeriver.derive(old: looping, new: looping, at: 2)
        #expect(!still.contains { if case .crashLoopBackOff = $0.kind { true } else { false } })
    }

    @Test func nodeConditionsReportTransitionsAndAbnormalFirstSights() {
        typealias C = NodeConditionDeriver.Condition
        let healthy = [C(type: "Ready", status: true, reason: "", message: ""),
                       C(type: "MemoryPressure", status: false, reason: "", message: "")]
        #expect(NodeConditionDeriver.derive(node: "n1", old: nil, new: healthy, at: 1).isEmpty)
        let pressured = [C(type: "Ready", status: true, reason: "", message: ""),
                         C(type: "MemoryPressure", status: true, reason: "KubeletHasInsufficientMemory", message: "low")]
        let events = NodeConditionDeriver.derive(node: "n1", old: healthy, new: pressured, at: 2)
        #expect(events.count == 1)
        if case .nodeCondition(_, let condition, let status, _, _) = events.first?.kind {
            #expect(condition == "MemoryPressure" && status)
        } else { Issue.record("no node condition event") }
    }
}

/// Probe failures and evictions are derived from the agent's own pods (no cluster-wide Event watch per agent).
@Suite(.timeLimit(.minutes(2))) struct PodDerivedProbeAndEvictionTests {
    static let pod = PodEventDeriverTests.pod

    static func running(ready: Bool, restarts: Int = 0, id: String = String(repeating: "a", count: 64),
                        phase: String = "Running", deleting: Bool = false) -> PodInfo {
        PodInfo(pod: pod, node: "n1", owner: nil, labels: [:], phase: phase, containers: [
            ContainerInfo(name: "app", containerID: id, image: "shop/api:1", restartCount: restarts, ready: ready,
                          memoryRequestBytes: nil, memoryLimitBytes: nil, lastTermination: nil, currentTermination: nil,
                          waitingReason: nil),
        ], deleting: deleting)
    }

    func probeFailures(_ events: [ClusterEvent]) -> [(container: String?, probe: String)] {
        events.compactMap { if case .probeFailed(_, let c, let p, _) = $0.kind { (c, p) } else { nil } }
    }

    func evictions(_ events: [ClusterEvent]) -> [String] {
        events.compactMap { if case .evicted(_, let m) = $0.kind { m } else { nil } }
    }

    @Test func aRunningContainerThatTurnsNotReadyIsAReadinessProbeFailure() {
        let failed = probeFailures(PodEventDeriver.derive(old: Self.running(ready: true), new: Self.running(ready: false), at: 1))
        #expect(failed.map(\.container) == ["app"])
        #expect(failed.map(\.probe) == ["readiness"])
        // Seen again (a relist): no second failure; turning ready again is none either.
        #expect(probeFailures(PodEventDeriver.derive(old: Self.running(ready: false), new: Self.running(ready: false), at: 2)).isEmpty)
        #expect(probeFailures(PodEventDeriver.derive(old: Self.running(ready: false), new: Self.running(ready: true), at: 3)).isEmpty)
    }

    @Test func notReadyForAnotherReasonIsNoProbeFailure() {
        let ready = Self.running(ready: true)
        // A restart (the liveness probe's doing, or a crash) is reported as the restart, not as a readiness failure.
        #expect(probeFailures(PodEventDeriver.derive(old: ready, new: Self.running(ready: false, restarts: 1), at: 1)).isEmpty)
        #expect(probeFailures(PodEventDeriver.derive(old: ready, new: Self.running(ready: false, id: String(repeating: "b", count: 64)), at: 1)).isEmpty)
        // A pod being deleted, or no longer running, stops its containers on purpose.
        #expect(probeFailures(PodEventDeriver.derive(old: ready, new: Self.running(ready: false, deleting: true), at: 1)).isEmpty)
        #expect(probeFailures(PodEventDeriver.derive(old: ready, new: Self.running(ready: false, phase: "Succeeded"), at: 1)).isEmpty)
        // First sight of a not-ready container says nothing about a transition.
        #expect(probeFailures(PodEventDeriver.derive(old: nil, new: Self.running(ready: false), at: 1)).isEmpty)
    }

    @Test func anEvictedPodIsReportedOnceWithTheKubeletsMessage() {
        var evicted = Self.running(ready: false, phase: "Failed")
        evicted.reason = "Evicted"
        evicted.message = "The node was low on resource: memory."
        #expect(evictions(PodEventDeriver.derive(old: Self.running(ready: true), new: evicted, at: 1)) == ["The node was low on resource: memory."])
        #expect(evictions(PodEventDeriver.derive(old: nil, new: evicted, at: 1)).count == 1, "already evicted when first listed")
        #expect(evictions(PodEventDeriver.derive(old: evicted, new: evicted, at: 2)).isEmpty, "seen again: not a second eviction")
        var failed = evicted
        failed.reason = "DeadlineExceeded"
        #expect(evictions(PodEventDeriver.derive(old: Self.running(ready: true), new: failed, at: 1)).isEmpty)
    }
}
