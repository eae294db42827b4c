import Foundation
import KubeRuntime
import TapioCorrelation
import TapioInsightWriter
import TapioKube
import TapioModel
import TapioOperator
import TapioSinks

/// The leading operator's cluster-level detectors at the size issue 14 asks about, in isolation (the scale
/// benchmark measures the same pass inside the operator, but on a machine shared with N agents and the API server).
let operatorBenchmarks: [Benchmark] = [
    Benchmark(name: "operator.cluster-detectors",
              summary: "one pass of the cluster-level detectors over 5,000 nodes and 50,000 active per-pod Insights (10 % of nodes under MemoryPressure; OOMKilled, CrashLoop and NetworkIssue across 100 namespaces and 5,000 workloads); median of 7") {
        OperatorBench.detectors(nodes: 5000, insights: 50_000, rounds: 7)
    },
    Benchmark(name: "operator.insight-cache",
              summary: "heap the leading operator's Insight cache holds per Insight: 50,000 agent Insights (the OOMKilled, OOMPrediction and MemoryLeak Insights the engine writes for a replayed leak, as the writer sends them, spread over 5,000 nodes) decoded as a watch delivers them, kept whole and as the operator's cache view (InsightCacheView)") {
        OperatorBench.insightCache(count: 50_000)
    },
]

enum OperatorBench {
    static func detectors(nodes: Int, insights: Int, rounds: Int) -> [Measurement] {
        let now = Date()
        let views = (0..<nodes).map { i in
            ClusterDetectors.NodeView(name: "node-\(i)", conditions: ["Ready": "True", "MemoryPressure": i % 10 == 0 ? "True" : "False",
                                                                     "DiskPressure": "False", "PIDPressure": "False"])
        }
        let types: [InsightType] = [.oomKilled, .crashLoop, .networkIssue]
        let pods = (0..<insights).map { i in
            let ns = "ns-\(i % 100)"
            return ClusterDetectors.PodFinding(
                type: types[i % 3], pod: ResourceRef(kind: "Pod", namespace: ns, name: "pod-\(i)", uid: "uid-\(i)"),
                node: "node-\(i % nodes)", owner: ResourceRef(kind: "Deployment", namespace: ns, name: "app-\(i % 5000)"),
                lastSeen: now.addingTimeInterval(-Double(i % 600)))
        }
        var times: [Double] = []
        var findings = 0
        for _ in 0..<rounds {
            let start = nowNanos()
            let out = ClusterDetectors.all(nodes: views, pods: pods, now: now)
            times.append(Double(nowNanos() - start) / 1e6)
            findings = out.count
        }
        times.sort()
        return [Measurement(metric: "pass_median", value: times[times.count / 2], unit: "ms"),
                Measurement(metric: "pass_max", value: times.last ?? 0, unit: "ms"),
                Measurement(metric: "findings", value: Double(findings), unit: "findings")]
    }
}

extension OperatorBench {
    /// Heap in use held by a store of `count` Insights, whole and stripped by ``InsightCacheView``.
    static func insightCache(count: Int) -> [Measurement] {
        let models = agentInsights()
        guard !models.isEmpty, let base = ProcessHeap.current(countingArenas: false) else {
            return [Measurement(metric: "error: no Insight from the replayed scenario, or no heap figures", value: 0, unit: "")]
        }
        var out: [Measurement] = [Measurement(metric: "model_insights", value: Double(models.count), unit: "Insights")]
        for (label, transform) in [("whole", nil), ("cache_view", InsightCacheView.strip)] as [(String, ReflectorStore<InsightObject>.Transform?)] {
            let before = ProcessHeap.current(countingArenas: false)?.inUse ?? base.inUse
            let store = ReflectorStore<InsightObject>(transform: transform)
            store.apply(.initStart)
            let decoder = JSONDecoder()
            for i in 0..<count {
                var doc = models[i % models.count]
                var meta = doc["metadata"] as? [String: Any] ?? [:]
                meta["name"] = "\(meta["name"] as? String ?? "insight")-\(i)"
                meta["uid"] = UUID().uuidString.lowercased()
                meta["resourceVersion"] = String(1_000_000 + i)
                meta["creationTimestamp"] = "2026-12-03T08:00:00Z"
                var labels = meta["labels"] as? [String: String] ?? [:]
                labels["tapio.io/node"] = "node-\(i % 5000)"
                meta["labels"] = labels
                doc["metadata"] = meta
                guard let data = try? JSONSerialization.data(withJSONObject: doc),
                      let o = try? decoder.decode(InsightObject.self, from: data) else { continue }
                store.apply(.initApply(o))
            }
            store.apply(.initDone)
            let after = ProcessHeap.current(countingArenas: false)?.inUse ?? before
            let held = after > before ? Double(after - before) : 0
            out.append(Measurement(metric: "\(label)_bytes_per_insight", value: held / Double(max(store.count, 1)), unit: "bytes"))
            out.append(Measurement(metric: "\(label)_mib_at_\(count)", value: held / 1_048_576, unit: "MiB"))
            withExtendedLifetime(store) {}
        }
        return out
    }

    /// The last spec of each Insight type the engine wrote for a replayed leak, as the writer's document (spec
    /// and labels) with the status it patches.
    static func agentInsights() -> [[String: Any]] {
        let url = URL(fileURLWithPath: "Tests/Scenarios/quality/oom-linear-1.jsonl")
        guard let updates = try? ScenarioReplay.run(fileURL: url) else { return [] }
        var last: [InsightType: InsightUpdate] = [:]
        for u in updates where u.change != .resolved { last[u.identity.type] = u }
        return last.values.sorted { $0.identity.type.rawValue < $1.identity.type.rawValue }.compactMap { u in
            guard var doc = try? JSONSerialization.jsonObject(with: InsightDocument.object(u, namespace: "tapio-system", nodeName: "node-0")) as? [String: Any],
                  let status = try? JSONSerialization.jsonObject(with: InsightDocument.status(u, namespace: "tapio-system")) as? [String: Any]
            else { return nil }
            doc["status"] = status["status"]
            return doc
        }
    }
}
