/// One node of a CRD's `openAPIV3Schema`, parsed from its JSON form. Only what the API server acts on is typed;
/// `raw` keeps the node as written so structural checks can see unknown or misplaced keys.
/// A reference type because schemas are recursive; immutable, hence `Sendable`.
public final class JSONSchemaProps: Sendable {
    public let raw: [String: JSONValue]
    public let type: String?
    public let format: String?
    public let description: String?
    public let properties: [String: JSONSchemaProps]
    /// `additionalProperties` as a schema (a map's value schema); `additionalPropertiesBool` if written as a bool.
    public let additionalProperties: JSONSchemaProps?
    public let additionalPropertiesBool: Bool?
    public let items: JSONSchemaProps?
    public let required: [String]
    public let enumValues: [JSONValue]?
    public let defaultValue: JSONValue?
    public let minimum: Double?
    public let maximum: Double?
    public let exclusiveMinimum: Bool
    public let exclusiveMaximum: Bool
    public let multipleOf: Double?
    public let minLength: Int64?
    public let maxLength: Int64?
    public let pattern: String?
    public let minItems: Int64?
    public let maxItems: Int64?
    public let uniqueItems: Bool
    public let minProperties: Int64?
    public let maxProperties: Int64?
    public let nullable: Bool
    public let allOf: [JSONSchemaProps]
    public let anyOf: [JSONSchemaProps]
    public let oneOf: [JSONSchemaProps]
    public let not: JSONSchemaProps?
    public let intOrString: Bool
    public let preserveUnknownFields: Bool?
    public let embeddedResource: Bool
    public let listType: String?
    public let listMapKeys: [String]

    /// Parses a schema node; throws on values of the wrong JSON type (e.g. `properties` that is not an object).
    public init(_ json: JSONValue, path: String = "openAPIV3Schema") throws {
        guard case .object(let o) = json else { throw CRDError.invalid("\(path): a schema must be an object") }
        raw = o
        func str(_ k: String) throws -> String? {
            guard let v = o[k] else { return nil }
            guard case .string(let s) = v else { throw CRDError.invalid("\(path).\(k): must be a string") }
            return s
        }
        func num(_ k: String) throws -> Double? {
            guard let v = o[k] else { return nil }
            guard let d = v.doubleValue else { throw CRDError.invalid("\(path).\(k): must be a number") }
            return d
        }
        func int(_ k: String) throws -> Int64? {
            guard let v = o[k] else { return nil }
            guard let i = v.intValue else { throw CRDError.invalid("\(path).\(k): must be an integer") }
            return i
        }
        func bool(_ k: String) throws -> Bool? {
            guard let v = o[k] else { return nil }
            guard case .bool(let b) = v else { throw CRDError.invalid("\(path).\(k): must be a boolean") }
            return b
        }
        func list(_ k: String) throws -> [JSONSchemaProps] {
            guard let v = o[k] else { return [] }
            guard case .array(let a) = v else { throw CRDError.invalid("\(path).\(k): must be a list of schemas") }
            return try a.enumerated().map { try JSONSchemaProps($1, path: "\(path).\(k)[\($0)]") }
        }
        type = try str("type")
        format = try str("format")
        description = try str("description")
        if let p = o["properties"] {
            guard case .object(let po) = p else { throw CRDError.invalid("\(path).properties: must be an object") }
            var props: [String: JSONSchemaProps] = [:]
            for (k, v) in po { props[k] = try JSONSchemaProps(v, path: "\(path).properties[\(k)]") }
            properties = props
        } else {
            properties = [:]
        }
        switch o["additionalProperties"] {
        case .bool(let b)?:
            additionalProperties = nil
            additionalPropertiesBool = b
        case let v?:
            additionalProperties = try JSONSchemaProps(v, path: "\(path).additionalProperties")
            additionalPropertiesBool = nil
        case nil:
            additionalProperties = nil
            additionalPropertiesBool = nil
        }
        if let i = o["items"] {
            if case .array = i {
                throw CRDError.invalid("\(path).items: must be a schema object and not an array")
            }
            items = try JSONSchemaProps(i, path: "\(path).items")
        } else {
            items = nil
        }
        if let r = o["required"] {
            guard case .array(let a) = r, let names = Optional(a.compactMap(\.stringValue)), names.count == a.count else {
                throw CRDError.invalid("\(path).required: must be a list of strings")
            }
            required = names
        } else {
            required = []
        }
        if let e = o["enum"] {
            guard case .array(let a) = e else { throw CRDError.invalid("\(path).enum: must be a list") }
            enumValues = a
        } else {
            enumValues = nil
        }
        defaultValue = o["default"]
        minimum = try num("minimum")
        maximum = try num("maximum")
        exclusiveMinimum = try bool("exclusiveMinimum") ?? false
        exclusiveMaximum = try bool("exclusiveMaximum") ?? false
        multipleOf = try num("multipleOf")
        minLength = try int("minLength")
        maxLength = try int("maxLength")
        pattern = try str("pattern")
        minItems = try int("minItems")
        maxItems = try int("maxItems")
        uniqueItems = try bool("uniqueItems") ?? false
        minProperties = try int("minProperties")
        maxProperties = try int("maxProperties")
        nullable = try bool("nullable") ?? false
        allOf = try list("allOf")
        anyOf = try list("anyOf")
        oneOf = try list("oneOf")
        not = try o["not"].map { try JSONSchemaProps($0, path: "\(path).not") }
        intOrString = try bool("x-kubernetes-int-or-string") ?? false
        preserveUnknownFields = try bool("x-kubernetes-preserve-unknown-fields")
        embeddedResource = try bool("x-kubernetes-embedded-resource") ?? false
        listType = try str("x-kubernetes-list-type")
        if let k = o["x-kubernetes-list-map-keys"] {
            guard case .array(let a) = k else { throw CRDError.invalid("\(path).x-kubernetes-list-map-keys: must be a list") }
            listMapKeys = a.compactMap(\.stringValue)
        } else {
            listMapKeys = []
        }
    }

    /// True when unknown fields below this node are kept rather than pruned.
    public var preservesUnknownFields: Bool { preserveUnknownFields == true }

    /// The schema that applies to the value of `key` in an object at this node: a named property, else the
    /// map value schema; nil if the key is unknown here.
    public func child(_ key: String) -> JSONSchemaProps? {
        properties[key] ?? additionalProperties
    }
}
