import Foundation

/// A kind the client can read and write. Built-ins and Tapio's CRDs conform the same way; decoding must ignore
/// unknown fields (Swift's synthesized `Decodable` does), so a newer server never breaks an older client.
public protocol KubeResource: Codable, Sendable {
    /// `v1`, `apps/v1`, `tapio.io/v1alpha1`.
    static var apiVersion: String { get }
    static var kind: String { get }
    /// The lower-case plural in URLs (`pods`, `tapiopolicies`).
    static var plural: String { get }
    static var namespaced: Bool { get }
    var metadata: ObjectMeta { get set }
}

extension KubeResource {
    /// `namespace/name` (or `name` for cluster-scoped objects): the key stores and work queues use.
    public var key: String { metadata.key }
}

/// `metav1.ObjectMeta`, the fields Tapio uses.
public struct ObjectMeta: Codable, Sendable, Hashable {
    public var name: String?
    public var generateName: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var ownerReferences: [OwnerReference]?
    public var finalizers: [String]?

    public init(name: String? = nil, namespace: String? = nil, labels: [String: String]? = nil,
                annotations: [String: String]? = nil, resourceVersion: String? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.resourceVersion = resourceVersion
    }

    public var key: String {
        if let namespace, !namespace.isEmpty { return "\(namespace)/\(name ?? "")" }
        return name ?? ""
    }
}

public struct OwnerReference: Codable, Sendable, Hashable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?
    public var blockOwnerDeletion: Bool?
    public init(apiVersion: String, kind: String, name: String, uid: String, controller: Bool? = nil) {
        self.apiVersion = apiVersion; self.kind = kind; self.name = name; self.uid = uid; self.controller = controller
    }
}

/// `metav1.LabelSelector`.
public struct LabelSelector: Codable, Sendable, Hashable {
    public struct Requirement: Codable, Sendable, Hashable {
        public var key: String
        public var `operator`: String
        public var values: [String]?
        public init(key: String, operator: String, values: [String]? = nil) {
            self.key = key; self.operator = `operator`; self.values = values
        }
    }
    public var matchLabels: [String: String]?
    public var matchExpressions: [Requirement]?
    public init(matchLabels: [String: String]? = nil, matchExpressions: [Requirement]? = nil) {
        self.matchLabels = matchLabels; self.matchExpressions = matchExpressions
    }
    /// The selector in the query-string syntax (`app=web,tier in (a,b)`).
    public var queryString: String {
        var parts = (matchLabels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        for e in matchExpressions ?? [] {
            switch e.operator {
            case "In": parts.append("\(e.key) in (\((e.values ?? []).joined(separator: ",")))")
            case "NotIn": parts.append("\(e.key) notin (\((e.values ?? []).joined(separator: ",")))")
            case "Exists": parts.append(e.key)
            case "DoesNotExist": parts.append("!\(e.key)")
            default: break
            }
        }
        return parts.joined(separator: ",")
    }
}

/// `metav1.ListMeta`.
public struct ListMeta: Codable, Sendable, Hashable {
    public var resourceVersion: String?
    public var `continue`: String?
    public var remainingItemCount: Int64?
}

/// One page of a list. Items that do not decode as `K` are skipped (`undecodable`), so one bad object does not fail
/// the list of every other.
public struct ObjectList<K: KubeResource>: Codable, Sendable {
    public var metadata: ListMeta
    public var items: [K]
    /// The items skipped because they did not decode: the first `maxUndecodableKept`, all counted in
    /// `undecodableCount`. Never encoded.
    public var undecodable: [UndecodableObject] = []
    public var undecodableCount = 0
    public static var maxUndecodableKept: Int { 16 }

    public init(metadata: ListMeta, items: [K]) {
        self.metadata = metadata
        self.items = items
    }

    private enum CodingKeys: String, CodingKey { case metadata, items }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try c.decodeIfPresent(ListMeta.self, forKey: .metadata) ?? ListMeta()
        items = []
        // `items` is null or absent in some servers' empty lists.
        guard c.contains(.items), !(try c.decodeNil(forKey: .items)) else { return }
        var list = try c.nestedUnkeyedContainer(forKey: .items)
        if let n = list.count { items.reserveCapacity(n) }
        while !list.isAtEnd {
            do {
                items.append(try list.decode(K.self))
            } catch {
                // A failed decode leaves the container on the same element; this one always succeeds and moves on.
                let identity = try list.decode(UndecodableObject.Identity.self)
                undecodableCount += 1
                if undecodable.count < Self.maxUndecodableKept {
                    undecodable.append(UndecodableObject(identity: identity, error: error))
                }
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(metadata, forKey: .metadata)
        try c.encode(items, forKey: .items)
    }
}

/// A core `ObjectReference` (`regarding`, `involvedObject`).
public struct ObjectReference: Codable, Sendable, Hashable {
    public var apiVersion: String?
    public var kind: String?
    public var name: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var fieldPath: String?
    public init(apiVersion: String? = nil, kind: String? = nil, name: String? = nil, namespace: String? = nil,
                uid: String? = nil, fieldPath: String? = nil) {
        self.apiVersion = apiVersion; self.kind = kind; self.name = name; self.namespace = namespace
        self.uid = uid; self.fieldPath = fieldPath
    }
    /// A reference to `object`.
    public init<K: KubeResource>(_ object: K) {
        self.init(apiVersion: K.apiVersion, kind: K.kind, name: object.metadata.name,
                  namespace: object.metadata.namespace, uid: object.metadata.uid)
    }
}

/// `metav1.Condition` (also fits node and pod conditions, whose extra fields are optional here).
public struct Condition: Codable, Sendable, Hashable {
    public var type: String
    public var status: String
    public var reason: String?
    public var message: String?
    public var lastTransitionTime: String?
    public var observedGeneration: Int64?
    public init(type: String, status: String, reason: String? = nil, message: String? = nil,
                lastTransitionTime: String? = nil, observedGeneration: Int64? = nil) {
        self.type = type; self.status = status; self.reason = reason; self.message = message
        self.lastTransitionTime = lastTransitionTime; self.observedGeneration = observedGeneration
    }
}

/// Splits `apps/v1` into group `apps` and version `v1` (`v1` → group "").
public func splitAPIVersion(_ apiVersion: String) -> (group: String, version: String) {
    if let slash = apiVersion.firstIndex(of: "/") {
        return (String(apiVersion[..<slash]), String(apiVersion[apiVersion.index(after: slash)...]))
    }
    return ("", apiVersion)
}

/// Where a kind lives in URLs; also the key for the untyped API.
public struct ResourceType: Sendable, Hashable {
    public var apiVersion: String
    public var kind: String
    public var plural: String
    public var namespaced: Bool
    public init(apiVersion: String, kind: String, plural: String, namespaced: Bool) {
        self.apiVersion = apiVersion; self.kind = kind; self.plural = plural; self.namespaced = namespaced
    }
    public init<K: KubeResource>(_: K.Type) {
        self.init(apiVersion: K.apiVersion, kind: K.kind, plural: K.plural, namespaced: K.namespaced)
    }

    /// `/api/v1/namespaces/ns/pods/name/status` and friends. `namespace` nil on a namespaced type → all namespaces.
    public func path(namespace: String?, name: String? = nil, subresource: String? = nil) -> String {
        let (group, version) = splitAPIVersion(apiVersion)
        var p = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced, let namespace { p += "/namespaces/\(escape(namespace))" }
        p += "/\(plural)"
        if let name { p += "/\(escape(name))" }
        if let subresource { p += "/\(subresource)" }
        return p
    }

    private func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? s
    }
}
