import TapioModel

/// Groups per-pod failures by what the pods share (image, node, namespace) so that one systemic problem is
/// called out once. Bounded: at most `maxGroups` groups and `maxMembers` pods per group, pruned to the window.
struct ClusterHealthTracker: Sendable {
    static let tracked: Set<InsightType> = [.oomKilled, .crashLoop, .networkIssue]
    static let maxGroups = 4096
    static let maxMembers = 512

    enum Dimension: String, Sendable, Hashable, CaseIterable {
        // Most specific first: on a tie, the image explains more than the node, the node more than the namespace.
        case image, node, namespace
    }

    struct Key: Sendable, Hashable {
        var type: InsightType
        var dimension: Dimension
        var value: String
        var detail: String { "\(type.rawValue) \(dimension.rawValue)=\(value)" }
    }

    var groups: [Key: [String: (pod: PodRef, at: UInt64)]] = [:]
    /// Details of the ClusterHealth insights currently active.
    var activeDetails: Set<String> = []
    var touched = false

    /// Group by node only (see ``CorrelationConfig/clusterHealthByNodeOnly``).
    var nodeOnly = false

    func keys(type: InsightType, pod: PodRef, image: String?, node: String?) -> [Key] {
        if nodeOnly { return node.map { [Key(type: type, dimension: .node, value: $0)] } ?? [] }
        var k = [Key(type: type, dimension: .namespace, value: pod.namespace)]
        if let i = image { k.append(Key(type: type, dimension: .image, value: i)) }
        if let n = node { k.append(Key(type: type, dimension: .node, value: n)) }
        return k
    }

    mutating func note(type: InsightType, pod: PodRef, image: String?, node: String?, now: UInt64) {
        for k in keys(type: type, pod: pod, image: image, node: node) {
            if groups[k] == nil && groups.count >= Self.maxGroups { continue }
            var g = groups[k] ?? [:]
            if g[pod.uid] == nil { touched = true }
            if g[pod.uid] != nil || g.count < Self.maxMembers { g[pod.uid] = (pod, now) }
            groups[k] = g
        }
    }

    func covers(type: InsightType, pod: PodRef?, image: String?, node: String?) -> Bool {
        guard let pod, !activeDetails.isEmpty, Self.tracked.contains(type) else { return false }
        return keys(type: type, pod: pod, image: image, node: node).contains { activeDetails.contains($0.detail) }
    }

    mutating func deactivate(_ detail: String) { activeDetails.remove(detail) }

    mutating func prune(before cutoff: UInt64) {
        for (k, g) in groups {
            let kept = g.filter { $0.value.at >= cutoff }
            groups[k] = kept.isEmpty ? nil : kept
        }
    }
}

extension CorrelationEngine {
    /// For each failure type, the one group (image, else node, else namespace — whichever holds the most pods) with
    /// at least `clusterHealthMinPods` failing pods in the window.
    mutating func clusterHealth(now: UInt64) -> [(InsightIdentity, InsightSpec)] {
        let cutoff = now > windowNanos ? now - windowNanos : 0
        var best: [InsightType: (ClusterHealthTracker.Key, [PodRef])] = [:]
        for (k, g) in cluster.groups {
            let pods = g.values.filter { $0.at >= cutoff }.map(\.pod)
            guard pods.count >= config.clusterHealthMinPods else { continue }
            if let b = best[k.type] {
                let rank = ClusterHealthTracker.Dimension.allCases.firstIndex(of: k.dimension)!
                let bRank = ClusterHealthTracker.Dimension.allCases.firstIndex(of: b.0.dimension)!
                if pods.count < b.1.count || (pods.count == b.1.count && (rank > bRank || (rank == bRank && k.value >= b.0.value))) { continue }
            }
            best[k.type] = (k, pods)
        }
        var out: [(InsightIdentity, InsightSpec)] = []
        let at = Formatting.rfc3339(nanos: now)
        for (type, (key, pods)) in best.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            cluster.activeDetails.insert(key.detail)
            let sorted = pods.sorted()
            let what: String
            switch type {
            case .oomKilled: what = "OOM kills"
            case .crashLoop: what = "crash loops"
            default: what = "network failures"
            }
            let subjectRef: ResourceRef
            var commands: [String]
            switch key.dimension {
            case .node:
                subjectRef = ResourceRef(kind: "Node", name: key.value)
                commands = ["kubectl describe node \(key.value)", "kubectl cordon \(key.value)"]
            case .namespace:
                subjectRef = ResourceRef(kind: "Namespace", name: key.value)
                commands = ["kubectl get events -n \(key.value) --sort-by=.lastTimestamp | tail -30",
                            "kubectl get resourcequota,limitrange -n \(key.value)"]
            case .image:
                subjectRef = ResourceRef(kind: "Image", name: key.value)
                commands = ["kubectl get pods -A -o jsonpath='{range .items[?(@.spec.containers[*].image==\"\(key.value)\")]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}'"]
            }
            if let p = sorted.first { commands.append("kubectl describe pod \(p.name) -n \(p.namespace)") }
            let spec = InsightSpec(
                type: .clusterHealth, severity: .critical,
                title: "\(pods.count) pods with \(what) sharing \(key.dimension.rawValue) \(key.value)",
                summary: "\(pods.count) pods sharing \(key.dimension.rawValue) \(key.value) had \(what) in the last "
                    + "\(Formatting.duration(seconds: Double(windowNanos) / 1e9)): one systemic problem rather than "
                    + "\(pods.count) separate ones (their individual insights are folded into this one).",
                subject: subjectRef,
                resources: [subjectRef] + sorted.prefix(20).map { ResourceRef(kind: "Pod", namespace: $0.namespace, name: $0.name, uid: $0.uid) },
                evidence: [Evidence(source: "tapio",
                                    description: "\(what.capitalized): " + sorted.prefix(10).map { "\($0.namespace)/\($0.name)" }.joined(separator: ", ")
                                        + (sorted.count > 10 ? " and \(sorted.count - 10) more" : ""),
                                    observedAt: at, value: Double(pods.count), unit: "pods")],
                remediation: Remediation(actions: [RemediationAction(
                    name: "InspectSystemicFailure", title: "Look at what the failing pods share",
                    description: "The common \(key.dimension.rawValue) is the first suspect.", risk: .low,
                    impact: key.dimension == .node ? "Read-only, except cordon (stops new pods landing there)." : "Read-only.",
                    commands: commands)]))
            out.append((InsightIdentity(type: .clusterHealth, subject: .cluster, detail: key.detail), spec))
        }
        return out
    }
}
