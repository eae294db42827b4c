import Foundation

/// Names kube-apiserver publishes for a resource in discovery (what `kubectl get po`, `kubectl get ins` resolve).
struct ResourceNames: Sendable {
    var singular: String
    var shortNames: [String]
    var categories: [String]
}

extension EmulatedKind {
    /// The built-in kinds' discovery names, as the real server publishes them.
    static let builtinNames: [String: ResourceNames] = [
        "/v1/namespaces": ResourceNames(singular: "namespace", shortNames: ["ns"], categories: []),
        "/v1/pods": ResourceNames(singular: "pod", shortNames: ["po"], categories: ["all"]),
        "/v1/nodes": ResourceNames(singular: "node", shortNames: ["no"], categories: []),
        "/v1/events": ResourceNames(singular: "event", shortNames: ["ev"], categories: []),
        "events.k8s.io/v1/events": ResourceNames(singular: "event", shortNames: ["ev"], categories: []),
        "coordination.k8s.io/v1/leases": ResourceNames(singular: "lease", shortNames: [], categories: []),
        "apps/v1/deployments": ResourceNames(singular: "deployment", shortNames: ["deploy"], categories: ["all"]),
        "apps/v1/statefulsets": ResourceNames(singular: "statefulset", shortNames: ["sts"], categories: ["all"]),
    ]

    /// Singular name, short names and categories: from the CRD for custom resources.
    var names: ResourceNames {
        if let crd {
            return ResourceNames(singular: crd.names.singular ?? crd.names.kind.lowercased(), shortNames: crd.names.shortNames,
                                 categories: crd.names.categories)
        }
        return Self.builtinNames[typeKey] ?? ResourceNames(singular: kind.lowercased(), shortNames: [], categories: [])
    }
}

/// Legacy (unaggregated) discovery: `/api`, `/apis`, `/apis/{group}`, `/api/v1`, `/apis/{group}/{version}`.
/// kubectl asks for aggregated discovery (`as=APIGroupDiscoveryList`) first; the emulator does not serve it, and
/// answering the legacy documents as plain `application/json` makes client-go fall back to them, as it does with
/// servers older than 1.26.
extension EmulatorStore {
    /// The discovery document for `req`, or nil when the path is not a discovery path.
    func discovery(_ req: EmulatorRequest) -> EmulatorResponse? {
        let segs = req.path.split(separator: "/").map(String.init)
        guard let root = segs.first, root == "api" || root == "apis", segs.count <= (root == "api" ? 2 : 3) else { return nil }
        let kinds = state.withLock { Array($0.kinds.values) }
        let body: JSONValue
        switch (root, segs.count) {
        case ("api", 1):
            let host = req.headers["host"] ?? "127.0.0.1"
            body = .object(["kind": "APIVersions", "versions": .array(["v1"]),
                            "serverAddressByClientCIDRs": .array([.object(["clientCIDR": "0.0.0.0/0", "serverAddress": .string(host)])])])
        case ("api", 2):
            let served = kinds.filter { $0.group.isEmpty && $0.version == segs[1] }
            guard !served.isEmpty else { return nil }
            body = Self.resourceList(groupVersion: segs[1], served)
        case ("apis", 1):
            body = .object(["kind": "APIGroupList", "apiVersion": "v1",
                            "groups": .array(Self.groups(kinds).map { Self.groupDocument($0.name, $0.versions, withTypeMeta: false) })])
        case ("apis", 2):
            guard let g = Self.groups(kinds).first(where: { $0.name == segs[1] }) else { return nil }
            body = Self.groupDocument(g.name, g.versions, withTypeMeta: true)
        default:
            let served = kinds.filter { !$0.group.isEmpty && $0.group == segs[1] && $0.version == segs[2] }
            guard !served.isEmpty else { return nil }
            body = Self.resourceList(groupVersion: "\(segs[1])/\(segs[2])", served)
        }
        // Discovery converts nothing: an `as=` clause is skipped, and nothing JSON-compatible is a 406.
        guard Negotiation.negotiate(req.headers["accept"], transforms: false) != nil else { return Negotiation.notAcceptable() }
        guard req.method == "GET" || req.method == "HEAD" else {
            return Self.status(405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
        }
        return .json(status: 200, body: body, headers: [])
    }

    /// Named groups (not the core group), built-ins first in the order the real server lists them, then CRD groups.
    static func groups(_ kinds: [EmulatedKind]) -> [(name: String, versions: [String])] {
        var byGroup: [String: Set<String>] = [:]
        for k in kinds where !k.group.isEmpty { byGroup[k.group, default: []].insert(k.version) }
        let order = ["apps", "events.k8s.io", "coordination.k8s.io"]
        let names = byGroup.keys.sorted { a, b in
            let ia = order.firstIndex(of: a) ?? order.count, ib = order.firstIndex(of: b) ?? order.count
            return ia != ib ? ia < ib : a < b
        }
        return names.map { ($0, byGroup[$0]!.sorted(by: versionPrecedes)) }
    }

    static func groupDocument(_ name: String, _ versions: [String], withTypeMeta: Bool) -> JSONValue {
        let vs = versions.map { JSONValue.object(["groupVersion": .string("\(name)/\($0)"), "version": .string($0)]) }
        var o: [String: JSONValue] = ["name": .string(name), "versions": .array(vs), "preferredVersion": vs.first ?? .null]
        if withTypeMeta { o["kind"] = "APIGroup"; o["apiVersion"] = "v1" }
        return .object(o)
    }

    static func resourceList(groupVersion: String, _ kinds: [EmulatedKind]) -> JSONValue {
        var resources: [JSONValue] = []
        for k in kinds {
            let names = k.names
            // Only the verbs the emulator implements (no deletecollection).
            let verbs: [JSONValue] = k.crd != nil ? ["delete", "get", "list", "patch", "create", "update", "watch"]
                                                   : ["create", "delete", "get", "list", "patch", "update", "watch"]
            var r: [String: JSONValue] = ["name": .string(k.plural), "singularName": .string(names.singular),
                                          "namespaced": .bool(k.namespaced), "kind": .string(k.kind), "verbs": .array(verbs)]
            if !names.shortNames.isEmpty { r["shortNames"] = .array(names.shortNames.map { .string($0) }) }
            if !names.categories.isEmpty { r["categories"] = .array(names.categories.map { .string($0) }) }
            resources.append(.object(r))
            if k.hasStatus {
                resources.append(.object(["name": .string("\(k.plural)/status"), "singularName": "", "namespaced": .bool(k.namespaced),
                                          "kind": .string(k.kind), "verbs": .array(["get", "patch", "update"])]))
            }
        }
        resources.sort { ($0["name"]?.stringValue ?? "") < ($1["name"]?.stringValue ?? "") }
        return .object(["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(groupVersion),
                        "resources": .array(resources)])
    }

    /// Kubernetes version ordering: GA before beta before alpha, higher numbers first (`v2`, `v1`, `v1beta2`, `v1alpha1`).
    static func versionPrecedes(_ a: String, _ b: String) -> Bool {
        func key(_ v: String) -> (Int, Int, Int)? {
            guard v.hasPrefix("v") else { return nil }
            let rest = v.dropFirst()
            let major = Int(rest.prefix { $0.isNumber }) ?? -1
            guard major >= 0 else { return nil }
            let tail = rest.drop { $0.isNumber }
            if tail.isEmpty { return (3, major, 0) }
            for (label, rank) in [("beta", 2), ("alpha", 1)] where tail.hasPrefix(label) {
                guard let minor = Int(tail.dropFirst(label.count)) else { return nil }
                return (rank, major, minor)
            }
            return nil
        }
        switch (key(a), key(b)) {
        case let (ka?, kb?): return ka != kb ? (ka.0, ka.1, ka.2) > (kb.0, kb.1, kb.2) : a < b
        case (.some, nil): return true
        case (nil, .some): return false
        default: return a < b
        }
    }
}
