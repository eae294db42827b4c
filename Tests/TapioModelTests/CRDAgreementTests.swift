import Foundation
import KubeEmulator
import TapioKube
import TapioModel
import Testing

/// The Swift API types and the CRD schemas must describe the same fields with compatible types, in both
/// directions, so neither can drift from the other.
@Suite("Swift API types and CRD schemas agree field by field", .timeLimit(.minutes(2)))
struct CRDAgreementTests {
    static func encoded<T: Encodable>(_ v: T) throws -> JSONValue {
        try JSONValue.parse(JSONEncoder().encode(v))
    }

    /// Paths of optionals left nil in a value (outside `metadata`), found by reflection.
    static func nilOptionals(_ value: Any, path: String = "") -> [String] {
        let m = Mirror(reflecting: value)
        if m.displayStyle == .optional {
            guard let child = m.children.first else { return [path] }
            return nilOptionals(child.value, path: path)
        }
        var out: [String] = []
        switch m.displayStyle {
        case .struct, .class:
            for c in m.children {
                // decodingProblems is never encoded: it reports what could not be decoded.
                guard let label = c.label, label != "metadata", label != "decodingProblems" else { continue }
                out += nilOptionals(c.value, path: path.isEmpty ? label : "\(path).\(label)")
            }
        case .collection:
            if m.children.isEmpty { out.append(path + " (empty list)") }
            for (i, c) in m.children.enumerated() { out += nilOptionals(c.value, path: "\(path)[\(i)]") }
        default:
            break
        }
        return out
    }

    /// Schema property paths (list items as `[]`, maps and ObjectMeta not descended) missing from `json`.
    static func schemaFieldsMissing(in json: JSONValue, schema: JSONSchemaProps, path: String = "") -> [String] {
        var out: [String] = []
        for (k, child) in schema.properties {
            let p = path.isEmpty ? k : "\(path).\(k)"
            guard let v = json[k] else {
                out.append(p)
                continue
            }
            if k == "metadata" && path.isEmpty { continue }
            if case .array(let items) = v, let itemSchema = child.items {
                if items.isEmpty { out.append("\(p)[] (empty in the fixture)") }
                for item in items { out += schemaFieldsMissing(in: item, schema: itemSchema, path: "\(p)[]") }
            } else {
                out += schemaFieldsMissing(in: v, schema: child, path: p)
            }
        }
        return out
    }

    /// Every disagreement between an encoded, fully populated value and a CRD's schema, in both directions.
    static func disagreements<T: Encodable>(_ value: T, crd: CustomResourceDefinition) throws -> [String] {
        let schema = try #require(crd.storageVersion?.schema)
        let json = try encoded(value)
        var out: [String] = []
        // Swift → schema: every encoded field exists in the schema (nothing would be pruned)…
        var pruned = json
        out += SchemaDefaulter.prune(&pruned, crd: crd).map { "Swift field \($0) is not in the schema" }
        // …and every value has the schema's type, enum membership and bounds.
        out += SchemaValidator.validate(json, against: crd).map { "schema rejects the Swift value: \($0)" }
        // Schema → Swift: every schema field is produced by the Swift types.
        out += schemaFieldsMissing(in: json, schema: schema).sorted().map { "schema field \($0) is not in Swift" }
        return out
    }

    static func check<T: Encodable>(_ value: T, crdFile: String) throws {
        #expect(nilOptionals(value) == [], "the fixture must populate every field so the comparison sees it")
        let crd = try CustomResourceDefinition.load(yamlFile: RepoFiles.path(crdFile))
        #expect(try disagreements(value, crd: crd) == [])
    }

    @Test("a renamed or retyped schema field is caught in both directions")
    func driftIsCaught() throws {
        var text = try RepoFiles.text(RepoFiles.policyCRD)
        text = text.replacingOccurrences(of: "                  ttl:\n", with: "                  timeToLive:\n")
        let crd = try CustomResourceDefinition.load(yaml: text)
        let found = try Self.disagreements(Fixtures.fullPolicy, crd: crd)
        #expect(found.contains("Swift field spec.insights.ttl is not in the schema"), "\(found)")
        #expect(found.contains("schema field spec.insights.timeToLive is not in Swift"), "\(found)")

        var retyped = try RepoFiles.text(RepoFiles.policyCRD)
        let hz = try #require(retyped.range(of: "samplingHz:"))
        let type = try #require(retyped.range(of: "type: integer", range: hz.upperBound..<retyped.endIndex))
        retyped.replaceSubrange(type, with: "type: string")
        let found2 = try Self.disagreements(Fixtures.fullPolicy, crd: try CustomResourceDefinition.load(yaml: retyped))
        #expect(found2.contains { $0.contains("spec.probes.memory.samplingHz") && $0.contains("must be of type string") }, "\(found2)")
    }

    @Test("every TapioPolicy field exists in the CRD with a compatible type, and every CRD field in Swift")
    func tapioPolicyAgrees() throws {
        try Self.check(Fixtures.fullPolicy, crdFile: RepoFiles.policyCRD)
    }

    @Test("every Insight field exists in the CRD with a compatible type, and every CRD field in Swift")
    func insightAgrees() throws {
        try Self.check(Fixtures.fullInsight, crdFile: RepoFiles.insightCRD)
    }

    @Test("the CRD's enums list exactly the Swift enums' cases")
    func enumsAgree() throws {
        let p = try #require(try CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.policyCRD)).storageVersion?.schema)
        let i = try #require(try CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.insightCRD)).storageVersion?.schema)
        func values(_ s: JSONSchemaProps?) -> [String] { s?.enumValues?.compactMap(\.stringValue) ?? [] }
        let rem = p.properties["spec"]?.properties["remediation"]
        #expect(values(rem?.properties["mode"]) == RemediationMode.allCases.map(\.rawValue))
        #expect(values(rem?.properties["allowedActions"]?.items) == RemediationActionName.known)
        #expect(values(p.properties["spec"]?.properties["correlation"]?.properties["minSeverity"]) == Severity.allCases.map(\.rawValue))
        let sel = p.properties["spec"]?.properties["nodeSelector"]?.properties["matchExpressions"]?.items
        #expect(values(sel?.properties["operator"]) == LabelSelectorRequirement.operators)
        let spec = i.properties["spec"]
        #expect(values(spec?.properties["type"]) == InsightType.allCases.map(\.rawValue))
        #expect(values(spec?.properties["severity"]) == Severity.allCases.map(\.rawValue))
        let action = spec?.properties["remediation"]?.properties["actions"]?.items
        #expect(values(action?.properties["risk"]) == Risk.allCases.map(\.rawValue))
        let status = i.properties["status"]
        #expect(values(status?.properties["phase"]) == InsightPhase.allCases.map(\.rawValue))
        #expect(values(status?.properties["remediation"]?.properties["state"]) == RemediationState.allCases.map(\.rawValue))
        #expect(values(status?.properties["remediation"]?.properties["history"]?.items?.properties["outcome"])
                    == RemediationOutcome.allCases.map(\.rawValue))
    }

    @Test("the CRD's defaults and bounds are the Swift defaults and bounds")
    func defaultsAgree() throws {
        let crd = try CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.policyCRD))
        var served: JSONValue = .object(["apiVersion": .string(TapioPolicy.apiVersion), "kind": .string(TapioPolicy.kind),
                                         "metadata": .object(["name": .string("d")])])
        SchemaDefaulter.applyDefaults(&served, crd: crd)
        let swift = try Self.encoded(try JSONDecoder().decode(TapioPolicy.self, from: Data(#"{"metadata":{"name":"d"}}"#.utf8)))
        #expect(served["spec"] == swift["spec"])

        let s = try #require(crd.storageVersion?.schema?.properties["spec"])
        let hz = try #require(s.properties["probes"]?.properties["memory"]?.properties["samplingHz"])
        #expect(hz.minimum.map { Int($0) } == MemoryProbe.samplingHzRange.lowerBound)
        #expect(hz.maximum.map { Int($0) } == MemoryProbe.samplingHzRange.upperBound)
        let bs = try #require(s.properties["correlation"]?.properties["batchSize"])
        #expect(bs.minimum.map { Int($0) } == CorrelationSettings.batchSizeRange.lowerBound)
        #expect(bs.maximum.map { Int($0) } == CorrelationSettings.batchSizeRange.upperBound)
        let mx = try #require(s.properties["remediation"]?.properties["maxActionsPerHour"])
        #expect(mx.maximum.map { Int($0) } == RemediationSettings.maxActionsPerHourRange.upperBound)
        #expect(s.properties["probes"]?.properties["memory"]?.properties["leakThreshold"]?.pattern == Quantity.pattern)
        #expect(s.properties["correlation"]?.properties["window"]?.pattern == GoDuration.pattern)
    }

    /// One step into a JSON value: an object's key or an array's index.
    enum Step: CustomStringConvertible {
        case key(String), index(Int)
        var description: String {
            switch self {
            case .key(let k): ".\(k)"
            case .index(let i): "[\(i)]"
            }
        }
    }

    /// Every property present in `json` that its schema does not require (maps and `metadata` not descended).
    static func optionalPaths(in json: JSONValue, schema: JSONSchemaProps, path: [Step] = []) -> [[Step]] {
        var out: [[Step]] = []
        for (k, child) in schema.properties.sorted(by: { $0.key < $1.key }) {
            guard let v = json[k], !(k == "metadata" && path.isEmpty) else { continue }
            let p = path + [.key(k)]
            if !schema.required.contains(k) { out.append(p) }
            if case .array(let items) = v, let itemSchema = child.items {
                for (i, item) in items.enumerated() { out += optionalPaths(in: item, schema: itemSchema, path: p + [.index(i)]) }
            } else {
                out += optionalPaths(in: v, schema: child, path: p)
            }
        }
        return out
    }

    static func removing(_ path: ArraySlice<Step>, from json: JSONValue) -> JSONValue {
        guard let first = path.first else { return json }
        switch (first, json) {
        case (.key(let k), .object(var o)):
            if path.count == 1 { o[k] = nil } else if let v = o[k] { o[k] = removing(path.dropFirst(), from: v) }
            return .object(o)
        case (.index(let i), .array(var a)) where a.indices.contains(i):
            a[i] = removing(path.dropFirst(), from: a[i])
            return .array(a)
        default:
            return json
        }
    }

    /// What the API server accepts, Tapio must read: an object written with any field the CRD leaves optional left
    /// out still decodes (and a policy so written has no decoding problems). A Swift field required where the CRD
    /// does not require it made a whole Insight unreadable to the operator (a proposal without `commands`).
    static func optionalFieldsMayBeLeftOut<T: Decodable>(_ value: some Encodable, as type: T.Type, crdFile: String,
                                                         problems: (T) -> [String] = { _ in [] }) throws -> [String] {
        let crd = try CustomResourceDefinition.load(yamlFile: RepoFiles.path(crdFile))
        let schema = try #require(crd.storageVersion?.schema)
        let json = try encoded(value)
        let paths = optionalPaths(in: json, schema: schema)
        #expect(paths.count > 20, "the walk found only \(paths.count) optional fields")
        var failures: [String] = []
        for path in paths {
            let name = path.map(\.description).joined()
            let without = removing(path[...], from: json)
            do {
                let decoded = try JSONDecoder().decode(T.self, from: without.jsonData())
                failures += problems(decoded).map { "without \(name): \($0)" }
            } catch {
                failures.append("without \(name): \(error)")
            }
        }
        return failures
    }

    @Test("an object without any field the CRD leaves optional still decodes")
    func optionalFieldsAreOptionalInSwift() throws {
        let policy = try Self.optionalFieldsMayBeLeftOut(Fixtures.fullPolicy, as: TapioPolicy.self, crdFile: RepoFiles.policyCRD,
                                                         problems: { $0.spec.decodingProblems.map { "\($0)" } })
        #expect(policy.isEmpty, "\(policy)")
        let insight = try Self.optionalFieldsMayBeLeftOut(Fixtures.fullInsight, as: InsightResource.self,
                                                          crdFile: RepoFiles.insightCRD)
        #expect(insight.isEmpty, "\(insight)")
        let object = try Self.optionalFieldsMayBeLeftOut(Fixtures.fullInsight, as: InsightObject.self,
                                                         crdFile: RepoFiles.insightCRD)
        #expect(object.isEmpty, "\(object)")
    }
}
