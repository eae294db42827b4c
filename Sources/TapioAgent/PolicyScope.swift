import KubeClient
import KubeRuntime
import Logging
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
    private let need: AsyncStream<Bool>.Continuation
    private let needs: AsyncStream<Bool>

    public init(pods: ReflectorStore<Pod>) {
        self.pods = pods
        (needs, need) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    public func setPolicies(_ p: [TapioPolicy]) {
        policies.withLock { $0 = p }
        need.yield(Self.needsNamespaceLabels(p))
    }

    public func setNamespaceLabels(_ labels: [String: [String: String]]) { namespaceLabels.withLock { $0 = labels } }

    /// Whether a namespaceSelector asks for a label other than `kubernetes.io/metadata.name` — the one label every
    /// namespace has, which the agent knows from the name alone. Only then must namespaces be read at all.
    public static func needsNamespaceLabels(_ policies: [TapioPolicy]) -> Bool {
        policies.contains { p in
            guard let s = p.spec.selector.namespaceSelector else { return false }
            let keys = Array((s.matchLabels ?? [:]).keys) + (s.matchExpressions ?? []).map(\.key)
            return keys.contains { $0 != "kubernetes.io/metadata.name" }
        }
    }

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

    /// Watches namespaces while a policy's namespaceSelector needs their labels (``needsNamespaceLabels(_:)``), and
    /// not at all otherwise: a watch, not a list every few seconds, and none in the usual case. Runs until cancelled.
    public func followNamespaces(_ client: KubeClient, logger: Logger) async {
        var watch: Task<Void, Never>?
        for await needed in needs {
            if needed, watch == nil {
                watch = Task { await self.watchNamespaces(client, logger: logger) }
            } else if !needed, let w = watch {
                w.cancel()
                await w.value
                watch = nil
                setNamespaceLabels([:])
            }
        }
        watch?.cancel()
        await watch?.value
    }

    private func watchNamespaces(_ client: KubeClient, logger: Logger) async {
        let store = ReflectorStore<Namespace>()
        do {
            try await store.run(Watcher(client: client, Namespace.self, logger: logger)) { event in
                if case .initStart = event { return }
                if case .initApply = event { return }
                var out: [String: [String: String]] = [:]
                for n in store.list() { if let name = n.metadata.name { out[name] = n.metadata.labels ?? [:] } }
                self.setNamespaceLabels(out)
            }
        } catch is CancellationError {
        } catch { logger.warning("watching namespaces ended: \(error)") }
    }
}
