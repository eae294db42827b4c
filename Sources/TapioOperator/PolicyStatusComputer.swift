import Foundation
import TapioModel

/// Computes a TapioPolicy's status from the policy, the cluster's nodes and the agents' heartbeats — pure logic.
///
/// `Accepted` says whether the spec is valid (reason `Valid`, or `InvalidSpec` with every problem and its field, or
/// `CeilingBelowRequest` when it could never raise the limits it is meant to);
/// `Ready` whether every targeted node's agent runs this generation (`AllNodesApplied`, `Progressing` with
/// counts, `NoNodesTargeted`, or `NotAccepted`). Nodes whose agent reported an error for the policy, or that
/// whose heartbeat Lease expired (older than its `leaseDurationSeconds`, or `staleAfter` without one), are listed (at most 10) with why. `Degraded` says whether a targeted
/// node's agent runs with less than it should (`NodeProblems`: its probes did not load, the API server refused it
/// a call its role should allow), naming the nodes and problems; `AsConfigured` otherwise.
public enum PolicyStatusComputer {
    public struct NodeView: Sendable, Hashable {
        public var name: String
        public var labels: [String: String]
        public init(name: String, labels: [String: String]) {
            self.name = name
            self.labels = labels
        }
    }

    public struct HeartbeatView: Sendable, Hashable {
        public var node: String
        /// policy name → generation the agent applied.
        public var applied: [String: Int64]
        /// policy name → why it could not be applied.
        public var errors: [String: String]
        public var renewed: Date?
        /// The Lease's `leaseDurationSeconds`: how long after `renewed` the agent still counts as alive. Agents renew
        /// on a long period when nothing changed, and say so here; nil (an older agent) means `staleAfter`.
        public var leaseDuration: TimeInterval?
        /// What keeps the node's agent from working fully, whatever the policy (``HeartbeatAnnotations/problems``).
        public var problems: [String]
        public init(node: String, applied: [String: Int64], errors: [String: String], renewed: Date?,
                    leaseDuration: TimeInterval? = nil, problems: [String] = []) {
            self.node = node
            self.applied = applied
            self.errors = errors
            self.renewed = renewed
            self.leaseDuration = leaseDuration
            self.problems = problems
        }
    }

    /// - Parameter conflict: a problem found against the cluster rather than in the spec (a memory ceiling below a
    ///   selected container's request): `Accepted=False` with reason `CeilingBelowRequest`; the agents still run
    ///   the policy's probe settings, so `Ready` is computed as usual.
    public static func status(for policy: TapioPolicy, previous: TapioPolicyStatus?, nodes: [NodeView],
                              heartbeats: [HeartbeatView], now: Date, staleAfter: TimeInterval = 60,
                              conflict: String? = nil) -> TapioPolicyStatus {
        let name = policy.metadata.name ?? ""
        let generation = policy.metadata.generation ?? 0
        let problems = TapioPolicyValidation.validate(policy).filter { $0.level == .error }
        let stamp = now.formatted(.iso8601)
        func condition(_ type: String, _ ok: Bool, _ reason: String, _ message: String) -> StatusCondition {
            // lastTransitionTime moves only when the status flips (the Kubernetes convention).
            let old = previous?.conditions.first { $0.type == type }
            let status: StatusCondition.Status = ok ? .true : .false
            let since = old?.status == status ? old?.lastTransitionTime ?? stamp : stamp
            return StatusCondition(type: type, status: status, reason: reason, message: message,
                                   lastTransitionTime: since, observedGeneration: generation)
        }

        let targeted = nodes.filter { policy.spec.nodeSelector?.matches($0.labels) ?? true }
        let beats = Dictionary(heartbeats.map { ($0.node, $0) }, uniquingKeysWith: { a, _ in a })
        var applied = 0
        var failed: [FailedNode] = []
        for n in targeted.sorted(by: { $0.name < $1.name }) {
            guard let hb = beats[n.name] else {
                failed.append(FailedNode(name: n.name, reason: "no heartbeat from the Tapio agent on this node"))
                continue
            }
            if let e = hb.errors[name] {
                failed.append(FailedNode(name: n.name, reason: e.clipped(toScalars: FailedNode.maxReason)))
            } else if hb.applied[name] == generation {
                if let r = hb.renewed, now.timeIntervalSince(r) > hb.leaseDuration.map({ max($0, 1) }) ?? staleAfter {
                    // The time it was last renewed, not its age: a status that changed at every reconcile would be
                    // written every 30 s and sent to every agent's TapioPolicy watch.
                    failed.append(FailedNode(name: n.name, reason: "agent heartbeat expired (last renewed \(r.formatted(.iso8601)))"))
                } else {
                    applied += 1
                }
            } else if let g = hb.applied[name] {
                failed.append(FailedNode(name: n.name, reason: "agent runs generation \(g), not \(generation) yet"))
            } else {
                failed.append(FailedNode(name: n.name, reason: "agent has not applied this policy yet"))
            }
        }

        var conditions: [StatusCondition] = []
        var degraded: [String] = []
        for n in targeted.sorted(by: { $0.name < $1.name }) {
            for p in beats[n.name]?.problems ?? [] { degraded.append("\(n.name): \(p)") }
        }
        if problems.isEmpty {
            if let conflict {
                conditions.append(condition("Accepted", false, "CeilingBelowRequest", conflict.clipped(toScalars: 32_768)))
            } else {
                conditions.append(condition("Accepted", true, "Valid", "The policy is valid."))
            }
            if targeted.isEmpty {
                conditions.append(condition("Ready", false, "NoNodesTargeted", "No node matches spec.nodeSelector."))
            } else if applied == targeted.count {
                conditions.append(condition("Ready", true, "AllNodesApplied", "All \(applied) targeted nodes run generation \(generation)."))
            } else {
                conditions.append(condition("Ready", false, "Progressing",
                                            "\(applied) of \(targeted.count) targeted nodes run generation \(generation)."))
            }
        } else {
            let message = problems.map(\.description).joined(separator: "; ")
            conditions.append(condition("Accepted", false, "InvalidSpec", message.clipped(toScalars: 32_768)))
            conditions.append(condition("Ready", false, "NotAccepted", "The policy is not valid; agents ignore it."))
        }
        if degraded.isEmpty {
            conditions.append(condition("Degraded", false, "AsConfigured", "Every targeted node's agent runs as configured."))
        } else {
            conditions.append(condition("Degraded", true, "NodeProblems", degraded.joined(separator: "; ").clipped(toScalars: 32_768)))
        }
        return TapioPolicyStatus(observedGeneration: generation, conditions: conditions, nodesTargeted: targeted.count,
                                 nodesApplied: problems.isEmpty ? applied : 0, failedNodes: Array(failed.prefix(10)))
    }
}
