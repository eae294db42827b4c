import Foundation
import TapioModel
import TapioOperator

/// The leading operator's cluster-level detectors at the size issue 14 asks about, in isolation (the scale
/// benchmark measures the same pass inside the operator, but on a machine shared with N agents and the API server).
let operatorBenchmarks: [Benchmark] = [
    Benchmark(name: "operator.cluster-detectors",
              summary: "one pass of the cluster-level detectors over 5,000 nodes and 50,000 active per-pod Insights (10 % of nodes under MemoryPressure; OOMKilled, CrashLoop and NetworkIssue across 100 namespaces and 5,000 workloads); median of 7") {
        OperatorBench.detectors(nodes: 5000, insights: 50_000, rounds: 7)
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
