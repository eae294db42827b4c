import Foundation
import TapioCorrelation
import TapioModel
@testable import TapioOperator
import Testing

@Suite(.timeLimit(.minutes(2))) struct ClusterDetectorsTests {
    let now = Date(timeIntervalSince1970: 1_795_000_000)

    func nodes(_ total: Int, _ condition: String = "MemoryPressure", affected: Int) -> [ClusterDetectors.NodeView] {
        (0..<total).map { i in
            var c = ["Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False"]
            if i < affected { c[condition] = condition == "Ready" ? "Unknown" : "True" }
            return .init(name: "node-\(i)", conditions: c)
        }
    }

    @Test func onePressuredNodeIsTheAgentsBusinessManyAreTheClusters() {
        #expect(ClusterDetectors.nodePressure(nodes(10, affected: 1), now: now).isEmpty)
        let some = ClusterDetectors.nodePressure(nodes(10, affected: 3), now: now)
        #expect(some.count == 1)
        #expect(some.first?.spec.type == .nodePressure)
        #expect(some.first?.spec.severity == .warning)
        #expect(some.first?.spec.title == "3 of 10 nodes report MemoryPressure")
        #expect(Set(some.first?.spec.resources.map(\.name) ?? []) == ["node-0", "node-1", "node-2"])
        #expect(ClusterDetectors.nodePressure(nodes(10, affected: 6), now: now).first?.spec.severity == .critical)
        // 10 % of 100 nodes is needed, not just two.
        #expect(ClusterDetectors.nodePressure(nodes(100, "DiskPressure", affected: 5), now: now).isEmpty)
        #expect(ClusterDetectors.nodePressure(nodes(100, "DiskPressure", affected: 10), now: now).first?.identity.detail == "DiskPressure")
        let notReady = ClusterDetectors.nodePressure(nodes(4, "Ready", affected: 2), now: now)
        #expect(notReady.first?.identity.detail == "NotReady")
        #expect(notReady.first?.spec.severity == .critical)
    }

    func finding(_ pod: String, node: String, owner: String? = "api", ns: String = "shop", type: InsightType = .oomKilled,
                 age: TimeInterval = 10) -> ClusterDetectors.PodFinding {
        .init(type: type, pod: ResourceRef(kind: "Pod", namespace: ns, name: pod, uid: "uid-\(pod)"), node: node,
              owner: owner.map { ResourceRef(kind: "Deployment", namespace: ns, name: $0) },
              lastSeen: now.addingTimeInterval(-age))
    }

    @Test func theSameFailureInOneWorkloadOnSeveralNodesIsOneFinding() throws {
        let pods = (0..<5).map { finding("api-\($0)", node: "node-\($0 % 2)") }
        let found = ClusterDetectors.clusterHealth(pods, now: now)
        #expect(found.count == 1)
        let f = try #require(found.first)
        #expect(f.spec.type == .clusterHealth)
        #expect(f.spec.subject == ResourceRef(kind: "Deployment", namespace: "shop", name: "api"))
        #expect(f.spec.title == "OOM kills in 5 pods of deployment shop/api on 2 nodes")
        #expect(f.spec.resources.filter { $0.kind == "Pod" }.count == 5)
        #expect(f.spec.remediation?.actions.first?.commands.contains("kubectl -n shop rollout history deployment/api") == true)
    }

    @Test func oneNodesFailuresOldOnesAndSmallGroupsAreNot() {
        // All on one node: the agent there reports it.
        #expect(ClusterDetectors.clusterHealth((0..<6).map { finding("api-\($0)", node: "node-0") }, now: now).isEmpty)
        // Four pods are not enough.
        #expect(ClusterDetectors.clusterHealth((0..<4).map { finding("api-\($0)", node: "node-\($0)") }, now: now).isEmpty)
        // Outside the window.
        #expect(ClusterDetectors.clusterHealth((0..<5).map { finding("api-\($0)", node: "node-\($0)", age: 3600) }, now: now).isEmpty)
        // Different failure types do not add up.
        let mixed = (0..<3).map { finding("a-\($0)", node: "node-\($0)") }
            + (0..<2).map { finding("b-\($0)", node: "node-\($0)", type: .crashLoop) }
        #expect(ClusterDetectors.clusterHealth(mixed, now: now).isEmpty)
    }

    @Test func aNamespaceGroupCoversWhatNoWorkloadExplains() {
        // Five pods of five different workloads in one namespace, on three nodes.
        let pods = (0..<5).map { finding("w\($0)-0", node: "node-\($0 % 3)", owner: "w\($0)") }
        let found = ClusterDetectors.clusterHealth(pods, now: now)
        #expect(found.map(\.spec.subject) == [ResourceRef(kind: "Namespace", name: "shop")])
        // When a workload group explains them, the namespace is not reported again.
        let one = (0..<5).map { finding("api-\($0)", node: "node-\($0 % 2)") }
        #expect(ClusterDetectors.clusterHealth(one + [finding("x-0", node: "node-0", owner: "x")], now: now).count == 1)
    }

    /// Found by the trap audit of issue 16: a new leader adopts its cluster Insights with the count in their status,
    /// which anyone who may write Insights (or a hostile server) could set to Int.max; the next increment trapped.
    @Test func anAdoptedInsightWithAnAbsurdCountDoesNotOverflow() throws {
        var tracker = ClusterFindingTracker(config: ClusterDetectors.Config())
        let s: UInt64 = 1_000_000_000
        let t0: UInt64 = 1_795_000_000 * s
        let pressure = ClusterDetectors.nodePressure(nodes(10, affected: 3), now: now)
        let f = try #require(pressure.first)
        tracker.adopt(f.identity, spec: f.spec, firstSeen: t0, lastSeen: t0, occurrences: Int.max)
        _ = tracker.evaluate(pressure, now: t0 + 15 * s)
        let resolved = tracker.evaluate([], now: t0 + 10_000 * s)
        #expect(resolved.first?.occurrences == Int(Int32.max))
    }

    @Test func theTrackerAnnouncesOnceUpdatesSparinglyAndResolvesAfterAbsence() {
        var config = ClusterDetectors.Config()
        config.updateInterval = 60
        config.resolveAfter = 120
        var tracker = ClusterFindingTracker(config: config)
        let s: UInt64 = 1_000_000_000
        let t0: UInt64 = 1_795_000_000 * s
        var pressure = ClusterDetectors.nodePressure(nodes(10, affected: 3), now: now)
        #expect(tracker.evaluate(pressure, now: t0).map(\.change) == [.new])
        #expect(tracker.evaluate(pressure, now: t0 + 15 * s).isEmpty, "unchanged: nothing to write")
        // More nodes: changed and more severe → escalated at once.
        pressure = ClusterDetectors.nodePressure(nodes(10, affected: 6), now: now)
        #expect(tracker.evaluate(pressure, now: t0 + 30 * s).map(\.change) == [.escalated])
        // Changed but not more severe: written no more than once a minute.
        pressure = ClusterDetectors.nodePressure(nodes(10, affected: 7), now: now)
        #expect(tracker.evaluate(pressure, now: t0 + 45 * s).isEmpty)
        #expect(tracker.evaluate(pressure, now: t0 + 95 * s).map(\.change) == [.updated])
        // Gone: resolved only after two minutes of absence, once.
        #expect(tracker.evaluate([], now: t0 + 150 * s).isEmpty)
        let resolved = tracker.evaluate([], now: t0 + 216 * s)
        #expect(resolved.map(\.change) == [.resolved])
        #expect(resolved.first?.occurrences == 5)
        #expect(tracker.evaluate([], now: t0 + 300 * s).isEmpty)
    }

    /// The operator's writer is handed the tracker's active findings each pass, to write again what its full queue
    /// pushed out: the newest spec, first and last sighting, and count — and nothing once resolved.
    @Test func theTrackerListsItsActiveFindingsForTheWritersResync() throws {
        var config = ClusterDetectors.Config()
        config.resolveAfter = 120
        var tracker = ClusterFindingTracker(config: config)
        let s: UInt64 = 1_000_000_000
        let t0: UInt64 = 1_795_000_000 * s
        #expect(tracker.activeInsights.isEmpty)
        _ = tracker.evaluate(ClusterDetectors.nodePressure(nodes(10, affected: 3), now: now), now: t0)
        let worse = ClusterDetectors.nodePressure(nodes(10, affected: 7), now: now)
        _ = tracker.evaluate(worse, now: t0 + 15 * s)
        let active = try #require(tracker.activeInsights.first)
        #expect(tracker.activeInsights.count == 1)
        #expect(active.spec == worse.first?.spec, "the newest spec")
        #expect(active.firstSeenAt == t0 && active.observedAt == t0 + 15 * s && active.occurrences == 2)
        _ = tracker.evaluate([], now: t0 + 200 * s)
        #expect(tracker.activeInsights.isEmpty, "resolved: not written again")
    }
}
