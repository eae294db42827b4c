import Foundation
import TapioModel
import TapioOperator
import Testing

@Suite(.timeLimit(.minutes(2))) struct RemediationGateTests {
    static let patch = Patch(
        target: PatchTarget(apiVersion: "apps/v1", kind: "Deployment", namespace: "shop", name: "api"),
        type: .strategicMerge,
        body: #"{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"640Mi"}}}]}}}}"#)

    static func insight(approved: Bool = true, patch: Patch = patch) -> InsightResource {
        let action = RemediationAction(name: "IncreaseMemoryLimit", title: "Raise the memory limit", description: "",
                                       risk: .low, impact: "one rolling restart", commands: [], patch: patch)
        let spec = InsightSpec(type: .oomPrediction, severity: .critical, title: "OOM", summary: "",
                               subject: ResourceRef(kind: "Pod", namespace: "shop", name: "api-1", container: "app"),
                               resources: [ResourceRef(kind: "Deployment", namespace: "shop", name: "api")],
                               remediation: Remediation(actions: [action]))
        var r = InsightResource(spec: spec, namespace: "shop")
        r.metadata.name = "oomprediction-api-1-app"
        if approved { r.metadata.annotations = [InsightResource.approveAnnotation: "true"] }
        return r
    }

    static func policy(_ name: String = "p", mode: RemediationMode, actions: [String] = ["IncreaseMemoryLimit"],
                       namespaces: [String] = ["shop"], approval: Bool = true, perHour: Int = 5,
                       ceiling: String? = "1Gi", podSelector: LabelSelector? = nil) -> TapioPolicy {
        var spec = TapioPolicySpec()
        spec.remediation = RemediationSettings(mode: mode, requireApproval: approval, allowedActions: actions,
                                               namespaces: namespaces, maxActionsPerHour: perHour, memoryCeiling: ceiling)
        spec.selector.podSelector = podSelector
        return TapioPolicy(name: name, spec: spec)
    }

    static let context = RemediationGate.Context(namespaceLabels: [:], podLabels: ["app": "api"], appliedLastHour: [:])

    func decide(_ policies: [TapioPolicy], insight: InsightResource = insight(),
                context: RemediationGate.Context = context) -> RemediationGate.Decision {
        RemediationGate.decide(insight: insight, policies: policies, context: context)
    }

    func refusedGate(_ d: RemediationGate.Decision) -> RemediationGate.Gate? {
        if case .refused(_, let gate, _) = d { return gate }
        return nil
    }

    @Test func gitOpsMarksAreRecognisedAndHelmsInstanceLabelAloneIsNot() {
        #expect(RemediationGate.gitOpsManager(labels: [:], annotations: ["argocd.argoproj.io/tracking-id": "a:apps/Deployment:shop/api"])?.hasPrefix("Argo CD") == true)
        #expect(RemediationGate.gitOpsManager(labels: ["argocd.argoproj.io/instance": "shop"], annotations: [:])?.hasPrefix("Argo CD") == true)
        #expect(RemediationGate.gitOpsManager(labels: ["kustomize.toolkit.fluxcd.io/name": "apps"], annotations: [:])?.hasPrefix("Flux") == true)
        #expect(RemediationGate.gitOpsManager(labels: ["helm.toolkit.fluxcd.io/name": "api"], annotations: [:])?.hasPrefix("Flux") == true)
        #expect(RemediationGate.gitOpsManager(labels: ["app.kubernetes.io/instance": "api", "app.kubernetes.io/managed-by": "Helm"], annotations: [:]) == nil)
    }

    @Test func aGitOpsManagedTargetIsRefusedWithTheChangeToCommitUnlessThePolicyOptsIn() throws {
        var context = Self.context
        context.targetManagedBy = "Flux (kustomize.toolkit.fluxcd.io/name: apps, namespace flux-system)"
        let d = decide([Self.policy(mode: .apply)], context: context)
        guard case .refused(_, .managedByGitOps, let message) = d else { Issue.record("expected ManagedByGitOps, got \(d)"); return }
        #expect(message.contains("Flux") && message.contains("commit"), "\(message)")
        // The change as a kustomize patch: the workload's identity and the new limit, valid JSON.
        let json = try #require(message.range(of: "{").map { String(message[$0.lowerBound...]) })
        let patch = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json)")
        #expect(patch["kind"] as? String == "Deployment" && patch["apiVersion"] as? String == "apps/v1")
        #expect((patch["metadata"] as? [String: String]) == ["name": "api", "namespace": "shop"])
        #expect(json.contains("640Mi"))

        var optIn = Self.policy(mode: .apply)
        optIn.spec.remediation.allowGitOpsManaged = true
        guard case .apply = decide([optIn], context: context) else { Issue.record("allowGitOpsManaged did not apply"); return }
        // Suggest and DryRun never reach the gate: nothing is patched there anyway.
        guard case .dryRun = decide([Self.policy(mode: .dryRun)], context: context) else { Issue.record("dry run refused"); return }
    }

    @Test func withoutAnyPolicyNothingIsEverPatched() {
        guard case .none = decide([]) else { Issue.record("expected no action, got \(decide([]))"); return }
    }

    @Test func offAndSuggestNeverPatch() {
        for mode in [RemediationMode.off, .suggest] {
            guard case .none = decide([Self.policy(mode: mode)]) else { Issue.record("\(mode) acted"); continue }
        }
    }

    @Test func dryRunSendsADryRunOnly() {
        guard case .dryRun(let a, let p) = decide([Self.policy(mode: .dryRun)]) else { Issue.record("no dry run"); return }
        #expect(a.name == "IncreaseMemoryLimit")
        #expect(p == Self.patch)
    }

    /// Issue 17, item 6: on the real cluster a DryRun policy dry-ran a patch in a namespace outside its list.
    @Test func dryRunStaysInsideThePolicysNamespaces() {
        #expect(refusedGate(decide([Self.policy(mode: .dryRun, namespaces: ["payments"])])) == .namespace)
        guard case .dryRun = decide([Self.policy(mode: .dryRun, namespaces: [])]) else { Issue.record("an empty list allows all"); return }
        // Approval, budget and ceiling are for applying; a dry run needs none of them.
        guard case .dryRun = decide([Self.policy(mode: .dryRun, perHour: 0, ceiling: "1Mi")], insight: Self.insight(approved: false)) else {
            Issue.record("a dry run was refused by an apply-only gate"); return
        }
    }

    @Test func applyPassesWhenEveryGateAllows() {
        guard case .apply(_, let p, let names) = decide([Self.policy(mode: .apply)]) else { Issue.record("refused"); return }
        #expect(p.target.name == "api")
        #expect(names == ["p"])
    }

    @Test func eachGateRefusesWithItsName() {
        #expect(refusedGate(decide([Self.policy(mode: .apply, actions: ["RestartPod"])])) == .allowedActions)
        #expect(refusedGate(decide([Self.policy(mode: .apply, namespaces: ["other"])])) == .namespace)
        #expect(refusedGate(decide([Self.policy(mode: .apply)], insight: Self.insight(approved: false))) == .approval)
        #expect(refusedGate(decide([Self.policy(mode: .apply, ceiling: "512Mi")])) == .memoryCeiling)
        let spent = RemediationGate.Context(namespaceLabels: [:], podLabels: [:], appliedLastHour: ["p": 5])
        #expect(refusedGate(decide([Self.policy(mode: .apply)], context: spent)) == .rateLimit)
    }

    @Test func anEmptyNamespaceListMeansEveryNamespaceThePolicySelects() {
        guard case .apply = decide([Self.policy(mode: .apply, namespaces: [])]) else { Issue.record("refused"); return }
        let onlyOthers = Self.policy(mode: .apply, namespaces: [],
                                     podSelector: LabelSelector(matchLabels: ["app": "web"]))
        guard case .none = decide([onlyOthers]) else { Issue.record("a policy that does not select the pod allowed it"); return }
    }

    @Test func approvalIsNotNeededWhenThePolicySaysSo() {
        guard case .apply = decide([Self.policy(mode: .apply, approval: false)], insight: Self.insight(approved: false))
        else { Issue.record("refused"); return }
    }

    @Test func theMostRestrictiveSelectingPolicyWins() {
        guard case .none = decide([Self.policy("a", mode: .apply), Self.policy("b", mode: .off)]) else {
            Issue.record("Off did not win"); return
        }
        // A policy that does not select the pod has no say.
        let other = Self.policy("b", mode: .off, podSelector: LabelSelector(matchLabels: ["app": "web"]))
        guard case .apply = decide([Self.policy("a", mode: .apply), other]) else { Issue.record("unselected policy decided"); return }
    }

    @Test func aPatchForAnotherObjectIsRefused() {
        let foreign = Patch(target: PatchTarget(apiVersion: "apps/v1", kind: "Deployment", namespace: "shop", name: "db"),
                            type: .strategicMerge, body: Self.patch.body)
        #expect(refusedGate(decide([Self.policy(mode: .apply)], insight: Self.insight(patch: foreign))) == .target)
        let otherNamespace = Patch(target: PatchTarget(apiVersion: "apps/v1", kind: "Deployment", namespace: "kube-system", name: "api"),
                                   type: .strategicMerge, body: Self.patch.body)
        #expect(refusedGate(decide([Self.policy(mode: .apply)], insight: Self.insight(patch: otherNamespace))) == .target)
    }

    /// The remediation role patches Deployments and StatefulSets only: a DaemonSet named by its Insight is refused
    /// for what it is, not as an object the Insight does not name.
    @Test func aDaemonSetIsLeftToAPerson() {
        let ds = Patch(target: PatchTarget(apiVersion: "apps/v1", kind: "DaemonSet", namespace: "shop", name: "api"),
                       type: .strategicMerge, body: Self.patch.body)
        var insight = Self.insight(patch: ds)
        insight.spec.resources = [ResourceRef(kind: "DaemonSet", namespace: "shop", name: "api")]
        guard case .refused(_, .target, let message) = decide([Self.policy(mode: .apply)], insight: insight) else {
            Issue.record("a DaemonSet patch was not refused at the target gate"); return
        }
        #expect(message.contains("only Deployments and StatefulSets") && message.contains("DaemonSet shop/api"), "\(message)")
    }

    @Test func aSelectingPolicyThatIsNotAcceptedStopsDryRunAndApply() {
        var context = Self.context
        context.notAccepted = ["b": "CeilingBelowRequest: memoryCeiling 256Mi is below …"]
        let refusal = decide([Self.policy("a", mode: .apply), Self.policy("b", mode: .apply)], context: context)
        #expect(refusedGate(refusal) == .notAccepted)
        if case .refused(_, _, let message) = refusal { #expect(message.contains("policy b")) }
        #expect(refusedGate(decide([Self.policy("b", mode: .dryRun)], context: context)) == .notAccepted)
        // Off and Suggest never act anyway; a policy that does not select the pod has no say.
        guard case .none = decide([Self.policy("b", mode: .suggest)], context: context) else { Issue.record("Suggest acted"); return }
        let unselected = Self.policy("b", mode: .apply, podSelector: LabelSelector(matchLabels: ["app": "web"]))
        guard case .apply = decide([Self.policy("a", mode: .apply), unselected], context: context) else {
            Issue.record("an unselected, unaccepted policy blocked remediation"); return
        }
    }

    @Test func nothingIsDecidedWhileASelectingPolicyIsUnjudged() {
        var context = Self.context
        context.unjudged = ["a"]
        guard case .wait = decide([Self.policy("a", mode: .apply)], context: context) else {
            Issue.record("decided before the policy's generation was judged"); return
        }
        guard case .none = decide([Self.policy("a", mode: .off)], context: context) else { Issue.record("Off must stay Off"); return }
    }

    /// The Insight is written by a node agent, the patch sent with the operator's rights: only Tapio's own
    /// memory-limit patch goes through, made again by the operator, in every mode that acts.
    @Test func onlyTapiosMemoryLimitPatchIsSentAndTheOperatorWritesItsBody() {
        func with(_ body: String, type: Patch.PatchType = .strategicMerge, apiVersion: String = "apps/v1",
                  action: String = "IncreaseMemoryLimit") -> InsightResource {
            var i = Self.insight(patch: Patch(target: PatchTarget(apiVersion: apiVersion, kind: "Deployment", namespace: "shop", name: "api"),
                                              type: type, body: body))
            i.spec.remediation?.actions[0].name = action
            return i
        }
        let refused: [(String, InsightResource)] = [
            ("an image", with(#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"evil:1","resources":{"limits":{"memory":"640Mi"}}}]}}}}"#)),
            ("a limit removed", with(#"{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":null}}]}}}}"#)),
            ("a CPU limit", with(#"{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"640Mi","cpu":"64"}}}]}}}}"#)),
            ("the replicas", with(#"{"spec":{"replicas":50,"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"640Mi"}}}]}}}}"#)),
            ("a service account", with(#"{"spec":{"template":{"spec":{"serviceAccountName":"admin","containers":[{"name":"app","resources":{"limits":{"memory":"640Mi"}}}]}}}}"#)),
            ("a JSON merge patch, which replaces the container list", with(Self.patch.body, type: .merge)),
            ("another API", with(Self.patch.body, apiVersion: "apps/v1beta1")),
            ("another action", with(Self.patch.body, action: "RolloutUndo")),
            ("a limit that is not a quantity", with(#"{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"lots"}}}]}}}}"#)),
            ("a zero limit", with(#"{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"0"}}}]}}}}"#)),
            ("a container twice", with(#"{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"1Mi"}}},{"name":"app","resources":{"limits":{"memory":"640Mi"}}}]}}}}"#)),
            ("no container", with(#"{"spec":{"template":{"spec":{"containers":[]}}}}"#)),
            ("not JSON", with("spec: {}")),
            ("another container than the Insight's", with(#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","resources":{"limits":{"memory":"640Mi"}}}]}}}}"#)),
        ]
        for (what, insight) in refused {
            for mode in [RemediationMode.propose, .dryRun, .apply] {
                let d = decide([Self.policy(mode: mode)], insight: insight)
                #expect(refusedGate(d) == .patch, "\(what), mode \(mode): \(d)")
            }
        }
        // What is sent is what the operator wrote: Tapio's own body comes out byte for byte; the same values
        // written another way (spacing, key order) come out the same way.
        guard case .apply(_, let p, _) = decide([Self.policy(mode: .apply)]) else { Issue.record("Tapio's own patch refused"); return }
        #expect(p == Self.patch)
        let respaced = with(#"{ "spec" : { "template" : { "spec" : { "containers" : [ { "resources" : { "limits" : { "memory" : "640Mi" } }, "name" : "app" } ] } } } }"#)
        guard case .dryRun(_, let q) = decide([Self.policy(mode: .dryRun)], insight: respaced) else { Issue.record("respaced patch refused"); return }
        #expect(q.body == Self.patch.body)
    }

    /// A memory limit is a pod container's: an Insight about a node, a namespace or the cluster patches nothing.
    @Test func onlyAPodContainersInsightIsPatched() {
        var insight = Self.insight()
        insight.spec.subject = ResourceRef(kind: "Node", namespace: "shop", name: "node-1")
        #expect(refusedGate(decide([Self.policy(mode: .apply)], insight: insight)) == .target)
        insight.spec.subject = ResourceRef(kind: "Pod", namespace: "shop", name: "api-1")
        #expect(refusedGate(decide([Self.policy(mode: .apply)], insight: insight)) == .target, "a pod with no container named")
    }

    /// Raised, never lowered: the limit the target has now (read before applying) must be below the patch's.
    @Test func aPatchThatWouldNotRaiseTheLimitTheTargetHasNowIsRefused() {
        var context = Self.context
        context.targetMemoryLimits = ["app": 1 << 30, "sidecar": nil]
        #expect(refusedGate(decide([Self.policy(mode: .apply, ceiling: "2Gi")], context: context)) == .patch, "1Gi now, 640Mi patched")
        context.targetMemoryLimits = ["app": 640 << 20]
        #expect(refusedGate(decide([Self.policy(mode: .apply)], context: context)) == .patch, "640Mi now")
        context.targetMemoryLimits = ["sidecar": nil]
        #expect(refusedGate(decide([Self.policy(mode: .apply)], context: context)) == .patch, "no container app")
        for now: UInt64? in [512 << 20, nil] {
            context.targetMemoryLimits = ["app": now]
            guard case .apply = decide([Self.policy(mode: .apply)], context: context) else { Issue.record("a raise from \(String(describing: now)) refused"); continue }
        }
    }

    /// Policies are chosen by the Insight's namespace: an Insight written into another namespace than its target's
    /// would be judged by the wrong policies.
    @Test func anInsightOutsideItsTargetsNamespaceIsRefused() {
        var insight = Self.insight()
        insight.metadata.namespace = "team-a"
        for mode in [RemediationMode.propose, .dryRun, .apply] {
            #expect(refusedGate(decide([Self.policy(mode: mode)], insight: insight)) == .target, "mode \(mode)")
        }
    }

    /// A dry run is a request made with the operator's patch rights (admission webhooks see it): only listed actions.
    @Test func dryRunSendsOnlyAllowedActions() {
        #expect(refusedGate(decide([Self.policy(mode: .dryRun, actions: [])])) == .allowedActions)
        #expect(refusedGate(decide([Self.policy(mode: .dryRun, actions: ["RestartPod"])])) == .allowedActions)
    }

    /// An applied action records every policy it counted against, and the CRD keeps 16: more are refused, not
    /// recorded in part (an unrecorded policy's hourly budget would be overspent).
    @Test func moreSelectingPoliciesThanAnActionRecordsAreRefused() {
        let sixteen = (0..<16).map { Self.policy("p\($0)", mode: .apply) }
        guard case .apply(_, _, let names) = decide(sixteen) else { Issue.record("16 policies refused"); return }
        #expect(names.count == 16)
        #expect(refusedGate(decide(sixteen + [Self.policy("p16", mode: .apply)])) == .rateLimit)
    }
}
