import Foundation
import KubeClient
import Logging
import TapioInsightWriter
import TapioKube
import TapioModel
@testable import TapioOperator
import TapioTestSupport
import Testing

/// Expired Insights are deleted by the operator, for every writer, each after the `ttl` its node's agent runs with —
/// and nothing else is: not active ones, not recent ones, not one that changed since it was judged. (Agents have no
/// delete right: before, each agent ran this itself and the API server refused it.)
@Suite(.timeLimit(.minutes(5))) struct InsightJanitorTests {
    static func node(_ name: String, labels: [String: String] = [:]) -> Node {
        Node(metadata: KubeObjectMeta(name: name, labels: labels))
    }

    static func policy(_ name: String, ttl: String, nodeSelector: [String: String]? = nil) -> TapioPolicy {
        var spec = TapioPolicySpec()
        spec.insights.ttl = ttl
        spec.nodeSelector = nodeSelector.map { PolicyLabelSelector(matchLabels: $0) }
        return TapioPolicy(name: name, spec: spec)
    }

    static func insight(_ name: String, node: String?) -> InsightObject {
        InsightObject(metadata: KubeObjectMeta(name: name, namespace: "ns", labels: node.map { ["tapio.io/node": $0] } ?? [:]),
                      spec: InsightSpec(type: .oomKilled, severity: .warning, title: "t", summary: "s",
                                        subject: ResourceRef(kind: "Pod", namespace: "ns", name: name, container: "app")))
    }

    /// Each node's Insights expire after the longest `ttl` of the valid policies selecting that node (24h with
    /// none), as its agent merges them; an invalid policy counts for nothing; the operator's own and a removed
    /// node's Insights after the longest of all valid policies.
    @Test func eachInsightExpiresAfterTheTTLItsNodeRunsWith() {
        let policies = [
            Self.policy("short", ttl: "1h", nodeSelector: ["tier": "short"]),
            Self.policy("shorter", ttl: "10m", nodeSelector: ["tier": "short"]),
            { var p = Self.policy("invalid", ttl: "1m"); p.spec.correlation.batchSize = -1; return p }(),
        ]
        let ttl = ClusterWatch.ttlResolver(policies: policies, nodes: [Self.node("n-short", labels: ["tier": "short"]),
                                                                       Self.node("n-plain")])
        #expect(ttl(Self.insight("a", node: "n-short")) == .seconds(3600))
        #expect(ttl(Self.insight("b", node: "n-plain")) == .seconds(86_400))
        #expect(ttl(Self.insight("c", node: nil)) == .seconds(3600))
        #expect(ttl(Self.insight("d", node: "removed-node")) == .seconds(3600))
        // With no policy at all: the default everywhere.
        #expect(ClusterWatch.ttlResolver(policies: [], nodes: [])(Self.insight("e", node: nil)) == .seconds(86_400))
    }

    func insight(_ client: KubeClient, namespace: String, name: String, node: String?, phase: InsightPhase,
                 lastSeen: Date) async throws -> InsightObject {
        var object = Self.insight(name, node: node)
        object.metadata.namespace = namespace
        object.spec.subject.namespace = namespace
        object = try await client.create(object)
        object.status = InsightStatus(phase: phase, firstSeen: lastSeen.formatted(.iso8601),
                                      lastSeen: lastSeen.formatted(.iso8601), occurrences: 1)
        return try await client.updateStatus(object)
    }

    @Test func expiredInsightsOfEveryWriterAreDeletedOnlyIfUnchangedAndAtMostABatchAPass() async throws {
        let (first, afterFirst, second, left, batched, janitor) = try await TestCluster.withNamespace { cluster, client in
            let ns = cluster.namespace
            let hours = { (h: Double) in Date().addingTimeInterval(-h * 3600) }
            let ttl = ClusterWatch.ttlResolver(policies: [Self.policy("short", ttl: "1h", nodeSelector: ["tier": "short"])],
                                               nodes: [Self.node("n-short", labels: ["tier": "short"]), Self.node("n-plain")])
            var seen: [InsightObject] = []
            for (name, node, phase, age) in [("short-expired", "n-short", InsightPhase.resolved, 2.0), ("short-recent", "n-short", .resolved, 0.5),
                                             ("short-active", "n-short", .active, 2), ("short-remediated", "n-short", .remediated, 3),
                                             ("plain-recent", "n-plain", .resolved, 2), ("plain-expired", "n-plain", .resolved, 25),
                                             ("operator-expired", nil, .resolved, 2), ("short-changed", "n-short", .resolved, 1.5)] as [(String, String?, InsightPhase, Double)] {
                seen.append(try await insight(client, namespace: ns, name: name, node: node, phase: phase, lastSeen: hours(age)))
        }
        // Reactivated after the janitor's copy was taken: the delete's preconditions must keep it.
        var changed = try await client.get(InsightObject.self, namespace: ns, name: "short-changed")
        changed.status?.phase = .active
        _ = try await client.updateStatus(changed)

        let batched = InsightJanitor(client: client, maxDeletesPerSweep: 3, logger: Logger(label: "test"))
        let first = await batched.sweep(seen, ttl: ttl, now: Date())
        let afterFirst = Set(try await client.list(InsightObject.self, namespace: ns).items.compactMap(\.metadata.name))
        // The same (now stale) copy again: three are gone already (404), one changed since (409), one is left to delete.
        let janitor = InsightJanitor(client: client, logger: Logger(label: "test"))
        let second = await janitor.sweep(seen, ttl: ttl, now: Date())
        let left = Set(try await client.list(InsightObject.self, namespace: ns).items.compactMap(\.metadata.name))
        return (first, afterFirst, second, left, batched, janitor)
        }
        // Five had expired on the copy: the oldest three went in the first pass (25 h, 3 h, then one of the two
        // 2 h ones), the other 2 h one in the second — but never the one reactivated after the copy was taken.
        #expect(first == 3)
        #expect(!afterFirst.contains("plain-expired") && !afterFirst.contains("short-remediated") && afterFirst.contains("short-changed"))
        #expect(second == 1)
        #expect(left == ["short-recent", "short-active", "plain-recent", "short-changed"])
        #expect(batched.deleted == 3 && janitor.deleted == 1)
    }
}
