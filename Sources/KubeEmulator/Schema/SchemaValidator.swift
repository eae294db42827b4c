import Foundation
import Synchronization
import TapioModel

/// OpenAPI v3 validation of a custom object against its CRD's schema, with the API server's semantics and
/// message shapes (k8s.io/apiextensions-apiserver `validation.ValidateCustomResource` over kube-openapi):
///
///     spec.remediation.mode: Unsupported value: "Sometimes": supported values: "Off", "Suggest", "DryRun", "Apply"
///     spec.probes.memory.samplingHz: Invalid value: 0: spec.probes.memory.samplingHz in body should be greater than or equal to 1
///
/// Checks: `type` (integer vs number: a whole number is an integer, as JSON decoding gives the server), `nullable`,
/// `enum`, `minimum`/`maximum` (+ `exclusive…`), `multipleOf`, `minLength`/`maxLength` (in characters),
/// `pattern`, `minItems`/`maxItems`, `uniqueItems`, `minProperties`/`maxProperties`, `required`,
/// `x-kubernetes-int-or-string`, `allOf`/`anyOf`/`oneOf`/`not`. Unknown fields are not errors here: the API server
/// prunes them first (see `SchemaDefaulter.prune`). `metadata` is left to ObjectMeta validation. Errors come in a
/// stable order (object keys sorted).
public enum SchemaValidator {
    /// Validates `object` against `crd`'s schema for `version` (default: the version named by the object's
    /// `apiVersion`, else the storage version). Returns every problem; empty when valid.
    public static func validate(_ object: JSONValue, against crd: CustomResourceDefinition,
                                version: String? = nil) -> [FieldError] {
        let wanted = version ?? object["apiVersion"]?.stringValue.flatMap { av -> String? in
            guard av.hasPrefix(crd.group + "/") else { return nil }
            return String(av.dropFirst(crd.group.count + 1))
        }
        guard let v = crd.version(wanted) ?? (version == nil ? crd.version(nil) : nil) else {
            return [FieldError(path: "apiVersion", type: .unsupported, value: object["apiVersion"]?.goRendered,
                               detail: "supported values: " + crd.servedAPIVersions.map(FieldError.quoted).joined(separator: ", "))]
        }
        guard let schema = v.schema else { return [] }
        var errs: [FieldError] = []
        validate(object, schema, path: "", root: true, into: &errs)
        return errs
    }

    /// Validates a value against one schema node; `path` is where the value sits ("" for the root).
    public static func validate(_ value: JSONValue, against schema: JSONSchemaProps, path: String = "") -> [FieldError] {
        var errs: [FieldError] = []
        validate(value, schema, path: path, root: path.isEmpty, into: &errs)
        return errs
    }

    // MARK: - Walk

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The path as the API server prints it inside its messages ("spec.x in body …"; the root is "body").
    static func inBody(_ path: String) -> String { path.isEmpty ? "body" : "\(path) in body" }

    static func validate(_ value: JSONValue, _ s: JSONSchemaProps, path: String, root: Bool,
                         into errs: inout [FieldError]) {
        if case .null = value {
            if s.nullable { return }
            // An untyped node (int-or-string, preserve-unknown-fields) may still hold null only if nullable.
            let t = s.type ?? (s.intOrString ? "integer or string" : nil)
            if let t {
                errs.append(.invalid(path, FieldError.quoted("null"), "\(inBody(path)) must be of type \(t): \"null\""))
            }
            return
        }
        if !typeMatches(value, s, path: path, into: &errs) { return }

        if let e = s.enumValues, !e.contains(where: { jsonEqual($0, value) }) {
            errs.append(FieldError(path: path, type: .unsupported, value: value.goRendered,
                                   detail: "supported values: " + e.map(\.goRendered).joined(separator: ", ")))
        }

        if let f = s.format, !formatMatches(value, f) {
            errs.append(.invalid(path, value.goRendered, "\(inBody(path)) must be of type \(f): \(value.goRendered)"))
        }

        switch value {
        case .int, .double:
            numeric(value.doubleValue ?? 0, rendered: value.goRendered, s, path: path, into: &errs)
        case .string(let str):
            string(str, s, path: path, into: &errs)
        case .array(let a):
            array(a, s, path: path, into: &errs)
        case .object(let o):
            object(o, s, path: path, root: root, into: &errs)
        default:
            break
        }

        for sub in s.allOf {
            validate(value, sub, path: path, root: root, into: &errs)
        }
        if !s.anyOf.isEmpty {
            let ok = s.anyOf.contains { validate(value, against: $0, path: path).isEmpty }
            if !ok { errs.append(.invalid(path, value.goRendered, "\(inBody(path)) must validate at least one schema (anyOf)")) }
        }
        if !s.oneOf.isEmpty {
            let n = s.oneOf.filter { validate(value, against: $0, path: path).isEmpty }.count
            if n != 1 {
                errs.append(.invalid(path, value.goRendered, "\(inBody(path)) must validate one and only one schema (oneOf)"))
            }
        }
        if let not = s.not, validate(value, against: not, path: path).isEmpty {
            errs.append(.invalid(path, value.goRendered, "\(inBody(path)) must not validate the schema (not)"))
        }
    }

    /// Checks `type` (and int-or-string); appends an error and returns false when the value has the wrong type,
    /// since further checks would only repeat the problem.
    static func typeMatches(_ value: JSONValue, _ s: JSONSchemaProps, path: String,
                            into errs: inout [FieldError]) -> Bool {
        let actual = value.schemaTypeName
        if s.intOrString && s.type == nil {
            if actual == "integer" || actual == "string" { return true }
            errs.append(.invalid(path, FieldError.quoted(actual),
                                 "\(inBody(path)) must be of type integer or string: \(FieldError.quoted(actual))"))
            return false
        }
        guard let t = s.type, !t.isEmpty else { return true }
        let ok: Bool
        switch t {
        case "number": ok = actual == "integer" || actual == "number"
        default: ok = actual == t
        }
        if !ok {
            errs.append(.invalid(path, FieldError.quoted(actual),
                                 "\(inBody(path)) must be of type \(t): \(FieldError.quoted(actual))"))
        }
        return ok
    }

    /// The formats the API server checks that Tapio's CRDs use; unknown formats pass, as on the server.
    static func formatMatches(_ v: JSONValue, _ format: String) -> Bool {
        switch (format, v) {
        case ("date-time", .string(let str)):
            return PatternCache.regex(#"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?$"#)?
                .firstMatch(in: str, range: NSRange(str.startIndex..., in: str)) != nil
        case ("date", .string(let str)):
            return PatternCache.regex(#"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"#)?
                .firstMatch(in: str, range: NSRange(str.startIndex..., in: str)) != nil
        case ("int32", _):
            guard let i = v.intValue else { return true }
            return i >= Int64(Int32.min) && i <= Int64(Int32.max)
        default:
            return true
        }
    }

    static func numeric(_ d: Double, rendered: String, _ s: JSONSchemaProps, path: String,
                        into errs: inout [FieldError]) {
        if let m = s.minimum {
            if s.exclusiveMinimum ? !(d > m) : !(d >= m) {
                errs.append(.invalid(path, rendered, "\(inBody(path)) should be greater than \(s.exclusiveMinimum ? "" : "or equal to ")\(fmt(m))"))
            }
        }
        if let m = s.maximum {
            if s.exclusiveMaximum ? !(d < m) : !(d <= m) {
                errs.append(.invalid(path, rendered, "\(inBody(path)) should be less than \(s.exclusiveMaximum ? "" : "or equal to ")\(fmt(m))"))
            }
        }
        if let m = s.multipleOf, m > 0 {
            let q = d / m
            if q != q.rounded() {
                errs.append(.invalid(path, rendered, "\(inBody(path)) should be a multiple of \(fmt(m))"))
            }
        }
    }

    static func string(_ str: String, _ s: JSONSchemaProps, path: String, into errs: inout [FieldError]) {
        // kube-openapi counts characters (runes), not bytes, for min/maxLength.
        let n = Int64(str.unicodeScalars.count)
        if let m = s.maxLength, n > m {
            errs.append(FieldError(path: path, type: .tooLong, detail: "may not be more than \(m) bytes"))
        }
        if let m = s.minLength, n < m {
            errs.append(.invalid(path, FieldError.quoted(str), "\(inBody(path)) should be at least \(m) chars long"))
        }
        if let p = s.pattern {
            if let re = PatternCache.regex(p) {
                let range = NSRange(str.startIndex..., in: str)
                if re.firstMatch(in: str, range: range) == nil {
                    errs.append(.invalid(path, FieldError.quoted(str), "\(inBody(path)) should match '\(p)'"))
                }
            } else {
                errs.append(.invalid(path, FieldError.quoted(str), "\(inBody(path)): pattern '\(p)' does not compile"))
            }
        }
    }

    static func array(_ a: [JSONValue], _ s: JSONSchemaProps, path: String, into errs: inout [FieldError]) {
        if let m = s.maxItems, Int64(a.count) > m {
            errs.append(FieldError(path: path, type: .tooMany, value: String(a.count), detail: "must have at most \(m) items"))
        }
        if let m = s.minItems, Int64(a.count) < m {
            errs.append(.invalid(path, String(a.count), "\(inBody(path)) should have at least \(m) items"))
        }
        if s.uniqueItems || s.listType == "set" {
            var seen: [JSONValue] = []
            for (i, v) in a.enumerated() {
                if seen.contains(where: { jsonEqual($0, v) }) {
                    errs.append(FieldError(path: "\(path)[\(i)]", type: .duplicate, value: v.goRendered))
                } else {
                    seen.append(v)
                }
            }
        }
        if s.listType == "map", !s.listMapKeys.isEmpty {
            var seen: [[JSONValue?]] = []
            for (i, v) in a.enumerated() {
                let key = s.listMapKeys.map { v[$0] }
                if seen.contains(key) {
                    errs.append(FieldError(path: "\(path)[\(i)]", type: .duplicate, value: v.goRendered))
                } else {
                    seen.append(key)
                }
            }
        }
        if let items = s.items {
            for (i, v) in a.enumerated() {
                validate(v, items, path: "\(path)[\(i)]", root: false, into: &errs)
            }
        }
    }

    static func object(_ o: [String: JSONValue], _ s: JSONSchemaProps, path: String, root: Bool,
                       into errs: inout [FieldError]) {
        if let m = s.maxProperties, Int64(o.count) > m {
            errs.append(FieldError(path: path, type: .tooMany, value: String(o.count), detail: "must have at most \(m) items"))
        }
        if let m = s.minProperties, Int64(o.count) < m {
            errs.append(.invalid(path, String(o.count), "\(inBody(path)) should have at least \(m) properties"))
        }
        for r in s.required where o[r] == nil {
            errs.append(.required(join(path, r)))
        }
        for k in o.keys.sorted() {
            // ObjectMeta at the root (and in embedded resources) is validated as ObjectMeta, not by the schema.
            if root && k == "metadata" { continue }
            guard let v = o[k] else { continue }
            if let ps = s.properties[k] {
                validate(v, ps, path: join(path, k), root: false, into: &errs)
            } else if let ap = s.additionalProperties {
                // kube-openapi joins a map key with a dot, as a property (`matchLabels.app.kubernetes.io/name`).
                validate(v, ap, path: join(path, k), root: false, into: &errs)
            }
        }
    }

    static func fmt(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }

    /// JSON equality where 1 and 1.0 are the same number.
    static func jsonEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.int, .double), (.double, .int), (.double, .double), (.int, .int):
            return a.doubleValue == b.doubleValue
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { jsonEqual($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { k, v in y[k].map { jsonEqual(v, $0) } ?? false }
        default:
            return a == b
        }
    }
}

/// Compiled `pattern`s, shared across validations (a CRD's patterns are few and fixed). The API server matches
/// them with Go's RE2; NSRegularExpression (ICU) agrees on the constructs CRDs use but one: ICU's `$` also matches
/// before a final line break, so `"5m\n"` matched `^…(m|h)$` here while kube-apiserver refuses it. A bare `$` is
/// therefore matched as `\z` (end of input), which is what RE2's `$` means outside multi-line mode.
enum PatternCache {
    private static let cache = PatternCacheStorage()

    static func regex(_ pattern: String) -> NSRegularExpression? { cache.get(pattern) }

    /// `pattern` with every `$` outside a character class and not escaped written as `\z`.
    static func withRE2EndAnchors(_ pattern: String) -> String {
        var out = ""
        var escaped = false, inClass = false
        for c in pattern {
            if escaped {
                escaped = false
                out.append(c)
                continue
            }
            switch c {
            case "\\": escaped = true; out.append(c)
            case "[" where !inClass: inClass = true; out.append(c)
            case "]" where inClass: inClass = false; out.append(c)
            case "$" where !inClass: out += "\\z"
            default: out.append(c)
            }
        }
        return out
    }
}

final class PatternCacheStorage: Sendable {
    private let map = Mutex<[String: Entry]>([:])

    struct Entry: @unchecked Sendable {
        // NSRegularExpression is immutable and documented thread-safe for matching.
        let regex: NSRegularExpression?
    }

    func get(_ p: String) -> NSRegularExpression? {
        if let e = map.withLock({ $0[p] }) { return e.regex }
        let r = try? NSRegularExpression(pattern: PatternCache.withRE2EndAnchors(p))
        map.withLock { $0[p] = Entry(regex: r) }
        return r
    }
}
