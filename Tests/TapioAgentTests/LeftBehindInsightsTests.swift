import Foundation
import KubeClient
import KubeRuntime
import TapioCorrelation
import TapioKube
import TapioInsightWriter
import TapioModel
@testable import TapioOperator
import Testing

/// Which agents' Active Insights the leading operator resolves because no agent will: written before their node's
/// agent restarted and not since, once that agent has run for the node's window + resolveAfter; or of a node that is
/// gone, once its agent's last heartbeat is that old. Everything else stays as it is.
@Suite struct LeftBehindInsightsTests {
    let now = Date(timeIntervalSince1970: 1_796_000_000)

    func insight(_ name: String, node: String?, lastSeen: Date?, phase: InsightPhase = .active) -> InsightObject {
        var o = InsightObject(metadata: KubeObjectMeta(name: name, namespace: "ns", labels: node.map { ["tapio.io/node": $0] } ?? [:]),
                              spec: InsightSpec(type: .oomPrediction, severity: .warning, title: "t", summary: "s",
                                                subject: ResourceRef(kind: "Pod", namespace: "ns", name: name, container: "app")))
        o.status = InsightStatus(phase: phase, firstSeen: lastSeen.map { MicroTime.string($0) }, lastSeen: lastSeen.map { MicroTime.string($0) },
                                 occurrences: 1)
        return o
    }

    func ago(_ minutes: Double) -> Date { now.addingTimeInterval(-minutes * 60) }

    func agent(started: Double?, beat: Double?, through: Double?, engine: Double? = nil, healthy: Bool = true) -> LeftBehindInsights.Agent {
        .init(started: started.map(ago), lastBeat: beat.map(ago), writtenThrough: through.map(ago), engineStarted: engine.map(ago),
              healthy: healthy)
    }

    @Test func whatNoAgentWillResolveIsFoundAndNothingElse() {
        let insights = [
            insight("before-restart", node: "n1", lastSeen: ago(30)),
            insight("since-restart", node: "n1", lastSeen: ago(5)),
            insight("restart-too-recent", node: "n2", lastSeen: ago(30)),
            insight("older-agent", node: "n3", lastSeen: ago(30)),
            insight("writes-behind", node: "n4", lastSeen: ago(30)),
            insight("agent-down", node: "n5", lastSeen: ago(30)),
            insight("engine-restarted", node: "n6", lastSeen: ago(30)),
            insight("already-resolved", node: "n1", lastSeen: ago(30), phase: .resolved),
            insight("never-seen", node: "n1", lastSeen: nil),
            insight("operators-own", node: nil, lastSeen: ago(30)),
            insight("node-gone", node: "gone", lastSeen: ago(60)),
            insight("node-gone-recently", node: "gone-recently", lastSeen: ago(60)),
            insight("node-gone-no-lease", node: "gone-no-lease", lastSeen: ago(60)),
            insight("node-missing-a-moment", node: "missing-a-moment", lastSeen: ago(60)),
            insight("node-missing-agent-alive", node: "missing-agent-alive", lastSeen: ago(60)),
        ]
        let agents: [String: LeftBehindInsights.Agent] = [
            // Started 15 minutes ago, everything written through a minute ago.
            "n1": agent(started: 15, beat: 1, through: 1),
            "n2": agent(started: 5, beat: 1, through: 1),
            // An agent from before acquireTime was written.
            "n3": agent(started: nil, beat: 1, through: 1),
            // Its writes lag: what it had 10 minutes after its start is not all written yet.
            "n4": agent(started: 15, beat: 1, through: 6),
            // Its Lease expired, or it reports a problem.
            "n5": agent(started: 15, beat: 1, through: 1, healthy: false),
            // A policy change started its engine afresh 5 minutes ago: its evidence is 5 minutes old.
            "n6": agent(started: 15, beat: 1, through: 1, engine: 5),
            // Its Node object is missing, but its agent beat 2 minutes ago (its Lease lasts 6): it still runs.
            "missing-agent-alive": agent(started: 100, beat: 2, through: 2),
            "gone": agent(started: 100, beat: 11, through: 11),
            "gone-recently": agent(started: 100, beat: 3, through: 3),
        ]
        let found = LeftBehindInsights.find(insights, nodes: ["n1", "n2", "n3", "n4", "n5", "n6"], agents: agents,
                                            missingSince: ["gone-no-lease": ago(20), "missing-a-moment": ago(1),
                                                           "missing-agent-alive": ago(20)],
                                            grace: { $0 == "missing-agent-alive" ? .seconds(61) : .seconds(600) }, now: now)
        #expect(found.map { $0.0.metadata.name ?? "" } == ["node-gone", "node-gone-no-lease", "before-restart"],
                "oldest lastSeen first: \(found.map { $0.0.metadata.name ?? "" })")
        #expect(found.first { $0.0.metadata.name == "before-restart" }?.1.contains("node n1's agent restarted at") == true)
        #expect(found.first { $0.0.metadata.name == "node-gone" }?.1 == "node gone is gone")
    }

    /// The grace is the node's window + resolveAfter as its agent merges them (the largest of the valid policies that
    /// select it; a gone node's, of all policies; 5m + 5m with none).
    @Test func theGraceIsTheNodesWindowAndResolveAfter() {
        var slow = TapioPolicySpec()
        slow.correlation.window = "30m"
        slow.insights.resolveAfter = "1h"
        slow.nodeSelector = PolicyLabelSelector(matchLabels: ["tier": "slow"])
        let grace = ClusterWatch.graceResolver(policies: [TapioPolicy(name: "slow", spec: slow)],
                                               nodes: [Node(metadata: KubeObjectMeta(name: "a", labels: ["tier": "slow"])),
                                                       Node(metadata: KubeObjectMeta(name: "b"))])
        #expect(grace("a") == .seconds(5400))
        #expect(grace("b") == .seconds(600), "no policy selects b: the defaults")
        #expect(grace("gone") == .seconds(5400), "a gone node: the longest of all")
        #expect(ClusterWatch.graceResolver(policies: [], nodes: [])("x") == .seconds(600))
        // Each the largest on its own, as the agent merges them: 30m + 30m, not the largest sum of one policy's (31m).
        var wide = TapioPolicySpec(), late = TapioPolicySpec()
        wide.correlation.window = "30m"
        wide.insights.resolveAfter = "1m"
        late.correlation.window = "1m"
        late.insights.resolveAfter = "30m"
        #expect(ClusterWatch.graceResolver(policies: [TapioPolicy(name: "w", spec: wide), TapioPolicy(name: "l", spec: late)],
                                           nodes: [])("x") == .seconds(3600))
    }

    /// Healthy: its Lease has not expired and it reports no problem. Two nodes whose names share a label value (cut
    /// at 63 characters) cannot be told apart: neither is healthy.
    @Test func theAgentsComeFromTheHeartbeatLeases() {
        func lease(_ node: String, started: Double, beat: Double, lasts: Int32 = 360, problems: String = "") -> Lease {
            var l = Lease(metadata: KubeObjectMeta(name: "tapio-agent-\(node)", namespace: "tapio-system",
                                                   labels: [HeartbeatAnnotations.nodeLabel: node],
                                                   annotations: [HeartbeatAnnotations.problems: problems,
                                                                 HeartbeatAnnotations.insightsWrittenThrough: MicroTime.string(ago(beat))]))
            var spec = Lease.Spec()
            spec.acquireTime = MicroTime.string(ago(started))
            spec.renewTime = MicroTime.string(ago(beat))
            spec.leaseDurationSeconds = lasts
            l.spec = spec
            return l
        }
        let long = String(repeating: "n", count: 70)
        let agents = LeftBehindInsights.agents([
            lease("N1.example", started: 15, beat: 1), lease("expired", started: 15, beat: 7), lease("troubled", started: 15, beat: 1, problems: "eBPF probes did not load"),
            lease(long + "-a", started: 15, beat: 1), lease(long + "-b", started: 15, beat: 1),
            Lease(metadata: KubeObjectMeta(name: "unlabelled")),
        ], now: now)
        #expect(agents.count == 4)
        let a = agents["N1.example"]
        #expect(a?.started.map { abs($0.timeIntervalSince(ago(15))) < 0.001 } == true)
        #expect(a?.lastBeat.map { abs($0.timeIntervalSince(ago(1))) < 0.001 } == true)
        #expect(a?.writtenThrough.map { abs($0.timeIntervalSince(ago(1))) < 0.001 } == true)
        #expect(a?.healthy == true)
        #expect(agents["expired"]?.healthy == false, "its Lease (6 minutes) expired")
        #expect(agents["troubled"]?.healthy == false)
        #expect(agents[InsightDocument.labelValue(long + "-a")]?.healthy == false)
    }
}
