import Foundation
import KubeClient
import TapioKube

extension ScaleBench {
    static let extraPrefix = "scale-extra-"
    static let insights = ResourceType(InsightObject.self)

    /// Brings the cluster's Insights up to `target` with copies of a real one an agent wrote (same size and shape),
    /// spread over the nodes, each Active — the operator's load at 50,000 Insights without 50,000 incidents. Kept
    /// across runs (named `scale-extra-…`); returns how many were created.
    static func fillInsights(_ admin: KubeClient, namespace: String, nodes: Int, target: Int) async throws -> Int {
        let existing = try await admin.listAll(InsightObject.self).items
        let missing = target - existing.count
        guard missing > 0 else { return 0 }
        guard let model = existing.first(where: { $0.spec.type == .oomKilled && !($0.metadata.name ?? "").hasPrefix(extraPrefix) }),
              let name = model.metadata.name, let ns = model.metadata.namespace else {
            throw AgentBench.BenchError("no OOMKilled Insight to copy: run with TAPIO_SCALE_STORM > 0")
        }
        let raw = try await admin.send(method: .GET, path: insights.path(namespace: ns, name: name)).body
        guard var doc = try JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
            throw AgentBench.BenchError("the Insight \(ns)/\(name) is not a JSON object")
        }
        let status = doc["status"]
        doc["status"] = nil
        let have = Set(existing.compactMap(\.metadata.name))
        let names = (0..<target).map { "\(extraPrefix)\($0)" }.filter { !have.contains($0) }.prefix(missing)
        let work: [@Sendable () async throws -> Void] = names.enumerated().map { i, copy in
            var d = doc
            d["metadata"] = ["name": copy, "namespace": namespace,
                             "labels": ["tapio.io/node": ScalePopulation.nodeName(i % nodes), "tapio.io/type": "OOMKilled",
                                        "tapio.io/severity": "critical", "tapio.io/subject-kind": "Pod", "tapio.io/subject-name": copy]]
            let body = try? JSONSerialization.data(withJSONObject: d)
            let statusBody = try? JSONSerialization.data(withJSONObject: ["status": status ?? [:]])
            return {
                guard let body, let statusBody else { return }
                _ = try? await admin.createRaw(insights, namespace: namespace, body: body)
                _ = try? await admin.patchRaw(insights, namespace: namespace, name: copy, subresource: "status",
                                              patch: statusBody, patchType: .merge)
            }
        }
        try await ScalePopulation.run(work, parallel: 32)
        return work.count
    }
}
