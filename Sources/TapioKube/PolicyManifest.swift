import Foundation
import KubeClient
import TapioModel

/// A TapioPolicy manifest read from a file (`tapio sniff --policy`, `tapio replay --policy`): decoded in time linear
/// in its size, every problem named by field path and line, and — since no API server is there to prune them —
/// unknown fields reported as warnings, as `kubectl apply --validate=warn` does.
///
///     let loaded = try PolicyManifest.load(text: yaml, file: "shop.yaml")
///     for w in loaded.warnings { print(w) }   // shop.yaml:9:7: warning: unknown field "spec.probes.memroy"
public enum PolicyManifest {
    public struct Loaded: Sendable {
        public var policy: TapioPolicy
        /// Unknown fields and validation warnings, one line each, `file:line:column: warning: …`.
        public var warnings: [String]
    }

    /// Why the manifest was refused: every problem, one line each, `file:line:column: path: message`.
    public struct Refused: Error, Sendable, CustomStringConvertible {
        public var problems: [String]
        public var description: String { problems.joined(separator: "\n") }
    }

    public static func load(text: String, file: String) throws(Refused) -> Loaded {
        let doc: YAMLDocument
        do { doc = try YAMLDocument(text: text, file: file) } catch { throw Refused(problems: [error.description]) }
        let policy: TapioPolicy
        do {
            policy = try JSONDecoder().decode(TapioPolicy.self, from: doc.json)
        } catch {
            throw Refused(problems: [locate(FieldError(decoding: error), in: doc)])
        }
        // Each finding with its position, so the list reads top to bottom like the file.
        var problems: [(position: (line: Int, column: Int)?, text: String)] = []
        var warnings: [(position: (line: Int, column: Int)?, text: String)] = unknownFields(doc).map {
            ($0.position, "\(at($0.position, doc)): warning: unknown field \"\(YAMLDocument.render($0.path))\"; the API server would drop it")
        }
        for p in TapioPolicyValidation.validate(policy) where !(p.path == "metadata.name" && policy.metadata.name == nil) {
            // A local file needs no name; everything else counts as it would on the API server.
            let position = doc.position(of: parse(p.path))
            if p.level == .error { problems.append((position, locate(p, in: doc))) } else { warnings.append((position, locate(p, in: doc, warning: true))) }
        }
        func ordered(_ list: [(position: (line: Int, column: Int)?, text: String)]) -> [String] {
            list.enumerated().sorted { a, b in
                let pa = a.element.position.map { ($0.line, $0.column) } ?? (0, 0)
                let pb = b.element.position.map { ($0.line, $0.column) } ?? (0, 0)
                return pa != pb ? pa < pb : a.offset < b.offset
            }.map(\.element.text)
        }
        // Refused: the warnings too, since a misspelt field is often why a value is not what was meant.
        guard problems.isEmpty else { throw Refused(problems: ordered(problems + warnings)) }
        return Loaded(policy: policy, warnings: ordered(warnings))
    }

    /// `file:line:column: path: message`, with a hint where YAML 1.1 turned an unquoted word into a boolean.
    static func locate(_ e: FieldError, in doc: YAMLDocument, warning: Bool = false) -> String {
        let path = parse(e.path)
        var text = "\(at(doc.position(of: path), doc)): \(warning ? "warning: " : "")\(e.description)"
        if e.description.contains("must be of type string"), let word = doc.plainScalar(at: path),
           ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"].contains(word) {
            text += " (YAML reads an unquoted \(word) as a boolean; write \"\(word)\")"
        }
        return text
    }

    static func at(_ position: (line: Int, column: Int)?, _ doc: YAMLDocument) -> String {
        position.map { "\(doc.file):\($0.line):\($0.column)" } ?? doc.file
    }

    /// `spec.x[2].y` and `matchLabels.app.kubernetes.io/name` back into path elements. A label map's key may hold
    /// dots (the API server joins it with one all the same), so whatever follows `matchLabels.` is one key.
    static func parse(_ path: String) -> [YAMLDocument.PathElement] {
        var out: [YAMLDocument.PathElement] = []
        var current = ""
        var i = path.startIndex
        while i < path.endIndex {
            let c = path[i]
            if c == "." {
                if !current.isEmpty { out.append(.key(current)) }
                current = ""
                if case .key("matchLabels")? = out.last, path.index(after: i) < path.endIndex {
                    out.append(.key(String(path[path.index(after: i)...])))
                    return out
                }
            } else if c == "[", let close = path[i...].firstIndex(of: "]") {
                if !current.isEmpty { out.append(.key(current)) }
                current = ""
                let inner = String(path[path.index(after: i)..<close])
                out.append(Int(inner).map { .index($0) } ?? .key(inner))
                i = close
            } else {
                current.append(c)
            }
            i = path.index(after: i)
        }
        if !current.isEmpty { out.append(.key(current)) }
        return out
    }

    /// ObjectMeta's fields: anything else under `metadata` would be dropped by the API server.
    static let metadataFields: Set<String> = [
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
        "managedFields",
    ]

    /// Keys the policy's schema does not have, with where they are. Unknown keys are not descended into.
    static func unknownFields(_ doc: YAMLDocument) -> [(path: [YAMLDocument.PathElement], position: (line: Int, column: Int)?)] {
        var found: [(path: [YAMLDocument.PathElement], position: (line: Int, column: Int)?)] = []
        doc.visitKeys { path, position in
            guard case .key(let top) = path[0] else { return false }
            if path.count == 1 {
                guard TapioPolicySchema.topLevelFields.contains(top) else {
                    found.append((path, position))
                    return false
                }
                return top == "spec" || top == "metadata"
            }
            if top == "metadata" {
                if path.count == 2, case .key(let k) = path[1], !metadataFields.contains(k) { found.append((path, position)) }
                return false
            }
            // spec: follow the schema.
            var field = TapioPolicySchema.spec
            for element in path.dropFirst() {
                switch (element, field) {
                case (.key(let k), .object(let fields)):
                    guard let f = fields[k] else {
                        found.append((path, position))
                        return false
                    }
                    field = f
                case (.index, .list(let item, _, _)):
                    field = item
                default:
                    // A label map's keys are data, and a type mismatch is the decoder's to report.
                    return false
                }
            }
            switch field {
            case .object, .list: return true
            default: return false
            }
        }
        return found
    }
}
