import KubeClient
import TapioModel

/// A TapioPolicy as the client reads it: the client's object metadata around the model's spec and status.
/// (The client and the model each have an ObjectMeta; this is the seam between them.)
public struct PolicyObject: KubeResource, Hashable {
    public static let apiVersion = TapioPolicy.apiVersion
    public static let kind = TapioPolicy.kind
    public static let plural = "tapiopolicies"
    public static let namespaced = false
    public var metadata: KubeObjectMeta
    public var spec: TapioPolicySpec
    public var status: TapioPolicyStatus?

    public init(metadata: KubeObjectMeta, spec: TapioPolicySpec, status: TapioPolicyStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    enum CodingKeys: String, CodingKey { case metadata, spec, status }

    /// Never fails on the spec or status: a policy the API server stored but this version cannot read (a wrong type,
    /// a number beyond 64 bits) must not make the whole list, and so every other policy, unreadable. Its spec
    /// carries the problems (`decodingProblems`) and validation refuses it by name.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try c.decode(KubeObjectMeta.self, forKey: .metadata)
        spec = TapioPolicySpec.decodeLeniently(c, forKey: .spec)
        status = try? c.decodeIfPresent(TapioPolicyStatus.self, forKey: .status)
    }

    /// The model's view (for validation and merging).
    public var policy: TapioPolicy {
        var p = TapioPolicy(name: metadata.name ?? "", spec: spec, status: status)
        p.metadata.uid = metadata.uid
        p.metadata.generation = metadata.generation
        p.metadata.resourceVersion = metadata.resourceVersion
        p.metadata.labels = metadata.labels
        return p
    }
}

/// An Insight as the client reads it (see ``PolicyObject`` for why the wrapper exists).
public struct InsightObject: KubeResource, Hashable {
    public static let apiVersion = InsightResource.apiVersion
    public static let kind = InsightResource.kind
    public static let plural = "insights"
    public static let namespaced = true
    public var metadata: KubeObjectMeta
    public var spec: InsightSpec
    public var status: InsightStatus?

    public init(metadata: KubeObjectMeta, spec: InsightSpec, status: InsightStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// The model's view (for the remediation gates).
    public var resource: InsightResource {
        var r = InsightResource(name: metadata.name, spec: spec, namespace: metadata.namespace ?? "", status: status)
        r.metadata.uid = metadata.uid
        r.metadata.annotations = metadata.annotations
        r.metadata.labels = metadata.labels
        r.metadata.generation = metadata.generation
        return r
    }
}
