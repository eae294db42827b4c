import Foundation
import KubeClient
import Logging
import TapioKube
import TapioModel

/// Resolving an Insight that was written Active and that no update of its writer will resolve: left by a previous
/// leader or a restarted agent (the operator), or an agent's own resolution pushed out of its full write queue.
public enum InsightResolution {
    /// Marks the Insight Resolved — Remediated when its fix was applied — with `lastSeen`: its status, then its summary
    /// ("Resolved: …", as an agent's resolution says) and `why` as its last evidence ("Resolved by `resolver`: why"),
    /// so the Insight itself says what ended it. With `onlyIfUnchanged` the resourceVersion it was judged at goes with
    /// the status: one written since (seen again) answers 409 and stays. The spec follows only the status it patched:
    /// a write in between wins (its writer sees it, and its own status write then fails and is written again).
    /// Throws what the status patch threw (`conflict`, `notFound`, …); the spec patch after it is best effort.
    public static func resolve(_ o: InsightObject, client: KubeClient, lastSeen: Date, why: String, by resolver: String,
                               onlyIfUnchanged: Bool, logger: Logger) async throws {
        struct Doc: Encodable {
            struct Meta: Encodable { let resourceVersion: String? }
            struct Status: Encodable { let phase: String; let lastSeen: String }
            let metadata: Meta
            let status: Status
        }
        struct SpecDoc: Encodable {
            struct Meta: Encodable { let resourceVersion: String? }
            struct Spec: Encodable { let summary: String; let evidence: [Evidence] }
            let metadata: Meta
            let spec: Spec
        }
        let phase: InsightPhase = o.status?.remediation?.state == .applied ? .remediated : .resolved
        let seen = lastSeen.formatted(.iso8601)
        let body = try JSONEncoder().encode(Doc(metadata: .init(resourceVersion: onlyIfUnchanged ? o.metadata.resourceVersion : nil),
                                                status: .init(phase: phase.rawValue, lastSeen: seen)))
        let name = o.metadata.name ?? ""
        let answer = try await client.patchRaw(ResourceType(InsightObject.self), namespace: o.metadata.namespace, name: name,
                                               subresource: "status", patch: body, patchType: .merge)
        // Resolved already; an answer that does not decode (another version's Insight) only goes without the why.
        guard let patched = try? JSONDecoder().decode(InsightObject.self, from: answer) else { return }
        let prefix = phase == .remediated ? "Remediated: " : "Resolved: "
        var spec = patched.spec
        if !spec.summary.hasPrefix("Resolved: ") && !spec.summary.hasPrefix("Remediated: ") { spec.summary = prefix + spec.summary }
        spec.evidence.append(Evidence(source: "tapio", description: "Resolved by \(resolver): \(why)", observedAt: seen))
        // Within the CRD's bounds, as the agents write them (the newest evidence kept).
        spec = InsightDocument.bounded(spec)
        guard let specBody = try? JSONEncoder().encode(SpecDoc(metadata: .init(resourceVersion: patched.metadata.resourceVersion),
                                                               spec: .init(summary: spec.summary, evidence: spec.evidence)))
        else { return }
        do {
            _ = try await client.patchRaw(ResourceType(InsightObject.self), namespace: o.metadata.namespace, name: name,
                                          patch: specBody, patchType: .merge)
        } catch KubeError.conflict, KubeError.notFound {
            // Written meanwhile: what was written stands.
        } catch {
            logger.warning("saying why Insight \(name) was resolved failed (it is resolved): \(error)")
        }
    }
}
