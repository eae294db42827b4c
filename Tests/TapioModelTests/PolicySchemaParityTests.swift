import Foundation
import KubeEmulator
import TapioModel
import TapioTestSupport
import Testing
import TapioTestTraits

/// What the API server refuses in a TapioPolicy, `tapio sniff --policy` must refuse too: a manifest tried locally and
/// then committed to Git would otherwise fail at `kubectl apply` (or in Argo CD's sync) for a reason Tapio never
/// named. Generated values for every field whose text the CRD constrains are put to both the CRD's schema (the
/// emulator's validator, which follows kube-apiserver: its messages and these cases were compared with v1.36.2) and
/// Tapio's validation. Tapio may refuse more (value ranges, a label key's 253-character prefix), never less.
@Suite("TapioPolicy: validation refuses whatever the CRD's schema refuses", .cpuBound, .timeLimit(.minutes(2)))
struct PolicySchemaParityTests {
    /// A field, how to place a generated value in a manifest's spec, and the alphabet its values are drawn from.
    struct Field: Sendable, CustomStringConvertible {
        var path: String
        var alphabet: [String]
        var seeds: [String]
        var place: @Sendable (String) -> [String: Any]
        var description: String { path }
    }

    static let fields: [Field] = [
        Field(path: "spec.correlation.window",
              alphabet: ["0", "1", "5", "9", ".", "+", "-", "n", "s", "u", "µ", "μ", "m", "h", " ", "\n", "d"],
              seeds: ["5m", "+5m", "-5m", "1μs", "1µs", "5m\n", " 5m", "0", "1.5h", ".5m", "1.m"],
              place: { ["correlation": ["window": $0]] }),
        Field(path: "spec.probes.memory.leakThreshold",
              alphabet: ["0", "1", "5", ".", "+", "-", "e", "E", "K", "M", "G", "i", "m", "u", "n", "k", " ", "\t", "\n"],
              seeds: ["10Mi", " 10Mi", "10Mi ", "10Mi\n", "+1Ki", "1e3", "1e+3", "1e1.5", ".5Gi", "1.Mi"],
              place: { ["probes": ["memory": ["leakThreshold": $0]]] }),
        Field(path: "spec.nodeSelector.matchLabels",
              alphabet: ["a", "Z", "0", "-", "_", ".", "/", " ", "\n", "é"],
              seeds: ["web", "", "-web", "web-", "a.b_c", "web\n", String(repeating: "a", count: 63)],
              place: { ["nodeSelector": ["matchLabels": ["role": $0]]] }),
        Field(path: "spec.nodeSelector.matchExpressions[0].values",
              alphabet: ["a", "Z", "0", "-", "_", ".", "/", " ", "\n"],
              seeds: ["web", "", "_x", "x_", "web\n"],
              place: { ["nodeSelector": ["matchExpressions": [["key": "app", "operator": "In", "values": [$0]]]]] }),
        Field(path: "spec.selector.podSelector.matchExpressions[0].key",
              alphabet: ["a", "Z", "0", "-", "_", ".", "/", " ", "\n"],
              seeds: ["app", "tapio.io/app", "Tapio.io/app", "a/b/c", "/app", "app/", "-app", "a..b/app",
                      "a/" + String(repeating: "x", count: 64), "app\n"],
              place: { ["selector": ["podSelector": ["matchExpressions": [["key": $0, "operator": "Exists"]]]]] }),
        Field(path: "spec.remediation.allowedActions",
              alphabet: ["RestartPod", "RolloutUndo", "IncreaseMemoryLimit"], seeds: [],
              place: { ["remediation": ["allowedActions": $0.split(separator: ",").map(String.init)]] }),
        Field(path: "spec.remediation.namespaces",
              alphabet: ["shop", "pay", "a"], seeds: [],
              place: { ["remediation": ["namespaces": $0.split(separator: ",").map(String.init)]] }),
    ]

    /// Values for `field`: its seeds, then random strings of its alphabet (lists: 1–4 comma-joined items).
    static func values(_ field: Field, count: Int, seed: UInt64) -> [String] {
        var fuzz = Fuzz(seed: seed)
        var out = field.seeds
        let isList = field.path.hasSuffix("allowedActions") || field.path.hasSuffix("namespaces")
        while out.count < count {
            let n = fuzz.int(isList ? 1...4 : 0...8)
            out.append((0..<n).map { _ in fuzz.pick(field.alphabet) }.joined(separator: isList ? "," : ""))
        }
        return out
    }

    @Test("every value the schema refuses at a field, validation refuses at that field", arguments: fields)
    func validationIsNoLaxerThanTheSchema(_ field: Field) throws {
        let crd = try CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.policyCRD))
        var refusedBySchema = 0, acceptedBySchema = 0
        var missed: [String] = []
        for value in Self.values(field, count: 600, seed: 0x5C4E_0A + UInt64(field.path.count)) {
            let manifest: [String: Any] = ["apiVersion": TapioPolicy.apiVersion, "kind": TapioPolicy.kind,
                                           "metadata": ["name": "parity"], "spec": field.place(value)]
            let data = try JSONSerialization.data(withJSONObject: manifest)
            let schema = SchemaValidator.validate(try JSONValue.parse(data), against: crd)
                .filter { $0.level == .error && $0.path.hasPrefix(field.path) }
            guard !schema.isEmpty else {
                acceptedBySchema += 1
                continue
            }
            refusedBySchema += 1
            let (_, problems) = TapioPolicyValidation.decodeAndValidate(json: data)
            if !problems.contains(where: { $0.level == .error && $0.path.hasPrefix(field.path) }) {
                missed.append("\(String(reflecting: value)) — the schema says \(schema.map(\.description))")
            }
        }
        #expect(missed.isEmpty, "validation accepts what the API server refuses:\n\(missed.prefix(10).joined(separator: "\n"))")
        // Not vacuous: the generated values land on both sides of the schema.
        #expect(refusedBySchema >= 20 && acceptedBySchema >= 5, "refused \(refusedBySchema), accepted \(acceptedBySchema)")
    }

    @Test("the cases kube-apiserver v1.36.2 was seen refusing are refused by the schema here, at the server's path", arguments: [
        (#"{"correlation": {"window": "5m\n"}}"#, "spec.correlation.window", "should match"),
        (#"{"correlation": {"window": "+5m"}}"#, "spec.correlation.window", "should match"),
        (#"{"probes": {"memory": {"leakThreshold": "10Mi\n"}}}"#, "spec.probes.memory.leakThreshold", "should match"),
        (#"{"nodeSelector": {"matchLabels": {"role": "bad value!"}}}"#, "spec.nodeSelector.matchLabels.role", "should match"),
        (#"{"nodeSelector": {"matchExpressions": [{"key": "Bad_/key", "operator": "Exists"}]}}"#,
         "spec.nodeSelector.matchExpressions[0].key", "should match"),
        (#"{"remediation": {"allowedActions": ["RestartPod", "RestartPod"]}}"#, "spec.remediation.allowedActions[1]",
         #"Duplicate value: "RestartPod""#),
        (#"{"remediation": {"namespaces": ["shop", "shop"]}}"#, "spec.remediation.namespaces[1]", #"Duplicate value: "shop""#),
    ])
    func theServersRefusals(_ spec: String, path: String, message: String) throws {
        let crd = try CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.policyCRD))
        let manifest = #"{"apiVersion": "\#(TapioPolicy.apiVersion)", "kind": "\#(TapioPolicy.kind)", "metadata": {"name": "parity"}, "spec": \#(spec)}"#
        let errs = SchemaValidator.validate(try JSONValue.parse(Data(manifest.utf8)), against: crd).filter { $0.level == .error }
        #expect(errs.contains { $0.path == path && $0.description.contains(message) }, "\(errs.map(\.description))")
    }
}
