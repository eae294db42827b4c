import Foundation

/// Strategic merge patch for built-in kinds, as kube-apiserver applies it: like a JSON merge patch, except that
/// lists with a patch merge key are merged element by element on that key instead of being replaced.
///
/// Covered: the merge keys of the pod template lists the Tapio operator and common tools patch
/// (`containers`, `initContainers`, `ephemeralContainers`, `env`, `imagePullSecrets`, `volumes` by `name`;
/// `ports` by `containerPort`; `volumeMounts` by `mountPath`), and the `$patch: delete` / `$patch: replace`
/// directives on list elements and maps. Custom resources never get here: the real server answers 415 for them.
extension JSONValue {
    /// The patch merge key of a list field, by the field's name (the schema keys these by field, not by path).
    static let strategicMergeKeys: [String: String] = [
        "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
        "env": "name", "imagePullSecrets": "name", "volumes": "name",
        "ports": "containerPort", "volumeMounts": "mountPath",
    ]

    /// This value with `patch` applied as a strategic merge patch.
    public func strategicMergePatched(with patch: JSONValue) -> JSONValue {
        guard case .object(var p) = patch else { return patch }
        if p["$patch"]?.stringValue == "replace" {
            p.removeValue(forKey: "$patch")
            return .object(p)
        }
        if p["$patch"]?.stringValue == "delete" { return .null }
        var base = objectValue ?? [:]
        for (k, v) in p where !k.hasPrefix("$") {
            switch v {
            case .null:
                base.removeValue(forKey: k)
            case .array(let items):
                if let key = Self.strategicMergeKeys[k], case .array(let existing)? = base[k] {
                    base[k] = .array(Self.mergeList(existing, items, key: key))
                } else {
                    base[k] = .array(items.filter { $0["$patch"]?.stringValue != "delete" })
                }
            default:
                let merged = (base[k] ?? .null).strategicMergePatched(with: v)
                if case .null = merged { base.removeValue(forKey: k) } else { base[k] = merged }
            }
        }
        return .object(base)
    }

    /// Merges list elements that share the merge key; new elements are appended in patch order.
    static func mergeList(_ base: [JSONValue], _ patch: [JSONValue], key: String) -> [JSONValue] {
        var out = base
        for item in patch {
            guard let id = item[key], id != .null else {
                out.append(item)
                continue
            }
            let index = out.firstIndex { $0[key] == id }
            if item["$patch"]?.stringValue == "delete" {
                if let index { out.remove(at: index) }
            } else if let index {
                out[index] = out[index].strategicMergePatched(with: item)
            } else {
                out.append(.object([:]).strategicMergePatched(with: item))
            }
        }
        return out
    }
}
