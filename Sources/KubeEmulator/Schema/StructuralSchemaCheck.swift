import Foundation

/// What kube-apiserver (apiextensions-apiserver, v1.36) refuses when a v1 CustomResourceDefinition is created or
/// updated, checked offline so a test can prove the repo's CRDs would be accepted. Each problem is one line shaped
/// like the server's (`spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: …`).
///
/// Enforced (apiextensions `ValidateCustomResourceDefinition`, `ValidateCustomResourceDefinitionOpenAPISchema` and
/// `structuralschema.ValidateStructural`):
/// - names: `metadata.name` is `<plural>.<group>`; group has a dot; plural/singular/shortNames/categories are
///   lowercase DNS-1035 labels; kind starts upper-case; listKind differs from kind.
/// - versions: unique DNS-1035 names; exactly one storage version; at least one served; every version has a
///   schema; `preserveUnknownFields` is false.
/// - structural schema: every node has a `type` (root, items, fields), except under `x-kubernetes-int-or-string`,
///   `x-kubernetes-preserve-unknown-fields: true` or embedded resources; the root is a non-nullable object without
///   `additionalProperties`; `apiVersion`/`kind` are strings; `metadata` is `type: object` restricting at most
///   `name`/`generateName` (nothing else, not even a description); no defaults in top-level metadata/apiVersion/kind;
///   `properties` exclude `additionalProperties` (false or a schema); `uniqueItems: true`, `id`, `$ref`,
///   `definitions`, `dependencies`, `patternProperties`, `additionalItems`, `type: null` are forbidden; arrays have a
///   single `items` schema; `x-kubernetes-preserve-unknown-fields` is true or absent; int-or-string has no `type`,
///   only the `anyOf: [integer, string]` form and no preserve-unknown-fields; embedded resources are objects with
///   properties or preserve-unknown-fields and no additionalProperties; `allOf`/`anyOf`/`oneOf`/`not` carry no
///   `type` (but int-or-string's), `default`, `description`, `title`, `nullable`, `additionalProperties`,
///   `x-kubernetes-*` or `metadata`; patterns compile; list types are atomic/set/map on arrays, and a `map` list has
///   `x-kubernetes-list-map-keys` naming scalar item properties that are required or defaulted.
/// - defaults: valid against their own schema and free of fields pruning would drop.
/// - with the status subresource: only the server's `allowedFieldsAtRootSchema` keys at the root.
/// - printer columns: type among integer/number/string/boolean/date, known format, priority ≥ 0, unique names, a
///   JSONPath starting with `.`.
///
/// Stricter than the server, on purpose (each would otherwise pass creation and fail later):
/// - enum values must match their node's type (a YAML 1.1 `Off` read as `false` would make every object invalid —
///   DESIGN.md §5);
/// - a printer column's JSONPath must name a field of the schema (the server prints an empty column otherwise).
///
/// Not checked: CEL `x-kubernetes-validations` (compilation and cost) and the structural "completeness" rule for
/// fields named only inside value validations.
public enum StructuralSchemaCheck {
    /// Every problem found; empty means the API server would accept the CRD.
    public static func problems(_ crd: CustomResourceDefinition) -> [String] {
        var out: [String] = []
        let n = crd.names
        if crd.name != "\(n.plural).\(crd.group)" {
            out.append("metadata.name: Invalid value: \(FieldErrorText.q(crd.name)): must be spec.names.plural+\".\"+spec.group")
        }
        if !crd.group.contains(".") || !isDNSSubdomain(crd.group) {
            out.append("spec.group: Invalid value: \(FieldErrorText.q(crd.group)): should be a domain with at least one dot")
        }
        if !isDNS1035(n.plural) { out.append("spec.names.plural: Invalid value: \(FieldErrorText.q(n.plural)): a lowercase RFC 1035 label is required") }
        if let s = n.singular, !isDNS1035(s) { out.append("spec.names.singular: Invalid value: \(FieldErrorText.q(s)): a lowercase RFC 1035 label is required") }
        for (i, s) in n.shortNames.enumerated() where !isDNS1035(s) {
            out.append("spec.names.shortNames[\(i)]: Invalid value: \(FieldErrorText.q(s)): a lowercase RFC 1035 label is required")
        }
        for (i, c) in n.categories.enumerated() where !isDNS1035(c) {
            out.append("spec.names.categories[\(i)]: Invalid value: \(FieldErrorText.q(c)): a lowercase RFC 1035 label is required")
        }
        if n.kind.first.map({ !$0.isUppercase }) ?? true {
            out.append("spec.names.kind: Invalid value: \(FieldErrorText.q(n.kind)): must start with an upper-case letter")
        }
        if let lk = n.listKind, lk == n.kind {
            out.append("spec.names.listKind: Invalid value: \(FieldErrorText.q(lk)): kind and listKind must be different")
        }
        if crd.preserveUnknownFields {
            out.append("spec.preserveUnknownFields: Invalid value: true: must be false in order to use defaults in the schema")
        }
        var seen = Set<String>()
        for (i, v) in crd.versions.enumerated() where !seen.insert(v.name).inserted {
            out.append("spec.versions[\(i)].name: Duplicate value: \(FieldErrorText.q(v.name))")
        }
        for (i, v) in crd.versions.enumerated() where !isDNS1035(v.name) {
            out.append("spec.versions[\(i)].name: Invalid value: \(FieldErrorText.q(v.name)): a DNS-1035 label is required")
        }
        let storage = crd.versions.filter(\.storage).count
        if storage != 1 {
            out.append("spec.versions: Invalid value: \(storage): must have exactly one version marked as storage version")
        }
        if !crd.versions.contains(where: \.served) {
            out.append("spec.versions: Invalid value: must have at least one served version")
        }
        for (i, v) in crd.versions.enumerated() {
            let vp = "spec.versions[\(i)]"
            guard let schema = v.schema else {
                out.append("\(vp).schema.openAPIV3Schema: Required value: schemas are required")
                continue
            }
            let sp = "\(vp).schema.openAPIV3Schema"
            if let t = schema.type, t != "object" {
                out.append("\(sp).type: Invalid value: \(FieldErrorText.q(t)): must be object at the root")
            }
            if v.statusSubresource || v.scaleSubresource != nil {
                // apiextensions `allowedFieldsAtRootSchema`: the status schema is cut out of properties[status].
                for k in schema.raw.keys.sorted() where !rootAllowedWithSubresources.contains(k) {
                    out.append("\(sp): Invalid value: only \(rootAllowedWithSubresources.sorted()) fields are allowed at the root of the schema if the status subresource is enabled (found \(k))")
                }
            }
            if schema.nullable { out.append("\(sp).nullable: Forbidden: nullable cannot be true at the root") }
            if schema.raw["additionalProperties"] != nil {
                out.append("\(sp).additionalProperties: Forbidden: must not be used at the root")
            }
            for k in ["metadata", "apiVersion", "kind"] where schema.properties[k]?.defaultValue != nil {
                out.append("\(sp).properties[\(k)].default: Forbidden: must not be set in top-level \(k)")
            }
            for k in ["apiVersion", "kind"] {
                if let p = schema.properties[k], p.type != "string" {
                    out.append("\(sp).properties[\(k)].type: Invalid value: \(FieldErrorText.q(p.type ?? "")): must be string")
                }
            }
            if let meta = schema.properties["metadata"] {
                checkMetadata(meta, path: "\(sp).properties[metadata]", into: &out)
            }
            walk(schema, path: sp, nested: false, level: .root, into: &out)
            checkColumns(v, schema: schema, path: vp, into: &out)
        }
        return out
    }

    // MARK: - Schema nodes

    enum Level { case root, item, field }

    static let rootAllowedWithSubresources: Set<String> = [
        "description", "type", "format", "title", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
        "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "required", "items",
        "properties", "externalDocs", "example", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations",
    ]

    static func walk(_ s: JSONSchemaProps, path: String, nested: Bool, level: Level, into out: inout [String]) {
        if nested {
            // Inside allOf/anyOf/oneOf/not only value validations may appear.
            // structuralschema validateNestedValueValidation: only value validations under a junctor.
            for k in ["default", "description", "nullable", "additionalProperties", "title"] where s.raw[k] != nil {
                out.append("\(path).\(k): Forbidden: must be undefined to be structural")
            }
            for k in s.raw.keys.sorted() where k.hasPrefix("x-kubernetes-") && k != "x-kubernetes-validations" {
                out.append("\(path).\(k): Forbidden: must be undefined to be structural")
            }
            if s.properties["metadata"] != nil {
                out.append("\(path).properties[metadata]: Forbidden: must not be specified in a nested context")
            }
        } else {
            let untyped = s.intOrString || s.preservesUnknownFields
            if (s.type ?? "").isEmpty && !untyped && !s.embeddedResource {
                let what = level == .root ? "at the root" : level == .item ? "for specified array items" : "for specified object fields"
                out.append("\(path).type: Required value: must not be empty \(what)")
            }
        }
        for k in ["id", "additionalItems", "patternProperties", "definitions", "dependencies", "$ref"] where s.raw[k] != nil {
            out.append("\(path).\(k): Forbidden: \(k) is not supported")
        }
        if s.type == "null" {
            out.append("\(path).type: Forbidden: type cannot be set to null, use nullable as an alternative")
        }
        if let t = s.type, t != "null", !["object", "array", "string", "integer", "number", "boolean"].contains(t) {
            out.append("\(path).type: Unsupported value: \(FieldErrorText.q(t)): supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"")
        }
        // `additionalProperties: true` beside properties is tolerated; false or a schema is not.
        if !s.properties.isEmpty && (s.additionalProperties != nil || s.additionalPropertiesBool == false) {
            out.append("\(path).additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive")
        }
        if s.intOrString && s.preservesUnknownFields {
            out.append("\(path).x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true")
        }
        if s.embeddedResource && s.raw["additionalProperties"] != nil {
            out.append("\(path).additionalProperties: Forbidden: must not be used if x-kubernetes-embedded-resource is set")
        }
        if s.uniqueItems {
            out.append("\(path).uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic")
        }
        if s.preserveUnknownFields == false {
            out.append("\(path).x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined")
        }
        if s.type == "array" && s.items == nil && !nested {
            out.append("\(path).items: Required value: must be specified")
        }
        if s.intOrString {
            if let t = s.type, !t.isEmpty {
                out.append("\(path).type: Invalid value: \(FieldErrorText.q(t)): must be empty if x-kubernetes-int-or-string is true")
            }
            if !s.anyOf.isEmpty && !isIntOrStringAnyOf(s.anyOf) {
                out.append("\(path).anyOf: Forbidden: x-kubernetes-int-or-string requires anyOf to be [{type: integer}, {type: string}] if given")
            }
        }
        if s.embeddedResource {
            if s.type != "object" {
                out.append("\(path).type: Invalid value: \(FieldErrorText.q(s.type ?? "")): must be object if x-kubernetes-embedded-resource is true")
            }
            if s.properties.isEmpty && !s.preservesUnknownFields {
                out.append("\(path).properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields")
            }
        }
        if let p = s.pattern, (try? NSRegularExpression(pattern: p)) == nil {
            out.append("\(path).pattern: Invalid value: \(FieldErrorText.q(p)): must be a valid regular expression")
        }
        if s.listType != nil && s.type != "array" && !nested {
            out.append("\(path).type: Invalid value: \(FieldErrorText.q(s.type ?? "")): must be array if x-kubernetes-list-type is specified")
        }
        if s.listType == "map" {
            if s.listMapKeys.isEmpty {
                out.append("\(path).x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map")
            }
            if let items = s.items {
                if items.type != "object" {
                    out.append("\(path).items.type: Invalid value: \(FieldErrorText.q(items.type ?? "")): must be object if parent array's x-kubernetes-list-type is map")
                }
                for k in s.listMapKeys {
                    guard let p = items.properties[k] else {
                        out.append("\(path).x-kubernetes-list-map-keys: Invalid value: \(FieldErrorText.q(k)): entries must all be names of item properties")
                        continue
                    }
                    if p.type == "array" || p.type == "object" {
                        out.append("\(path).items.properties[\(k)].type: Invalid value: must be a scalar type if parent array's x-kubernetes-list-type is map")
                    }
                    if !items.required.contains(k) && p.defaultValue == nil {
                        out.append("\(path).items.properties[\(k)].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property")
                    }
                }
            } else {
                out.append("\(path).items: Required value: must have a schema if x-kubernetes-list-type is map")
            }
        } else if !s.listMapKeys.isEmpty {
            out.append("\(path).x-kubernetes-list-type: Invalid value: must be map if x-kubernetes-list-map-keys is non-empty")
        }
        if let lt = s.listType, !["atomic", "set", "map"].contains(lt) {
            out.append("\(path).x-kubernetes-list-type: Unsupported value: \(FieldErrorText.q(lt)): supported values: \"atomic\", \"map\", \"set\"")
        }
        if let e = s.enumValues, !nested {
            for (i, v) in e.enumerated() where !SchemaValidator.validate(v, against: typeOnly(s), path: "").isEmpty {
                out.append("\(path).enum[\(i)]: Invalid value: \(v.goRendered): must be of type \(s.type ?? "integer or string") (an unquoted Off/On/Yes/No is a YAML 1.1 boolean)")
            }
        }
        if let d = s.defaultValue, !nested {
            var pruned = d
            let removed = SchemaDefaulter.prune(&pruned, schema: s, path: "")
            if !removed.isEmpty {
                out.append("\(path).default: Invalid value: \(d.goRendered): must not have unknown fields: \(removed.joined(separator: ", "))")
            }
            var defaulted = pruned
            SchemaDefaulter.applyDefaults(&defaulted, schema: s)
            for e in SchemaValidator.validate(defaulted, against: s, path: "") {
                out.append("\(path).default: Invalid value: \(d.goRendered): \(e.description)")
            }
        }
        for k in s.properties.keys.sorted() {
            walk(s.properties[k]!, path: "\(path).properties[\(k)]", nested: nested, level: .field, into: &out)
        }
        if let ap = s.additionalProperties { walk(ap, path: "\(path).additionalProperties", nested: nested, level: .field, into: &out) }
        if let items = s.items { walk(items, path: "\(path).items", nested: nested, level: .item, into: &out) }
        let intOrStringForm = s.intOrString && isIntOrStringAnyOf(s.anyOf)
        for (name, list) in [("allOf", s.allOf), ("anyOf", s.anyOf), ("oneOf", s.oneOf)] {
            for (i, sub) in list.enumerated() {
                if name == "anyOf" && intOrStringForm { continue }
                if sub.type != nil {
                    out.append("\(path).\(name)[\(i)].type: Forbidden: must be empty to be structural")
                }
                walk(sub, path: "\(path).\(name)[\(i)]", nested: true, level: level, into: &out)
            }
        }
        if let not = s.not {
            if not.type != nil { out.append("\(path).not.type: Forbidden: must be empty to be structural") }
            walk(not, path: "\(path).not", nested: true, level: level, into: &out)
        }
    }

    /// A schema holding only the type constraints of `s` (to check enum members against their node's type).
    static func typeOnly(_ s: JSONSchemaProps) -> JSONSchemaProps {
        var o: [String: JSONValue] = [:]
        if let t = s.type { o["type"] = .string(t) }
        if s.intOrString { o["x-kubernetes-int-or-string"] = .bool(true) }
        if s.nullable { o["nullable"] = .bool(true) }
        // Force-unwrap is safe: the object was built from valid fields.
        return try! JSONSchemaProps(.object(o))
    }

    static func isIntOrStringAnyOf(_ l: [JSONSchemaProps]) -> Bool {
        l.count == 2 && l[0].type == "integer" && l[1].type == "string"
            && l.allSatisfy { $0.raw.keys.allSatisfy { $0 == "type" } }
    }

    /// structuralschema: a root `metadata` may be `type: object` and restrict only `name` and `generateName`;
    /// anything else there (even a description) is refused, because ObjectMeta's schema is implicit.
    static func checkMetadata(_ m: JSONSchemaProps, path: String, into out: inout [String]) {
        if m.type != "object" {
            out.append("\(path).type: Invalid value: \(FieldErrorText.q(m.type ?? "")): must be object")
        }
        let onlyNames = m.properties.keys.allSatisfy { $0 == "name" || $0 == "generateName" }
        let extraKeys = m.raw.keys.filter { $0 != "type" && $0 != "properties" && $0 != "default" }
        if !onlyNames || !extraKeys.isEmpty {
            out.append("\(path): Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified")
        }
    }

    // MARK: - Printer columns

    static func checkColumns(_ v: CustomResourceDefinition.Version, schema: JSONSchemaProps, path: String,
                             into out: inout [String]) {
        var names = Set<String>()
        for (i, c) in v.printerColumns.enumerated() {
            let p = "\(path).additionalPrinterColumns[\(i)]"
            if !names.insert(c.name).inserted { out.append("\(p).name: Duplicate value: \(FieldErrorText.q(c.name))") }
            if !["integer", "number", "string", "boolean", "date"].contains(c.type) {
                out.append("\(p).type: Unsupported value: \(FieldErrorText.q(c.type)): supported values: \"boolean\", \"date\", \"integer\", \"number\", \"string\"")
            }
            if let f = c.format, !["int32", "int64", "float", "double", "byte", "date", "date-time", "password"].contains(f) {
                out.append("\(p).format: Unsupported value: \(FieldErrorText.q(f))")
            }
            if c.priority < 0 { out.append("\(p).priority: Invalid value: \(c.priority): must be >= 0") }
            guard let segments = simplePath(c.jsonPath) else {
                out.append("\(p).jsonPath: Invalid value: \(FieldErrorText.q(c.jsonPath)): must be a simple json path")
                continue
            }
            if segments.first == "metadata" {
                let known: Set<String> = ["name", "namespace", "uid", "resourceVersion", "generation", "labels",
                                          "annotations", "creationTimestamp", "deletionTimestamp", "ownerReferences",
                                          "generateName", "finalizers", "managedFields"]
                if segments.count < 2 || !known.contains(segments[1]) {
                    out.append("\(p).jsonPath: Invalid value: \(FieldErrorText.q(c.jsonPath)): no such field in ObjectMeta")
                }
                continue
            }
            var node: JSONSchemaProps? = schema
            for seg in segments {
                guard let cur = node else { break }
                if cur.preservesUnknownFields && cur.properties[seg] == nil { node = nil; break }
                var n = cur
                while n.type == "array", let items = n.items { n = items }
                node = n.child(seg)
                if node == nil {
                    out.append("\(p).jsonPath: Invalid value: \(FieldErrorText.q(c.jsonPath)): \(FieldErrorText.q(seg)) is not a field of the schema")
                }
            }
        }
    }

    /// Splits `.spec.a.b` or `.status.conditions[?(@.type=="Ready")].status` into field names (filters and
    /// indexes dropped); nil if it is not a simple path (must start with `.`, no recursion or wildcards).
    static func simplePath(_ path: String) -> [String]? {
        guard path.hasPrefix("."), !path.contains(".."), !path.contains("*") else { return nil }
        var stripped = ""
        var depth = 0
        for ch in path {
            if ch == "[" { depth += 1; continue }
            if ch == "]" { depth -= 1; continue }
            if depth == 0 { stripped.append(ch) }
        }
        guard depth == 0 else { return nil }
        let parts = stripped.dropFirst().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        return parts
    }

    // MARK: - Names

    static func isDNS1035(_ s: String) -> Bool {
        guard (1...63).contains(s.count), let f = s.unicodeScalars.first, let l = s.unicodeScalars.last else { return false }
        let ok = s.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "-" }
        return ok && f >= "a" && f <= "z" && l != "-"
    }

    static func isDNSSubdomain(_ s: String) -> Bool {
        guard (1...253).contains(s.count) else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard let f = label.unicodeScalars.first, let l = label.unicodeScalars.last else { return false }
            let alnum: (Unicode.Scalar) -> Bool = { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") }
            return alnum(f) && alnum(l) && label.unicodeScalars.allSatisfy { alnum($0) || $0 == "-" }
        }
    }
}

enum FieldErrorText {
    static func q(_ s: String) -> String { JSONValue.string(s).goRendered }
}
