/// What the operator and agents report about a `TapioPolicy`.
public struct TapioPolicyStatus: Sendable, Hashable, Codable {
    /// The `metadata.generation` this status describes.
    public var observedGeneration: Int64?
    /// `Accepted` (the spec is valid), `Ready` (the targeted agents applied it) and `Degraded` (a targeted agent runs
    /// with less than it should).
    public var conditions: [StatusCondition]
    /// Nodes whose agents this policy selects.
    public var nodesTargeted: Int
    /// Of those, nodes whose agents report this generation applied.
    public var nodesApplied: Int
    /// A few nodes that failed to apply it, with why (capped; see `maxFailedNodes`).
    public var failedNodes: [FailedNode]

    /// At most this many failed nodes are listed so status stays small on large clusters.
    public static let maxFailedNodes = 10

    public init(observedGeneration: Int64? = nil, conditions: [StatusCondition] = [], nodesTargeted: Int = 0,
                nodesApplied: Int = 0, failedNodes: [FailedNode] = []) {
        self.observedGeneration = observedGeneration
        self.conditions = conditions
        self.nodesTargeted = nodesTargeted
        self.nodesApplied = nodesApplied
        self.failedNodes = failedNodes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        observedGeneration = try c.decodeIfPresent(Int64.self, forKey: .observedGeneration)
        conditions = try c.decodeIfPresent([StatusCondition].self, forKey: .conditions) ?? []
        nodesTargeted = try c.decodeIfPresent(Int.self, forKey: .nodesTargeted) ?? 0
        nodesApplied = try c.decodeIfPresent(Int.self, forKey: .nodesApplied) ?? 0
        failedNodes = try c.decodeIfPresent([FailedNode].self, forKey: .failedNodes) ?? []
    }

    /// The condition of the given type, if present.
    public func condition(_ type: String) -> StatusCondition? { conditions.first { $0.type == type } }
}

public struct FailedNode: Sendable, Hashable, Codable {
    /// The CRD's `maxLength` for `reason` (in code points): a longer one fails the whole status write.
    public static let maxReason = 1024
    public var name: String
    public var reason: String
    public init(name: String, reason: String) {
        self.name = name
        self.reason = reason
    }
}

/// A `metav1.Condition`.
public struct StatusCondition: Sendable, Hashable, Codable {
    /// Condition types TapioPolicy status uses.
    public static let accepted = "Accepted"
    public static let ready = "Ready"
    public static let degraded = "Degraded"

    public enum Status: String, Sendable, Hashable, Codable, CaseIterable {
        case `true` = "True"
        case `false` = "False"
        case unknown = "Unknown"
    }

    public var type: String
    public var status: Status
    /// CamelCase machine-readable reason, e.g. `InvalidSpec`, `AllNodesApplied`.
    public var reason: String
    /// What a person should know or do.
    public var message: String
    /// RFC 3339: when `status` last changed.
    public var lastTransitionTime: String
    public var observedGeneration: Int64?

    public init(type: String, status: Status, reason: String, message: String, lastTransitionTime: String,
                observedGeneration: Int64? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
        self.observedGeneration = observedGeneration
    }
}
