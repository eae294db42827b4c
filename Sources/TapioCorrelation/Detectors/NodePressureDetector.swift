import TapioModel

extension CorrelationEngine {
    static let pressureConditions = ["MemoryPressure", "DiskPressure", "PIDPressure"]

    /// A node under MemoryPressure, DiskPressure or PIDPressure, with its evictions and the pods using the most
    /// memory on it.
    func nodePressure(_ i: Int, now: UInt64) -> (InsightIdentity, InsightSpec)? {
        let s = states[i]
        guard case .node(let node) = s.subject else { return nil }
        let active = Self.pressureConditions.compactMap { c in s.conditions[c].flatMap { $0.status ? (c, $0) : nil } }
        guard !active.isEmpty else { return nil }
        let at = Formatting.rfc3339(nanos: now)
        var evidence = active.map { c, st in
            Evidence(source: "kubernetes", description: "\(c) since \(Formatting.rfc3339(nanos: st.since)): \(st.reason) \(st.message)",
                     observedAt: Formatting.rfc3339(nanos: st.since))
        }
        for e in s.evictions.suffix(5) {
            evidence.append(Evidence(source: "kubernetes", description: "Evicted \(e.pod.namespace)/\(e.pod.name)",
                                     observedAt: Formatting.rfc3339(nanos: e.at)))
        }
        // Top memory consumers on this node (a scan, but only when a node is under pressure).
        var top: [(String, UInt64)] = []
        for st in states where st.node == node {
            guard case .podContainer(let p, let c) = st.subject, st.memory.lastValue > 0 else { continue }
            top.append(("\(p.namespace)/\(p.name)/\(c)", st.memory.lastValue))
        }
        top.sort { $0.1 > $1.1 }
        top = Array(top.prefix(5))
        if !top.isEmpty {
            evidence.append(Evidence(source: "cgroup",
                                     description: "Top memory: " + top.map { "\($0.0) \(Formatting.bytes($0.1))" }.joined(separator: ", "),
                                     observedAt: at, value: Double(top[0].1), unit: "bytes"))
        }
        let names = active.map(\.0).joined(separator: ", ")
        let severity: Severity = s.evictions.isEmpty ? .warning : .critical
        var commands = ["kubectl describe node \(node)",
                        "kubectl get pods -A --field-selector spec.nodeName=\(node) -o wide"]
        if active.contains(where: { $0.0 == "MemoryPressure" }) { commands.append("kubectl top pod -A --sort-by=memory | head -20") }
        let spec = InsightSpec(
            type: .nodePressure, severity: severity,
            title: "Node \(node) under \(names)" + (s.evictions.isEmpty ? "" : ", \(s.evictions.count) evictions"),
            summary: "Node \(node) reports \(names)" + (s.evictions.isEmpty ? "" : " and evicted \(s.evictions.count) pod\(s.evictions.count == 1 ? "" : "s")")
                + (top.isEmpty ? "." : "; the largest memory users are " + top.prefix(3).map { "\($0.0) (\(Formatting.bytes($0.1)))" }.joined(separator: ", ") + "."),
            subject: s.subject.resourceRef,
            resources: [s.subject.resourceRef] + s.evictions.suffix(10).map { ResourceRef(kind: "Pod", namespace: $0.pod.namespace, name: $0.pod.name, uid: $0.pod.uid) },
            evidence: evidence,
            remediation: Remediation(actions: [
                RemediationAction(name: "InspectNode", title: "See what is using \(node)",
                                  description: "The node's conditions and allocations, and the pods on it.", risk: .low,
                                  impact: "Read-only.", commands: commands),
                RemediationAction(name: "CordonNode", title: "Stop scheduling onto \(node)",
                                  description: "Keeps new pods away while the pressure lasts.", risk: .low,
                                  impact: "New pods go to other nodes; running pods stay.",
                                  commands: ["kubectl cordon \(node)"]),
                RemediationAction(name: "DrainNode", title: "Move the pods off \(node)",
                                  description: "Evicts the pods (respecting PodDisruptionBudgets) so they start elsewhere.",
                                  risk: .high, impact: "Every pod on the node restarts elsewhere.",
                                  commands: ["kubectl drain \(node) --ignore-daemonsets --delete-emptydir-data --timeout=5m",
                                             "kubectl uncordon \(node)  # once the pressure is gone"]),
            ]))
        return (InsightIdentity(type: .nodePressure, subject: s.subject), spec)
    }
}
