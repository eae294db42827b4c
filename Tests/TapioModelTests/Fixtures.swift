import TapioModel

/// Fully populated API values: every optional set and every list non-empty, so encoding them shows every field
/// (the CRD agreement test relies on that; `CRDAgreementTests` checks no optional is left nil).
enum Fixtures {
    static let selector = PolicyLabelSelector(
        matchLabels: ["tapio.io/watch": "true"],
        matchExpressions: [LabelSelectorRequirement(key: "tier", operator: "In", values: ["web", "api"])])

    static let fullPolicy = TapioPolicy(
        metadata: ResourceMeta(name: "full", uid: "0b1c", resourceVersion: "42", generation: 3,
                             labels: ["team": "sre"], annotations: ["note": "x"],
                             creationTimestamp: "2026-11-29T10:00:00Z",
                             ownerReferences: [ResourceOwnerReference(apiVersion: "v1", kind: "ConfigMap", name: "o", uid: "u",
                                                              controller: true, blockOwnerDeletion: false)]),
        spec: TapioPolicySpec(
            selector: PolicySelector(namespaceSelector: selector, podSelector: selector),
            nodeSelector: selector,
            probes: Probes(memory: MemoryProbe(enabled: true, samplingHz: 97, leakThreshold: "20Mi"),
                           oom: ProbeToggle(enabled: true), process: ProbeToggle(enabled: false),
                           network: ProbeToggle(enabled: true)),
            correlation: CorrelationSettings(batchSize: 500, batchTimeout: "50ms", window: "10m", minSeverity: .warning),
            insights: InsightSettings(emitEvents: false, resolveAfter: "15m", ttl: "48h"),
            remediation: RemediationSettings(mode: .apply, requireApproval: true,
                                             allowedActions: ["IncreaseMemoryLimit", "RestartPod"],
                                             namespaces: ["shop"], maxActionsPerHour: 5, memoryCeiling: "4Gi")),
        status: TapioPolicyStatus(
            observedGeneration: 3,
            conditions: [StatusCondition(type: StatusCondition.ready, status: .false, reason: "NodesFailed",
                                         message: "1 of 3 nodes failed", lastTransitionTime: "2026-11-29T10:00:00Z",
                                         observedGeneration: 3)],
            nodesTargeted: 3, nodesApplied: 2, failedNodes: [FailedNode(name: "n1", reason: "BTF missing")]))

    static let fullInsight = InsightResource(
        metadata: ResourceMeta(name: "oomprediction-pod-cart-abc", namespace: "shop", uid: "u1", resourceVersion: "7",
                             generation: 1, labels: ["a": "b"], annotations: ["tapio.io/approve": "true"],
                             creationTimestamp: "2026-11-29T10:00:00Z",
                             ownerReferences: [ResourceOwnerReference(apiVersion: "v1", kind: "Pod", name: "cart", uid: "p",
                                                              controller: false, blockOwnerDeletion: false)]),
        spec: InsightSpec(
            type: .oomPrediction, severity: .critical, title: "t", summary: "s",
            subject: ResourceRef(kind: "Pod", namespace: "shop", name: "cart", uid: "p", container: "app"),
            resources: [ResourceRef(kind: "Deployment", namespace: "shop", name: "cart", uid: "d", container: "app")],
            evidence: [Evidence(source: "ebpf", description: "growing", observedAt: "2026-11-29T10:00:00Z",
                                value: 1.5, unit: "bytes")],
            prediction: Prediction(kind: "OOMKill", probability: 0.85, confidence: 0.9, timeToEvent: "3m15s",
                                   expectedAt: "2026-11-29T10:03:15Z"),
            remediation: Remediation(actions: [RemediationAction(
                name: "IncreaseMemoryLimit", title: "raise", description: "d", risk: .low, impact: "restart",
                commands: ["kubectl …"],
                patch: Patch(target: PatchTarget(apiVersion: "apps/v1", kind: "Deployment", namespace: "shop", name: "cart"),
                             type: .strategicMerge, body: "{}"))])),
        status: InsightStatus(phase: .active, firstSeen: "2026-11-29T10:00:00Z", lastSeen: "2026-11-29T10:01:00Z",
                              occurrences: 4,
                              remediation: RemediationStatus(state: .blocked, history: [RemediationHistoryEntry(
                                  time: "2026-11-29T10:01:00Z", action: "IncreaseMemoryLimit", outcome: .blocked,
                                  gate: "Approval", policies: ["production"], reason: "NotApproved", message: "waiting for approval")],
                                  proposal: RemediationProposal(action: "IncreaseMemoryLimit", path: "patches/deployment-cart.yaml",
                                                                patch: "{}", commands: ["kustomize edit add patch --path patches/deployment-cart.yaml"]))))
}
