import Foundation
import FoundationNetworking
import Synchronization
import KubeClient
import KubeEmulator
import TapioAgent
import TapioKube
import TapioModel
import TapioOperator
import TapioTestSupport
import Testing

/// Issue 17, items 2 and 3: what keeps an agent from working fully — probes that did not load, calls its role does
/// not allow — is said at warning level, in `/readyz`, in its heartbeat and so in every targeted policy's status.
@Suite(.timeLimit(.minutes(3)))
struct NodeProblemsStatusTests {
    @Test func aTargetedNodesProblemsMakeThePolicyDegradedAndOthersDoNot() {
        var policy = TapioPolicy(name: "p")
        policy.metadata.generation = 1
        policy.spec.nodeSelector = LabelSelector(matchLabels: ["pool": "a"], matchExpressions: nil)
        let nodes = [PolicyStatusComputer.NodeView(name: "a1", labels: ["pool": "a"]),
                     PolicyStatusComputer.NodeView(name: "b1", labels: ["pool": "b"])]
        let now = Date()
        func beat(_ node: String, _ problems: [String]) -> PolicyStatusComputer.HeartbeatView {
            .init(node: node, applied: ["p": 1], errors: [:], renewed: now, problems: problems)
        }
        let quiet = PolicyStatusComputer.status(for: policy, previous: nil, nodes: nodes,
                                                heartbeats: [beat("a1", []), beat("b1", ["untargeted trouble"])], now: now)
        #expect(quiet.condition("Degraded")?.status == .false)
        #expect(quiet.condition("Degraded")?.reason == "AsConfigured")
        #expect(quiet.condition("Ready")?.status == .true)
        let degraded = PolicyStatusComputer.status(for: policy, previous: quiet, nodes: nodes,
                                                   heartbeats: [beat("a1", ["eBPF probes did not load", "the API server refused WATCH /x"])],
                                                   now: now)
        let c = degraded.condition("Degraded")
        #expect(c != nil, "no Degraded condition")
        #expect(c?.status == .true && c?.reason == "NodeProblems")
        #expect(c?.message == "a1: eBPF probes did not load; a1: the API server refused WATCH /x")
        #expect(degraded.condition("Ready")?.status == .true, "degraded is not unapplied")
        // Through the Lease annotation and back.
        let text = HeartbeatAnnotations.encodeProblems(["one\ntwo", String(repeating: "x", count: 5000)])
        #expect(HeartbeatAnnotations.decodeProblems(text) == ["one two", String(repeating: "x", count: 1024)])
    }

    /// The API server's `maxLength` counts code points; Swift's `prefix` counts Characters. A node's error made of
    /// 700 flags (one Character, two code points each; a policy's label key can be one) is 1,400 code points: cut
    /// by Characters it still broke the CRD's 1,024 for `failedNodes[].reason`, and the whole status write was refused.
    @Test func aNodesErrorIsCutToTheCRDsLengthInCodePoints() {
        var policy = TapioPolicy(name: "p")
        policy.metadata.generation = 1
        let flags = String(repeating: "🇩🇪", count: 700)
        let beat = PolicyStatusComputer.HeartbeatView(node: "a1", applied: [:], errors: ["p": "matchLabels key \(flags)"],
                                                      renewed: Date(), problems: [])
        let status = PolicyStatusComputer.status(for: policy, previous: nil, nodes: [.init(name: "a1", labels: [:])],
                                                 heartbeats: [beat], now: Date())
        let reason = status.failedNodes.first?.reason
        #expect(reason != nil, "a1 is not among the failed nodes: \(status.failedNodes)")
        #expect((reason?.unicodeScalars.count ?? 0) <= FailedNode.maxReason, "\(reason?.unicodeScalars.count ?? 0) code points")
        #expect(reason?.hasPrefix("matchLabels key 🇩🇪") == true && reason?.hasSuffix("…") == true)
        #expect("ab🇩🇪c".clipped(toScalars: 4) == "ab🇩…" && "abc".clipped(toScalars: 3) == "abc" && "abc".clipped(toScalars: 0) == "")
    }
}

@Suite(.serialized, .enabled(if: TestCgroup.isAvailable, "\(TestCgroup.unavailableReason ?? "")"), .timeLimit(.minutes(5)))
struct NodeProblemsAgentTests {
    /// The agent's role lacked list/watch on events.k8s.io Events on the first real deployment: every such call was
    /// Forbidden, logged at debug level only. A 403 now makes the agent not ready, naming the call, and its heartbeat
    /// carries it to the policy status; once the call succeeds (the role was fixed), both clear. (The agent no longer
    /// watches Events at all since issue 14; its watch of its Node stands in.)
    @Test func aForbiddenWatchMakesTheAgentUnreadyAndShowsInItsHeartbeatUntilItIsAllowed() async throws {
        let cluster = try await TestCluster.start()
        guard let emu = cluster.requireEmulator() else { await cluster.stop(); return }
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        let node = randomNodeName()
        try await registerTestNode(at: cluster, client: client, node: node)
        _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: "tapio-system")))
        emu.misbehave(.status(403), pathContains: "/api/v1/nodes?")
        let port = Mutex<Int?>(nil)
        let agent = Agent(options: Agent.Options(nodeName: node, metricsHost: "127.0.0.1", metricsPort: 0, heartbeatPeriod: .seconds(1)),
                          client: client)
        let task = Task { try await agent.run(signals: [], onReady: { p in port.withLock { $0 = p } }) }
        func problems() async -> [String] {
            let l = try? await client.get(Lease.self, namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: node))
            return HeartbeatAnnotations.decodeProblems(l?.metadata.annotations?[HeartbeatAnnotations.problems] ?? "")
        }
        do {
            let p = try #require(await eventually(timeout: .seconds(60)) { port.withLock { $0 } })
            let unready = await eventually(timeout: .seconds(60)) { () async -> String? in
                guard let (code, body) = try? await Loopback.get(port: p, path: "/readyz"), code == 503, body.contains("refused") else { return nil }
                return body
            }
            #expect(unready?.contains("/api/v1/nodes: forbidden") == true, "\(unready ?? "never unready")")
            let reported = await eventually(timeout: .seconds(60)) { () async -> [String]? in
                let p = await problems()
                return p.contains { $0.contains("refused") && $0.contains("/api/v1/nodes") } ? p : nil
            }
            #expect(reported != nil, "the heartbeat never named the refused call")
            emu.behave()
            // The watcher's next list succeeds (its backoff is at most a minute) and clears the denial.
            let ready = await eventually(timeout: .seconds(120)) { () async -> Bool? in
                guard let (code, _) = try? await Loopback.get(port: p, path: "/readyz"), code == 200 else { return nil }
                return true
            }
            #expect(ready == true, "the agent stayed unready after the server allowed the call")
            let cleared = await eventually(timeout: .seconds(60)) { () async -> Bool? in
                await problems().contains { $0.contains("refused") } ? nil : true
            }
            #expect(cleared == true)
        } catch {
            Issue.record(error)
        }
        emu.behave()
        task.cancel()
        _ = await task.result
        await cluster.runCleanups()
        try? await client.shutdown()
        await cluster.stop()
    }
}
