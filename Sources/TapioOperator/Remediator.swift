import Foundation
import KubeClient
import KubeRuntime
import Logging
import Synchronization
import TapioCorrelation
import TapioKube
import TapioModel
import TapioSinks

/// Carries out Insights' remediation as the policies allow (``RemediationGate``), and records every attempt,
/// refusal and result in the Insight's status and as an Event regarding the Insight.
///
/// Idempotent per Insight: an action already applied (or dry-run) with the same patch is not applied again, and a
/// refusal by the same gate is recorded once, not on every resync. A failed attempt — the API server refused the dry
/// run or the patch: missing RBAC, a target not there yet, a webhook — is retried with backoff (`retry`, doubling to
/// `retryCap`), each attempt recorded, until it succeeds or the patch or the policies change.
final class Remediator: Sendable {
    static let fieldManager = "tapio-operator"
    let client: KubeClient
    let policies: ReflectorStore<PolicyObject>
    let metrics: TapioMetrics
    let logger: Logger
    let recorder: EventRecorder
    /// The Insights (the remediation controller's store): their status history records every applied action with
    /// the policies it counted against, so the hourly budget survives a fail-over — a new leader reads it there.
    let insights: ReflectorStore<InsightObject>
    /// Actions applied by this leader whose status write may not have come back through the watch yet.
    private let recent = Mutex<[Reserved]>([])

    /// An action applied (or being applied) by this leader, counted in its policies' budgets until the Insights'
    /// history shows it: `insight` is "namespace/name", `time` the history entry's.
    struct Reserved {
        var insight: String
        var time: String
        var policies: [String]
        var at: Date
        var digest: String
        /// As the history entry will be counted (``appliedLastHour(now:)``).
        var key: String { "\(insight)@\(time)" }
    }

    let retry: Duration
    let retryCap: Duration

    init(client: KubeClient, policies: ReflectorStore<PolicyObject>, insights: ReflectorStore<InsightObject>,
         metrics: TapioMetrics, logger: Logger, retry: Duration = .seconds(30), retryCap: Duration = .seconds(3600)) {
        self.retry = retry
        self.retryCap = retryCap
        self.client = client
        self.policies = policies
        self.insights = insights
        self.metrics = metrics
        self.logger = logger
        self.recorder = EventRecorder(client: client, reportingController: "tapio.io/operator",
                                      reportingInstance: ProcessInfo.processInfo.hostName, logger: logger)
    }

    /// Actions applied in the last hour, per policy: from the Insights' history, plus this leader's own writes
    /// not yet seen there (each counted once).
    func appliedLastHour(now: Date) -> [String: Int] {
        recent.withLock { r in counted(&r, now: now) }
    }

    /// Takes a place for an action about to be applied under `key` in each policy's budget, unless one of them is
    /// spent: then nothing is taken, and that policy and its count are returned.
    func reserve(_ reserved: Reserved, limits: [String: Int], now: Date) -> (String, Int)? {
        recent.withLock { r in
            let used = counted(&r, now: now)
            for name in reserved.policies {
                let n = used[name] ?? 0
                if n >= limits[name] ?? Int.max { return (name, n) }
            }
            r.append(reserved)
            return nil
        }
    }

    /// This leader's action on the Insight `insightKey` with this patch that the Insight's history does not show
    /// (a place is given back when a patch fails, so one still held was applied), or nil.
    func unrecorded(_ insightKey: String, digest: String, history: [RemediationHistoryEntry]) -> Reserved? {
        recent.withLock { r in
            r.last { $0.insight == insightKey && $0.digest == digest }
        }.flatMap { mine in history.contains { $0.outcome == .applied && $0.time == mine.time } ? nil : mine }
    }

    /// Gives back a place taken by ``reserve`` for a patch that was not applied.
    func release(_ key: String) {
        recent.withLock { r in r.removeAll { $0.key == key } }
    }

    /// The count of ``appliedLastHour(now:)``, with this leader's own entries (`r`, trimmed to the hour) in it.
    private func counted(_ r: inout [Reserved], now: Date) -> [String: Int] {
        var seen = Set<String>()
        var out: [String: Int] = [:]
        func count(_ key: String, _ policies: [String]) {
            guard seen.insert(key).inserted else { return }
            for p in policies { out[p, default: 0] += 1 }
        }
        for o in insights.list() {
            for e in o.status?.remediation?.history ?? [] where e.outcome == .applied {
                guard let t = Formatting.parseRFC3339(e.time), now.timeIntervalSince1970 - Double(t) / 1e9 < 3600 else { continue }
                count("\(o.metadata.namespace ?? "")/\(o.metadata.name ?? "")@\(e.time)", e.policies ?? [])
            }
        }
        r.removeAll { now.timeIntervalSince($0.at) >= 3600 }
        for m in r { count(m.key, m.policies) }
        return out
    }

    func reconcile(_ cached: InsightObject) async throws -> ReconcileAction {
        guard cached.resource.spec.remediation?.actions.contains(where: { $0.patch != nil }) == true else { return .awaitChange }
        // Decide on, and rewrite the history of, the Insight as the server has it now: the cache may not have seen
        // this operator's previous status write yet, and a decision on it would repeat that step or drop its entry.
        // The work queue runs one reconcile per Insight at a time, so nothing of ours lands in between.
        let object = (try? await client.get(InsightObject.self, namespace: cached.metadata.namespace,
                                            name: cached.metadata.name ?? "")) ?? cached
        let insight = object.resource
        let history = object.status?.remediation?.history ?? []
        let insightKey = "\(object.metadata.namespace ?? "")/\(object.metadata.name ?? "")"
        // Patched by this leader, but the status write that records it failed: record it now, as it was, before
        // anything else (the finding resolved since, a policy changed, the target's limit raised by the patch itself),
        // rather than leave the history without it or patch and spend the budget again.
        if let (action, patch) = RemediationGate.patchToSend(insight),
           let done = unrecorded(insightKey, digest: patchDigest(patch), history: history) {
            try await record(object, RemediationHistoryEntry(
                time: done.time, action: action.name, outcome: .applied, policies: done.policies,
                message: "patched \(patch.target.kind) \(patch.target.namespace)/\(patch.target.name) " + patchDigest(patch)),
                state: .applied)
            return .awaitChange
        }
        // A finding that has cleared (Resolved) or was fixed (Remediated) is not acted on: a policy switched to Apply
        // later re-queues every Insight, and those kept for their TTL must not be patched then.
        guard (object.status?.phase ?? .active) == .active else { return .awaitChange }
        await policies.waitUntilReady()
        let objects = policies.list()
        var notAccepted: [String: String] = [:]
        var unjudged: Set<String> = []
        for o in objects {
            let name = o.metadata.name ?? ""
            let problems = TapioPolicyValidation.validate(o.policy).filter { $0.level == .error }
            let accepted = o.status?.conditions.first { $0.type == "Accepted" }
            if !problems.isEmpty {
                notAccepted[name] = problems.map(\.description).joined(separator: "; ")
            } else if let c = accepted, c.observedGeneration == o.metadata.generation {
                if c.status == .false { notAccepted[name] = "\(c.reason): \(c.message)" }
            } else {
                unjudged.insert(name)
            }
        }
        // Only a policy in Propose, DryRun or Apply can make anything happen (the most restrictive selecting one
        // wins): with none, nothing is decided and no labels are read (the workload's template needs the
        // remediation role's rights, bound only where a policy enables remediation).
        guard objects.contains(where: { RemediationGate.rank($0.policy.spec.remediation.mode) >= RemediationGate.rank(.propose) }) else {
            return .awaitChange
        }
        // The labels that choose the policies. Read wrong, a policy that says Off would not select the subject and
        // another's Apply would decide alone: so what cannot be read now is decided later, never on empty labels.
        let now = Date()
        let labels: (namespace: [String: String], pod: [String: String])
        var foreign: String?
        switch await selectorLabels(of: insight) {
        case .read(let ns, let pod, let notTheTargets):
            labels = (ns, pod)
            foreign = notTheTargets
        case .wait(let why, let forbidden):
            logger.info("remediation for Insight \(insightKey) waits: \(why)")
            // A right that is missing is not granted in seconds (and the Insight of a pod that is gone resolves).
            return .requeue(after: forbidden ? .seconds(300) : .seconds(30))
        }
        var context = RemediationGate.Context(namespaceLabels: labels.namespace, podLabels: labels.pod, appliedLastHour: appliedLastHour(now: now),
                                              notAccepted: notAccepted, unjudged: unjudged)
        var decision = RemediationGate.decide(insight: insight, policies: objects.map(\.policy), context: context)
        // The subject pod is not the target's: refused, once the policies have said something is to be done (with
        // Off or Suggest there is nothing to refuse).
        if let why = foreign {
            switch decision {
            case .none, .wait: break
            case .dryRun(let action, _), .propose(let action, _), .apply(let action, _, _), .refused(let action, _, _):
                return try await refuse(object, action, .target, why, now: now)
            }
        }
        // Only a patch about to be applied needs the target as it is now (its GitOps marks, its containers' limits):
        // read it then, and decide again. What cannot be read is waited for; a target that is not there is left to
        // the dry run, which says so.
        if case .apply = decision {
            switch await targetView(of: insight) {
            case .view(let managedBy, let limits):
                context.targetManagedBy = managedBy
                context.targetMemoryLimits = limits
                decision = RemediationGate.decide(insight: insight, policies: objects.map(\.policy), context: context)
            case .gone:
                break
            case .unreadable(let why):
                logger.info("remediation for Insight \(insightKey) waits: \(why)")
                return .requeue(after: .seconds(30))
            }
        }
        // What was last applied (refusals after it do not undo it).
        let lastDone = history.last { $0.outcome != .blocked }
        switch decision {
        case .none:
            return .awaitChange
        case .wait:
            // The policy controller's status write re-queues every Insight; this is only the safety net.
            return .requeue(after: .seconds(10))
        case .refused(let action, let gate, let message):
            // Applied already, with this very patch: a gate that refuses it now — the hourly budget it spent itself,
            // an approval taken back — has nothing left to stop, and a Blocked entry after Applied would say
            // otherwise.
            if let last = lastDone, last.action == action.name, last.outcome == .applied,
               let (_, sent) = RemediationGate.patchToSend(insight), last.message.hasSuffix(patchDigest(sent)) {
                return .awaitChange
            }
            return try await refuse(object, action, gate, message, now: now)
        case .propose(let action, let patch):
            let proposal = RemediationGate.proposal(action, patch)
            if object.status?.remediation?.proposal == proposal { return .awaitChange }
            metrics.remediationAttempt(outcome: "proposed")
            try await record(object, RemediationHistoryEntry(
                time: stamp(now), action: action.name, outcome: .proposed,
                message: "mode Propose: commit status.remediation.proposal (\(proposal.path)) to the repository of \(patch.target.kind) \(patch.target.namespace)/\(patch.target.name)"),
                state: .proposed, proposal: proposal)
            return .awaitChange
        case .dryRun(let action, let patch):
            // (The last entry, not `lastDone`: a dry run after a refusal is run again, so the state says so.)
            if let last = history.last, last.action == action.name, last.outcome == .dryRunSucceeded,
               last.message.hasSuffix(patchDigest(patch)) {
                return .awaitChange
            }
            let failures = consecutiveFailures(history, action: action.name, patch: patch)
            if let wait = retryWait(failures, now: now) { return .requeue(after: wait) }
            let verdict = await send(patch, dryRun: true)
            metrics.remediationAttempt(outcome: verdict == nil ? "dry-run" : "dry-run-failed")
            try await record(object, RemediationHistoryEntry(
                time: stamp(now), action: action.name, outcome: verdict == nil ? .dryRunSucceeded : .dryRunFailed,
                message: (verdict.map { $0 + retryNote(failures.count + 1) } ?? "the API server accepted the patch (dryRun=All)")
                    + " " + patchDigest(patch)),
                state: verdict == nil ? .dryRunSucceeded : .failed)
            return verdict == nil ? .awaitChange : .requeue(after: retryDelay(afterFailures: failures.count + 1))
        case .apply(let action, let patch, let names):
            if let last = lastDone, last.action == action.name, last.outcome == .applied, last.message.hasSuffix(patchDigest(patch)) {
                return .awaitChange
            }

            let failures = consecutiveFailures(history, action: action.name, patch: patch)
            if let wait = retryWait(failures, now: now) { return .requeue(after: wait) }
            // Two Insights reconciled at once both read the budget before either is recorded: take this action's
            // place in it now, under the same lock as the count, and give it back if the patch does not go through.
            let time = stamp(now)
            let reserved = Reserved(insight: insightKey, time: time, policies: names, at: now, digest: patchDigest(patch))
            let key = reserved.key
            let limits = Dictionary(objects.compactMap { o in o.metadata.name.map { ($0, o.policy.spec.remediation.maxActionsPerHour) } },
                                    uniquingKeysWith: { a, _ in a })
            if let (policy, used) = reserve(reserved, limits: limits, now: now) {
                // Spent meanwhile by another Insight's action, applied since the gates read the budget.
                return try await refuse(object, action, .rateLimit, "policy \(policy) allows \(limits[policy] ?? 0) actions per hour "
                                            + "and \(used) were applied in the last hour", now: now)
            }
            if let problem = await send(patch, dryRun: true) {
                release(key)
                metrics.remediationAttempt(outcome: "failed")
                try await record(object, RemediationHistoryEntry(time: stamp(now), action: action.name, outcome: .dryRunFailed,
                                                                  message: problem + retryNote(failures.count + 1) + " " + patchDigest(patch)),
                                 state: .failed)
                return .requeue(after: retryDelay(afterFailures: failures.count + 1))
            }
            if let problem = await send(patch, dryRun: false) {
                release(key)
                metrics.remediationAttempt(outcome: "failed")
                try await record(object, RemediationHistoryEntry(time: stamp(now), action: action.name, outcome: .failed,
                                                                  message: problem + retryNote(failures.count + 1) + " " + patchDigest(patch)),
                                 state: .failed)
                return .requeue(after: retryDelay(afterFailures: failures.count + 1))
            }
            metrics.remediationAttempt(outcome: "applied")
            try await record(object, RemediationHistoryEntry(
                time: time, action: action.name, outcome: .applied, policies: names,
                message: "patched \(patch.target.kind) \(patch.target.namespace)/\(patch.target.name) " + patchDigest(patch)),
                state: .applied)
            return .awaitChange
        }
    }

    /// Records a gate's refusal (once per gate and action, not at every resync) and looks again in a minute.
    func refuse(_ object: InsightObject, _ action: RemediationAction, _ gate: RemediationGate.Gate, _ message: String,
                now: Date) async throws -> ReconcileAction {
        if let last = object.status?.remediation?.history.last, last.outcome == .blocked, last.gate == gate.rawValue, last.action == action.name {
            return .requeue(after: .seconds(60))
        }
        metrics.remediationAttempt(outcome: "refused")
        // A workload its GitOps controller would revert: the change goes to Git instead, as a proposal.
        let proposal = gate == .managedByGitOps ? RemediationGate.patchToSend(object.resource).map { RemediationGate.proposal($0.0, $0.1) } : nil
        try await record(object, RemediationHistoryEntry(time: stamp(now), action: action.name, outcome: .blocked,
                                                          gate: gate.rawValue, reason: "GateRefused", message: message),
                         state: gate == .approval ? .awaitingApproval : .blocked, proposal: proposal)
        return .requeue(after: .seconds(60))
    }

    /// Sends the patch to its target and nothing else; nil on success, else what the API server said.
    func send(_ patch: Patch, dryRun: Bool) async -> String? {
        let t = patch.target
        let type = ResourceType(apiVersion: t.apiVersion, kind: t.kind, plural: t.kind.lowercased() + "s", namespaced: true)
        do {
            _ = try await client.patchRaw(type, namespace: t.namespace, name: t.name, patch: Data(patch.body.utf8),
                                          patchType: patch.type == .merge ? .merge : .strategicMerge,
                                          options: WriteOptions(dryRun: dryRun, fieldManager: Self.fieldManager))
            return nil
        } catch {
            return "\(error)"
        }
    }

    func record(_ object: InsightObject, _ entry: RemediationHistoryEntry, state: RemediationState,
                proposal: RemediationProposal? = nil) async throws {
        var remediation = object.status?.remediation ?? RemediationStatus()
        remediation.state = state
        if let proposal { remediation.proposal = proposal }
        remediation.record(entry)
        struct Doc: Encodable {
            struct Status: Encodable { let remediation: RemediationStatus }
            let status: Status
        }
        let body = try JSONEncoder().encode(Doc(status: .init(remediation: remediation)))
        _ = try await client.patchRaw(ResourceType(InsightObject.self), namespace: object.metadata.namespace,
                                      name: object.metadata.name ?? "", subresource: "status", patch: body, patchType: .merge)
        recorder.record(regarding: ObjectReference(apiVersion: InsightObject.apiVersion, kind: InsightObject.kind,
                                                   name: object.metadata.name, namespace: object.metadata.namespace,
                                                   uid: object.metadata.uid),
                        type: [.applied, .dryRunSucceeded, .proposed].contains(entry.outcome) ? .normal : .warning,
                        reason: "Remediation\(entry.outcome.rawValue)", action: entry.action, note: entry.message)
        logger.info("remediation \(entry.outcome.rawValue) for Insight \(object.metadata.namespace ?? "")/\(object.metadata.name ?? ""): \(entry.message)")
    }

    /// The failed attempts of `action` with this patch at the end of the history, and when the last one was.
    func consecutiveFailures(_ history: [RemediationHistoryEntry], action: String, patch: Patch) -> (count: Int, last: Date?) {
        let digest = patchDigest(patch)
        var count = 0
        var last: Date?
        for e in history.reversed() {
            guard e.action == action, e.outcome == .failed || e.outcome == .dryRunFailed, e.message.hasSuffix(digest) else { break }
            if last == nil { last = try? Date(e.time, strategy: .iso8601) }
            count += 1
        }
        return (count, last)
    }

    /// `retry` after the first failure, doubling with each one after it, at most `retryCap`.
    func retryDelay(afterFailures n: Int) -> Duration {
        guard n > 1 else { return retry }
        var d = retry
        for _ in 1..<min(n, 32) where d < retryCap { d = d * 2 }
        return min(d, retryCap)
    }

    /// How long to wait yet before the next attempt after `failures`; nil when it is due (or nothing failed).
    func retryWait(_ failures: (count: Int, last: Date?), now: Date) -> Duration? {
        guard failures.count > 0, let last = failures.last else { return nil }
        let due = last.addingTimeInterval(retryDelay(afterFailures: failures.count).inSeconds)
        let wait = due.timeIntervalSince(now)
        return wait > 0 ? .milliseconds(Int64(min(wait, 86_400) * 1000) + 1) : nil
    }

    /// `(attempt 3; retrying in 2m0s)`: a person reading the history sees that it goes on.
    func retryNote(_ attempt: Int) -> String {
        " (attempt \(attempt); retrying in \(KubeClient.describe(retryDelay(afterFailures: attempt))))"
    }

    /// A short fingerprint of the patch, so a changed patch is acted on again and an unchanged one is not.
    func patchDigest(_ p: Patch) -> String {
        "[patch \(String(InsightNaming.fnv1a64(p.target.name + p.body), radix: 16))]"
    }

    func stamp(_ d: Date) -> String { d.formatted(.iso8601) }
}

extension Remediator {
    enum SelectorLabels {
        /// The namespace's and the pod's labels, and why the pod is not one of the patch target's pods, if it is not.
        case read(namespace: [String: String], pod: [String: String], notTheTargets: String?)
        /// Something could not be read now (`forbidden`: for want of a right): decide later, never on labels that
        /// are not there.
        case wait(String, forbidden: Bool)
    }

    static func isForbidden(_ error: any Error) -> Bool {
        if case KubeError.forbidden = error { return true }
        return false
    }

    /// The labels the policies' selectors are matched against: the namespace's, and the pod's — or, when the pod
    /// is gone (replaced since the finding, as OOM-killed pods of a Deployment often are), its workload's pod
    /// template's, which is where the pod's labels came from. The pod must be the target's: otherwise an Insight
    /// could have the policies of one pod judge a patch of another workload.
    func selectorLabels(of insight: InsightResource) async -> SelectorLabels {
        // (Not a pod's, or no patch: the gate refuses it whatever the labels.)
        guard insight.spec.subject.kind == "Pod", let ns = insight.spec.subject.namespace,
              let t = insight.spec.remediation?.actions.first(where: { $0.patch != nil })?.patch?.target
        else { return .read(namespace: [:], pod: [:], notTheTargets: nil) }
        let nsLabels: [String: String]
        do {
            nsLabels = try await client.get(Namespace.self, name: ns).metadata.labels ?? [:]
        } catch {
            return .wait("the labels of namespace \(ns) could not be read (\(error))", forbidden: Self.isForbidden(error))
        }
        let podName = insight.spec.subject.name
        do {
            let pod = try await client.get(Pod.self, namespace: ns, name: podName)
            let labels = pod.metadata.labels ?? [:]
            guard Self.isPod(pod.metadata, of: t) else {
                let owner = pod.metadata.ownerReferences?.first { $0.controller == true }.map { "\($0.kind) \($0.name)" } ?? "no controller"
                return .read(namespace: nsLabels, pod: labels,
                             notTheTargets: "pod \(ns)/\(podName) is not a pod of \(t.kind) \(t.namespace)/\(t.name) (its owner: \(owner))")
            }
            return .read(namespace: nsLabels, pod: labels, notTheTargets: nil)
        } catch KubeError.notFound {
            // Gone: the workload's template below.
        } catch {
            return .wait("the labels of pod \(ns)/\(podName) could not be read (\(error))", forbidden: Self.isForbidden(error))
        }
        do {
            // (Nil: a kind the gate refuses.)
            let template = try await workload(t)?.template
            return .read(namespace: nsLabels, pod: template?.metadata?.labels ?? [:], notTheTargets: nil)
        } catch {
            return .wait("pod \(ns)/\(podName) is gone and the labels of its \(t.kind) \(t.namespace)/\(t.name) could not be read (\(error))",
                         forbidden: Self.isForbidden(error))
        }
    }

    /// The patch's target as the API server has it now: its metadata and pod template; nil for a kind Tapio does
    /// not patch.
    func workload(_ t: PatchTarget) async throws -> (meta: KubeObjectMeta, template: PodTemplateSpec?)? {
        switch t.kind {
        case "Deployment":
            let d = try await client.get(Deployment.self, namespace: t.namespace, name: t.name)
            return (d.metadata, d.spec?.template)
        case "StatefulSet":
            let s = try await client.get(StatefulSet.self, namespace: t.namespace, name: t.name)
            return (s.metadata, s.spec?.template)
        default: return nil
        }
    }

    /// Whether a pod belongs to the workload: a StatefulSet owns its pods; a Deployment owns them through a
    /// ReplicaSet its controller names `<deployment>-<pod-template-hash>`, the hash being the pod's label.
    static func isPod(_ pod: KubeObjectMeta, of t: PatchTarget) -> Bool {
        guard let owner = pod.ownerReferences?.first(where: { $0.controller == true }), pod.namespace == t.namespace else { return false }
        switch t.kind {
        case "StatefulSet": return owner.kind == "StatefulSet" && owner.name == t.name
        case "Deployment":
            guard let hash = pod.labels?["pod-template-hash"] else { return false }
            return owner.kind == "ReplicaSet" && owner.name == "\(t.name)-\(hash)"
        default: return false
        }
    }

    /// The workload the Insight's patch targets, as it is now: which GitOps controller manages it, and its pod
    /// template's memory limits per container.
    enum TargetView {
        case view(managedBy: String?, memoryLimits: [String: UInt64?])
        /// Not there (404): the dry run says so, recorded.
        case gone
        /// Not readable now: decide later (its GitOps marks and limits are gates).
        case unreadable(String)
    }

    func targetView(of insight: InsightResource) async -> TargetView {
        guard let t = insight.spec.remediation?.actions.first(where: { $0.patch != nil })?.patch?.target else { return .gone }
        let meta: KubeObjectMeta
        let containers: [Container]
        do {
            guard let w = try await workload(t) else { return .gone }  // a kind the gate refuses
            meta = w.meta
            containers = w.template?.spec?.containers ?? []
        } catch KubeError.notFound {
            return .gone
        } catch {
            return .unreadable("\(t.kind) \(t.namespace)/\(t.name) could not be read (\(error))")
        }
        var limits: [String: UInt64?] = [:]
        for c in containers {
            limits[c.name] = .some(c.resources?.limits?["memory"].flatMap { try? Quantity.parseBytes($0) })
        }
        return .view(managedBy: RemediationGate.gitOpsManager(labels: meta.labels ?? [:], annotations: meta.annotations ?? [:]),
                     memoryLimits: limits)
    }
}
