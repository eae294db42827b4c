import Foundation
import KubeClient
import TapioKube
import TapioModel
import Testing
import TapioTestTraits

/// Issue 16, item 6: `--policy` files are read in linear time, every problem carries its line and column, unknown
/// fields are warnings with their path, and hostile YAML (alias bombs, deep nesting, huge documents) is refused.
@Suite("TapioPolicy manifests from files", .cpuBound, .timeLimit(.minutes(2)))
struct PolicyManifestTests {
    static func load(_ yaml: String) throws(PolicyManifest.Refused) -> PolicyManifest.Loaded {
        try PolicyManifest.load(text: yaml, file: "p.yaml")
    }

    static func refusal(_ yaml: String) -> [String] {
        do {
            _ = try load(yaml)
            return []
        } catch {
            return error.problems
        }
    }

    static let header = "apiVersion: tapio.io/v1alpha1\nkind: TapioPolicy\nmetadata: {name: p}\n"

    @Test("a YAML syntax error names the file, line and column")
    func syntaxErrors() {
        let problems = Self.refusal(Self.header + "spec:\n  probes: [1\n")
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("p.yaml:6:1: not valid YAML") == true, "\(problems)")
    }

    @Test("every invalid value is listed top to bottom with its line, column and field path")
    func valueErrorsCarryPositions() {
        let yaml = Self.header + """
            spec:
              probes:
                memory:
                  samplingHz: 5000
              correlation:
                batchTimeout: "2562047.9h"
                window: 2562047h
              remediation:
                mode: Off
            """
        let problems = Self.refusal(yaml)
        #expect(problems.count == 4, "\(problems)")
        #expect(problems[0].hasPrefix("p.yaml:7:7: spec.probes.memory.samplingHz: Invalid value: 5000: must be between 1 and 1000"), "\(problems)")
        #expect(problems[1].hasPrefix("p.yaml:9:5: spec.correlation.batchTimeout") && problems[1].contains("too large"), "\(problems)")
        #expect(problems[2].hasPrefix("p.yaml:10:5: spec.correlation.window") && problems[2].contains("between 1m and 24h"), "\(problems)")
        #expect(problems[3].hasPrefix("p.yaml:12:5: spec.remediation.mode") && problems[3].contains(#"write "Off""#), "\(problems)")
    }

    @Test("a bad label value under a dotted key, a spelling the API server refuses, and a repeated action each get their line")
    func serverRefusalsCarryPositions() {
        let yaml = Self.header + """
            spec:
              nodeSelector:
                matchLabels: {app.kubernetes.io/name: "web shop"}
              correlation:
                window: "+5m"
              remediation:
                allowedActions: [RestartPod, RestartPod]
            """
        let problems = Self.refusal(yaml)
        #expect(problems.count == 3, "\(problems)")
        #expect(problems.first?.hasPrefix(#"p.yaml:6:19: spec.nodeSelector.matchLabels.app.kubernetes.io/name: Invalid value: "web shop""#) == true, "\(problems)")
        #expect(problems.dropFirst().first?.hasPrefix(#"p.yaml:8:5: spec.correlation.window: Invalid value: "+5m": no sign"#) == true, "\(problems)")
        #expect(problems.last?.hasPrefix(#"p.yaml:10:34: spec.remediation.allowedActions[1]: Duplicate value: "RestartPod""#) == true, "\(problems)")
    }

    @Test("unknown and misspelt fields are warnings with their path and position; the policy still loads")
    func unknownFieldsWarn() throws {
        let yaml = Self.header + """
            spec:
              probes:
                memroy: {samplingHz: 49}
                memory: {samplingHz: 49, enabeld: true}
              selector:
                podSelector:
                  matchLabels: {anything.example.com/goes: "yes"}
                  matchExpressions: [{key: app, operator: In, values: [web], valeus: [api]}]
              extra: 1
            status: {nodesApplied: 1}
            metadata2: {}
            """
        let loaded = try Self.load(yaml)
        #expect(loaded.policy.spec.probes.memory.samplingHz == 49)
        #expect(loaded.warnings == [
            #"p.yaml:6:5: warning: unknown field "spec.probes.memroy"; the API server would drop it"#,
            #"p.yaml:7:30: warning: unknown field "spec.probes.memory.enabeld"; the API server would drop it"#,
            #"p.yaml:11:66: warning: unknown field "spec.selector.podSelector.matchExpressions[0].valeus"; the API server would drop it"#,
            #"p.yaml:12:3: warning: unknown field "spec.extra"; the API server would drop it"#,
            #"p.yaml:14:1: warning: unknown field "metadata2"; the API server would drop it"#,
        ], "\(loaded.warnings)")
    }

    @Test("JSON manifests, integer quantities and YAML 1.1 numbers load as kubectl reads them")
    func jsonAndNumbers() throws {
        let json = #"{"apiVersion":"tapio.io/v1alpha1","kind":"TapioPolicy","metadata":{"name":"j"},"spec":{"probes":{"memory":{"samplingHz":0x1f,"leakThreshold":1048576}},"correlation":{"batchSize":1_000}}}"#
        let p = try Self.load(json).policy
        #expect(p.spec.probes.memory.samplingHz == 31)
        #expect(try p.spec.probes.memory.leakThresholdBytesPerHour() == 1_048_576)
        #expect(p.spec.correlation.batchSize == 1000)
    }

    @Test("numbers no integer holds are refused at their path, not trapped on", arguments: [
        "samplingHz: 99999999999999999999999", "samplingHz: 1e300", "samplingHz: .inf", "samplingHz: 0xFFFFFFFFFFFFFFFFFF",
        "samplingHz: 1:2:3:4:5:6:7:8:9:10:11:12:13", "leakThreshold: 1e20", "leakThreshold: -.nan",
    ])
    func hostileNumbers(line: String) {
        let problems = Self.refusal(Self.header + "spec:\n  probes:\n    memory:\n      \(line)\n")
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.hasPrefix("p.yaml:7:7: spec.probes.memory.") == true, "\(problems)")
    }

    @Test("an alias bomb is refused by its size, not expanded")
    func aliasBomb() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<10 { yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let problems = Self.refusal(yaml)
        #expect(problems.first?.contains("expands to more than") == true, "\(problems)")
    }

    @Test("huge, deep, multi-document, duplicate-key and non-string-key documents are each refused with a reason", arguments: [
        (String(repeating: "#", count: YAMLDocument.maxBytes + 1), "3 MiB"),
        (String(repeating: "[", count: 200) + String(repeating: "]", count: 200), "deeper than"),
        (header + "---\n" + header, "several YAML documents"),
        (header + "spec: {}\nspec: {}\n", "duplicate key \"spec\""),
        (header + "spec: {? [a]: 1}\n", "mapping key must be a plain string"),
        ("", "empty document"),
    ])
    func hostileDocuments(yaml: String, says: String) {
        let problems = Self.refusal(yaml)
        #expect(problems.count == 1 && problems[0].contains(says), "\(problems)")
    }

    @Test("a 20,000-key matchLabels is refused once with the bound, not checked key by key")
    func hugeSelectorIsOneError() {
        var yaml = Self.header + "spec:\n  selector:\n    podSelector:\n      matchLabels:\n"
        for i in 0..<20_000 { yaml += "        k\(i): v\(i)\n" }
        let problems = Self.refusal(yaml)
        #expect(problems == ["p.yaml:7:7: spec.selector.podSelector.matchLabels: Too many: 20000: must have at most 64 items"])
    }

    @Test("the shipped samples load without a warning")
    func samplesAreClean() throws {
        let dir = CommandLineRepo.root.appendingPathComponent("config/samples")
        for name in ["tapio.io_v1alpha1_tapiopolicy.yaml", "tapio.io_v1alpha1_tapiopolicy_minimal.yaml"] {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            let loaded = try PolicyManifest.load(text: text, file: name)
            #expect(loaded.warnings == [], "\(name): \(loaded.warnings)")
        }
    }
}

enum CommandLineRepo {
    static let root = URL(fileURLWithPath: RepoFiles.path(""))
}
