import Foundation
import KubeEmulator
import TapioModel
import Testing

@Suite("CRD schemas as kube-apiserver enforces them", .timeLimit(.minutes(2)))
struct CRDSchemaTests {
    static func policyCRD() throws -> CustomResourceDefinition {
        try CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.policyCRD))
    }
    static func insightCRD() throws -> CustomResourceDefinition {
        try CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.insightCRD))
    }

    /// The sample policy as JSON, pruned and defaulted as the API server would store it.
    static func samplePolicy(_ crd: CustomResourceDefinition) throws -> JSONValue {
        try JSONValue.parseYAML(RepoFiles.text("config/samples/tapio.io_v1alpha1_tapiopolicy.yaml"))
    }

    @Test("both CRDs pass the API server's structural and CRD rules")
    func bothCRDsAreAccepted() throws {
        for crd in [try Self.policyCRD(), try Self.insightCRD()] {
            #expect(StructuralSchemaCheck.problems(crd) == [], "\(crd.name)")
        }
    }

    @Test("the CRDs have the scope, names, category and printer columns the issue asks for")
    func namesScopesAndColumns() throws {
        let p = try Self.policyCRD()
        #expect(p.scope == .cluster)
        #expect(p.name == "tapiopolicies.tapio.io")
        #expect(p.names.categories == ["tapio"])
        #expect(!p.names.shortNames.isEmpty)
        #expect(p.storageVersion?.statusSubresource == true)
        #expect(p.storageVersion?.printerColumns.filter { $0.priority == 0 }.map(\.name) == ["Mode", "Nodes", "Ready", "Age"])
        let i = try Self.insightCRD()
        #expect(i.scope == .namespaced)
        #expect(i.names.categories == ["tapio"])
        #expect(!i.names.shortNames.isEmpty)
        #expect(i.storageVersion?.statusSubresource == true)
        #expect(i.storageVersion?.printerColumns.map(\.name)
                    == ["Type", "Severity", "Subject", "Probability", "Time-To-Event", "Phase", "Remediation", "Age"])
    }

    @Test("every schema node in both CRDs has a description (but root metadata, where the server forbids one)")
    func everyFieldIsDescribed() throws {
        func undescribed(_ s: JSONSchemaProps, _ path: String) -> [String] {
            var out: [String] = []
            for (k, c) in s.properties where !(path.isEmpty && k == "metadata") {
                if (c.description ?? "").isEmpty { out.append("\(path).\(k)") }
                out += undescribed(c, "\(path).\(k)")
                if let items = c.items { out += undescribed(items, "\(path).\(k)[]") }
            }
            return out
        }
        for crd in [try Self.policyCRD(), try Self.insightCRD()] {
            let s = try #require(crd.storageVersion?.schema)
            #expect(undescribed(s, "").sorted() == [], "\(crd.name)")
        }
    }

    @Test("enum strings such as Off survive kubectl's YAML 1.1 reading as strings")
    func enumStringsAreQuoted() throws {
        let s = try #require(try Self.policyCRD().storageVersion?.schema)
        let mode = try #require(s.properties["spec"]?.properties["remediation"]?.properties["mode"])
        #expect(mode.enumValues == [.string("Off"), .string("Suggest"), .string("Propose"), .string("DryRun"), .string("Apply")])
        #expect(mode.defaultValue == .string("Suggest"))
    }

    @Test("an unquoted Off becomes a boolean and the checker reports it")
    func unquotedOffIsCaught() throws {
        var text = try RepoFiles.text(RepoFiles.policyCRD)
        text = text.replacingOccurrences(of: "- \"Off\"", with: "- Off")
        let crd = try CustomResourceDefinition.load(yaml: text)
        let problems = StructuralSchemaCheck.problems(crd)
        #expect(problems.contains { $0.contains("properties[mode].enum[0]") && $0.contains("false") }, "\(problems)")
    }

    @Test("a deliberately broken CRD fails the structural rules, each with its path")
    func brokenCRDFails() throws {
        let crd = try CustomResourceDefinition.load(yaml: Self.brokenCRD)
        let problems = StructuralSchemaCheck.problems(crd)
        let expected = [
            "metadata.name: Invalid value",
            "openAPIV3Schema.properties[spec].properties[untyped].type: Required value",
            "properties[spec].properties[both].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
            "properties[spec].properties[hz].default: Invalid value: 0",
            "properties[spec].properties[withDefault].default: Invalid value",
            "additionalPrinterColumns[0].jsonPath: Invalid value: \".spec.missing\"",
            "properties[metadata]: Forbidden: must not specify anything other than name and generateName",
            "properties[spec].properties[list].items: Required value",
            "properties[spec].properties[uniq].uniqueItems: Forbidden",
        ]
        for e in expected {
            #expect(problems.contains { $0.contains(e) }, "missing \(e) in \(problems)")
        }
    }

    @Test("a description on root metadata is refused, as kube-apiserver refuses it")
    func metadataDescriptionIsRefused() throws {
        var text = try RepoFiles.text(RepoFiles.policyCRD)
        text = text.replacingOccurrences(of: "          metadata:\n            type: object\n",
                                         with: "          metadata:\n            description: object metadata\n            type: object\n")
        let problems = StructuralSchemaCheck.problems(try CustomResourceDefinition.load(yaml: text))
        #expect(problems.count == 1 && problems[0].contains("properties[metadata]: Forbidden"), "\(problems)")
    }

    @Test("both samples validate against their CRDs after pruning and defaulting, with nothing pruned")
    func samplesValidate() throws {
        let cases: [(CustomResourceDefinition, String)] = [
            (try Self.policyCRD(), "config/samples/tapio.io_v1alpha1_tapiopolicy.yaml"),
            (try Self.policyCRD(), "config/samples/tapio.io_v1alpha1_tapiopolicy_minimal.yaml"),
            (try Self.insightCRD(), "config/samples/tapio.io_v1alpha1_insight.yaml"),
        ]
        for (crd, file) in cases {
            var obj = try JSONValue.parseYAML(RepoFiles.text(file))
            #expect(SchemaDefaulter.prune(&obj, crd: crd) == [], "\(file)")
            SchemaDefaulter.applyDefaults(&obj, crd: crd)
            #expect(SchemaValidator.validate(obj, against: crd).map(\.description) == [], "\(file)")
        }
    }

    @Test("remediation.mode Sometimes is rejected with the API server's Unsupported value message")
    func modeSometimesIsRejected() throws {
        let crd = try Self.policyCRD()
        var obj = try Self.samplePolicy(crd)
        obj["spec"]?["remediation"]?["mode"] = .string("Sometimes")
        let errs = SchemaValidator.validate(obj, against: crd).map(\.description)
        #expect(errs == [#"spec.remediation.mode: Unsupported value: "Sometimes": supported values: "Off", "Suggest", "Propose", "DryRun", "Apply""#])
    }

    @Test("samplingHz 0 and 10000 are rejected as out of bounds", arguments: [
        (Int64(0), "spec.probes.memory.samplingHz: Invalid value: 0: spec.probes.memory.samplingHz in body should be greater than or equal to 1"),
        (Int64(10000), "spec.probes.memory.samplingHz: Invalid value: 10000: spec.probes.memory.samplingHz in body should be less than or equal to 1000"),
    ])
    func samplingHzOutOfBoundsIsRejected(hz: Int64, message: String) throws {
        let crd = try Self.policyCRD()
        var obj = try Self.samplePolicy(crd)
        obj["spec"]?["probes"]?["memory"]?["samplingHz"] = .int(hz)
        #expect(SchemaValidator.validate(obj, against: crd).map(\.description) == [message])
    }

    @Test("wrong types, bad patterns and missing required fields are each reported")
    func typePatternAndRequired() throws {
        let crd = try Self.insightCRD()
        var obj = try JSONValue.parseYAML(RepoFiles.text("config/samples/tapio.io_v1alpha1_insight.yaml"))
        obj["spec"]?["prediction"]?["probability"] = .string("high")
        obj["spec"]?["prediction"]?["timeToEvent"] = .string("soon")
        obj["spec"]?["subject"]?["name"] = nil
        obj["spec"]?["severity"] = .bool(false)
        let errs = SchemaValidator.validate(obj, against: crd).map(\.description)
        #expect(errs.contains(#"spec.prediction.probability: Invalid value: "string": spec.prediction.probability in body must be of type number: "string""#), "\(errs)")
        #expect(errs.contains { $0.hasPrefix(#"spec.prediction.timeToEvent: Invalid value: "soon": spec.prediction.timeToEvent in body should match '"#) }, "\(errs)")
        #expect(errs.contains("spec.subject.name: Required value"), "\(errs)")
        #expect(errs.contains(#"spec.severity: Invalid value: "boolean": spec.severity in body must be of type string: "boolean""#), "\(errs)")
        #expect(errs.count == 4, "\(errs)")
    }

    @Test("date-time fields must be RFC 3339, as the API server's format check demands")
    func dateTimeFormat() throws {
        let crd = try Self.insightCRD()
        var obj = try JSONValue.parseYAML(RepoFiles.text("config/samples/tapio.io_v1alpha1_insight.yaml"))
        obj["spec"]?["prediction"]?["expectedAt"] = .string("in three minutes")
        let errs = SchemaValidator.validate(obj, against: crd).map(\.description)
        #expect(errs == [#"spec.prediction.expectedAt: Invalid value: "in three minutes": spec.prediction.expectedAt in body must be of type date-time: "in three minutes""#])
    }

    @Test("a quantity field accepts an integer or a pattern-matching string and rejects other strings")
    func intOrStringQuantity() throws {
        let crd = try Self.policyCRD()
        var obj = try Self.samplePolicy(crd)
        obj["spec"]?["remediation"]?["memoryCeiling"] = .int(4_294_967_296)
        #expect(SchemaValidator.validate(obj, against: crd) == [])
        obj["spec"]?["remediation"]?["memoryCeiling"] = .string("4GB")
        let errs = SchemaValidator.validate(obj, against: crd).map(\.description)
        #expect(errs.count == 1 && errs[0].hasPrefix(#"spec.remediation.memoryCeiling: Invalid value: "4GB""#), "\(errs)")
        obj["spec"]?["remediation"]?["memoryCeiling"] = .bool(true)
        #expect(SchemaValidator.validate(obj, against: crd).count >= 1)
    }

    @Test("unknown fields are pruned and reported, known ones kept")
    func pruning() throws {
        let crd = try Self.policyCRD()
        var obj = try Self.samplePolicy(crd)
        obj["spec"]?["probes"]?["memory"]?["samplingHZ"] = .int(5)
        obj["spec"]?["bogus"] = .object([:])
        obj["metadata"]?["labels"] = .object(["a": .string("b")])
        let removed = SchemaDefaulter.prune(&obj, crd: crd)
        #expect(removed == ["spec.bogus", "spec.probes.memory.samplingHZ"])
        #expect(obj["spec"]?["probes"]?["memory"]?["samplingHz"] == .int(19))
        #expect(obj["metadata"]?["labels"]?["a"] == .string("b"))
    }

    @Test("defaulting an empty spec fills nested defaults top-down")
    func defaultingCascades() throws {
        let crd = try Self.policyCRD()
        var obj: JSONValue = .object(["apiVersion": .string("tapio.io/v1alpha1"), "kind": .string("TapioPolicy"),
                                      "metadata": .object(["name": .string("x")])])
        SchemaDefaulter.applyDefaults(&obj, crd: crd)
        #expect(obj["spec"]?["probes"]?["memory"]?["samplingHz"] == .int(19))
        #expect(obj["spec"]?["remediation"]?["mode"] == .string("Suggest"))
        #expect(obj["spec"]?["correlation"]?["batchTimeout"] == .string("100ms"))
        #expect(obj["spec"]?["remediation"]?["memoryCeiling"] == nil)
        #expect(obj["status"] == nil)
    }

    static let brokenCRD = """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: wrong.example.com
    spec:
      group: example.com
      names: {kind: Broken, plural: brokens}
      scope: Namespaced
      versions:
        - name: v1
          served: true
          storage: true
          additionalPrinterColumns:
            - {name: Missing, type: string, jsonPath: .spec.missing}
          schema:
            openAPIV3Schema:
              type: object
              properties:
                metadata:
                  type: object
                  properties:
                    labels: {type: object}
                spec:
                  type: object
                  properties:
                    untyped:
                      description: no type here
                    both:
                      type: object
                      properties: {a: {type: string}}
                      additionalProperties: {type: string}
                    hz:
                      type: integer
                      minimum: 1
                      default: 0
                    withDefault:
                      type: object
                      properties: {a: {type: string}}
                      default: {a: "x", b: "unknown"}
                    list:
                      type: array
                    uniq:
                      type: array
                      uniqueItems: true
                      items: {type: string}
    """
}
