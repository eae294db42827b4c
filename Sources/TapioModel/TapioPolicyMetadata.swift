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

extension PolicyLabelSelector {
    /// The selector in the API's query syntax (`a=b,c in (x,y),d notin (z),e,!f`), for `?labelSelector=`.
    public var query: String {
        var parts = (matchLabels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        for e in matchExpressions ?? [] {
            let values = (e.values ?? []).joined(separator: ",")
            switch e.operator {
            case "In": parts.append("\(e.key) in (\(values))")
            case "NotIn": parts.append("\(e.key) notin (\(values))")
            case "Exists": parts.append(e.key)
            case "DoesNotExist": parts.append("!" + e.key)
            default: continue
            }
        }
        return parts.joined(separator: ",")
    }

    /// Why no set of labels can satisfy this selector (requirements on one key that contradict each other), or nil.
    /// Kubernetes accepts such selectors silently; a policy using one would quietly select nothing.
    public var contradiction: String? {
        // Per key: the values it may take (nil = any), the values it may not, whether it must exist / be absent.
        struct Rule { var allowed: Set<String>?; var denied: Set<String> = []; var exists = false; var absent = false; var why: [String] = [] }
        var rules: [String: Rule] = [:]
        for (k, v) in matchLabels ?? [:] {
            var r = rules[k] ?? Rule()
            r.allowed = (r.allowed ?? [v]).intersection([v])
            r.exists = true
            r.why.append("matchLabels \(k)=\(v)")
            rules[k] = r
        }
        for (i, e) in (matchExpressions ?? []).enumerated() {
            var r = rules[e.key] ?? Rule()
            let values = Set(e.values ?? [])
            switch e.operator {
            case "In": r.allowed = (r.allowed ?? values).intersection(values); r.exists = true
            case "NotIn": r.denied.formUnion(values)
            case "Exists": r.exists = true
            case "DoesNotExist": r.absent = true
            default: continue
            }
            r.why.append("matchExpressions[\(i)] \(e.key) \(e.operator)\(values.isEmpty ? "" : " \(values.sorted())")")
            rules[e.key] = r
        }
        for k in rules.keys.sorted() {
            let r = rules[k]!
            let impossible = (r.absent && r.exists) || (r.allowed.map { $0.subtracting(r.denied).isEmpty } ?? false)
            if impossible {
                return "label \(FieldError.quoted(k)) cannot satisfy all of \(r.why.joined(separator: ", ")), so this selector matches nothing"
            }
        }
        return nil
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
