import KubeClient
import KubeRuntime
@testable import TapioAgent
import TapioCorrelation
import TapioKube
import TapioModel
import Testing

@Suite(.timeLimit(.minutes(2))) struct PolicyScopeTests {
    static func update(namespace: String, pod: String) -> InsightUpdate {
        let subject = Subject.podContainer(PodRef(namespace: namespace, name: pod, uid: "u-\(pod)"), container: "app")
        let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "t", summary: "s", subject: subject.resourceRef)
        return InsightUpdate(identity: InsightIdentity(type: .oomKilled, subject: subject), spec: spec, change: .new,
                             observedAt: 1, firstSeenAt: 1, occurrences: 1)
    }

    static func policy(namespaceLabels: [String: String]? = nil, podLabels: [String: String]? = nil) -> TapioPolicy {
        var spec = TapioPolicySpec()
        spec.selector.namespaceSelector = namespaceLabels.map { PolicyLabelSelector(matchLabels: $0) }
        spec.selector.podSelector = podLabels.map { PolicyLabelSelector(matchLabels: $0) }
        return TapioPolicy(name: "p", spec: spec)
    }

    func scope() -> PolicyScope {
        let pods = ReflectorStore<Pod>()
        pods.apply(.apply(Pod(metadata: KubeObjectMeta(name: "api", namespace: "shop", labels: ["app": "api"]))))
        pods.apply(.apply(Pod(metadata: KubeObjectMeta(name: "db", namespace: "shop", labels: ["app": "db"]))))
        let s = PolicyScope(pods: pods)
        s.setNamespaceLabels(["shop": ["team": "shop"], "ops": ["team": "ops"]])
        return s
    }

    @Test func namespacesAreReadOnlyWhenASelectorNeedsMoreThanTheirName() {
        #expect(!PolicyScope.needsNamespaceLabels([]))
        #expect(!PolicyScope.needsNamespaceLabels([Self.policy(podLabels: ["app": "api"])]))
        #expect(!PolicyScope.needsNamespaceLabels([Self.policy(namespaceLabels: ["kubernetes.io/metadata.name": "shop"])]))
        #expect(PolicyScope.needsNamespaceLabels([Self.policy(namespaceLabels: ["team": "shop"])]))
        var spec = TapioPolicySpec()
        spec.selector.namespaceSelector = PolicyLabelSelector(matchExpressions: [.init(key: "env", operator: "Exists")])
        #expect(PolicyScope.needsNamespaceLabels([Self.policy(), TapioPolicy(name: "q", spec: spec)]))
    }

    @Test func withoutPoliciesEveryPodIsWatched() {
        #expect(scope().allows(Self.update(namespace: "shop", pod: "api")))
    }

    @Test func podAndNamespaceSelectorsDecide() {
        let s = scope()
        s.setPolicies([Self.policy(namespaceLabels: ["team": "shop"], podLabels: ["app": "api"])])
        #expect(s.allows(Self.update(namespace: "shop", pod: "api")))
        #expect(!s.allows(Self.update(namespace: "shop", pod: "db")), "the pod selector excludes db")
        #expect(!s.allows(Self.update(namespace: "ops", pod: "api")), "the namespace selector excludes ops")
        // Any selecting policy is enough.
        s.setPolicies([Self.policy(podLabels: ["app": "api"]), Self.policy(podLabels: ["app": "db"])])
        #expect(s.allows(Self.update(namespace: "shop", pod: "db")))
    }

    @Test func nodeAndLocalSubjectsAreAlwaysPublished() {
        let s = scope()
        s.setPolicies([Self.policy(podLabels: ["app": "nothing"])])
        let subject = Subject.localCgroup(id: 7, path: "/system.slice/x.service")
        let spec = InsightSpec(type: .oomPrediction, severity: .warning, title: "t", summary: "s", subject: subject.resourceRef)
        let u = InsightUpdate(identity: InsightIdentity(type: .oomPrediction, subject: subject), spec: spec, change: .new,
                              observedAt: 1, firstSeenAt: 1, occurrences: 1)
        #expect(s.allows(u))
    }

    /// A resolution follows its finding out whatever the selectors say by then (the pod is gone from the store, or
    /// relabelled); one of a finding never let out is still judged by them; a finding no longer active is forgotten.
    @Test func aResolutionFollowsItsFindingOut() {
        let s = scope()
        s.setPolicies([Self.policy(podLabels: ["app": "api"])])
        var published = PublishedFindings()
        let allows: (InsightUpdate) -> Bool = { s.allows($0) }
        func resolved(_ u: InsightUpdate) -> InsightUpdate {
            var r = u
            r.change = .resolved
            return r
        }
        let api = Self.update(namespace: "shop", pod: "api"), db = Self.update(namespace: "shop", pod: "db")
        let apiOut = published.pass(api, filter: allows), dbOut = published.pass(db, filter: allows)
        #expect(apiOut && !dbOut)
        s.pods.apply(.delete(Pod(metadata: KubeObjectMeta(name: "api", namespace: "shop"))))
        #expect(!s.allows(resolved(api)), "the selector alone refuses it once the pod is gone")
        let first = published.pass(resolved(api), filter: allows), again = published.pass(resolved(api), filter: allows)
        #expect(first, "the deleted pod's finding was let out: so is its resolution")
        #expect(!again, "once")
        let dbResolved = published.pass(resolved(db), filter: allows)
        #expect(!dbResolved, "never let out: the selector decides")
        let gone = Self.update(namespace: "shop", pod: "gone")
        s.setPolicies([])
        let goneOut = published.pass(gone, filter: allows)
        #expect(goneOut)
        published.retain([api])
        #expect(published.identities.isEmpty, "no longer active in the engine: forgotten")
    }
}
