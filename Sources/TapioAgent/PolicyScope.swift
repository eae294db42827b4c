import KubeClient
import KubeRuntime
import Synchronization
import TapioCorrelation
import TapioKube
import TapioModel

/// Which pods the node's policies watch (`spec.selector`): an insight about a pod is published only when at least
/// one policy that selects this node also selects the pod — by its namespace's labels and its own. With no policy
/// at all every pod is watched (the defaults), and insights about nodes, the cluster or the node's own processes
/// are always published.
public final class PolicyScope: Sendable {
    let pods: ReflectorStore<Pod>
    private let policies = Mutex<[TapioPolicy]>([])
    private let namespaceLabels = Mutex<[String: [String: String]]>([:])

    public init(pods: ReflectorStore<Pod>) { self.pods = pods }

    public func setPolicies(_ p: [TapioPolicy]) { policies.withLock { $0 = p } }
    public func setNamespaceLabels(_ labels: [String: [String: String]]) { namespaceLabels.withLock { $0 = labels } }

    /// Whether the selectors let this update through.
    public func allows(_ u: InsightUpdate) -> Bool {
        let subject = u.spec.subject
        guard subject.kind == "Pod", let ns = subject.namespace else { return true }
        let selected = policies.withLock { $0 }
        guard !selected.isEmpty else { return true }
        let podLabels = pods.get(namespace: ns, name: subject.name)?.metadata.labels ?? [:]
        let nsLabels = namespaceLabels.withLock { $0[ns] } ?? ["kubernetes.io/metadata.name": ns]
        return selected.contains { p in
            (p.spec.selector.namespaceSelector?.matches(nsLabels) ?? true)
                && (p.spec.selector.podSelector?.matches(podLabels) ?? true)
        }
    }

    /// Re-reads every namespace's labels (the agent may read namespaces for exactly this).
    public func refreshNamespaces(_ client: KubeClient) async {
        guard let all = try? await client.listAll(Namespace.self).items else { return }
        var out: [String: [String: String]] = [:]
        for n in all { if let name = n.metadata.name { out[name] = n.metadata.labels ?? [:] } }
        setNamespaceLabels(out)
    }
}
