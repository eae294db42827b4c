import Foundation
import TapioAgent
import TapioModel
import TapioOperator
import Testing

/// The heartbeat Lease is written when what it says changes, and otherwise once per long period; the operator judges
/// an agent alive by the Lease's own duration.
@Suite(.timeLimit(.minutes(1))) struct HeartbeatScheduleTests {
    typealias Report = HeartbeatSchedule.Report

    @Test func atRestTheLeaseIsWrittenOncePerPeriod() {
        var s = HeartbeatSchedule(period: .seconds(120))
        let r = Report(applied: ["p": 1])
        #expect(s.due(r, now: 0), "the first write is at once")
        s.wrote(r, at: 0)
        #expect(!s.due(r, now: 5))
        #expect(!s.due(r, now: 119.9))
        #expect(s.wait(now: 100) == 20)
        #expect(s.due(r, now: 120))
        // Checked every 5 s for a day: 720 writes, one per 120 s — not one per check.
        var writes = 0
        var t = 120.0
        while t < 120 + 86_400 {
            if s.due(r, now: t) { s.wrote(r, at: t); writes += 1 }
            t += 5
        }
        #expect(writes == 720)
    }

    @Test func aChangeIsWrittenAtOnce() {
        var s = HeartbeatSchedule(period: .seconds(120))
        s.wrote(Report(applied: ["p": 1]), at: 0)
        #expect(s.due(Report(applied: ["p": 2]), now: 1), "a new generation applied")
        #expect(s.due(Report(applied: ["p": 1], errors: ["q": "invalid"]), now: 1), "a policy refused")
        #expect(s.due(Report(applied: ["p": 1], problems: ["the API server refused watch pods"]), now: 1), "a new problem")
    }

    @Test func aFailedWriteIsRetriedSoonNotAfterAPeriod() {
        var s = HeartbeatSchedule(period: .seconds(120), retry: .seconds(5))
        let r = Report(applied: ["p": 1])
        s.failed(at: 0)
        #expect(!s.due(r, now: 4))
        #expect(s.due(r, now: 5))
        s.wrote(r, at: 5)
        #expect(!s.due(r, now: 6))
    }

    @Test func agentsStartedTogetherSpreadTheirRenewals() {
        var s = HeartbeatSchedule(period: .seconds(120), phase: 0.5)
        let r = Report()
        s.wrote(r, at: 0)
        #expect(!s.due(r, now: 59))
        #expect(s.due(r, now: 60), "the first renewal after half a period")
        s.wrote(r, at: 60)
        #expect(!s.due(r, now: 179))
        #expect(s.due(r, now: 180), "then every period")
    }

    @Test func theLeaseLastsThreePeriods() {
        #expect(HeartbeatSchedule(period: .seconds(120)).leaseDurationSeconds == 360)
        #expect(HeartbeatSchedule(period: .milliseconds(1500)).leaseDurationSeconds == 5)
    }

    @Test func theOperatorJudgesLivenessByTheLeasesOwnDuration() {
        let now = Date()
        let policy = TapioPolicy(name: "p", spec: TapioPolicySpec())
        let nodes = [PolicyStatusComputer.NodeView(name: "n1", labels: [:])]
        func applied(renewedAgo: TimeInterval, duration: TimeInterval?) -> Int {
            let beat = PolicyStatusComputer.HeartbeatView(node: "n1", applied: ["p": 0], errors: [:],
                                                          renewed: now.addingTimeInterval(-renewedAgo), leaseDuration: duration)
            return PolicyStatusComputer.status(for: policy, previous: nil, nodes: nodes, heartbeats: [beat], now: now).nodesApplied
        }
        #expect(applied(renewedAgo: 200, duration: 360) == 1, "an agent at rest renews every 120 s: 200 s is alive")
        #expect(applied(renewedAgo: 400, duration: 360) == 0, "past its Lease's duration")
        #expect(applied(renewedAgo: 200, duration: nil) == 0, "an older agent's Lease without a duration: 60 s")
        #expect(applied(renewedAgo: 30, duration: nil) == 1)
    }
}
