import Foundation
import Yams

/// One YAML (or JSON) manifest turned into JSON bytes the way kubectl does before it sends a manifest, in time and
/// memory linear in the input, with every node's line and column kept for messages.
///
/// Why not Yams' `YAMLDecoder`: it looks keys up by a linear search per mapping (20,000 `matchLabels` took 31 s),
/// its integer constructor traps on sexagesimal overflow (`1:2:3:4:5:6:7:8:9:10:11:12`), and its errors carry no
/// position. Here Yams only parses; scalars are resolved as YAML 1.1 does (what kubectl reads: unquoted `Off` is the
/// boolean false), aliases are expanded under a budget (no "billion laughs"), and `JSONDecoder` does the typing.
///
///     let doc = try YAMLDocument(text: yaml, file: "policy.yaml")
///     let policy = try JSONDecoder().decode(TapioPolicy.self, from: doc.json)
public struct YAMLDocument {
    /// A problem with the document itself: `file:line:column: message`.
    public struct Problem: Error, Sendable, CustomStringConvertible, Equatable {
        public var file: String
        public var line: Int?
        public var column: Int?
        public var message: String
        public var description: String {
            guard let line else { return "\(file): \(message)" }
            return "\(file):\(line):\(column ?? 1): \(message)"
        }
    }

    /// One step of a field path: a mapping key or a list index.
    public enum PathElement: Sendable, Hashable, CustomStringConvertible {
        case key(String)
        case index(Int)
        public var description: String {
            switch self {
            case .key(let k): k
            case .index(let i): "[\(i)]"
            }
        }
    }

    /// Largest document accepted: the API server's own request limit (3 MiB).
    public static let maxBytes = 3 * 1024 * 1024
    /// Most nodes the JSON may have once aliases are expanded (a 3 MiB document of one-character items has about
    /// a million); beyond it the document is refused as an alias bomb.
    public static let maxNodes = 2_000_000
    /// Deepest nesting accepted (JSONDecoder and our own walks recurse).
    public static let maxDepth = 100

    /// The document as JSON.
    public let json: Data
    public let file: String
    /// The parsed tree, for positions (kept rather than a table of every node's position: with aliases expanded
    /// that table could be millions of entries).
    let root: Yams.Node

    /// Parses `text` (one document; a stream of several is refused). `file` names it in problems.
    public init(text: String, file: String) throws(Problem) {
        self.file = file
        guard text.utf8.count <= Self.maxBytes else {
            throw Problem(file: file, message: "\(text.utf8.count) bytes; a manifest may have at most \(Self.maxBytes) (3 MiB, the API server's limit)")
        }
        let root: Yams.Node
        do {
            // compose_all's sequence keeps a parse error aside and ends; it is thrown here.
            var documents = try Yams.compose_all(yaml: text)
            let first = documents.next()
            if let e = documents.error { throw e }
            guard let first else { throw Problem(file: file, message: "empty document") }
            let second = documents.next()
            if let e = documents.error { throw e }
            if second != nil {
                throw Problem(file: file, message: "holds several YAML documents (---); give one manifest per file")
            }
            root = first
        } catch let p as Problem {
            throw p
        } catch let e as YamlError {
            throw Self.problem(e, file: file)
        } catch {
            throw Problem(file: file, message: "not valid YAML: \(error)")
        }
        var w = Writer(file: file)
        try w.write(root, depth: 0)
        json = Data(w.out)
        self.root = root
    }

    /// Line and column of the field at `path`, or of the deepest part of it that is in the document (a defaulted
    /// field is not); nil for the empty path.
    public func position(of path: [PathElement]) -> (line: Int, column: Int)? {
        var node = root
        var found: Mark?
        for element in path {
            switch (element, node) {
            case (.key(let k), .mapping(let map)):
                guard let pair = map.first(where: { $0.key.string == k }) else { return found.map { ($0.line, $0.column) } }
                found = pair.key.mark ?? found
                node = pair.value
            case (.index(let i), .sequence(let seq)) where i >= 0 && i < seq.count:
                node = seq[i]
                found = node.mark ?? found
            default:
                return found.map { ($0.line, $0.column) }
            }
        }
        return found.map { ($0.line, $0.column) }
    }

    /// The text of the unquoted scalar at `path`, or nil (absent, quoted, or not a scalar).
    public func plainScalar(at path: [PathElement]) -> String? {
        var node = root
        for element in path {
            switch (element, node) {
            case (.key(let k), .mapping(let map)):
                guard let v = map.first(where: { $0.key.string == k })?.value else { return nil }
                node = v
            case (.index(let i), .sequence(let seq)) where i >= 0 && i < seq.count:
                node = seq[i]
            default:
                return nil
            }
        }
        guard case .scalar(let s) = node, s.style == .plain || s.style == .any else { return nil }
        return s.string
    }

    /// Visits every mapping key in document order with its path and position; `visit` returns whether to descend
    /// into that key's value (list items below it are visited with index paths). At most `maxNodes` are visited.
    public func visitKeys(_ visit: ([PathElement], (line: Int, column: Int)?) -> Bool) {
        var budget = Self.maxNodes
        func walk(_ node: Yams.Node, _ path: [PathElement]) {
            budget -= 1
            guard budget > 0 else { return }
            switch node {
            case .mapping(let map):
                for (k, v) in map {
                    let p = path + [.key(k.string ?? "")]
                    if visit(p, k.mark.map { ($0.line, $0.column) }) { walk(v, p) }
                }
            case .sequence(let seq):
                for (i, item) in seq.enumerated() { walk(item, path + [.index(i)]) }
            case .scalar, .alias:
                break
            }
        }
        walk(root, [])
    }

    /// `path` in the API's notation: `spec.probes[0].name`.
    public static func render(_ path: [PathElement]) -> String {
        var s = ""
        for e in path {
            switch e {
            case .key(let k): s += s.isEmpty ? k : "." + k
            case .index(let i): s += "[\(i)]"
            }
        }
        return s
    }

    /// The path of a `DecodingError`'s coding path.
    public static func path(_ keys: [any CodingKey]) -> [PathElement] {
        keys.map { k in
            if let i = k.intValue, k.stringValue.hasPrefix("Index") || k.stringValue == String(i) { return .index(i) }
            return .key(k.stringValue)
        }
    }

    static func problem(_ e: YamlError, file: String) -> Problem {
        switch e {
        case .scanner(let ctx, let problem, let mark, _), .parser(let ctx, let problem, let mark, _),
             .composer(let ctx, let problem, let mark, _):
            let context = ctx.map { "\($0.text): " } ?? ""
            return Problem(file: file, line: mark.line, column: mark.column, message: "not valid YAML: \(context)\(problem)")
        case .duplicatedKeysInMapping(let duplicates, let ctx):
            return Problem(file: file, line: ctx.mark.line, column: ctx.mark.column,
                           message: "duplicate key\(duplicates.count == 1 ? "" : "s") \(duplicates.map { "\"\($0)\"" }.joined(separator: ", ")) in one mapping")
        case .reader(let problem, let offset, _, _):
            return Problem(file: file, message: "not readable as text: \(problem)\(offset.map { " at byte \($0)" } ?? "")")
        default:
            return Problem(file: file, message: "not valid YAML: \(e)")
        }
    }

    /// Writes JSON text while walking the node tree once, counting every node an alias expands to.
    struct Writer {
        let file: String
        var out: [UInt8] = []
        var nodes = 0

        init(file: String) {
            self.file = file
            out.reserveCapacity(4096)
        }

        func fail(_ node: Yams.Node, _ message: String) -> Problem {
            Problem(file: file, line: node.mark?.line, column: node.mark?.column, message: message)
        }

        mutating func write(_ node: Yams.Node, depth: Int) throws(Problem) {
            nodes += 1
            guard nodes <= YAMLDocument.maxNodes else {
                throw fail(node, "expands to more than \(YAMLDocument.maxNodes) nodes (aliases referring to aliases?); refused")
            }
            guard depth <= YAMLDocument.maxDepth else { throw fail(node, "nested deeper than \(YAMLDocument.maxDepth) levels") }
            switch node {
            case .scalar(let s):
                writeScalar(s)
            case .sequence(let seq):
                out.append(UInt8(ascii: "["))
                for (i, item) in seq.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    try write(item, depth: depth + 1)
                }
                out.append(UInt8(ascii: "]"))
            case .mapping(let map):
                out.append(UInt8(ascii: "{"))
                var first = true
                for (k, v) in map {
                    guard case .scalar(let key) = k else { throw fail(k, "a mapping key must be a plain string, not a \(Self.kind(k))") }
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    Self.writeString(key.string, into: &out)
                    out.append(UInt8(ascii: ":"))
                    try write(v, depth: depth + 1)
                }
                out.append(UInt8(ascii: "}"))
            case .alias:
                // Yams hands aliases over already resolved; an unresolved one is refused rather than guessed.
                throw fail(node, "an unresolved alias")
            }
        }

        static func kind(_ n: Yams.Node) -> String {
            switch n {
            case .scalar: "scalar"
            case .mapping: "mapping"
            case .sequence: "list"
            case .alias: "alias"
            }
        }

        /// YAML 1.1 resolution of plain scalars, as kubectl's parser does; quoted scalars are always strings.
        mutating func writeScalar(_ s: Yams.Node.Scalar) {
            let text = s.string
            let plain = s.style == .plain || s.style == .any
            let tag = Tag.Name(rawValue: Yams.Node.scalar(s).tag.rawValue)
            if plain || tag != .str {
                switch tag {
                case .null:
                    out.append(contentsOf: Array("null".utf8))
                    return
                case .bool:
                    let t = ["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"].contains(text)
                    out.append(contentsOf: Array((t ? "true" : "false").utf8))
                    return
                case .int, .float:
                    if let number = Self.jsonNumber(text) {
                        out.append(contentsOf: Array(number.utf8))
                        return
                    }
                default:
                    break
                }
            }
            Self.writeString(text, into: &out)
        }

        /// The JSON spelling of a YAML 1.1 number, or nil (then it stays a string and the decoder says what it
        /// expected). Decimal digits pass through exactly, however long — the decoder, not this walk, decides
        /// what fits; hexadecimal, octal and binary are converted with checked arithmetic; `.inf`, `.nan` and
        /// sexagesimal `1:30` have no JSON spelling.
        static func jsonNumber(_ raw: String) -> String? {
            var t = raw.replacingOccurrences(of: "_", with: "")
            var sign = ""
            if t.hasPrefix("-") || t.hasPrefix("+") {
                if t.hasPrefix("-") { sign = "-" }
                t.removeFirst()
            }
            guard !t.isEmpty else { return nil }
            for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where t.hasPrefix(prefix) {
                guard let v = UInt64(t.dropFirst(2), radix: radix) else { return nil }
                return sign + String(v)
            }
            if t.count > 1, t.hasPrefix("0"), t.allSatisfy(\.isASCII), t.allSatisfy(\.isNumber) {
                // YAML 1.1 octal: 0755.
                guard let v = UInt64(t.dropFirst(), radix: 8) else { return nil }
                return sign + String(v)
            }
            // JSON's grammar: int [frac] [exp]; YAML also allows "1." and ".5".
            var b = Array(t.utf8)
            if b.first == UInt8(ascii: ".") { b.insert(UInt8(ascii: "0"), at: 0) }
            if let dot = b.firstIndex(of: UInt8(ascii: ".")), dot + 1 == b.count || !(b[dot + 1] >= 48 && b[dot + 1] <= 57) {
                b.insert(UInt8(ascii: "0"), at: dot + 1)
            }
            var i = 0
            func digits() -> Bool {
                let s = i
                while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
                return i > s
            }
            guard digits() else { return nil }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() else { return nil }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() else { return nil }
            }
            guard i == b.count else { return nil }
            return sign + String(decoding: b, as: UTF8.self)
        }

        static func writeString(_ s: String, into out: inout [UInt8]) {
            out.append(UInt8(ascii: "\""))
            for u in s.utf8 {
                switch u {
                case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
                case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(u >> 4)], hex[Int(u & 15)]])
                default: out.append(u)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
    }
}
