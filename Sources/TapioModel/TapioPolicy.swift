/// `TapioPolicy` (group `tapio.io`, version `v1alpha1`, cluster-scoped): what the probes look at and whether Tapio
/// may apply fixes itself (DESIGN.md §4). Decoding fills every absent field with its default, exactly as the CRD's
/// schema defaults do, so a policy read from a file and one read from the API server agree.
public struct TapioPolicy: Sendable, Hashable, Codable {
    public static let apiVersion = "tapio.io/v1alpha1"
    public static let kind = "TapioPolicy"

    public var apiVersion: String
    public var kind: String
    public var metadata: ResourceMeta
    public var spec: TapioPolicySpec
    public var status: TapioPolicyStatus?

    public init(name: String, spec: TapioPolicySpec = TapioPolicySpec(), status: TapioPolicyStatus? = nil) {
        self.apiVersion = Self.apiVersion
        self.kind = Self.kind
        self.metadata = ResourceMeta(name: name)
        self.spec = spec
        self.status = status
    }

    public init(apiVersion: String = TapioPolicy.apiVersion, kind: String = TapioPolicy.kind, metadata: ResourceMeta,
                spec: TapioPolicySpec = TapioPolicySpec(), status: TapioPolicyStatus? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion) ?? Self.apiVersion
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? Self.kind
        metadata = try c.decodeIfPresent(ResourceMeta.self, forKey: .metadata) ?? ResourceMeta()
        spec = TapioPolicySpec.decodeLeniently(c, forKey: .spec)
        // The status is the operator's; one it cannot read is one it rewrites.
        status = try? c.decodeIfPresent(TapioPolicyStatus.self, forKey: .status)
    }
}

public struct TapioPolicySpec: Sendable, Hashable, Codable {
    /// Which pods are watched; absent selectors match everything.
    public var selector: PolicySelector
    /// Which nodes' agents apply this policy; absent matches every node.
    public var nodeSelector: PolicyLabelSelector?
    public var probes: Probes
    public var correlation: CorrelationSettings
    public var insights: InsightSettings
    public var remediation: RemediationSettings
    /// What could not be decoded (a value of the wrong type, a number out of its type's range), each at its field
    /// path; that section keeps its defaults. Validation reports these as errors, so such a policy is refused with
    /// a message instead of making a whole list of policies unreadable. Never encoded.
    public var decodingProblems: [FieldError] = []

    enum CodingKeys: String, CodingKey {
        case selector, nodeSelector, probes, correlation, insights, remediation
    }

    public init(selector: PolicySelector = PolicySelector(), nodeSelector: PolicyLabelSelector? = nil,
                probes: Probes = Probes(), correlation: CorrelationSettings = CorrelationSettings(),
                insights: InsightSettings = InsightSettings(), remediation: RemediationSettings = RemediationSettings()) {
        self.selector = selector
        self.nodeSelector = nodeSelector
        self.probes = probes
        self.correlation = correlation
        self.insights = insights
        self.remediation = remediation
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var problems: [FieldError] = []
        func section<T: Decodable>(_ key: CodingKeys, _ fallback: T) -> T {
            do { return try c.decodeIfPresent(T.self, forKey: key) ?? fallback } catch {
                problems.append(FieldError(decoding: error))
                return fallback
            }
        }
        selector = section(.selector, PolicySelector())
        nodeSelector = section(.nodeSelector, Optional<PolicyLabelSelector>.none)
        probes = section(.probes, Probes())
        correlation = section(.correlation, CorrelationSettings())
        insights = section(.insights, InsightSettings())
        remediation = section(.remediation, RemediationSettings())
        decodingProblems = problems
    }

    /// The spec under `key`, never throwing: a `spec` that is not an object at all becomes the default spec
    /// carrying that problem.
    public static func decodeLeniently<Key: CodingKey>(_ c: KeyedDecodingContainer<Key>, forKey key: Key) -> TapioPolicySpec {
        do { return try c.decodeIfPresent(TapioPolicySpec.self, forKey: key) ?? TapioPolicySpec() } catch {
            var spec = TapioPolicySpec()
            spec.decodingProblems = [FieldError(decoding: error)]
            return spec
        }
    }
}

public struct PolicySelector: Sendable, Hashable, Codable {
    public var namespaceSelector: PolicyLabelSelector?
    public var podSelector: PolicyLabelSelector?

    public init(namespaceSelector: PolicyLabelSelector? = nil, podSelector: PolicyLabelSelector? = nil) {
        self.namespaceSelector = namespaceSelector
        self.podSelector = podSelector
    }
}

public struct Probes: Sendable, Hashable, Codable {
    public var memory: MemoryProbe
    public var oom: ProbeToggle
    public var process: ProbeToggle
    public var network: ProbeToggle

    public init(memory: MemoryProbe = MemoryProbe(), oom: ProbeToggle = ProbeToggle(),
                process: ProbeToggle = ProbeToggle(), network: ProbeToggle = ProbeToggle()) {
        self.memory = memory
        self.oom = oom
        self.process = process
        self.network = network
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        memory = try c.decodeIfPresent(MemoryProbe.self, forKey: .memory) ?? MemoryProbe()
        oom = try c.decodeIfPresent(ProbeToggle.self, forKey: .oom) ?? ProbeToggle()
        process = try c.decodeIfPresent(ProbeToggle.self, forKey: .process) ?? ProbeToggle()
        network = try c.decodeIfPresent(ProbeToggle.self, forKey: .network) ?? ProbeToggle()
    }
}

public struct MemoryProbe: Sendable, Hashable, Codable {
    public static let defaultSamplingHz = 19
    public static let samplingHzRange = 1...1000
    public static let defaultLeakThreshold = "10Mi"
    /// Growth per hour: at least a byte, at most 1Pi.
    public static let leakThresholdRange: ClosedRange<UInt64> = 1...TapioPolicySchema.maxBytes

    public var enabled: Bool
    /// Memory samples per second per CPU (1–1000; 19 keeps clear of timer harmonics).
    public var samplingHz: Int
    /// Sustained growth per hour above which a container is leaking, once it has grown for a quarter of an hour
    /// without slowing down (or over the window, when that is longer) (a quantity, default `10Mi`).
    public var leakThreshold: String

    public init(enabled: Bool = true, samplingHz: Int = MemoryProbe.defaultSamplingHz,
                leakThreshold: String = MemoryProbe.defaultLeakThreshold) {
        self.enabled = enabled
        self.samplingHz = samplingHz
        self.leakThreshold = leakThreshold
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        samplingHz = try c.decodeInteger(forKey: .samplingHz) ?? Self.defaultSamplingHz
        leakThreshold = try c.decodeIfPresent(IntOrString.self, forKey: .leakThreshold)?.text ?? Self.defaultLeakThreshold
    }

    /// `leakThreshold` in bytes per hour.
    public func leakThresholdBytesPerHour() throws -> UInt64 { try Quantity.parseBytes(leakThreshold) }
}

public struct ProbeToggle: Sendable, Hashable, Codable {
    public var enabled: Bool
    public init(enabled: Bool = true) { self.enabled = enabled }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
    }
}

public struct CorrelationSettings: Sendable, Hashable, Codable {
    public static let batchSizeRange = 1...100_000
    /// A batch waits at least a millisecond (the engine's clock resolution) and at most a minute (longer would
    /// hold an OOM warning back for longer than it is worth).
    public static let batchTimeoutRange: ClosedRange<Duration> = .milliseconds(1) ... .seconds(60)
    /// At least a minute of history (a prediction needs 90 s of growth; shorter windows see none), at most a day
    /// (the window is 30 buckets: a day's buckets are 48 minutes wide).
    public static let windowRange: ClosedRange<Duration> = .seconds(60) ... .seconds(86_400)

    /// Detectors run after this many events (1–100000)…
    public var batchSize: Int
    /// …or after this long (a Go duration), whichever comes first.
    public var batchTimeout: String
    /// How far back each subject's history reaches (a Go duration).
    public var window: String
    /// Insights below this severity are not emitted.
    public var minSeverity: Severity

    public init(batchSize: Int = 100, batchTimeout: String = "100ms", window: String = "5m",
                minSeverity: Severity = .info) {
        self.batchSize = batchSize
        self.batchTimeout = batchTimeout
        self.window = window
        self.minSeverity = minSeverity
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        batchSize = try c.decodeInteger(forKey: .batchSize) ?? 100
        batchTimeout = try c.decodeIfPresent(String.self, forKey: .batchTimeout) ?? "100ms"
        window = try c.decodeIfPresent(String.self, forKey: .window) ?? "5m"
        minSeverity = try c.decodeIfPresent(Severity.self, forKey: .minSeverity) ?? .info
    }

    public func batchTimeoutDuration() throws -> Duration { try GoDuration.parse(batchTimeout) }
    public func windowDuration() throws -> Duration { try GoDuration.parse(window) }
}

public struct InsightSettings: Sendable, Hashable, Codable {
    /// Also emit a Kubernetes Event (events.k8s.io/v1) for each new or worsened Insight.
    public var emitEvents: Bool
    /// An Insight whose condition has been clear this long becomes `Resolved` (a Go duration).
    public var resolveAfter: String
    /// A resolved Insight is deleted this long after it resolved (a Go duration).
    public var ttl: String

    /// A second to a week.
    public static let resolveAfterRange: ClosedRange<Duration> = .seconds(1) ... .seconds(7 * 86_400)
    /// A minute to a year.
    public static let ttlRange: ClosedRange<Duration> = .seconds(60) ... .seconds(365 * 86_400)

    public init(emitEvents: Bool = true, resolveAfter: String = "5m", ttl: String = "24h") {
        self.emitEvents = emitEvents
        self.resolveAfter = resolveAfter
        self.ttl = ttl
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        emitEvents = try c.decodeIfPresent(Bool.self, forKey: .emitEvents) ?? true
        resolveAfter = try c.decodeIfPresent(String.self, forKey: .resolveAfter) ?? "5m"
        ttl = try c.decodeIfPresent(String.self, forKey: .ttl) ?? "24h"
    }

    public func resolveAfterDuration() throws -> Duration { try GoDuration.parse(resolveAfter) }
    public func ttlDuration() throws -> Duration { try GoDuration.parse(ttl) }
}

/// How far Tapio may go on its own.
public enum RemediationMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// No remediation advice at all.
    case off = "Off"
    /// Advice with exact commands in the Insight; nothing is applied (the default).
    case suggest = "Suggest"
    /// The operator writes each allowed patch into the Insight's status as a change to commit to Git (a kustomize
    /// patch with a file path and the commands); nothing is sent to the API server. For GitOps-managed clusters.
    case propose = "Propose"
    /// The operator dry-runs allowed patches against the API server and records the outcome.
    case dryRun = "DryRun"
    /// The operator applies allowed patches behind every gate.
    case apply = "Apply"

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let v = RemediationMode(rawValue: raw) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "Unsupported value: \(FieldError.quoted(raw)): supported values: "
                    + Self.allCases.map { FieldError.quoted($0.rawValue) }.joined(separator: ", ")))
        }
        self = v
    }
}

/// The remediation actions Tapio knows: the one list `allowedActions` is checked against.
public enum RemediationActionName: String, Sendable, Hashable, Codable, CaseIterable {
    /// Raise a container's memory limit (VPA-style bump, capped by `memoryCeiling`).
    case increaseMemoryLimit = "IncreaseMemoryLimit"
    /// Roll a Deployment back to its previous ReplicaSet.
    case rolloutUndo = "RolloutUndo"
    /// Delete a pod so its controller recreates it.
    case restartPod = "RestartPod"

    /// Every known name, in declaration order.
    public static var known: [String] { allCases.map(\.rawValue) }
}

public struct RemediationSettings: Sendable, Hashable, Codable {
    public static let maxActionsPerHourRange = 0...1000
    public static let maxAllowedActions = 16
    public static let maxNamespaces = 256
    /// A byte to 1Pi.
    public static let memoryCeilingRange: ClosedRange<UInt64> = 1...TapioPolicySchema.maxBytes

    public var mode: RemediationMode
    /// In `Apply` mode, act only on Insights annotated `tapio.io/approve: "true"`.
    public var requireApproval: Bool
    /// Names from `RemediationActionName` that may be applied, each at most once (a set in the CRD); empty means none.
    public var allowedActions: [String]
    /// Namespaces where actions may be applied, each at most once; empty means all the policy selects.
    public var namespaces: [String]
    /// Cluster-wide cap on applied actions per rolling hour (0 disables applying).
    public var maxActionsPerHour: Int
    /// Highest memory limit an action may set (a quantity); absent means no cap beyond the node's capacity.
    public var memoryCeiling: String?
    /// In `Apply` mode, also patch workloads that Argo CD or Flux manages (which will revert the patch at their
    /// next sync unless the change is committed to Git too). Off by default: gate `ManagedByGitOps`.
    public var allowGitOpsManaged: Bool

    public init(mode: RemediationMode = .suggest, requireApproval: Bool = true, allowedActions: [String] = [],
                namespaces: [String] = [], maxActionsPerHour: Int = 10, memoryCeiling: String? = nil,
                allowGitOpsManaged: Bool = false) {
        self.allowGitOpsManaged = allowGitOpsManaged
        self.mode = mode
        self.requireApproval = requireApproval
        self.allowedActions = allowedActions
        self.namespaces = namespaces
        self.maxActionsPerHour = maxActionsPerHour
        self.memoryCeiling = memoryCeiling
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.decodeIfPresent(RemediationMode.self, forKey: .mode) ?? .suggest
        requireApproval = try c.decodeIfPresent(Bool.self, forKey: .requireApproval) ?? true
        allowedActions = try c.decodeIfPresent([String].self, forKey: .allowedActions) ?? []
        namespaces = try c.decodeIfPresent([String].self, forKey: .namespaces) ?? []
        maxActionsPerHour = try c.decodeInteger(forKey: .maxActionsPerHour) ?? 10
        memoryCeiling = try c.decodeIfPresent(IntOrString.self, forKey: .memoryCeiling)?.text
        allowGitOpsManaged = try c.decodeIfPresent(Bool.self, forKey: .allowGitOpsManaged) ?? false
    }

    /// `memoryCeiling` in bytes, nil when unset.
    public func memoryCeilingBytes() throws -> UInt64? { try memoryCeiling.map(Quantity.parseBytes) }
}

/// A quantity field may be written as a bare integer (`1048576`) or a string (`"1Mi"`), like
/// `x-kubernetes-int-or-string`; Swift keeps the text.
struct IntOrString: Decodable {
    var text: String
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int64.self) {
            text = String(i)
        } else if let s = try? c.decode(String.self) {
            text = s
        } else {
            throw DecodingError.typeMismatch(String.self, .init(
                codingPath: decoder.codingPath,
                debugDescription: "must be an integer or a quantity string such as \"10Mi\" (a number that does not fit in 64 bits is neither)"))
        }
    }
}

extension KeyedDecodingContainer {
    /// An integer field. JSONDecoder reports a number no `Int` holds (`1e300`, `2^64`) with an error that has no
    /// coding path; this turns it into a `DecodingError` at the field, so the message can name it.
    func decodeInteger(forKey key: Key) throws -> Int? {
        do {
            return try decodeIfPresent(Int.self, forKey: key)
        } catch let e as DecodingError {
            throw e
        } catch {
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath + [key],
                debugDescription: "must be a whole number between \(Int.min) and \(Int.max)"))
        }
    }
}
