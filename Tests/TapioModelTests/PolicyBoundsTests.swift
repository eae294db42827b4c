import Foundation
import KubeEmulator
import TapioModel
import Testing

/// Issue 16: one source of truth for every bound of a TapioPolicy. `TapioPolicySchema.spec` lists each field with its
/// type and range; the CRD must state the same (integers' minimum and maximum, strings' maxLength and pattern, lists'
/// maxItems, maps' maxProperties, the ranges in the descriptions), and validation must enforce each range exactly at
/// its edges — for the ranges the CRD cannot express (a duration's or quantity's value) validation is the only guard,
/// which the operator turns into `Accepted=False`.
@Suite("TapioPolicy bounds: the schema table, the CRD and validation agree field by field", .timeLimit(.minutes(2)))
struct PolicyBoundsTests {
    typealias Leaf = (path: String, field: PolicyField)

    /// Every leaf of the table with its dotted path (list items as `[0]`).
    static func leaves(_ f: PolicyField, _ path: String = "spec") -> [Leaf] {
        switch f {
        case .object(let fields): return fields.sorted { $0.key < $1.key }.flatMap { leaves($0.value, "\(path).\($0.key)") }
        case .list(let item, _, _):
            var out: [Leaf] = [(path, f)]
            if case .object = item { out += leaves(item, "\(path)[0]") } else { out.append(("\(path)[0]", item)) }
            return out
        default: return [(path, f)]
        }
    }

    /// Differences between the table and a CRD schema node, both ways.
    static func disagreements(_ f: PolicyField, _ s: JSONSchemaProps, path: String) -> [String] {
        var out: [String] = []
        func expect(_ ok: Bool, _ what: String) { if !ok { out.append("\(path): \(what)") } }
        let description = (s.description ?? "").replacingOccurrences(of: "\n", with: " ")
        switch f {
        case .object(let fields):
            expect(s.type == "object", "type \(s.type ?? "nil"), expected object")
            for k in Set(fields.keys).subtracting(s.properties.keys).sorted() { out.append("\(path).\(k): in the table, not in the CRD") }
            for k in Set(s.properties.keys).subtracting(fields.keys).sorted() { out.append("\(path).\(k): in the CRD, not in the table") }
            for (k, child) in fields {
                if let cs = s.properties[k] { out += disagreements(child, cs, path: "\(path).\(k)") }
            }
        case .list(let item, let maxItems, let unique):
            expect(s.type == "array", "type \(s.type ?? "nil"), expected array")
            expect((s.listType == "set") == unique, "x-kubernetes-list-type \(s.listType ?? "none"), the table says \(unique ? "set" : "not a set")")
            expect(s.maxItems == Int64(maxItems), "maxItems \(s.maxItems.map(String.init) ?? "none"), the table says \(maxItems)")
            if let items = s.items { out += disagreements(item, items, path: "\(path)[]") } else { out.append("\(path): no items schema") }
        case .labelMap(let maxProperties):
            expect(s.type == "object", "type \(s.type ?? "nil"), expected object")
            expect(s.maxProperties == Int64(maxProperties), "maxProperties \(s.maxProperties.map(String.init) ?? "none"), the table says \(maxProperties)")
            expect(s.additionalProperties?.type == "string", "values must be strings")
            expect(s.additionalProperties?.maxLength == Int64(TapioPolicySchema.maxLabelValueLength), "label values' maxLength")
            expect(s.additionalProperties?.pattern == NameRules.labelValuePattern, "label values' pattern")
        case .boolean:
            expect(s.type == "boolean", "type \(s.type ?? "nil"), expected boolean")
        case .integer(let r):
            expect(s.type == "integer", "type \(s.type ?? "nil"), expected integer")
            expect(s.minimum == Double(r.lowerBound), "minimum \(s.minimum.map { "\($0)" } ?? "none"), the table says \(r.lowerBound)")
            expect(s.maximum == Double(r.upperBound), "maximum \(s.maximum.map { "\($0)" } ?? "none"), the table says \(r.upperBound)")
        case .duration(let r):
            expect(s.type == "string", "type \(s.type ?? "nil"), expected string")
            expect(s.pattern == GoDuration.pattern, "pattern is not GoDuration.pattern")
            expect(s.maxLength == Int64(TapioPolicySchema.maxScalarLength), "maxLength \(s.maxLength.map(String.init) ?? "none")")
            let range = "\(GoDuration.formatShort(r.lowerBound)) to \(GoDuration.formatShort(r.upperBound))"
            expect(description.contains(range), "the description does not state the range \(range)")
        case .quantity(let r):
            expect(s.intOrString, "not x-kubernetes-int-or-string")
            expect(s.pattern == Quantity.pattern, "pattern is not Quantity.pattern")
            expect(s.maxLength == Int64(TapioPolicySchema.maxScalarLength), "maxLength \(s.maxLength.map(String.init) ?? "none")")
            let range = "\(Quantity.formatBytes(r.lowerBound)) to \(Quantity.formatBytes(r.upperBound))"
            expect(description.contains(range), "the description does not state the range \(range)")
        case .string(let maxLength, let pattern, let enumValues):
            expect(s.type == "string", "type \(s.type ?? "nil"), expected string")
            if let enumValues {
                expect(s.enumValues?.compactMap(\.stringValue) == enumValues, "enum differs from the table's \(enumValues)")
                expect(enumValues.allSatisfy { $0.count <= maxLength }, "an enum value is longer than the table's maxLength")
            } else {
                expect(s.maxLength == Int64(maxLength), "maxLength \(s.maxLength.map(String.init) ?? "none"), the table says \(maxLength)")
                expect(s.pattern == pattern, "pattern \(s.pattern ?? "none"), the table says \(pattern ?? "none")")
            }
        }
        return out
    }

    static func specSchema(_ text: String? = nil) throws -> JSONSchemaProps {
        let crd = try text.map { try CustomResourceDefinition.load(yaml: $0) }
            ?? CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.policyCRD))
        return try #require(crd.storageVersion?.schema?.properties["spec"])
    }

    @Test("the CRD states every bound of the table, and has no field the table lacks")
    func crdAgreesWithTheTable() throws {
        let found = Self.disagreements(TapioPolicySchema.spec, try Self.specSchema(), path: "spec")
        #expect(found == [], "\(found.joined(separator: "\n"))")
    }

    @Test("a changed bound in the CRD is caught (the comparison is not vacuous)")
    func driftIsCaught() throws {
        var text = try RepoFiles.text(RepoFiles.policyCRD)
        let at = try #require(text.range(of: "maxProperties: 64"))
        text.replaceSubrange(at, with: "maxProperties: 65")
        text = text.replacingOccurrences(of: "1ms to 1m", with: "1ms to 2m")
        let found = Self.disagreements(TapioPolicySchema.spec, try Self.specSchema(text), path: "spec")
        #expect(found.contains { $0.contains("maxProperties 65") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("spec.correlation.batchTimeout") && $0.contains("range 1ms to 1m") }, "\(found)")
    }

    // MARK: Validation enforces each range at its edges

    /// A JSON value for `field` just inside (`inside: true`) or just outside its bound, or nil where the field has
    /// no bound to cross (booleans, enums).
    static func edgeValue(_ field: PolicyField, inside: Bool) -> Any? {
        switch field {
        case .integer(let r): return inside ? r.upperBound : r.upperBound + 1
        case .duration(let r):
            return GoDuration.format(inside ? r.upperBound : r.upperBound + .nanoseconds(1))
        case .quantity(let r): return inside ? String(r.upperBound) : String(r.upperBound + 1)
        case .labelMap(let n):
            let count = inside ? n : n + 1
            return Dictionary(uniqueKeysWithValues: (0..<count).map { ("k\($0)", "v") })
        case .list(let item, let n, _):
            let count = inside ? n : n + 1
            switch item {
            case .string(_, _, let e?): return (0..<count).map { e[$0 % e.count] }
            case .string: return (0..<count).map { "ns\($0)" }
            case .object: return (0..<count).map { ["key": "k\($0)", "operator": "Exists"] }
            default: return nil
            }
        default: return nil
        }
    }

    /// A manifest with one spec field set; inside a list (`matchExpressions[0].values`) the item gets the fields a
    /// requirement needs besides.
    static func manifest(_ path: String, _ value: Any) throws -> Data {
        var node: Any = value
        for key in path.split(separator: ".").dropFirst().reversed() {
            if key.hasSuffix("[0]") {
                var item = (node as? [String: Any]) ?? [:]
                item["key"] = item["key"] ?? "k"
                item["operator"] = item["values"] == nil ? "Exists" : "In"
                node = [String(key.dropLast(3)): [item]]
            } else {
                node = [String(key): node]
            }
        }
        return try JSONSerialization.data(withJSONObject: ["apiVersion": TapioPolicy.apiVersion, "kind": TapioPolicy.kind,
                                                           "metadata": ["name": "edge"], "spec": node])
    }

    static var boundedLeaves: [Leaf] {
        leaves(TapioPolicySchema.spec).filter { edgeValue($0.field, inside: false) != nil }
    }

    @Test("validation refuses each field just past its bound, at that field's path, and names the bound")
    func justOutsideIsRefused() throws {
        // samplingHz, batchSize, maxActionsPerHour; four durations; two quantities; three maps, three requirement
        // lists and their values; allowedActions and namespaces.
        #expect(Self.boundedLeaves.count == 20, "the walk must reach every bounded field: \(Self.boundedLeaves.map(\.path))")
        for leaf in Self.boundedLeaves {
            let value = try #require(Self.edgeValue(leaf.field, inside: false))
            let (policy, problems) = TapioPolicyValidation.decodeAndValidate(json: try Self.manifest(leaf.path, value))
            #expect(policy != nil)
            let at = problems.filter { $0.level == .error && $0.path == leaf.path }
            #expect(!at.isEmpty, "\(leaf.path) = \(value) was accepted; problems: \(problems)")
            #expect(at.allSatisfy { $0.detail.contains("between") || $0.detail.contains("at most") }, "\(at)")
        }
    }

    @Test("validation accepts each field exactly at its bound (the ranges are inclusive)")
    func atTheBoundIsAccepted() throws {
        for leaf in Self.boundedLeaves {
            let value = try #require(Self.edgeValue(leaf.field, inside: true))
            let (_, problems) = TapioPolicyValidation.decodeAndValidate(json: try Self.manifest(leaf.path, value))
            let at = problems.filter { $0.level == .error && $0.path.hasPrefix(leaf.path) && !$0.detail.contains("Duplicate") && $0.type != .duplicate }
            #expect(at.isEmpty, "\(leaf.path) at its bound was refused: \(at)")
        }
    }

    @Test("where the CRD can say a bound, the API server's schema check refuses the same values validation does")
    func theSchemaRefusesWhatValidationRefuses() throws {
        let crd = try CustomResourceDefinition.load(yamlFile: RepoFiles.path(RepoFiles.policyCRD))
        for leaf in Self.boundedLeaves {
            switch leaf.field {
            case .integer, .labelMap, .list: break
            default: continue  // value ranges of durations and quantities are validation's alone
            }
            let outside = try JSONValue.parse(try Self.manifest(leaf.path, try #require(Self.edgeValue(leaf.field, inside: false))))
            let inside = try JSONValue.parse(try Self.manifest(leaf.path, try #require(Self.edgeValue(leaf.field, inside: true))))
            let refused = SchemaValidator.validate(outside, against: crd).filter { $0.level == .error }
            // At its bound a set of three action names repeats them (16 items): the duplicates are the set's to refuse
            // (PolicySchemaParityTests), not the bound's.
            let accepted = SchemaValidator.validate(inside, against: crd)
                .filter { $0.level == .error && $0.path.hasPrefix(leaf.path) && $0.type != .duplicate }
            #expect(refused.contains { $0.path.hasPrefix(leaf.path) }, "the CRD accepts \(leaf.path) past its bound")
            #expect(accepted == [], "the CRD refuses \(leaf.path) at its bound: \(accepted)")
        }
    }

    @Test("a duration or quantity string longer than the CRD's maxLength is refused by validation too")
    func overlongScalars() throws {
        let long = String(repeating: "1", count: TapioPolicySchema.maxScalarLength) + "s"
        var p = TapioPolicy(name: "x")
        p.spec.correlation.window = long
        p.spec.probes.memory.leakThreshold = String(repeating: "1", count: TapioPolicySchema.maxScalarLength + 1)
        let errs = TapioPolicyValidation.validate(p)
        #expect(errs.contains { $0.path == "spec.correlation.window" && $0.type == .tooLong }, "\(errs)")
        #expect(errs.contains { $0.path == "spec.probes.memory.leakThreshold" && $0.type == .tooLong }, "\(errs)")
    }

    @Test("a policy the API server would store with a number beyond 64 bits decodes with the problem at its path")
    func numbersBeyond64Bits() throws {
        let json = #"{"metadata":{"name":"a"},"spec":{"probes":{"memory":{"samplingHz":1e300,"leakThreshold":100000000000000000000}},"correlation":{"batchSize":9223372036854775808}}}"#
        let (policy, problems) = TapioPolicyValidation.decodeAndValidate(json: Data(json.utf8))
        #expect(policy != nil, "decoding must not fail on the spec's values")
        #expect(problems.contains { $0.path == "spec.probes.memory.samplingHz" }, "\(problems)")
        #expect(problems.contains { $0.path == "spec.correlation.batchSize" }, "\(problems)")
    }
}
