import Foundation

/// A kind the emulator serves: where it lives in URLs and how it behaves.
public struct EmulatedKind: Sendable {
    public var group: String
    public var version: String
    public var kind: String
    public var plural: String
    public var namespaced: Bool
    /// Has a `/status` subresource: status is written only through it, spec only through the main resource.
    public var hasStatus: Bool
    /// Field selectors the real server supports for this kind (besides metadata.name/namespace).
    public var fieldSelectors: Set<String>
    /// For custom resources: the definition (schema, defaults, pruning).
    public var crd: CustomResourceDefinition?

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    var typeKey: String { "\(group)/\(version)/\(plural)" }
    /// How the API server names the resource in messages (`pods`, `deployments.apps`).
    var qualifiedResource: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// Core `v1` or `events.k8s.io/v1` Event: two APIs over one stored object, as in kube-apiserver.
    var isEvent: Bool { crd == nil && kind == "Event" && version == "v1" && (group.isEmpty || group == "events.k8s.io") }
    /// Where objects of this kind are kept, in history and watches too. Kinds served by several APIs share one
    /// store (Events are stored once, in the core `v1` form, and each API is a view of them); others use `typeKey`.
    var storageKey: String { isEvent ? EventStorage.storageKey : typeKey }
    /// A stored object as this kind's API shows it.
    func view(_ stored: JSONValue) -> JSONValue { isEvent ? EventStorage.view(stored, as: self) : stored }
    /// Stored objects are converted to this API's field names before field selectors run; a few selectable fields
    /// are not the object's own path. Each entry lists paths tried in order, the first non-empty value winning
    /// (a core Event's `source` is `source.component`, or the reporting component when that is empty).
    var fieldSelectorFallbacks: [String: [String]] {
        guard isEvent else { return [:] }
        // events.k8s.io/v1 has no `source` field label (kube-apiserver 1.36: "field label not supported: source").
        return group.isEmpty ? ["source": ["source.component", "reportingComponent"]] : [:]
    }

    public init(group: String, version: String, kind: String, plural: String, namespaced: Bool, hasStatus: Bool,
                fieldSelectors: Set<String> = [], crd: CustomResourceDefinition? = nil) {
        self.group = group; self.version = version; self.kind = kind; self.plural = plural
        self.namespaced = namespaced; self.hasStatus = hasStatus; self.fieldSelectors = fieldSelectors; self.crd = crd
    }

    /// The built-in kinds Tapio uses.
    public static let builtins: [EmulatedKind] = [
        EmulatedKind(group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, hasStatus: true,
                     fieldSelectors: ["status.phase"]),
        EmulatedKind(group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, hasStatus: true,
                     fieldSelectors: ["spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName",
                                      "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"]),
        EmulatedKind(group: "", version: "v1", kind: "Node", plural: "nodes", namespaced: false, hasStatus: true,
                     fieldSelectors: ["spec.unschedulable"]),
        EmulatedKind(group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", namespaced: true, hasStatus: false,
                     fieldSelectors: ["regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                                      "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
                                      "reason", "reportingController", "type"]),
        EmulatedKind(group: "", version: "v1", kind: "Event", plural: "events", namespaced: true, hasStatus: false,
                     fieldSelectors: ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                                      "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                                      "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"]),
        EmulatedKind(group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true, hasStatus: false),
        EmulatedKind(group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, hasStatus: true),
        EmulatedKind(group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true, hasStatus: true),
    ]

    /// The kinds a CRD serves (one per served version).
    public static func from(crd: CustomResourceDefinition) -> [EmulatedKind] {
        crd.versions.filter(\.served).map { v in
            EmulatedKind(group: crd.group, version: v.name, kind: crd.names.kind, plural: crd.names.plural,
                         namespaced: crd.scope == .namespaced, hasStatus: v.statusSubresource, crd: crd)
        }
    }
}
