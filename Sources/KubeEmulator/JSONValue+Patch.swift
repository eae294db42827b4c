import Foundation

extension JSONValue {
    /// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces.
    public func mergePatched(with patch: JSONValue) -> JSONValue {
        guard case .object(let p) = patch else { return patch }
        var base = objectValue ?? [:]
        for (k, v) in p {
            if case .null = v { base.removeValue(forKey: k) } else { base[k] = (base[k] ?? .null).mergePatched(with: v) }
        }
        return .object(base)
    }

    /// Paths of every leaf in this value (`spec.a.b`); lists count as leaves, as in a simplified apply.
    func leafPaths(prefix: String = "") -> [String: JSONValue] {
        guard case .object(let o) = self, !o.isEmpty else { return [prefix: self] }
        var out: [String: JSONValue] = [:]
        for (k, v) in o {
            let p = prefix.isEmpty ? k : prefix + "." + k
            out.merge(v.leafPaths(prefix: p)) { a, _ in a }
        }
        return out
    }

    /// The value at a dotted path.
    func value(at path: String) -> JSONValue? {
        var cur: JSONValue? = self
        for seg in path.split(separator: ".") { cur = cur?[String(seg)] }
        return cur
    }

    /// Removes the value at a dotted path (and parents left empty by it).
    mutating func remove(path: [String]) {
        guard let first = path.first, case .object(var o) = self else { return }
        if path.count == 1 {
            o.removeValue(forKey: first)
        } else if var child = o[first] {
            child.remove(path: Array(path.dropFirst()))
            if case .object(let c) = child, c.isEmpty { o.removeValue(forKey: first) } else { o[first] = child }
        }
        self = .object(o)
    }

    /// Builds a `fieldsV1` document (`{"f:spec":{"f:a":{}}}`) from leaf paths.
    static func fieldsV1(_ paths: some Sequence<String>) -> JSONValue {
        var root = JSONValue.object([:])
        for p in paths {
            let segs = p.split(separator: ".").map { "f:" + $0 }
            root = root.mergePatched(with: segs.reversed().reduce(JSONValue.object([:])) { acc, s in .object([s: acc]) })
        }
        return root
    }

    /// Leaf paths of a `fieldsV1` document.
    func fieldsV1Paths(prefix: String = "") -> [String] {
        guard case .object(let o) = self, !o.isEmpty else { return prefix.isEmpty ? [] : [prefix] }
        return o.flatMap { k, v -> [String] in
            let name = k.hasPrefix("f:") ? String(k.dropFirst(2)) : k
            return v.fieldsV1Paths(prefix: prefix.isEmpty ? name : prefix + "." + name)
        }
    }
}

// Literals make hand-written JSON in the emulator readable (additive; the Schema code does not rely on them).
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}
