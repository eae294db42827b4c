import Foundation

/// Why a CRD manifest could not be read.
public enum CRDError: Error, Sendable, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let s): "invalid CustomResourceDefinition: \(s)"
        }
    }
}

/// An `apiextensions.k8s.io/v1` CustomResourceDefinition as the API server (and the in-repo emulator) uses it.
///
///     let crd = try CustomResourceDefinition.load(yamlFile: "crds/tapio.io_tapiopolicies.yaml")
///     let problems = StructuralSchemaCheck.problems(crd)           // what kube-apiserver would refuse
///     var obj = try JSONValue.parseYAML(manifest)
///     SchemaDefaulter.prune(&obj, crd: crd)                        // drop unknown fields
///     SchemaDefaulter.applyDefaults(&obj, crd: crd)                // fill defaults
///     let errors = SchemaValidator.validate(obj, against: crd)     // 422 causes, [] when valid
public struct CustomResourceDefinition: Sendable {
    public enum Scope: String, Sendable { case namespaced = "Namespaced", cluster = "Cluster" }

    public struct Names: Sendable, Hashable {
        public var kind: String
        public var listKind: String?
        public var plural: String
        public var singular: String?
        public var shortNames: [String]
        public var categories: [String]
    }

    public struct PrinterColumn: Sendable, Hashable {
        public var name: String
        public var type: String
        public var format: String?
        public var jsonPath: String
        public var description: String?
        public var priority: Int64
    }

    public struct ScaleSubresource: Sendable, Hashable {
        public var specReplicasPath: String
        public var statusReplicasPath: String
        public var labelSelectorPath: String?
    }

    public struct Version: Sendable {
        public var name: String
        public var served: Bool
        public var storage: Bool
        public var deprecated: Bool
        /// `schema.openAPIV3Schema`; nil if absent (the API server refuses that for v1 CRDs).
        public var schema: JSONSchemaProps?
        /// True when `subresources.status` is present: `/status` exists and the main endpoint ignores status.
        public var statusSubresource: Bool
        public var scaleSubresource: ScaleSubresource?
        public var printerColumns: [PrinterColumn]
    }

    /// `metadata.name` of the CRD itself (must be `<plural>.<group>`).
    public var name: String
    public var group: String
    public var names: Names
    public var scope: Scope
    public var versions: [Version]
    /// `spec.preserveUnknownFields` (must be false or absent in v1).
    public var preserveUnknownFields: Bool
    /// The whole manifest, for checks that look at what was written.
    public var raw: JSONValue

    /// The version objects are stored in (exactly one has `storage: true` in a valid CRD).
    public var storageVersion: Version? { versions.first { $0.storage } }

    /// The named version, or the storage version when `name` is nil.
    public func version(_ name: String? = nil) -> Version? {
        guard let name else { return storageVersion ?? versions.first }
        return versions.first { $0.name == name }
    }

    /// `group/version` strings this CRD serves, e.g. `tapio.io/v1alpha1`.
    public var servedAPIVersions: [String] { versions.filter(\.served).map { "\(group)/\($0.name)" } }

    /// Reads a CRD manifest file (YAML or JSON).
    public static func load(yamlFile path: String) throws -> CustomResourceDefinition {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CRDError.invalid("cannot read \(path): \(error.localizedDescription)")
        }
        return try load(yaml: text)
    }

    /// Parses a CRD manifest (a single YAML or JSON document).
    public static func load(yaml: String) throws -> CustomResourceDefinition {
        let docs = try JSONValue.parseYAMLDocuments(yaml)
        guard docs.count == 1 else { throw CRDError.invalid("expected one YAML document, found \(docs.count)") }
        return try load(json: docs[0])
    }

    /// Builds a CRD from its decoded JSON form.
    public static func load(json: JSONValue) throws -> CustomResourceDefinition {
        guard json["apiVersion"]?.stringValue == "apiextensions.k8s.io/v1" else {
            throw CRDError.invalid("apiVersion must be \"apiextensions.k8s.io/v1\", got \(json["apiVersion"]?.goRendered ?? "nothing")")
        }
        guard json["kind"]?.stringValue == "CustomResourceDefinition" else {
            throw CRDError.invalid("kind must be \"CustomResourceDefinition\"")
        }
        guard let spec = json["spec"], case .object = spec else { throw CRDError.invalid("spec: Required value") }
        let name = json["metadata"]?["name"]?.stringValue ?? ""
        guard let group = spec["group"]?.stringValue else { throw CRDError.invalid("spec.group: Required value") }
        guard let n = spec["names"], let kind = n["kind"]?.stringValue, let plural = n["plural"]?.stringValue else {
            throw CRDError.invalid("spec.names.kind and spec.names.plural are required")
        }
        let names = Names(kind: kind, listKind: n["listKind"]?.stringValue, plural: plural,
                          singular: n["singular"]?.stringValue,
                          shortNames: n["shortNames"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                          categories: n["categories"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        guard let scopeText = spec["scope"]?.stringValue, let scope = Scope(rawValue: scopeText) else {
            throw CRDError.invalid("spec.scope: must be \"Namespaced\" or \"Cluster\", got \(spec["scope"]?.goRendered ?? "nothing")")
        }
        guard let vs = spec["versions"]?.arrayValue, !vs.isEmpty else {
            throw CRDError.invalid("spec.versions: must have at least one version")
        }
        var versions: [Version] = []
        for (i, v) in vs.enumerated() {
            let p = "spec.versions[\(i)]"
            guard let vname = v["name"]?.stringValue else { throw CRDError.invalid("\(p).name: Required value") }
            let schema = try v["schema"]?["openAPIV3Schema"].map {
                try JSONSchemaProps($0, path: "\(p).schema.openAPIV3Schema")
            }
            var columns: [PrinterColumn] = []
            for (j, c) in (v["additionalPrinterColumns"]?.arrayValue ?? []).enumerated() {
                guard let cn = c["name"]?.stringValue, let ct = c["type"]?.stringValue,
                      let jp = c["jsonPath"]?.stringValue else {
                    throw CRDError.invalid("\(p).additionalPrinterColumns[\(j)]: name, type and jsonPath are required")
                }
                columns.append(PrinterColumn(name: cn, type: ct, format: c["format"]?.stringValue, jsonPath: jp,
                                             description: c["description"]?.stringValue,
                                             priority: c["priority"]?.intValue ?? 0))
            }
            let sub = v["subresources"]
            let scale = sub?["scale"].flatMap { s -> ScaleSubresource? in
                guard let spec = s["specReplicasPath"]?.stringValue, let st = s["statusReplicasPath"]?.stringValue
                else { return nil }
                return ScaleSubresource(specReplicasPath: spec, statusReplicasPath: st,
                                        labelSelectorPath: s["labelSelectorPath"]?.stringValue)
            }
            versions.append(Version(name: vname, served: v["served"]?.boolValue ?? false,
                                    storage: v["storage"]?.boolValue ?? false,
                                    deprecated: v["deprecated"]?.boolValue ?? false, schema: schema,
                                    statusSubresource: sub?["status"] != nil, scaleSubresource: scale,
                                    printerColumns: columns))
        }
        return CustomResourceDefinition(name: name, group: group, names: names, scope: scope, versions: versions,
                                        preserveUnknownFields: spec["preserveUnknownFields"]?.boolValue ?? false,
                                        raw: json)
    }
}
