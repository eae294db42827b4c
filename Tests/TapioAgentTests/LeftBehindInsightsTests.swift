import Foundation
import KubeClient
import KubeRuntime
import TapioCorrelation
import TapioKube
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

    @Test func whatNoAgentWillResolveIsFoundAndNothingElse() {
        let insights = [
            insight("before-restart", node: "n1", lastSeen: ago(30)),
            insight("since-restart", node: "n1", lastSeen: ago(5)),
            insight("restart-too-recent", node: "n2", lastSeen: ago(30)),
            insight("older-agent", node: "n3", lastSeen: ago(30)),
            insight("already-resolved", node: "n1", lastSeen: ago(30), phase: .resolved),
            insight("never-seen", node: "n1", lastSeen: nil),
            insight("operators-own", node: nil, lastSeen: ago(30)),
            insight("node-gone", node: "gone", lastSeen: ago(60)),
            insight("node-gone-recently", node: "gone-recently", lastSeen: ago(60)),
            insight("node-gone-no-lease", node: "gone-no-lease", lastSeen: ago(60)),
            insight("node-missing-a-moment", node: "missing-a-moment", lastSeen: ago(60)),
        ]
        let agents: [String: LeftBehindInsights.Agent] = [
            "n1": .init(started: ago(15), lastBeat: ago(1)),
            "n2": .init(started: ago(5), lastBeat: ago(1)),
            "n3": .init(started: nil, lastBeat: ago(1)),
            "gone": .init(started: ago(100), lastBeat: ago(11)),
            "gone-recently": .init(started: ago(100), lastBeat: ago(3)),
        ]
        let found = LeftBehindInsights.find(insights, nodes: ["n1", "n2", "n3"], agents: agents,
                                            missingSince: ["gone-no-lease": ago(20), "missing-a-moment": ago(1)],
                                            grace: { _ in .seconds(600) }, now: now)
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
    }

    @Test func theAgentsComeFromTheHeartbeatLeases() {
        var lease = Lease(metadata: KubeObjectMeta(name: "tapio-agent-n1", namespace: "tapio-system",
                                                   labels: [HeartbeatAnnotations.nodeLabel: "N1.example"]))
        var spec = Lease.Spec()
        spec.acquireTime = MicroTime.string(ago(15))
        spec.renewTime = MicroTime.string(ago(1))
        lease.spec = spec
        let agents = LeftBehindInsights.agents([lease, Lease(metadata: KubeObjectMeta(name: "unlabelled"))])
        #expect(agents.count == 1)
        let a = agents["N1.example"]
        #expect(a?.started.map { abs($0.timeIntervalSince(ago(15))) < 0.001 } == true)
        #expect(a?.lastBeat.map { abs($0.timeIntervalSince(ago(1))) < 0.001 } == true)
    }
}
