import Foundation
import KubeClient
import TapioCorrelation
import TapioInsightWriter
import TapioKube
import TapioModel
@testable import TapioOperator
import Testing

/// The leading operator's Insight cache keeps, of each agent's Insight, only what its readers use: every reader
/// computes the same from the cache view as from the whole object, and the view is much smaller.
@Suite struct InsightCacheViewTests {
    /// The Insights the engine writes for a replayed leak (OOMPrediction, MemoryLeak, OOMKilled; a leak that lasts
    /// 24 minutes, so that it is called one), as the writer sends them and the server returns them, on a node.
    static func agentInsights() throws -> [InsightObject] {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scenarios/quality/oom-linear-1.jsonl")
        var last: [InsightType: InsightUpdate] = [:]
        for u in try ScenarioReplay.run(fileURL: file) where u.change != .resolved { last[u.identity.type] = u }
        return try last.values.map { u in
            var doc = try #require(try JSONSerialization.jsonObject(with: InsightDocument.object(u, namespace: "tapio", nodeName: "node-7")) as? [String: Any])
            let status = try #require(try JSONSerialization.jsonObject(with: InsightDocument.status(u, namespace: "tapio")) as? [String: Any])
            doc["status"] = status["status"]
            var meta = try #require(doc["metadata"] as? [String: Any])
            meta["uid"] = "uid-\(u.identity.type.rawValue)"
            meta["resourceVersion"] = "42"
            meta["creationTimestamp"] = "2026-12-03T08:00:00Z"
            meta["annotations"] = [InsightResource.approveAnnotation: "true"]
            doc["metadata"] = meta
            return try JSONDecoder().decode(InsightObject.self, from: JSONSerialization.data(withJSONObject: doc))
        }
    }

    @Test func everyReaderOfTheCacheComputesTheSameFromTheView() throws {
        let whole = try Self.agentInsights()
        #expect(Set(whole.map(\.spec.type)) == [.oomPrediction, .memoryLeak, .oomKilled])
        let view = whole.map(InsightCacheView.strip)
        // The cluster detectors' input, and the per-Insight series.
        #expect(ClusterWatch.podFindings(view) == ClusterWatch.podFindings(whole))
        #expect(ClusterWatch.podFindings(view).count == whole.count)
        #expect(InsightSeriesExport.series(view) == InsightSeriesExport.series(whole))
        for (w, v) in zip(whole, view) {
            // The janitor's: identity, preconditions, phase and last sighting; the remediator's: whether a patch is
            // offered (it reads the whole Insight before deciding), its history, and the approval annotation.
            #expect(v.metadata.name == w.metadata.name && v.metadata.namespace == w.metadata.namespace)
            #expect(v.metadata.uid == w.metadata.uid && v.metadata.resourceVersion == w.metadata.resourceVersion)
            #expect(v.status == w.status)
            #expect(v.metadata.annotations == w.metadata.annotations)
            #expect(v.metadata.labels == ["tapio.io/node": "node-7"])
            #expect(v.spec.type == w.spec.type && v.spec.severity == w.spec.severity && v.spec.subject == w.spec.subject)
            #expect(v.spec.resources == w.spec.resources && v.spec.prediction == w.spec.prediction)
            let patches = w.spec.remediation?.actions.compactMap(\.patch) ?? []
            #expect(v.spec.remediation?.actions.map(\.patch) == patches, "\(w.spec.type)")
            #expect(v.spec.remediation?.actions.map(\.name) == w.spec.remediation?.actions.filter { $0.patch != nil }.map(\.name))
            // What people read is gone.
            #expect(v.spec.evidence.isEmpty && v.spec.summary.isEmpty && v.spec.title.isEmpty)
            #expect(v.spec.remediation?.actions.allSatisfy { $0.commands.isEmpty && $0.description.isEmpty } ?? true)
        }
        // The OOM prediction offers a limit patch, so the remediator still sees that there is one to judge.
        #expect(view.contains { $0.spec.type == .oomPrediction && $0.spec.remediation?.actions.contains { $0.patch != nil } == true })
        // And it is much smaller: less than half of the whole, as JSON.
        let size = { (o: [InsightObject]) in try JSONEncoder().encode(o).count }
        #expect(try size(view) * 2 < size(whole))
    }

    /// The operator's own findings (no node label) are kept whole: a new leader adopts them with their spec.
    @Test func theOperatorsOwnInsightsAreKeptWhole() {
        let own = InsightObject(
            metadata: KubeObjectMeta(name: "clusterhealth-shop-api", namespace: "tapio", labels: ["tapio.io/type": "ClusterHealth"]),
            spec: InsightSpec(type: .clusterHealth, severity: .warning, title: "t", summary: "s",
                              subject: ResourceRef(kind: "Deployment", namespace: "shop", name: "api"),
                              evidence: [Evidence(source: "kubernetes", description: "d", observedAt: "2026-12-03T08:00:00Z")]))
        #expect(InsightCacheView.strip(own) == own)
    }
}
