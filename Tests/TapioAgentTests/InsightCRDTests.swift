import Foundation
import KubeClient
import TapioKube
import TapioModel
import TapioTestSupport
import Testing

/// How the Insight CRD behaves for its readers, on the emulator or a real server (`TAPIO_TEST_KUBECONFIG`).
@Suite(.timeLimit(.minutes(3)))
struct InsightCRDTests {
    /// Issue 16: Tapio writes an Insight's spec, then its status through the subresource; in between, `kubectl get
    /// insights` (and any alert on Insight CRs) saw an Insight without a phase. The CRD defaults the status, so the
    /// first read after creation already says Active.
    @Test func anInsightReadBeforeItsFirstStatusWriteIsAlreadyActive() async throws {
        let (applied, read, listed) = try await TestCluster.withNamespace { cluster, client in
            let ns = cluster.namespace
            let spec = InsightSpec(type: .crashLoop, severity: .warning, title: "t", summary: "s",
                                   subject: ResourceRef(kind: "Pod", namespace: ns, name: "p", uid: "u", container: "c"))
            // Created exactly as the writers create it: server-side apply of the spec, no status.
            let applied = try await client.apply(InsightObject(metadata: KubeObjectMeta(name: "crashloop-p", namespace: ns), spec: spec),
                                                 fieldManager: "tapio-test")
            let read = try await client.get(InsightObject.self, namespace: ns, name: "crashloop-p")
            let listed = try await client.list(InsightObject.self, namespace: ns).items.first { $0.metadata.name == "crashloop-p" }
            try? await client.deleteRaw(ResourceType(InsightObject.self), namespace: ns, name: "crashloop-p")
            return (applied, read, listed)
        }
        #expect(applied.status?.phase == .active, "the apply response: \(String(describing: applied.status))")
        #expect(read.status?.phase == .active, "a get: \(String(describing: read.status))")
        #expect(listed?.status?.phase == .active, "a list: \(String(describing: listed?.status))")
        #expect(read.status?.firstSeen == nil, "the defaults are only a phase and a count until Tapio writes the status")
    }
}
