import Foundation
import TapioModel

/// Decides whether the operator may act on an Insight's remediation, and how — pure logic, no I/O.
///
/// The policies that select the Insight's subject decide, and the most restrictive wins: the effective mode is the
/// lowest of their modes (`Off` < `Suggest` < `Propose` < `DryRun` < `Apply`), and for `Apply` every selecting policy's
/// gates must pass. With no selecting policy the mode is the default, `Suggest`: the operator never patches
/// anything no policy allows. A selecting policy that is not accepted (`Accepted=False`) stops both `DryRun` and
/// `Apply` (gate `PolicyNotAccepted`), and nothing is decided while a selecting policy's current generation has not
/// been judged yet (`Accepted` not yet observed at it). Gates, in the order they are checked (the first that refuses is recorded):
/// `AllowedActions` (the action is named in `allowedActions`), `Namespace` (the target's namespace is in the
/// `namespaces` allowlist; an empty list means every namespace the policy selects), `ManagedByGitOps` (the target
/// workload is not managed by Argo CD or Flux, unless the policy sets `allowGitOpsManaged`: their next sync would
/// revert a live patch), `Approval` (with `requireApproval`, the Insight carries
/// `tapio.io/approve: "true"`), `MemoryCeiling` (every memory limit the patch sets is at most `memoryCeiling`),
/// `RateLimit` (fewer than `maxActionsPerHour` applied in the last hour under that policy).
/// Before any of them, in every mode that acts (`Propose`, `DryRun`, `Apply`): `Target` (a Deployment or StatefulSet
/// the Insight names, in the Insight's own namespace, for a pod container subject) and `Patch` (the patch is Tapio's
/// own memory-limit patch of the subject's container, nothing else: ``vet(_:_:container:)``; in `Apply`, it raises
/// the limit the target has now). `DryRun` also checks `AllowedActions` and `Namespace`.
public enum RemediationGate {
    public enum Gate: String, Sendable, Hashable {
        case mode = "Mode"
        case allowedActions = "AllowedActions"
        case namespace = "Namespace"
        case approval = "Approval"
        case memoryCeiling = "MemoryCeiling"
        case rateLimit = "RateLimit"
        case target = "Target"
        case notAccepted = "PolicyNotAccepted"
        case managedByGitOps = "ManagedByGitOps"
        case patch = "Patch"
    }

    public enum Decision: Sendable, Hashable {
        /// Nothing to do: mode Off or Suggest, or no applicable action.
        case none(reason: String)
        /// Send the patch with `dryRun=All` and record the verdict.
        case dryRun(RemediationAction, Patch)
        /// Write the change into the Insight's status as a proposal to commit to Git; send nothing.
        case propose(RemediationAction, Patch)
        /// Dry-run first, then the real patch.
        case apply(RemediationAction, Patch, policies: [String])
        /// A gate refused; record it.
        case refused(RemediationAction, gate: Gate, message: String)
        /// A selecting policy's current generation has not been judged yet (its `Accepted` condition is older):
        /// decide again once it has, and record nothing now.
        case wait(reason: String)
    }

    /// What the gates need to know about the subject and the recent past.
    public struct Context: Sendable {
        public var namespaceLabels: [String: String]
        public var podLabels: [String: String]
        /// Actions applied in the last hour, per policy name.
        public var appliedLastHour: [String: Int]
        /// Policies that are not accepted (invalid, or their ceiling is below a selected container's request), with
        /// why: where one selects the subject, nothing is patched.
        public var notAccepted: [String: String]
        /// Policies whose current generation the operator has not judged yet.
        public var unjudged: Set<String>
        /// Which GitOps controller manages the patch's target workload, and by what mark (``gitOpsManager``).
        public var targetManagedBy: String?
        /// The target's pod template as it is now, read before a patch is applied: each container's memory limit
        /// (nil: none). Nil when it was not read; the dry run and the patch then say what is wrong with the target.
        public var targetMemoryLimits: [String: UInt64?]?
        public init(namespaceLabels: [String: String], podLabels: [String: String], appliedLastHour: [String: Int],
                    notAccepted: [String: String] = [:], unjudged: Set<String> = [], targetManagedBy: String? = nil) {
            self.targetManagedBy = targetManagedBy
            self.namespaceLabels = namespaceLabels
            self.podLabels = podLabels
            self.appliedLastHour = appliedLastHour
            self.notAccepted = notAccepted
            self.unjudged = unjudged
        }
    }

    /// The policies that select a subject with these labels (an absent selector selects everything).
    public static func selecting(_ policies: [TapioPolicy], context: Context) -> [TapioPolicy] {
        policies.filter { p in
            (p.spec.selector.namespaceSelector?.matches(context.namespaceLabels) ?? true)
                && (p.spec.selector.podSelector?.matches(context.podLabels) ?? true)
        }
    }

    public static func decide(insight: InsightResource, policies allPolicies: [TapioPolicy], context: Context) -> Decision {
        guard let action = insight.spec.remediation?.actions.first(where: { $0.patch != nil }), let original = action.patch
        else { return .none(reason: "no applicable action") }
        let policies = selecting(allPolicies, context: context)
        let mode = policies.map(\.spec.remediation.mode).min(by: { rank($0) < rank($1) }) ?? .suggest
        switch mode {
        case .off: return .none(reason: "remediation is Off")
        case .suggest: return .none(reason: "mode Suggest: commands only")
        case .propose, .dryRun, .apply: break
        }
        // The patch may only touch the workload the Insight is about: one it names among its resources, in the
        // subject's namespace.
        let t = original.target
        let named = insight.spec.resources.contains { $0.kind == t.kind && $0.name == t.name && $0.namespace == t.namespace }
        // Only Deployments and StatefulSets are patched (the remediation role's rights): a DaemonSet runs on every
        // node, and raising its limit is a person's call.
        guard ["Deployment", "StatefulSet"].contains(t.kind) else {
            return .refused(action, gate: .target,
                            message: "Tapio patches only Deployments and StatefulSets; \(t.kind) \(t.namespace)/\(t.name) "
                                + "is for a person to change (the Insight's commands say how)")
        }
        // A memory limit is a container's: the subject must be the pod container the patch raises (whose pod the
        // policies' selectors are matched against, and which the operator checks belongs to the target).
        guard insight.spec.subject.kind == "Pod", let container = insight.spec.subject.container else {
            return .refused(action, gate: .target,
                            message: "the Insight's subject is a \(insight.spec.subject.kind), not a pod's container: Tapio patches only a pod container's workload")
        }
        guard insight.spec.subject.namespace == t.namespace, named else {
            return .refused(action, gate: .target,
                            message: "the patch targets \(t.kind) \(t.namespace)/\(t.name), which this Insight does not name")
        }
        // The policies are chosen by the labels of the Insight's namespace, so the Insight must live where its
        // subject and target do: an Insight written into another namespace would be judged by that namespace's
        // policies, not by those of the workload it patches.
        guard insight.metadata.namespace == t.namespace else {
            return .refused(action, gate: .target,
                            message: "the Insight is in namespace \(insight.metadata.namespace ?? "(none)") but its patch targets "
                                + "\(t.kind) \(t.namespace)/\(t.name): Tapio patches only workloads in the Insight's own namespace")
        }
        let patch: Patch
        switch vet(action, original, container: container) {
        case .success(let p): patch = p
        case .failure(let why):
            return .refused(action, gate: .patch, message: why.message)
        }
        if let p = policies.first(where: { context.unjudged.contains($0.metadata.name ?? "") }) {
            return .wait(reason: "policy \(p.metadata.name ?? "?") has not been judged at its current generation yet")
        }
        // When in doubt, do not patch: a policy that is not accepted still says something about this subject.
        if let p = policies.first(where: { context.notAccepted[$0.metadata.name ?? ""] != nil }), let name = p.metadata.name {
            return .refused(action, gate: .notAccepted,
                            message: "policy \(name) selects this subject but is not accepted: \(context.notAccepted[name] ?? "")")
        }
        if mode == .propose {
            // Nothing is sent to the API server, so no other gate applies: a person commits it or not.
            return .propose(action, patch)
        }
        if mode == .dryRun {
            // A dry run is still a request in the target's namespace, made with the operator's patch rights: it
            // stays inside the actions and namespaces the policies allow, as an applied patch would.
            for p in policies { if let no = actionNotAllowed(p, action) { return no } }
            for p in policies { if let no = namespaceNotAllowed(p, action, patch) { return no } }
            return .dryRun(action, patch)
        }

        // Raised, never lowered: a patch worked out from an older limit (a person raised it by hand since) would
        // lower it again.
        if let current = context.targetMemoryLimits {
            for (c, limit) in memoryLimitsByContainer(in: patch.body) {
                guard let now = current[c] else {
                    return .refused(action, gate: .patch, message: "\(t.kind) \(t.namespace)/\(t.name) has no container \(c) in its pod template")
                }
                if let now, limit <= now {
                    return .refused(action, gate: .patch, message: "the memory limit of \(c) is \(Quantity.formatBytes(now)) now, "
                                        + "at or above the patch's \(Quantity.formatBytes(limit)): nothing to raise (the Insight's advice predates the change)")
                }
            }
        }
        for p in policies {
            let name = p.metadata.name ?? "?"
            let r = p.spec.remediation
            if let no = actionNotAllowed(p, action) ?? namespaceNotAllowed(p, action, patch) { return no }
            if let manager = context.targetManagedBy, !r.allowGitOpsManaged {
                return .refused(action, gate: .managedByGitOps, message: """
                    \(t.kind) \(t.namespace)/\(t.name) is managed by \(manager): its next sync would revert a live \
                    patch, so commit the change to Git instead (policy \(name) does not set allowGitOpsManaged). \
                    The change, as a kustomize patch of that workload: \(kustomizePatch(patch))
                    """)
            }
            if r.requireApproval && !insight.isApproved {
                return .refused(action, gate: .approval,
                                message: "policy \(name) requires the annotation \(InsightResource.approveAnnotation): \"true\" on this Insight")
            }
            if let ceiling = (try? r.memoryCeilingBytes()) ?? nil {
                for (_, limit) in memoryLimitsByContainer(in: patch.body) where limit > ceiling {
                    return .refused(action, gate: .memoryCeiling,
                                    message: "the patch sets a memory limit of \(Quantity.formatBytes(limit)), above policy \(name)'s ceiling \(Quantity.formatBytes(ceiling))")
                }
            }
            let used = context.appliedLastHour[name] ?? 0
            if used >= r.maxActionsPerHour {
                return .refused(action, gate: .rateLimit,
                                message: "policy \(name) allows \(r.maxActionsPerHour) actions per hour and \(used) were applied in the last hour")
            }
        }
        let names = policies.compactMap(\.metadata.name).sorted()
        // Each applied action records the policies it counted against (the hourly budget is read back from there,
        // and the CRD keeps at most 16 names): more than that selecting one subject is refused rather than
        // recorded in part, which would let the unrecorded policies' budgets be overspent.
        guard names.count <= maxPoliciesPerAction else {
            return .refused(action, gate: .rateLimit,
                            message: "\(names.count) policies in mode Apply select this subject; an applied action records at most "
                                + "\(maxPoliciesPerAction) (to count each one's maxActionsPerHour): narrow their selectors")
        }
        return .apply(action, patch, policies: names)
    }

    /// At most this many policy names are recorded with an applied action (`history[].policies`, `maxItems` in the CRD).
    public static let maxPoliciesPerAction = 16

    public struct PatchRefusal: Error, Sendable, Hashable {
        public var message: String
    }

    /// The patch the operator will send for an action, built by the operator itself, or why there is none.
    ///
    /// The Insight, patch included, is written by a node agent, and the operator holds the rights to patch
    /// Deployments and StatefulSets: sending the body as written would let whoever can write an Insight change
    /// anything in a pod template (an image, a command, a limit removed) with the operator's rights. So only the
    /// action Tapio proposes is accepted — `IncreaseMemoryLimit`, a strategic-merge patch of `apps/v1` setting
    /// `resources.limits.memory` of named containers and nothing else — its values are read out of the body, and
    /// the body sent is made again from them. A strategic merge matches containers by name, so it changes only the
    /// limits of the containers it names; a JSON merge patch would replace the whole container list.
    public static func vet(_ action: RemediationAction, _ patch: Patch, container subjectContainer: String) -> Result<Patch, PatchRefusal> {
        func no(_ why: String) -> Result<Patch, PatchRefusal> {
            .failure(PatchRefusal(message: "Tapio applies only its own memory-limit patch (\(why)); this one is for a person to review"))
        }
        guard action.name == "IncreaseMemoryLimit" else { return no("the action is \(String(action.name.prefix(64))), not IncreaseMemoryLimit") }
        guard patch.type == .strategicMerge else { return no("the patch type is \(patch.type.rawValue), not StrategicMerge") }
        guard patch.target.apiVersion == "apps/v1" else { return no("the target's apiVersion is \(String(patch.target.apiVersion.prefix(64))), not apps/v1") }
        let shape = #"{"spec":{"template":{"spec":{"containers":[{"name":…,"resources":{"limits":{"memory":…}}}]}}}}"#
        func only(_ v: Any?, _ key: String) -> Any? {
            guard let d = v as? [String: Any], d.count == 1 else { return nil }
            return d[key]
        }
        guard patch.body.utf8.count <= maxPatchBytes,
              let json = try? JSONSerialization.jsonObject(with: Data(patch.body.utf8)),
              let containers = only(only(only(only(json, "spec"), "template"), "spec"), "containers") as? [Any],
              containers.count == 1
        else { return no("the body is not \(shape), with one container") }
        var out: [[String: Any]] = []
        for c in containers {
            guard let d = c as? [String: Any], d.count == 2, let name = d["name"] as? String,
                  let memory = only(only(d["resources"], "limits"), "memory") as? String
            else { return no("the body is not \(shape)") }
            guard name == subjectContainer else {
                return no("it names container \(String(name.prefix(64))), not the Insight's \(subjectContainer)")
            }
            guard memory.utf8.count <= 32, let bytes = try? Quantity.parseBytes(memory), bytes > 0 else {
                return no("the memory limit of \(name) is not a positive quantity")
            }
            out.append(["name": name, "resources": ["limits": ["memory": memory]]])
        }
        let body: [String: Any] = ["spec": ["template": ["spec": ["containers": out]]]]
        guard let data = try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        else { return no("the body cannot be written again") }
        return .success(Patch(target: patch.target, type: .strategicMerge, body: String(decoding: data, as: UTF8.self)))
    }

    /// The Insight's first action with a patch and the patch the operator would send for it (``vet(_:_:container:)``),
    /// or nil when there is none or it would be refused.
    public static func patchToSend(_ insight: InsightResource) -> (RemediationAction, Patch)? {
        guard let action = insight.spec.remediation?.actions.first(where: { $0.patch != nil }), let p = action.patch,
              let container = insight.spec.subject.container, let sent = try? vet(action, p, container: container).get()
        else { return nil }
        return (action, sent)
    }

    /// Far more than a memory patch of the largest pod needs; a bound on what is parsed.
    static let maxPatchBytes = 16 * 1024

    /// The GitOps controller that manages a workload with these labels and annotations, naming the mark, or nil.
    /// Argo CD marks what it tracks with the annotation `argocd.argoproj.io/tracking-id` (annotation tracking, the
    /// default since Argo CD 3.0) or, with label tracking, a label — `app.kubernetes.io/instance` by default, which
    /// Helm sets too, so it counts only beside Argo CD's own `argocd.argoproj.io/instance`. Flux's kustomize- and
    /// helm-controllers label what they apply with `kustomize.toolkit.fluxcd.io/name` / `helm.toolkit.fluxcd.io/name`.
    public static func gitOpsManager(labels: [String: String], annotations: [String: String]) -> String? {
        if let id = annotations["argocd.argoproj.io/tracking-id"] { return "Argo CD (argocd.argoproj.io/tracking-id: \(id))" }
        if let app = labels["argocd.argoproj.io/instance"] { return "Argo CD (argocd.argoproj.io/instance: \(app))" }
        if let k = labels["kustomize.toolkit.fluxcd.io/name"] {
            return "Flux (kustomize.toolkit.fluxcd.io/name: \(k), namespace \(labels["kustomize.toolkit.fluxcd.io/namespace"] ?? "?"))"
        }
        if let h = labels["helm.toolkit.fluxcd.io/name"] {
            return "Flux (helm.toolkit.fluxcd.io/name: \(h), namespace \(labels["helm.toolkit.fluxcd.io/namespace"] ?? "?"))"
        }
        return nil
    }

    /// The change as a proposal: the kustomize patch, a file path beside the workload's kustomization, and the
    /// commands that add it there and check it.
    public static func proposal(_ action: RemediationAction, _ patch: Patch) -> RemediationProposal {
        let t = patch.target
        let path = "patches/\(t.kind.lowercased())-\(t.name)-\(action.name.lowercased()).yaml"
        return RemediationProposal(action: action.name, path: path, patch: kustomizePatch(patch), commands: [
            "kustomize edit add patch --path \(path)",
            "kubectl kustomize . | kubectl diff -f -",
        ])
    }

    /// The patch as a kustomize strategic-merge patch file (JSON is YAML): the target's identity and the change.
    static func kustomizePatch(_ patch: Patch) -> String {
        let t = patch.target
        guard var body = (try? JSONSerialization.jsonObject(with: Data(patch.body.utf8))) as? [String: Any] else { return patch.body }
        body["apiVersion"] = t.apiVersion
        body["kind"] = t.kind
        var meta = body["metadata"] as? [String: Any] ?? [:]
        meta["name"] = t.name
        meta["namespace"] = t.namespace
        body["metadata"] = meta
        guard let data = try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]) else { return patch.body }
        return String(decoding: data, as: UTF8.self)
    }

    static func rank(_ m: RemediationMode) -> Int {
        switch m {
        case .off: 0
        case .suggest: 1
        case .propose: 2
        case .dryRun: 3
        case .apply: 4
        }
    }

    /// The memory limit a vetted patch body sets per container, in bytes.
    static func memoryLimitsByContainer(in body: String) -> [(String, UInt64)] {
        guard let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let containers = ((((json["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"] as? [[String: Any]])
        else { return [] }
        return containers.compactMap { c in
            guard let name = c["name"] as? String,
                  let memory = ((c["resources"] as? [String: Any])?["limits"] as? [String: Any])?["memory"] as? String,
                  let bytes = try? Quantity.parseBytes(memory) else { return nil }
            return (name, bytes)
        }
    }

    /// The `AllowedActions` gate of one policy (DryRun and Apply).
    static func actionNotAllowed(_ p: TapioPolicy, _ action: RemediationAction) -> Decision? {
        let r = p.spec.remediation
        guard !r.allowedActions.contains(action.name) else { return nil }
        return .refused(action, gate: .allowedActions,
                        message: "policy \(p.metadata.name ?? "?") does not list \(action.name) in allowedActions \(r.allowedActions)")
    }

    /// The `Namespace` gate of one policy (DryRun and Apply).
    static func namespaceNotAllowed(_ p: TapioPolicy, _ action: RemediationAction, _ patch: Patch) -> Decision? {
        let r = p.spec.remediation
        guard !r.namespaces.isEmpty && !r.namespaces.contains(patch.target.namespace) else { return nil }
        return .refused(action, gate: .namespace,
                        message: "policy \(p.metadata.name ?? "?") does not allow namespace \(patch.target.namespace) (namespaces: \(r.namespaces))")
    }
}
