import Foundation
import TapioModel
import Yams

/// YAML → `JSONValue` the way kubectl reads manifests: YAML 1.1 scalar resolution, so an unquoted `Off`, `On`,
/// `yes` or `no` becomes a boolean (DESIGN.md §5) and a test fed a mis-quoted CRD sees what a real cluster sees.
/// Timestamps stay strings (as in sigs.k8s.io/yaml, which goes through JSON).
extension JSONValue {
    /// Why a YAML document could not become JSON.
    public struct YAMLError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Parses exactly one YAML document (an empty document is `.null`).
    public static func parseYAML(_ yaml: String) throws -> JSONValue {
        guard let node = try Yams.compose(yaml: yaml) else { return .null }
        return try JSONValue(yamlNode: node)
    }

    /// Parses a multi-document YAML stream (`---` separated), skipping empty documents.
    public static func parseYAMLDocuments(_ yaml: String) throws -> [JSONValue] {
        var out: [JSONValue] = []
        for node in try Yams.compose_all(yaml: yaml) {
            let v = try JSONValue(yamlNode: node)
            if v != .null { out.append(v) }
        }
        return out
    }

    /// At most this many nodes are converted: Yams shares an alias's node wherever it is referred to, and converting
    /// copies it each time, so nine levels of ten references are 10⁹ values (the limit of ``KubeClient``'s
    /// `YAMLDocument`).
    public static let maxYAMLNodes = 2_000_000

    /// Converts a composed Yams node.
    public init(yamlNode node: Node) throws {
        var budget = Self.maxYAMLNodes
        try self.init(yamlNode: node, budget: &budget)
    }

    private init(yamlNode node: Node, budget: inout Int) throws {
        budget -= 1
        guard budget >= 0 else {
            throw YAMLError(description: "expands to more than \(Self.maxYAMLNodes) values (aliases referring to aliases?)")
        }
        switch node {
        case .scalar(let s):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null:
                self = .null
            case .bool:
                guard let b = Bool.construct(from: s) else { throw YAMLError(description: "bad boolean \(s.string)") }
                self = .bool(b)
            case .int where s.string.contains(":"), .float where s.string.contains(":"):
                // Base 60 (`1:30`): YAML 1.1 reads it as a number, Kubernetes' YAML reader as a string. (Yams's
                // conversion multiplies by 60 unchecked: a long one trapped the process.)
                self = .string(s.string)
            case .int:
                if let i = Int64.construct(from: s) {
                    self = .int(i)
                } else if let d = Double.construct(from: s) {
                    self = .double(d)
                } else {
                    throw YAMLError(description: "bad integer \(s.string)")
                }
            case .float:
                guard let d = Double.construct(from: s) else { throw YAMLError(description: "bad number \(s.string)") }
                self = .double(d)
            default:
                self = .string(s.string)
            }
        case .sequence(let seq):
            var items: [JSONValue] = []
            for n in seq { items.append(try JSONValue(yamlNode: n, budget: &budget)) }
            self = .array(items)
        case .mapping(let m):
            var o: [String: JSONValue] = [:]
            for (k, v) in m {
                // JSON keys are strings; kubectl renders scalar keys as their text.
                guard case .scalar(let ks) = k else {
                    throw YAMLError(description: "mapping key is not a scalar\(k.mark.map { " at \($0)" } ?? "")")
                }
                o[ks.string] = try JSONValue(yamlNode: v, budget: &budget)
            }
            self = .object(o)
        case .alias:
            throw YAMLError(description: "YAML aliases are not supported in manifests")
        }
    }

    /// A compact rendering like Go's `%#v` of the decoded JSON: strings quoted, numbers bare, others as JSON.
    /// Used in error messages (`Invalid value: 0: …`).
    public var goRendered: String {
        switch self {
        case .string(let s): return FieldError.quoted(s)
        case .int(let i): return String(i)
        case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array, .object: return String(decoding: jsonData(), as: UTF8.self)
        }
    }

    /// The JSON type name as the API server's schema errors use it.
    public var schemaTypeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int: "integer"
        case .double(let d): d == d.rounded() ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

