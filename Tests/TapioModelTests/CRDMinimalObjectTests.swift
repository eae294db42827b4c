import Foundation
import KubeEmulator
import TapioKube
import TapioModel
import Testing

/// The Swift decoders must accept every object the API server accepts: a field the CRD does not require may be
/// absent, and then decoding must still succeed. On the real API server an Insight without `spec.resources` (valid
/// for the CRD) made the operator's whole Insight watch undecodable — no cluster-level finding was ever made.
@Suite("Objects with only the CRD's required fields decode in Swift", .timeLimit(.minutes(2)))
struct CRDMinimalObjectTests {
    /// The smallest value the schema accepts: required properties only, empty lists, the first enum value, the
    /// minimum, a short string that matches the pattern.
    static func minimal(_ s: JSONSchemaProps) -> JSONValue {
        if s.intOrString { return .string("1") }
        if let first = s.enumValues?.first { return first }
        switch s.type {
        case "object":
            var o: [String: JSONValue] = [:]
            for k in s.required { if let child = s.properties[k] { o[k] = minimal(child) } }
            return .object(o)
        case "array":
            let n = Int(s.minItems ?? 0)
            return .array(Array(repeating: s.items.map(minimal) ?? .null, count: n))
        case "integer": return .int(Int64(s.minimum ?? 0))
        case "number": return .double(s.minimum ?? 0)
        case "boolean": return .bool(false)
        default:
            if s.format == "date-time" { return .string("2026-11-29T10:00:00Z") }
            for candidate in ["x", "1", "1s", "a1", "x.example.com"] {
                let ok = s.pattern.map { candidate.range(of: $0, options: .regularExpression) != nil } ?? true
                if ok { return .string(candidate) }
            }
            return .string("x")
        }
    }

    static func minimalObject(crd file: String) throws -> (Data, JSONValue) {
        let crd = try CustomResourceDefinition.load(yamlFile: RepoFiles.path(file))
        let schema = try #require(crd.storageVersion?.schema)
        var object = minimal(schema)
        guard case .object(var o) = object else { throw CRDError.invalid("not an object") }
        o["apiVersion"] = .string("tapio.io/v1alpha1")
        o["kind"] = .string(crd.names.kind)
        o["metadata"] = .object(["name": "minimal", "namespace": "default", "resourceVersion": "1"])
        // Every object (spec, status, nested ones) is present with only its required fields.
        for key in schema.properties.keys where o[key] == nil {
            if let child = schema.properties[key], child.type == "object" { o[key] = minimal(child) }
        }
        object = .object(o)
        #expect(SchemaValidator.validate(object, against: crd).filter { $0.level == .error } == [], "the generator must produce a valid object")
        return (object.jsonData(), object)
    }

    @Test("an Insight with only the required fields decodes, as the client and as the model")
    func insight() throws {
        let (data, json) = try Self.minimalObject(crd: RepoFiles.insightCRD)
        #expect(throws: Never.self, "\(json)") { _ = try JSONDecoder().decode(InsightObject.self, from: data) }
        #expect(throws: Never.self, "\(json)") { _ = try JSONDecoder().decode(InsightResource.self, from: data) }
    }

    @Test("an Insight whose nested objects have only their required fields decodes")
    func insightNested() throws {
        let crd = try CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.insightCRD))
        let spec = try #require(crd.storageVersion?.schema?.properties["spec"])
        // Each optional nested object and list item present, each with only its required fields.
        guard case .object(var s) = Self.minimal(spec) else {
            Issue.record("the Insight CRD's spec is not an object schema")
            return
        }
        for (k, child) in spec.properties where s[k] == nil {
            if child.type == "object" {
                guard case .object(var nested) = Self.minimal(child) else { continue }
                for (nk, nchild) in child.properties where nested[nk] == nil && nchild.type == "array" {
                    if let item = nchild.items { nested[nk] = .array([Self.minimal(item)]) }
                }
                s[k] = .object(nested)
            } else if child.type == "array", let item = child.items {
                s[k] = .array([Self.minimal(item)])
            }
        }
        let object: JSONValue = .object(["apiVersion": "tapio.io/v1alpha1", "kind": "Insight",
                                          "metadata": .object(["name": "nested", "namespace": "default"]),
                                          "spec": .object(s)])
        #expect(SchemaValidator.validate(object, against: crd).filter { $0.level == .error } == [], "\(object)")
        #expect(throws: Never.self, "\(object)") { _ = try JSONDecoder().decode(InsightObject.self, from: object.jsonData()) }
    }

    @Test("a TapioPolicy with only the required fields decodes without problems")
    func policy() throws {
        let (data, _) = try Self.minimalObject(crd: RepoFiles.policyCRD)
        let p = try JSONDecoder().decode(PolicyObject.self, from: data)
        #expect(p.spec.decodingProblems == [])
    }
}
