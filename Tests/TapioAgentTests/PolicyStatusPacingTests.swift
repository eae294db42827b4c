import TapioModel
@testable import TapioOperator
import Testing

/// What the operator writes at once and what it holds back until the status refresh has passed.
@Suite struct PolicyStatusPacingTests {
    static func status(generation: Int64 = 3, accepted: Bool = true, applied: Int = 5) -> TapioPolicyStatus {
        TapioPolicyStatus(observedGeneration: generation, conditions: [
            StatusCondition(type: "Accepted", status: accepted ? .true : .false, reason: accepted ? "Valid" : "InvalidSpec",
                            message: accepted ? "The policy is valid." : "spec.x: bad", lastTransitionTime: "t",
                            observedGeneration: generation),
            StatusCondition(type: "Ready", status: applied == 10 ? .true : .false, reason: "Progressing",
                            message: "\(applied) of 10", lastTransitionTime: "t", observedGeneration: generation),
        ], nodesTargeted: 10, nodesApplied: applied)
    }

    let now = ContinuousClock.now
    let interval = Duration.seconds(30)

    @Test func nodeCountsWrittenLessThanAnIntervalAgoWaitForTheRest() {
        let d = PolicyStatusPacing.decide(old: Self.status(applied: 5), new: Self.status(applied: 6),
                                          lastWrite: now - .seconds(10), now: now, interval: interval)
        #expect(d == .wait(.seconds(20)))
    }

    @Test func nodeCountsAreWrittenOnceTheIntervalHasPassedOrByANewLeader() {
        #expect(PolicyStatusPacing.decide(old: Self.status(applied: 5), new: Self.status(applied: 6),
                                          lastWrite: now - .seconds(30), now: now, interval: interval) == .write)
        #expect(PolicyStatusPacing.decide(old: Self.status(applied: 5), new: Self.status(applied: 6),
                                          lastWrite: nil, now: now, interval: interval) == .write)
    }

    @Test func whatFollowsFromTheSpecIsWrittenAtOnce() {
        let recent = now - .seconds(1)
        // The first status, a new generation, a verdict that flips.
        #expect(PolicyStatusPacing.decide(old: nil, new: Self.status(), lastWrite: recent, now: now, interval: interval) == .write)
        #expect(PolicyStatusPacing.decide(old: Self.status(generation: 3), new: Self.status(generation: 4, applied: 0),
                                          lastWrite: recent, now: now, interval: interval) == .write)
        #expect(PolicyStatusPacing.decide(old: Self.status(accepted: true), new: Self.status(accepted: false),
                                          lastWrite: recent, now: now, interval: interval) == .write)
        // The same verdict with another message (a ceiling conflict found on another pod) is the spec's news too.
        var other = Self.status(accepted: false)
        other.conditions[0].message = "spec.y: bad"
        #expect(PolicyStatusPacing.decide(old: Self.status(accepted: false), new: other,
                                          lastWrite: recent, now: now, interval: interval) == .write)
    }

    @Test func deletedPoliciesAreForgotten() {
        let writes = PolicyStatusWrites()
        writes.wrote("kept", at: now)
        writes.wrote("deleted", at: now)
        writes.retain(["kept"])
        #expect(writes.lastWrite("kept") == now)
        #expect(writes.lastWrite("deleted") == nil)
    }

    @Test func theIntervalGrowsWithTheAgentsEachWriteReachesUpToTheRefresh() {
        let refresh = Duration.seconds(30)
        #expect(PolicyStatusPacing.interval(nodes: 0, cap: refresh) == .seconds(1))
        #expect(PolicyStatusPacing.interval(nodes: 50, cap: refresh) == .seconds(1))
        #expect(PolicyStatusPacing.interval(nodes: 1_000, cap: refresh) == .seconds(10))
        #expect(PolicyStatusPacing.interval(nodes: 5_000, cap: refresh) == .seconds(30))
        #expect(PolicyStatusPacing.interval(nodes: Int.max, cap: refresh) == .seconds(30))
        // A refresh below a second (tests) still spaces writes by a second.
        #expect(PolicyStatusPacing.interval(nodes: 10, cap: .milliseconds(100)) == .seconds(1))
    }
}
