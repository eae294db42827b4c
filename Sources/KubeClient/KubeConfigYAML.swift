import Foundation
import Yams

/// Loads a kubeconfig's YAML into plain values (`[String: Any]`, `[Any]`, `String`, `Bool`, `NSNull`) without
/// Yams's constructor, which traps on a mapping key that is not a scalar (`? [a]: b`) and builds ints, floats
/// and dates the kubeconfig never needs. The tree is bounded too: libyaml stops nesting at 1,000 levels, and
/// aliases — the way a small file becomes a huge value (`a: &a [x, x]`, `b: &b [*a, *a]`, … doubles per line) —
/// are expanded against a budget of nodes.
///
/// Plain scalars are resolved here (null, YAML 1.1 booleans, the merge key) rather than by Yams's default resolver:
/// its rules are `NSRegularExpression`s, and building them loads ICU — ~5 MiB of an idle agent's resident memory
/// for the three words a kubeconfig can use. (An explicit `!!str` on a plain `true` is read as the boolean; no
/// kubeconfig writes one.)
enum KubeConfigYAML {
    /// Nodes a kubeconfig may expand to. A kubeconfig with a thousand clusters, users and contexts has ~20,000.
    static let maxNodes = 200_000

    struct Failure: Error { var message: String }

    static func load(_ text: String, file: String) throws -> Any? {
        let node: Yams.Node?
        do { node = try Yams.compose(yaml: text, .basic) } catch {
            throw KubeConfigError(file: file, field: "", message: "not valid YAML: \(String(describing: error).prefix(1024))")
        }
        guard let node else { return nil }
        var budget = maxNodes
        do { return try value(node, &budget) } catch let f as Failure {
            throw KubeConfigError(file: file, field: "", message: f.message)
        }
    }

    /// Unquoted: only plain scalars are nulls, booleans or merge keys by their words.
    static func isPlain(_ s: Yams.Node.Scalar) -> Bool { s.style == .plain || s.style == .any }

    /// YAML 1.1's plain nulls and booleans (the words of Yams's default rules).
    static let nullWords: Set<String> = ["", "~", "null", "Null", "NULL"]
    static func bool(_ word: String) -> Bool? {
        switch word {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: return nil
        }
    }

    private static func value(_ node: Yams.Node, _ budget: inout Int) throws -> Any {
        budget -= 1
        guard budget >= 0 else { throw Failure(message: "the document expands to more than \(maxNodes) YAML nodes (aliases included)") }
        switch node {
        case .scalar(let s):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return NSNull()
            case .bool: return bool(s.string) ?? s.string
            case .str where isPlain(s):
                if nullWords.contains(s.string) { return NSNull() }
                return bool(s.string) ?? s.string
            default: return s.string
            }
        case .alias:
            // Yams resolves aliases while composing; an unresolved one has no value.
            return NSNull()
        case .sequence(let seq):
            var out: [Any] = []
            for child in seq { out.append(try value(child, &budget)) }
            return out
        case .mapping(let map):
            var out: [String: Any] = [:]
            var merged: [String: Any] = [:]
            for (k, v) in map {
                guard case .scalar(let key) = k else {
                    throw Failure(message: "not a kubeconfig: a mapping key is not a string\(k.mark.map { " (line \($0.line), column \($0.column))" } ?? "")")
                }
                let inner = try value(v, &budget)
                if Tag.Name(rawValue: k.tag.rawValue) == .merge
                    || (key.string == "<<" && isPlain(key)) {
                    // `<<: *base` or `<<: [*a, *b]`: keys of the merged mappings, unless given explicitly.
                    for m in (inner as? [Any] ?? [inner]) {
                        guard let dict = m as? [String: Any] else { throw Failure(message: "not a kubeconfig: a merge key (<<) must name mappings") }
                        merged.merge(dict) { first, _ in first }
                    }
                } else {
                    out[key.string] = inner
                }
            }
            return out.merging(merged) { explicit, _ in explicit }
        }
    }
}
