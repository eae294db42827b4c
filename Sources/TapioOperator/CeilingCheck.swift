import Foundation
import KubeClient
import Synchronization
import TapioModel

/// "A ceiling below the request": a policy that may apply `IncreaseMemoryLimit` with a `memoryCeiling` lower than
/// the memory request of containers it selects can never raise their limits (a limit below the request is invalid,
/// and the ceiling gate refuses anything above it) — almost certainly a mistake in the policy, so its status says so.
enum CeilingCheck {
    struct Finding: Sendable, Hashable {
        var namespace: String
        var pod: String
        var container: String
        var requestBytes: UInt64
    }

    /// The ceiling to check against, when the policy could apply `IncreaseMemoryLimit`.
    static func ceiling(of p: TapioPolicy) -> UInt64? {
        let r = p.spec.remediation
        guard r.mode == .apply, r.allowedActions.contains(RemediationActionName.increaseMemoryLimit.rawValue) else { return nil }
        return (try? r.memoryCeilingBytes()) ?? nil
    }

    /// Containers of `pods` the policy selects (namespace allowlist, namespace and pod selectors) whose memory
    /// request — or limit, which is the request when none is set — exceeds `ceiling`. Pure.
    static func findings(_ p: TapioPolicy, ceiling: UInt64, pods: [Pod], namespaceLabels: [String: [String: String]]) -> [Finding] {
        let r = p.spec.remediation
        var out: [Finding] = []
        for pod in pods {
            let ns = pod.metadata.namespace ?? ""
            if !r.namespaces.isEmpty && !r.namespaces.contains(ns) { continue }
            if let s = p.spec.selector.namespaceSelector, !s.matches(namespaceLabels[ns] ?? [:]) { continue }
            if let s = p.spec.selector.podSelector, !s.matches(pod.metadata.labels ?? [:]) { continue }
            for c in pod.spec?.containers ?? [] {
                let q = c.resources?.requests?["memory"] ?? c.resources?.limits?["memory"]
                guard let q, let bytes = try? Quantity.parseBytes(q), bytes > ceiling else { continue }
                out.append(Finding(namespace: ns, pod: pod.metadata.name ?? "", container: c.name, requestBytes: bytes))
            }
        }
        return out.sorted { ($0.namespace, $0.pod, $0.container) < ($1.namespace, $1.pod, $1.container) }
    }

    /// The condition message: the ceiling, how many containers, the first few with their requests, and the fix.
    static func message(ceiling: UInt64, _ f: [Finding]) -> String {
        let shown = f.prefix(5).map { "\($0.namespace)/\($0.pod) \($0.container) requests \(Quantity.formatBytes($0.requestBytes))" }
        let more = f.count > 5 ? " and \(f.count - 5) more" : ""
        return "spec.remediation.memoryCeiling \(Quantity.formatBytes(ceiling)) is below the memory request of \(f.count) selected container\(f.count == 1 ? "" : "s") (\(shown.joined(separator: "; "))\(more)): IncreaseMemoryLimit could never be applied to them. Raise the ceiling or narrow the selector."
    }
}

/// Remembers each policy's last ceiling check (per generation), so the pods are listed when a policy changes and
/// every `recheck` after that, not on every status refresh.
final class CeilingChecks: Sendable {
    struct Entry: Sendable {
        var generation: Int64
        var at: ContinuousClock.Instant
        var findings: [CeilingCheck.Finding]
    }

    let recheck: Duration
    private let entries = Mutex<[String: Entry]>([:])

    init(recheck: Duration = .seconds(300)) { self.recheck = recheck }

    /// Forgets the policies not in `names` (deleted): their checks stayed for the operator's life, across terms.
    func retain(_ names: Set<String>) {
        entries.withLock { e in e = e.filter { names.contains($0.key) } }
    }

    /// Policies with a check remembered.
    var count: Int { entries.withLock { $0.count } }

    /// The findings for `policy`, listing pods (and namespaces, for a namespaceSelector) when due.
    func findings(for policy: TapioPolicy, client: KubeClient) async throws -> [CeilingCheck.Finding] {
        let name = policy.metadata.name ?? ""
        let generation = policy.metadata.generation ?? 0
        guard let ceiling = CeilingCheck.ceiling(of: policy) else {
            entries.withLock { _ = $0.removeValue(forKey: name) }
            return []
        }
        let now = ContinuousClock.now
        if let e = entries.withLock({ $0[name] }), e.generation == generation, now - e.at < recheck { return e.findings }
        var options = ListOptions()
        if let s = policy.spec.selector.podSelector { options.labelSelector = s.query }
        var pods: [Pod] = []
        let allowlist = policy.spec.remediation.namespaces
        if allowlist.isEmpty {
            pods = try await client.listAll(Pod.self, options: options).items
        } else {
            for ns in allowlist { pods += try await client.listAll(Pod.self, namespace: ns, options: options).items }
        }
        var nsLabels: [String: [String: String]] = [:]
        if policy.spec.selector.namespaceSelector != nil {
            for n in try await client.listAll(Namespace.self).items { nsLabels[n.metadata.name ?? ""] = n.metadata.labels ?? [:] }
        }
        let found = CeilingCheck.findings(policy, ceiling: ceiling, pods: pods, namespaceLabels: nsLabels)
        entries.withLock { $0[name] = Entry(generation: generation, at: now, findings: found) }
        return found
    }
}
