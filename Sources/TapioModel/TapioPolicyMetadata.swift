/// The subset of Kubernetes `ObjectMeta` the model's resources carry. Unknown metadata fields are ignored on decode.
/// Named apart from KubeClient's wire `ObjectMeta` (and `OwnerReference`, `LabelSelector`) so files importing both
/// modules need no qualification.
public struct ResourceMeta: Sendable, Hashable, Codable {
    public var name: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    /// RFC 3339.
    public var creationTimestamp: String?
    public var ownerReferences: [ResourceOwnerReference]?

    public init(name: String? = nil, namespace: String? = nil, uid: String? = nil, resourceVersion: String? = nil,
                generation: Int64? = nil, labels: [String: String]? = nil, annotations: [String: String]? = nil,
                creationTimestamp: String? = nil, ownerReferences: [ResourceOwnerReference]? = nil) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.generation = generation
        self.labels = labels
        self.annotations = annotations
        self.creationTimestamp = creationTimestamp
        self.ownerReferences = ownerReferences
    }
}

/// `metadata.ownerReferences[]`.
public struct ResourceOwnerReference: Sendable, Hashable, Codable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?
    public var blockOwnerDeletion: Bool?

    public init(apiVersion: String, kind: String, name: String, uid: String, controller: Bool? = nil,
                blockOwnerDeletion: Bool? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.uid = uid
        self.controller = controller
        self.blockOwnerDeletion = blockOwnerDeletion
    }
}

/// A Kubernetes label selector (`matchLabels` AND every `matchExpressions` entry). An empty selector matches all.
public struct PolicyLabelSelector: Sendable, Hashable, Codable {
    public var matchLabels: [String: String]?
    public var matchExpressions: [LabelSelectorRequirement]?

    public init(matchLabels: [String: String]? = nil, matchExpressions: [LabelSelectorRequirement]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// True if `labels` satisfy the selector (unknown operators match nothing; validation rejects them).
    public func matches(_ labels: [String: String]) -> Bool {
        for (k, v) in matchLabels ?? [:] where labels[k] != v { return false }
        for e in matchExpressions ?? [] where !e.matches(labels) { return false }
        return true
    }
}

/// One `matchExpressions` entry: `In`/`NotIn` need values, `Exists`/`DoesNotExist` must have none.
public struct LabelSelectorRequirement: Sendable, Hashable, Codable {
    /// The operators Kubernetes label selectors support.
    public static let operators = ["In", "NotIn", "Exists", "DoesNotExist"]

    public var key: String
    /// One of `operators`; kept as text so validation can report a bad one with its path instead of a decode error.
    public var `operator`: String
    public var values: [String]?

    public init(key: String, operator: String, values: [String]? = nil) {
        self.key = key
        self.operator = `operator`
        self.values = values
    }

    public func matches(_ labels: [String: String]) -> Bool {
        switch `operator` {
        case "In": return labels[key].map { (values ?? []).contains($0) } ?? false
        case "NotIn": return labels[key].map { !(values ?? []).contains($0) } ?? true
        case "Exists": return labels[key] != nil
        case "DoesNotExist": return labels[key] == nil
        default: return false
        }
    }
}

/// The model's label selector under its original name, kept for code that already uses it. Where KubeClient is
/// imported too (it has its own `LabelSelector`), write `PolicyLabelSelector`.
public typealias LabelSelector = PolicyLabelSelector
