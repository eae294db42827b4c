/// The `Insight` custom resource (group `tapio.io`, `v1alpha1`, namespaced) wrapping `InsightSpec`.
/// Its name comes from `InsightIdentity.name` (TapioCorrelation) so the same problem updates one object.
public struct InsightResource: Sendable, Hashable, Codable {
    public static let apiVersion = "tapio.io/v1alpha1"
    public static let kind = "Insight"
    /// Annotation a person sets to approve remediation when the policy has `requireApproval`.
    public static let approveAnnotation = "tapio.io/approve"

    public var apiVersion: String
    public var kind: String
    public var metadata: ResourceMeta
    public var spec: InsightSpec
    public var status: InsightStatus?

    public init(apiVersion: String = InsightResource.apiVersion, kind: String = InsightResource.kind,
                metadata: ResourceMeta, spec: InsightSpec, status: InsightStatus? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// An Insight named `name` in `namespace` (the subject's namespace, or Tapio's own for cluster-wide subjects).
    public init(name: String? = nil, spec: InsightSpec, namespace: String, status: InsightStatus? = nil) {
        self.init(metadata: ResourceMeta(name: name, namespace: namespace), spec: spec, status: status)
    }

    /// True when a person approved remediation (`tapio.io/approve: "true"`).
    public var isApproved: Bool { metadata.annotations?[Self.approveAnnotation] == "true" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion) ?? Self.apiVersion
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? Self.kind
        metadata = try c.decodeIfPresent(ResourceMeta.self, forKey: .metadata) ?? ResourceMeta()
        spec = try c.decode(InsightSpec.self, forKey: .spec)
        status = try c.decodeIfPresent(InsightStatus.self, forKey: .status)
    }
}
