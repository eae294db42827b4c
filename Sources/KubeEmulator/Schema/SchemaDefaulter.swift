/// Pruning and defaulting of custom objects as the API server does them on every write (and on read from
/// storage): first unknown fields are pruned, then defaults are applied (k8s.io/apiextensions-apiserver
/// `structural/pruning` and `structural/defaulting`).
public enum SchemaDefaulter {
    /// Fills absent fields that have a `default`, top-down, so defaults inserted for a parent (e.g. `default: {}`)
    /// get their own fields' defaults too. A `null` in a non-nullable field is replaced by its default, or removed
    /// if it has none (as the API server does). `version` defaults to the object's `apiVersion`, else storage.
    public static func applyDefaults(_ object: inout JSONValue, crd: CustomResourceDefinition, version: String? = nil) {
        guard let s = schema(for: object, crd: crd, version: version) else { return }
        applyDefaults(&object, schema: s)
    }

    /// Applies defaults below one schema node.
    public static func applyDefaults(_ value: inout JSONValue, schema s: JSONSchemaProps) {
        switch value {
        case .object(var o):
            for (k, ps) in s.properties {
                if let d = ps.defaultValue {
                    if o[k] == nil || (o[k] == .null && !ps.nullable) { o[k] = d }
                } else if o[k] == .null && !ps.nullable {
                    o.removeValue(forKey: k)
                }
            }
            for k in Array(o.keys) {
                guard var v = o[k] else { continue }
                if let ps = s.properties[k] {
                    applyDefaults(&v, schema: ps)
                } else if let ap = s.additionalProperties {
                    applyDefaults(&v, schema: ap)
                } else {
                    continue
                }
                o[k] = v
            }
            value = .object(o)
        case .array(var a):
            guard let items = s.items else { return }
            for i in a.indices {
                if a[i] == .null, !items.nullable, let d = items.defaultValue { a[i] = d }
                applyDefaults(&a[i], schema: items)
            }
            value = .array(a)
        default:
            return
        }
    }

    /// Removes fields the schema does not know (unless under `x-kubernetes-preserve-unknown-fields: true`).
    /// At the root and in embedded resources `apiVersion`, `kind` and `metadata` are kept. Returns the paths
    /// removed (what `fieldValidation=Strict` would reject as `unknown field`), sorted.
    @discardableResult
    public static func prune(_ object: inout JSONValue, crd: CustomResourceDefinition, version: String? = nil) -> [String] {
        guard let s = schema(for: object, crd: crd, version: version) else { return [] }
        var removed: [String] = []
        prune(&object, s, path: "", root: true, into: &removed)
        return removed.sorted()
    }

    /// Prunes below one schema node; returns the removed paths.
    @discardableResult
    public static func prune(_ value: inout JSONValue, schema s: JSONSchemaProps, path: String = "") -> [String] {
        var removed: [String] = []
        prune(&value, s, path: path, root: false, into: &removed)
        return removed.sorted()
    }

    static func prune(_ value: inout JSONValue, _ s: JSONSchemaProps, path: String, root: Bool,
                      into removed: inout [String]) {
        switch value {
        case .object(var o):
            let keepMeta = root || s.embeddedResource
            for k in Array(o.keys) {
                let p = SchemaValidator.join(path, k)
                if keepMeta && (k == "apiVersion" || k == "kind" || k == "metadata") && s.properties[k] == nil {
                    continue
                }
                if keepMeta && k == "metadata" { continue } // ObjectMeta is pruned by its own Go type, not the schema.
                guard var v = o[k] else { continue }
                if let ps = s.properties[k] {
                    prune(&v, ps, path: p, root: false, into: &removed)
                    o[k] = v
                } else if let ap = s.additionalProperties {
                    prune(&v, ap, path: "\(path)[\(k)]", root: false, into: &removed)
                    o[k] = v
                } else if s.additionalPropertiesBool == true || s.preservesUnknownFields {
                    continue
                } else {
                    o.removeValue(forKey: k)
                    removed.append(p)
                }
            }
            value = .object(o)
        case .array(var a):
            guard let items = s.items else { return }
            for i in a.indices { prune(&a[i], items, path: "\(path)[\(i)]", root: false, into: &removed) }
            value = .array(a)
        default:
            return
        }
    }

    static func schema(for object: JSONValue, crd: CustomResourceDefinition, version: String?) -> JSONSchemaProps? {
        let wanted = version ?? object["apiVersion"]?.stringValue.flatMap { av -> String? in
            av.hasPrefix(crd.group + "/") ? String(av.dropFirst(crd.group.count + 1)) : nil
        }
        return (crd.version(wanted) ?? crd.version(nil))?.schema
    }
}
