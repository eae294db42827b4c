import Foundation

/// A parsed label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`), matched like the API server does.
struct LabelSelectorQuery: Sendable {
    enum Op: Sendable { case eq([String]), notEq(String), `in`([String]), notIn([String]), exists, notExists }
    var requirements: [(key: String, op: Op)] = []

    struct ParseError: Error { var message: String }

    init(_ text: String) throws {
        var i = text.startIndex
        func skipSpaces() { while i < text.endIndex, text[i] == " " { i = text.index(after: i) } }
        func readWord() -> String {
            skipSpaces()
            var s = ""
            while i < text.endIndex, !" ,=!()".contains(text[i]) { s.append(text[i]); i = text.index(after: i) }
            return s
        }
        func peek(_ s: String) -> Bool { text[i...].hasPrefix(s) }
        while true {
            skipSpaces()
            if i == text.endIndex { break }
            var negated = false
            if peek("!") { negated = true; i = text.index(after: i) }
            let key = readWord()
            guard !key.isEmpty, Self.validKey(key) else { throw ParseError(message: "invalid label key \"\(key)\"") }
            skipSpaces()
            if negated {
                requirements.append((key, .notExists))
            } else if i == text.endIndex || text[i] == "," {
                requirements.append((key, .exists))
            } else if peek("==") || peek("=") {
                i = text.index(i, offsetBy: peek("==") ? 2 : 1)
                let v = readWord()
                guard Self.validValue(v) else { throw ParseError(message: "invalid label value: \"\(v)\"") }
                requirements.append((key, .eq([v])))
            } else if peek("!=") {
                i = text.index(i, offsetBy: 2)
                let v = readWord()
                guard Self.validValue(v) else { throw ParseError(message: "invalid label value: \"\(v)\"") }
                requirements.append((key, .notEq(v)))
            } else {
                let word = readWord()
                guard word == "in" || word == "notin" else { throw ParseError(message: "unable to parse requirement: found '\(word)'") }
                skipSpaces()
                guard i < text.endIndex, text[i] == "(" else { throw ParseError(message: "expected '(' after \(word)") }
                i = text.index(after: i)
                var values: [String] = []
                while true {
                    let v = readWord()
                    guard Self.validValue(v) else { throw ParseError(message: "invalid label value: \"\(v)\"") }
                    if !v.isEmpty { values.append(v) }
                    skipSpaces()
                    guard i < text.endIndex else { throw ParseError(message: "missing ')'") }
                    if text[i] == "," { i = text.index(after: i); continue }
                    if text[i] == ")" { i = text.index(after: i); break }
                    throw ParseError(message: "unexpected '\(text[i])' in value list")
                }
                guard !values.isEmpty else { throw ParseError(message: "for '\(word)' operator, values set can't be empty") }
                requirements.append((key, word == "in" ? .in(values) : .notIn(values)))
            }
            skipSpaces()
            if i < text.endIndex {
                guard text[i] == "," else { throw ParseError(message: "expected ',' at '\(text[i...])'") }
                i = text.index(after: i)
            }
        }
    }

    static func validKey(_ k: String) -> Bool {
        let parts = k.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let name = parts.last, !name.isEmpty, name.count <= 63 else { return false }
        return name.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
    }
    static func validValue(_ v: String) -> Bool {
        v.count <= 63 && v.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
    }

    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { r in
            let v = labels[r.key]
            switch r.op {
            case .eq(let vals): return v.map { vals.contains($0) } ?? false
            case .notEq(let x): return v != x
            case .in(let vals): return v.map { vals.contains($0) } ?? false
            case .notIn(let vals): return v.map { !vals.contains($0) } ?? true
            case .exists: return v != nil
            case .notExists: return v == nil
            }
        }
    }
}

/// A parsed field selector (`metadata.name=x,spec.nodeName!=y`); only the fields the API server supports per kind.
struct FieldSelectorQuery: Sendable {
    var requirements: [(path: String, value: String, equal: Bool)] = []
    /// Labels whose value is not at their own path: the paths to try, first non-empty value wins.
    var fallbacks: [String: [String]] = [:]

    init(_ text: String, supported: Set<String>, kind: String, fallbacks: [String: [String]] = [:]) throws {
        self.fallbacks = fallbacks
        for part in text.split(separator: ",") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
            let s = String(part)
            let (key, value, equal): (String, String, Bool)
            if let r = s.range(of: "!=") {
                (key, value, equal) = (String(s[..<r.lowerBound]), String(s[r.upperBound...]), false)
            } else if let r = s.range(of: "==") {
                (key, value, equal) = (String(s[..<r.lowerBound]), String(s[r.upperBound...]), true)
            } else if let r = s.range(of: "=") {
                (key, value, equal) = (String(s[..<r.lowerBound]), String(s[r.upperBound...]), true)
            } else {
                throw LabelSelectorQuery.ParseError(message: "invalid selector: '\(s)'; can't understand '\(s)'")
            }
            let k = key.trimmingCharacters(in: .whitespaces)
            guard supported.contains(k) || k == "metadata.name" || k == "metadata.namespace" else {
                throw LabelSelectorQuery.ParseError(message: "field label not supported: \(k)")
            }
            requirements.append((k, value.trimmingCharacters(in: .whitespaces), equal))
        }
    }

    func matches(_ object: JSONValue) -> Bool {
        requirements.allSatisfy { r in
            let v = (fallbacks[r.path] ?? [r.path]).lazy.map { Self.value(at: $0, in: object) }.first { !$0.isEmpty } ?? ""
            return (v == r.value) == r.equal
        }
    }

    static func value(at path: String, in object: JSONValue) -> String {
        var cur: JSONValue? = object
        for seg in path.split(separator: ".") { cur = cur?[String(seg)] }
        switch cur {
        case .string(let s)?: return s
        case .int(let i)?: return String(i)
        case .bool(let b)?: return String(b)
        default: return ""
        }
    }
}
