import Foundation
import TapioCorrelation
import TapioModel

/// The detectors that need more than one node's view — pure functions of a snapshot of the cluster.
///
/// - Node pressure across nodes: many nodes reporting the same pressure condition (or not Ready) at once is a
///   capacity problem of the cluster, not of one node.
/// - Cluster health: the same failure (OOM kills, crash loops, network trouble) in many pods of one workload or one
///   namespace on several nodes, from the agents' per-pod Insights — one systemic problem, told once.
///
/// Each agent already groups its own node's pods (a node-scoped `ClusterHealth` Insight); these findings need two or
/// more nodes.
public enum ClusterDetectors {
    public struct Config: Sendable, Hashable {
        /// Nodes sharing a pressure condition that make it cluster-wide: at least this many…
        public var pressureMinNodes = 2
        /// …and at least this fraction of all nodes.
        public var pressureMinFraction = 0.1
        /// Distinct failing pods in one group.
        public var healthMinPods = 5
        /// Distinct nodes those pods ran on.
        public var healthMinNodes = 2
        /// Per-pod Insights seen within this long count.
        public var window: TimeInterval = 900
        /// A finding absent this long is resolved.
        public var resolveAfter: TimeInterval = 120
        /// A changed finding is rewritten at most this often (new and escalated ones at once).
        public var updateInterval: TimeInterval = 60
        public init() {}
    }

    public struct NodeView: Sendable, Hashable {
        public var name: String
        /// Condition type → status ("True", "False", "Unknown").
        public var conditions: [String: String]
        public init(name: String, conditions: [String: String]) {
            self.name = name
            self.conditions = conditions
        }
    }

    /// What the detectors need of an agent's per-pod Insight.
    public struct PodFinding: Sendable, Hashable {
        public var type: InsightType
        public var pod: ResourceRef
        public var node: String
        /// The workload that owns the pod (Deployment, StatefulSet, …) when the Insight names one.
        public var owner: ResourceRef?
        public var lastSeen: Date
        public init(type: InsightType, pod: ResourceRef, node: String, owner: ResourceRef?, lastSeen: Date) {
            self.type = type
            self.pod = pod
            self.node = node
            self.owner = owner
            self.lastSeen = lastSeen
        }
    }

    public struct Finding: Sendable, Hashable {
        public var identity: InsightIdentity
        public var spec: InsightSpec
    }

    static let pressureConditions = ["MemoryPressure", "DiskPressure", "PIDPressure"]
    static let healthTypes: [InsightType] = [.oomKilled, .crashLoop, .networkIssue]
    static let workloadKinds: Set<String> = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"]

    public static func all(nodes: [NodeView], pods: [PodFinding], now: Date, config: Config = Config()) -> [Finding] {
        nodePressure(nodes, now: now, config: config) + clusterHealth(pods, now: now, config: config)
    }

    // MARK: Node pressure across nodes

    public static func nodePressure(_ nodes: [NodeView], now: Date, config: Config = Config()) -> [Finding] {
        guard !nodes.isEmpty else { return [] }
        let needed = max(config.pressureMinNodes, Int((Double(nodes.count) * config.pressureMinFraction).rounded(.up)))
        var out: [Finding] = []
        let at = now.formatted(.iso8601)
        for condition in pressureConditions + ["NotReady"] {
            let affected = nodes.filter { n in
                condition == "NotReady" ? n.conditions["Ready"] != nil && n.conditions["Ready"] != "True"
                                        : n.conditions[condition] == "True"
            }.map(\.name).sorted()
            guard affected.count >= needed else { continue }
            let share = Double(affected.count) / Double(nodes.count)
            let severity: Severity = share >= 0.5 || condition == "NotReady" ? .critical : .warning
            let what = condition == "NotReady" ? "are not Ready" : "report \(condition)"
            let listed = affected.prefix(10).joined(separator: ", ") + (affected.count > 10 ? " and \(affected.count - 10) more" : "")
            var commands = ["kubectl describe nodes \(affected.prefix(5).joined(separator: " "))", "kubectl top nodes"]
            switch condition {
            case "MemoryPressure": commands.append("kubectl top pods -A --sort-by=memory | head -20")
            case "DiskPressure": commands.append("kubectl get pods -A --field-selector=status.phase=Failed")
            case "PIDPressure": commands.append("kubectl get pods -A -o wide --field-selector spec.nodeName=\(affected[0])")
            default: commands.append("kubectl get events -A --field-selector involvedObject.kind=Node --sort-by=.lastTimestamp | tail -30")
            }
            let spec = InsightSpec(
                type: .nodePressure, severity: severity,
                title: "\(affected.count) of \(nodes.count) nodes \(what)",
                summary: "\(affected.count) of \(nodes.count) nodes \(what) at the same time (\(listed)): a shortage across the cluster rather than one busy node; the kubelets evict pods or stop admitting them there.",
                subject: ResourceRef(kind: "Cluster", name: "cluster"),
                resources: affected.prefix(32).map { ResourceRef(kind: "Node", name: $0) },
                evidence: [Evidence(source: "kubernetes", description: "Nodes with \(condition == "NotReady" ? "Ready≠True" : "\(condition)=True"): \(listed)",
                                    observedAt: at, value: Double(affected.count), unit: "nodes")],
                remediation: Remediation(actions: [RemediationAction(
                    name: "InspectNodePressure", title: "See what fills the nodes, then add capacity or lower requests",
                    description: "Look at the nodes' conditions and the largest consumers; if the cluster is simply full, add nodes (or let the autoscaler) before evictions spread.",
                    risk: .low, impact: "Read-only.", commands: commands)]))
            out.append(Finding(identity: InsightIdentity(type: .nodePressure, subject: .cluster, detail: condition), spec: spec))
        }
        return out
    }

    // MARK: Cluster health across nodes

    public static func clusterHealth(_ pods: [PodFinding], now: Date, config: Config = Config()) -> [Finding] {
        let recent = pods.filter { now.timeIntervalSince($0.lastSeen) <= config.window }
        var out: [Finding] = []
        let at = now.formatted(.iso8601)
        for type in healthTypes {
            let ofType = recent.filter { $0.type == type }
            // Workloads first (the most specific explanation), then namespaces for what no workload group explains.
            var explained = Set<ResourceRef>()
            let byOwner = Dictionary(grouping: ofType.filter { $0.owner != nil }, by: { $0.owner! })
            for (owner, members) in byOwner.sorted(by: { ($0.key.namespace ?? "", $0.key.name) < ($1.key.namespace ?? "", $1.key.name) }) {
                guard let f = group(type, members, key: owner, detail: "\(owner.kind) \(owner.namespace ?? "")/\(owner.name)",
                                    at: at, config: config) else { continue }
                out.append(f)
                explained.formUnion(members.map(\.pod))
            }
            let byNamespace = Dictionary(grouping: ofType.filter { !explained.contains($0.pod) }, by: { $0.pod.namespace ?? "" })
            for (ns, members) in byNamespace.sorted(by: { $0.key < $1.key }) {
                let key = ResourceRef(kind: "Namespace", name: ns)
                if let f = group(type, members, key: key, detail: "Namespace \(ns)", at: at, config: config) { out.append(f) }
            }
        }
        return out
    }

    static func group(_ type: InsightType, _ members: [PodFinding], key: ResourceRef, detail: String, at: String,
                      config: Config) -> Finding? {
        let pods = Set(members.map(\.pod)).sorted { ($0.namespace ?? "", $0.name) < ($1.namespace ?? "", $1.name) }
        let nodes = Set(members.map(\.node)).sorted()
        guard pods.count >= config.healthMinPods, nodes.count >= config.healthMinNodes else { return nil }
        let what: String
        switch type {
        case .oomKilled: what = "OOM kills"
        case .crashLoop: what = "crash loops"
        default: what = "network failures"
        }
        let ns = key.namespace ?? (key.kind == "Namespace" ? key.name : "")
        let podList = pods.prefix(10).map(\.name).joined(separator: ", ") + (pods.count > 10 ? " and \(pods.count - 10) more" : "")
        var commands = ["kubectl get insights -n \(ns) -l tapio.io/type=\(type.rawValue)"]
        if key.kind == "Namespace" {
            commands.append("kubectl get events -n \(ns) --sort-by=.lastTimestamp | tail -30")
        } else {
            commands.append("kubectl -n \(ns) describe \(key.kind.lowercased()) \(key.name)")
            commands.append("kubectl -n \(ns) rollout history \(key.kind.lowercased())/\(key.name)")
        }
        let spec = InsightSpec(
            type: .clusterHealth, severity: .critical,
            title: "\(what.prefix(1).uppercased() + what.dropFirst()) in \(pods.count) pods of \(key.kind.lowercased()) \(ns.isEmpty || key.kind == "Namespace" ? "" : ns + "/")\(key.name) on \(nodes.count) nodes",
            summary: "\(pods.count) pods of \(key.kind.lowercased()) \(key.name) had \(what) on \(nodes.count) different nodes (\(nodes.prefix(5).joined(separator: ", "))\(nodes.count > 5 ? ", …" : "")): the cause travels with the \(key.kind == "Namespace" ? "namespace's workloads" : "workload") — its image, configuration or limits — not with a node.",
            subject: key,
            resources: [key] + pods.prefix(20) + nodes.prefix(10).map { ResourceRef(kind: "Node", name: $0) },
            evidence: [Evidence(source: "tapio", description: "\(what.prefix(1).uppercased() + what.dropFirst()): \(podList)",
                                observedAt: at, value: Double(pods.count), unit: "pods")],
            remediation: Remediation(actions: [RemediationAction(
                name: "InspectSystemicFailure", title: "Look at what the failing pods share",
                description: "The same failure on several nodes points at the workload itself: a recent rollout, its image, or limits too small for its load.",
                risk: .low, impact: "Read-only.", commands: commands)]))
        return Finding(identity: InsightIdentity(type: .clusterHealth, subject: .cluster, detail: "\(type.rawValue) \(detail)"), spec: spec)
    }
}

/// Turns successive sets of findings into Insight updates: new, escalated, updated (at most every
/// `updateInterval`), and resolved once a finding has been absent for `resolveAfter`.
struct ClusterFindingTracker: Sendable {
    struct Active: Sendable {
        var spec: InsightSpec
        /// What was last written (changes are compared with this, not with the latest unwritten finding).
        var emitted: InsightSpec
        var firstSeen: UInt64
        var lastSeen: UInt64
        var lastEmitted: UInt64
        var occurrences: Int
    }

    var active: [InsightIdentity: Active] = [:]
    var updateInterval: UInt64
    var resolveAfter: UInt64

    init(config: ClusterDetectors.Config = .init()) {
        updateInterval = UInt64(config.updateInterval * 1e9)
        resolveAfter = UInt64(config.resolveAfter * 1e9)
    }

    /// Remembers findings a previous leader wrote and left Active, so they are neither announced again nor
    /// forgotten if they no longer hold.
    mutating func adopt(_ identity: InsightIdentity, spec: InsightSpec, firstSeen: UInt64, lastSeen: UInt64, occurrences: Int) {
        // The count comes from an object in the API: bounded, so a hostile value cannot overflow the increments below.
        active[identity] = Active(spec: spec, emitted: spec, firstSeen: firstSeen, lastSeen: lastSeen, lastEmitted: lastSeen,
                                  occurrences: min(max(occurrences, 1), Int(Int32.max)))
    }

    /// The active findings as they stand (the newest spec), for the writer's resync of what its full queue pushed out
    /// (``TapioInsightWriter/InsightWriter/status(_:)``).
    var activeInsights: [InsightUpdate] {
        active.map { identity, a in
            InsightUpdate(identity: identity, spec: a.spec, change: .updated, observedAt: a.lastSeen, firstSeenAt: a.firstSeen,
                          occurrences: a.occurrences)
        }
    }

    mutating func evaluate(_ findings: [ClusterDetectors.Finding], now: UInt64) -> [InsightUpdate] {
        var out: [InsightUpdate] = []
        var seen = Set<InsightIdentity>()
        for f in findings {
            seen.insert(f.identity)
            if var a = active[f.identity] {
                a.lastSeen = now
                a.occurrences = min(a.occurrences + 1, Int(Int32.max))
                a.spec = f.spec
                var change: InsightChange?
                if f.spec.severity > a.emitted.severity {
                    change = .escalated
                } else if f.spec != a.emitted, now &- a.lastEmitted >= updateInterval {
                    change = .updated
                }
                if let change {
                    a.lastEmitted = now
                    a.emitted = f.spec
                    out.append(InsightUpdate(identity: f.identity, spec: f.spec, change: change, observedAt: now,
                                             firstSeenAt: a.firstSeen, occurrences: a.occurrences))
                }
                active[f.identity] = a
            } else {
                active[f.identity] = Active(spec: f.spec, emitted: f.spec, firstSeen: now, lastSeen: now, lastEmitted: now,
                                            occurrences: 1)
                out.append(InsightUpdate(identity: f.identity, spec: f.spec, change: .new, observedAt: now, firstSeenAt: now,
                                         occurrences: 1))
            }
        }
        for (identity, a) in active where !seen.contains(identity) && now &- a.lastSeen >= resolveAfter {
            active[identity] = nil
            var spec = a.spec
            spec.summary = "Resolved: " + spec.summary
            out.append(InsightUpdate(identity: identity, spec: spec, change: .resolved, observedAt: now,
                                     firstSeenAt: a.firstSeen, occurrences: a.occurrences))
        }
        return out
    }
}
