import Foundation

/// The subset of kubectl/client-go JSONPath that CRD `additionalPrinterColumns` use: `.a.b`, `['a.b']`, `[0]`,
/// `[-1]`, `[*]` and filters `[?(@.type=="Ready")]` (`==`, `!=`, `<`, `<=`, `>`, `>=`, or bare existence).
/// Missing keys give no result (the API server evaluates printer columns with `AllowMissingKeys(true)`).
/// Recursive descent (`..`), slices and unions are not supported: `parse` returns nil for them.
struct JSONPath: Sendable {
    indirect enum Step: Sendable {
        case field(String)
        case index(Int)
        case wildcard
        case filter(path: [Step], op: String?, literal: JSONValue?)
    }

    let steps: [Step]

    init?(_ text: String) {
        var t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("{") && t.hasSuffix("}") { t = String(t.dropFirst().dropLast()) }
        var chars = Array(t)[...]
        guard let steps = Self.parseSteps(&chars, stopAt: nil), chars.isEmpty else { return nil }
        self.steps = steps
    }

    /// All values the path selects, in document order.
    func results(in root: JSONValue) -> [JSONValue] { Self.evaluate(steps, [root]) }

    // MARK: Parsing

    static func parseSteps(_ c: inout ArraySlice<Character>, stopAt: Set<Character>?) -> [Step]? {
        var steps: [Step] = []
        while let ch = c.first {
            if let stopAt, stopAt.contains(ch) { break }
            if ch == "." {
                c.removeFirst()
                if c.first == "." { return nil }  // recursive descent
                var name = ""
                while let n = c.first, n != ".", n != "[", !(stopAt?.contains(n) ?? false) {
                    name.append(n); c.removeFirst()
                }
                if name == "*" { steps.append(.wildcard) } else if !name.isEmpty { steps.append(.field(name)) }
            } else if ch == "[" {
                c.removeFirst()
                guard let step = parseBracket(&c) else { return nil }
                steps.append(step)
            } else if ch == "@" || ch == "$" {
                c.removeFirst()  // the current/root element: where evaluation starts anyway
            } else {
                return nil
            }
        }
        return steps
    }

    static func parseBracket(_ c: inout ArraySlice<Character>) -> Step? {
        guard let first = c.first else { return nil }
        if first == "?" {
            c.removeFirst()
            guard c.first == "(" else { return nil }
            c.removeFirst()
            guard let path = parseSteps(&c, stopAt: ["=", "!", "<", ">", ")", " "]) else { return nil }
            skipSpaces(&c)
            var op: String?
            var literal: JSONValue?
            if let o = c.first, "=!<>".contains(o) {
                var s = String(c.removeFirst())
                if c.first == "=" { s.append(c.removeFirst()) }
                guard ["==", "!=", "<", "<=", ">", ">="].contains(s) else { return nil }
                op = s
                skipSpaces(&c)
                guard let lit = parseLiteral(&c) else { return nil }
                literal = lit
                skipSpaces(&c)
            }
            guard c.first == ")" else { return nil }
            c.removeFirst()
            guard c.first == "]" else { return nil }
            c.removeFirst()
            return .filter(path: path, op: op, literal: literal)
        }
        if first == "*" {
            c.removeFirst()
            guard c.first == "]" else { return nil }
            c.removeFirst()
            return .wildcard
        }
        if first == "'" || first == "\"" {
            guard case .string(let name)? = parseLiteral(&c), c.first == "]" else { return nil }
            c.removeFirst()
            return .field(name)
        }
        var digits = ""
        while let d = c.first, d == "-" || d.isNumber { digits.append(d); c.removeFirst() }
        guard c.first == "]", let i = Int(digits) else { return nil }  // slices and unions are not supported
        c.removeFirst()
        return .index(i)
    }

    static func parseLiteral(_ c: inout ArraySlice<Character>) -> JSONValue? {
        guard let q = c.first else { return nil }
        if q == "'" || q == "\"" {
            c.removeFirst()
            var s = ""
            while let ch = c.first, ch != q { s.append(ch); c.removeFirst() }
            guard c.first == q else { return nil }
            c.removeFirst()
            return .string(s)
        }
        var word = ""
        while let ch = c.first, ch != ")", ch != " " { word.append(ch); c.removeFirst() }
        if word == "true" { return .bool(true) }
        if word == "false" { return .bool(false) }
        if let i = Int64(word) { return .int(i) }
        if let d = Double(word) { return .double(d) }
        return nil
    }

    static func skipSpaces(_ c: inout ArraySlice<Character>) {
        while c.first == " " { c.removeFirst() }
    }

    // MARK: Evaluation

    static func evaluate(_ steps: [Step], _ start: [JSONValue]) -> [JSONValue] {
        var current = start
        for step in steps {
            var next: [JSONValue] = []
            for v in current {
                switch step {
                case .field(let name):
                    if let x = v[name] { next.append(x) }
                case .index(let i):
                    if let a = v.arrayValue {
                        let j = i < 0 ? a.count + i : i
                        if j >= 0 && j < a.count { next.append(a[j]) }
                    }
                case .wildcard:
                    if let a = v.arrayValue { next += a }
                    else if let o = v.objectValue { next += o.keys.sorted().compactMap { o[$0] } }
                case .filter(let path, let op, let literal):
                    for e in v.arrayValue ?? [] {
                        let lefts = evaluate(path, [e])
                        guard let left = lefts.first else { continue }
                        guard let op, let literal else { next.append(e); continue }
                        if compare(left, op, literal) { next.append(e) }
                    }
                }
            }
            current = next
        }
        return current
    }

    static func compare(_ l: JSONValue, _ op: String, _ r: JSONValue) -> Bool {
        if let a = l.doubleValue, let b = r.doubleValue {
            switch op {
            case "==": return a == b
            case "!=": return a != b
            case "<": return a < b
            case "<=": return a <= b
            case ">": return a > b
            default: return a >= b
            }
        }
        switch op {
        case "==": return l == r
        case "!=": return l != r
        default:
            guard let a = l.stringValue, let b = r.stringValue else { return false }
            switch op {
            case "<": return a < b
            case "<=": return a <= b
            case ">": return a > b
            default: return a >= b
            }
        }
    }
}
