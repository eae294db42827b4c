/// Every field of a TapioPolicy spec with its type and bounds: the one source of truth that validation enforces,
/// that `--policy` files are checked against for unknown fields, and that `crds/tapio.io_tapiopolicies.yaml` must
/// state (Tests/TapioModelTests/PolicyBoundsTests.swift compares the two field by field, both ways).
///
/// The CRD can say an integer's minimum and maximum, a string's `maxLength` and `pattern`, a list's `maxItems` and
/// whether it is a set, and a map's `maxProperties` and its values' pattern; what it cannot say — a duration's or
/// quantity's value range — validation checks, and the operator reports as `Accepted=False` (reason `InvalidSpec`), so an agent never runs with a value out of range.
public indirect enum PolicyField: Sendable, Equatable {
    case object([String: PolicyField])
    /// `unique`: each item at most once (the CRD's `x-kubernetes-list-type: set`).
    case list(PolicyField, maxItems: Int, unique: Bool = false)
    /// `matchLabels`: label keys to values (each value matching `NameRules.labelValuePattern`).
    case labelMap(maxProperties: Int)
    case boolean
    case integer(ClosedRange<Int>)
    /// A Go duration string (`GoDuration.pattern`) whose value must lie in the range.
    case duration(ClosedRange<Duration>)
    /// A Kubernetes quantity (`Quantity.pattern`, integer or string) whose byte value must lie in the range.
    case quantity(ClosedRange<UInt64>)
    /// A string of at most `maxLength` characters, optionally matching `pattern`, optionally one of `enumValues`.
    case string(maxLength: Int, pattern: String? = nil, enumValues: [String]? = nil)

    /// The child of an object field.
    public subscript(_ key: String) -> PolicyField? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }
}

public enum TapioPolicySchema {
    /// Longest duration or quantity string accepted: far above any real value, far below what could hurt a parser.
    public static let maxScalarLength = 64

    /// Bounds of a label selector: Kubernetes sets none, but a selector beyond these is a mistake, not a policy.
    public static let maxMatchLabels = 64
    public static let maxMatchExpressions = 64
    public static let maxSelectorValues = 256
    /// A label key: a DNS subdomain prefix (253), a slash, a name (63).
    public static let maxLabelKeyLength = 317
    public static let maxLabelValueLength = 63

    static let selector: PolicyField = .object([
        "matchLabels": .labelMap(maxProperties: maxMatchLabels),
        "matchExpressions": .list(.object([
            "key": .string(maxLength: maxLabelKeyLength, pattern: NameRules.labelKeyPattern),
            "operator": .string(maxLength: 12, enumValues: LabelSelectorRequirement.operators),
            "values": .list(.string(maxLength: maxLabelValueLength, pattern: NameRules.labelValuePattern),
                            maxItems: maxSelectorValues),
        ]), maxItems: maxMatchExpressions),
    ])

    /// The spec's fields (what `spec:` may contain).
    public static let spec: PolicyField = .object([
        "selector": .object(["namespaceSelector": selector, "podSelector": selector]),
        "nodeSelector": selector,
        "probes": .object([
            "memory": .object([
                "enabled": .boolean,
                "samplingHz": .integer(MemoryProbe.samplingHzRange),
                "leakThreshold": .quantity(MemoryProbe.leakThresholdRange),
            ]),
            "oom": .object(["enabled": .boolean]),
            "process": .object(["enabled": .boolean]),
            "network": .object(["enabled": .boolean]),
        ]),
        "correlation": .object([
            "batchSize": .integer(CorrelationSettings.batchSizeRange),
            "batchTimeout": .duration(CorrelationSettings.batchTimeoutRange),
            "window": .duration(CorrelationSettings.windowRange),
            "minSeverity": .string(maxLength: 8, enumValues: Severity.allCases.map(\.rawValue)),
        ]),
        "insights": .object([
            "emitEvents": .boolean,
            "resolveAfter": .duration(InsightSettings.resolveAfterRange),
            "ttl": .duration(InsightSettings.ttlRange),
        ]),
        "remediation": .object([
            "mode": .string(maxLength: 7, enumValues: RemediationMode.allCases.map(\.rawValue)),
            "requireApproval": .boolean,
            "allowGitOpsManaged": .boolean,
            "allowedActions": .list(.string(maxLength: 32, enumValues: RemediationActionName.known),
                                    maxItems: RemediationSettings.maxAllowedActions, unique: true),
            "namespaces": .list(.string(maxLength: 63, pattern: NameRules.dns1123LabelPattern),
                                maxItems: RemediationSettings.maxNamespaces, unique: true),
            "maxActionsPerHour": .integer(RemediationSettings.maxActionsPerHourRange),
            "memoryCeiling": .quantity(RemediationSettings.memoryCeilingRange),
        ]),
    ])

    /// The top level of a TapioPolicy manifest. `metadata` is Kubernetes' ObjectMeta (not checked here), `status` is
    /// written by the operator.
    public static let topLevelFields: Set<String> = ["apiVersion", "kind", "metadata", "spec", "status"]

    /// `1Pi`: no node has more memory, and every value below it is exact in a Double and an Int64.
    public static let maxBytes: UInt64 = 1 << 50

    /// A range rendered after "between": `1ms and 1m`, `1 and 1Pi`.
    public static func describe(_ r: ClosedRange<Duration>) -> String {
        "\(GoDuration.formatShort(r.lowerBound)) and \(GoDuration.formatShort(r.upperBound))"
    }
    public static func describe(_ r: ClosedRange<UInt64>) -> String {
        "\(Quantity.formatBytes(r.lowerBound)) and \(Quantity.formatBytes(r.upperBound))"
    }
}
