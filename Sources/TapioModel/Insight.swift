/// Insight: what Tapio found, as written to the `Insight` custom resource (group `tapio.io`, `v1alpha1`),
/// printed by `tapio sniff` and emitted as JSON lines. The Swift field names are the CRD's field names;
/// a test keeps the two in agreement (DESIGN.md §4).
public struct InsightSpec: Sendable, Hashable, Codable {
    public var type: InsightType
    public var severity: Severity
    public var title: String
    public var summary: String
    public var subject: ResourceRef
    public var resources: [ResourceRef]
    public var evidence: [Evidence]
    public var prediction: Prediction?
    public var remediation: Remediation?

    public init(type: InsightType, severity: Severity, title: String, summary: String, subject: ResourceRef,
                resources: [ResourceRef] = [], evidence: [Evidence] = [], prediction: Prediction? = nil,
                remediation: Remediation? = nil) {
        self.type = type
        self.severity = severity
        self.title = title
        self.summary = summary
        self.subject = subject
        self.resources = resources
        self.evidence = evidence
        self.prediction = prediction
        self.remediation = remediation
    }

    /// `resources` and `evidence` are optional in the CRD: an Insight without them (written by hand, or by another
    /// version) must decode, or it would make every list of Insights undecodable.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(InsightType.self, forKey: .type)
        severity = try c.decode(Severity.self, forKey: .severity)
        title = try c.decode(String.self, forKey: .title)
        summary = try c.decode(String.self, forKey: .summary)
        subject = try c.decode(ResourceRef.self, forKey: .subject)
        resources = try c.decodeIfPresent([ResourceRef].self, forKey: .resources) ?? []
        evidence = try c.decodeIfPresent([Evidence].self, forKey: .evidence) ?? []
        prediction = try c.decodeIfPresent(Prediction.self, forKey: .prediction)
        remediation = try c.decodeIfPresent(Remediation.self, forKey: .remediation)
    }
}

public enum InsightType: String, Sendable, Hashable, Codable, CaseIterable {
    case oomPrediction = "OOMPrediction"
    case oomKilled = "OOMKilled"
    case memoryLeak = "MemoryLeak"
    case crashLoop = "CrashLoop"
    case networkIssue = "NetworkIssue"
    case nodePressure = "NodePressure"
    case clusterHealth = "ClusterHealth"
    /// A container (or local process) with no memory limit whose usage keeps growing.
    case unboundedMemoryGrowth = "UnboundedMemoryGrowth"
}

public enum Severity: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case info = "Info"
    case warning = "Warning"
    case critical = "Critical"

    public var rank: Int {
        switch self {
        case .info: 0
        case .warning: 1
        case .critical: 2
        }
    }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// A Kubernetes object or, with no cluster, a local subject (kind `Process`, `Container` or `Cgroup`).
public struct ResourceRef: Sendable, Hashable, Codable {
    public var kind: String
    public var namespace: String?
    public var name: String
    public var uid: String?
    public var container: String?

    public init(kind: String, namespace: String? = nil, name: String, uid: String? = nil, container: String? = nil) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.container = container
    }
}

public struct Evidence: Sendable, Hashable, Codable {
    /// Which source saw it: `ebpf`, `cgroup`, `kubernetes` or `tapio`.
    public var source: String
    /// A short sentence: what was seen.
    public var description: String
    /// When it was seen (RFC 3339).
    public var observedAt: String
    /// Optional numeric value with its unit (e.g. 734003200 "bytes").
    public var value: Double?
    public var unit: String?

    public init(source: String, description: String, observedAt: String, value: Double? = nil, unit: String? = nil) {
        self.source = source
        self.description = description
        self.observedAt = observedAt
        self.value = value
        self.unit = unit
    }
}

public struct Prediction: Sendable, Hashable, Codable {
    /// What is predicted, e.g. `OOMKill`.
    public var kind: String
    /// 0…1: how likely the event is.
    public var probability: Double
    /// 0…1: how much the fit and evidence support the estimate.
    public var confidence: Double
    /// Seconds from `observedAt`… rendered in the CR as a duration string (e.g. `3m15s`).
    public var timeToEvent: String?
    /// RFC 3339.
    public var expectedAt: String?

    public init(kind: String, probability: Double, confidence: Double, timeToEvent: String?, expectedAt: String?) {
        self.kind = kind
        self.probability = probability
        self.confidence = confidence
        self.timeToEvent = timeToEvent
        self.expectedAt = expectedAt
    }
}

public struct Remediation: Sendable, Hashable, Codable {
    public var actions: [RemediationAction]
    public init(actions: [RemediationAction]) { self.actions = actions }
}

public enum Risk: String, Sendable, Hashable, Codable, CaseIterable {
    case low = "Low"
    case medium = "Medium"
    case high = "High"
}

public struct RemediationAction: Sendable, Hashable, Codable {
    /// Stable name of the action (used by `allowedActions`), e.g. `IncreaseMemoryLimit`, `RolloutUndo`.
    public var name: String
    public var title: String
    public var description: String
    public var risk: Risk
    public var impact: String
    /// Exact commands a person can run.
    public var commands: [String]
    /// For actions Tapio may apply itself: the exact patch and its target.
    public var patch: Patch?

    public init(name: String, title: String, description: String, risk: Risk, impact: String, commands: [String],
                patch: Patch? = nil) {
        self.name = name
        self.title = title
        self.description = description
        self.risk = risk
        self.impact = impact
        self.commands = commands
        self.patch = patch
    }
}

public struct Patch: Sendable, Hashable, Codable {
    public enum PatchType: String, Sendable, Hashable, Codable {
        case strategicMerge = "StrategicMerge"
        case merge = "Merge"
    }
    public var target: PatchTarget
    public var type: PatchType
    /// The patch body as JSON text.
    public var body: String
    public init(target: PatchTarget, type: PatchType, body: String) {
        self.target = target
        self.type = type
        self.body = body
    }
}

public struct PatchTarget: Sendable, Hashable, Codable {
    public var apiVersion: String
    public var kind: String
    public var namespace: String
    public var name: String
    public init(apiVersion: String, kind: String, namespace: String, name: String) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }
}
