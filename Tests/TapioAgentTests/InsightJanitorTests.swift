import Foundation
import KubeClient
import Logging
import TapioAgent
import TapioInsightWriter
import TapioKube
import TapioModel
import TapioTestSupport
import Testing

/// Resolved Insights of a node are deleted once they have been resolved for longer than the policy's TTL — and
/// nothing else is: not active ones, not recent ones, not other nodes'.
@Suite(.timeLimit(.minutes(5))) struct InsightJanitorTests {
    func insight(_ client: KubeClient, namespace: String, name: String, node: String, phase: InsightPhase,
                 lastSeen: Date) async throws {
        let spec = InsightSpec(type: .oomKilled, severity: .warning, title: "t", summary: "s",
                               subject: ResourceRef(kind: "Pod", namespace: namespace, name: name, container: "app"))
        var object = InsightObject(metadata: KubeObjectMeta(name: name, namespace: namespace, labels: ["tapio.io/node": node]),
                                   spec: spec)
        object = try await client.create(object)
        object.status = InsightStatus(phase: phase, firstSeen: lastSeen.formatted(.iso8601),
                                      lastSeen: lastSeen.formatted(.iso8601), occurrences: 1)
        _ = try await client.updateStatus(object)
    }

    @Test func expiredResolvedInsightsOfThisNodeAreDeletedAndNothingElse() async throws {
        let cluster = try await TestCluster.start()
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        let ns = cluster.namespace
        _ = try await client.create(Namespace(metadata: KubeObjectMeta(name: ns)))
        let old = Date().addingTimeInterval(-7200)
        try await insight(client, namespace: ns, name: "expired", node: "n1", phase: .resolved, lastSeen: old)
        try await insight(client, namespace: ns, name: "recent", node: "n1", phase: .resolved, lastSeen: Date())
        try await insight(client, namespace: ns, name: "active", node: "n1", phase: .active, lastSeen: old)
        try await insight(client, namespace: ns, name: "othernode", node: "n2", phase: .resolved, lastSeen: old)

        let janitor = InsightJanitor(client: client, nodeName: "n1", logger: Logger(label: "test"))
        janitor.setTTL(.seconds(3600))
        await janitor.sweep(now: Date())
        let left = Set(try await client.list(InsightObject.self, namespace: ns).items.compactMap(\.metadata.name))

        try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
        try? await client.shutdown()
        await cluster.stop()
        #expect(left == ["recent", "active", "othernode"])
        #expect(janitor.deleted == 1)
    }
}
