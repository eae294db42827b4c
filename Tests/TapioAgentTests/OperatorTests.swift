import Foundation
import KubeClient
import KubeRuntime
import Synchronization
import TapioCorrelation
import TapioKube
import TapioModel
import TapioOperator
import TapioSinks
import TapioTestSupport
import Testing

/// `tapio operator` against an API server reached through a kubeconfig only (the emulator, or
/// TAPIO_TEST_KUBECONFIG): policy status, the remediation gate matrix end to end, and leader election.
///
/// Serialized: against a real server every operator here acts on the whole cluster's policies and Insights, so two
/// at once would race each other.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct OperatorTests {
    /// A running operator (no leader election) and the client the test drives the cluster with.
    struct Running {
        let cluster: TestCluster
        let client: KubeClient
        let operatorClient: KubeClient
        let task: Task<Void, any Error>
        let metrics: TapioMetrics

        func stop() async {
            task.cancel()
            _ = await task.result
            await cluster.runCleanups()
            try? await operatorClient.shutdown()
            try? await client.shutdown()
            await cluster.stop()
        }
    }

    func startOperator(statusRefresh: Duration = .seconds(1), cluster detectors: ClusterDetectors.Config? = nil,
                       remediationRetry: Duration = .seconds(30)) async throws -> Running {
        let cluster = try await TestCluster.start()
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: "tapio-system")))
        let operatorClient = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        var options = Operator.Options(identity: "op-\(cluster.namespace)", metricsHost: "127.0.0.1", metricsPort: 0,
                                       statusRefresh: statusRefresh, clusterCheck: .seconds(1))
        if let detectors { options.clusterDetectors = detectors }
        options.remediationRetry = remediationRetry
        let op = Operator(options: options, client: operatorClient)
        let task = Task { try await op.run(signals: []) }
        return Running(cluster: cluster, client: client, operatorClient: operatorClient, task: task, metrics: op.metrics)
    }

    /// Runs `body` against a running operator and stops it (running the cluster's clean-ups) whatever the outcome.
    func withOperator(statusRefresh: Duration = .seconds(1), cluster detectors: ClusterDetectors.Config? = nil,
                      remediationRetry: Duration = .seconds(30), _ body: (Running) async throws -> Void) async throws {
        let r = try await startOperator(statusRefresh: statusRefresh, cluster: detectors, remediationRetry: remediationRetry)
        do {
            try await body(r)
        } catch {
            await r.stop()
            throw error
        }
        await r.stop()
    }

    /// Creates a Node for the test, to be deleted with its heartbeat Lease when the test ends, whatever the outcome.
    func createNode(_ r: Running, _ node: Node) async throws {
        let name = node.metadata.name ?? ""
        r.cluster.atCleanup { [client = r.client] in
            try? await client.deleteRaw(ResourceType(Node.self), namespace: nil, name: name)
            try? await client.deleteRaw(ResourceType(Lease.self), namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: name))
        }
        _ = try await r.client.create(node)
    }

    /// Creates a (cluster-scoped) policy, to be deleted when the test ends whatever the outcome.
    @discardableResult
    func createPolicy(_ r: Running, _ policy: PolicyObject) async throws -> PolicyObject {
        let name = policy.metadata.name ?? ""
        r.cluster.atCleanup { [client = r.client] in
            try? await client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: name)
        }
        return try await r.client.create(policy)
    }

    func deletePolicy(_ client: KubeClient, _ name: String) async {
        try? await client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: name)
    }

    // MARK: Policy status

    @Test func aSemanticallyInvalidPolicyIsNotAcceptedAndTheMessageNamesTheField() async throws {
        try await withOperator() { r in
            let name = "invalid-\(r.cluster.namespace)"
            var spec = TapioPolicySpec()
            // Valid for the CRD schema, which does not require values; `In` without values selects nothing.
            spec.selector.podSelector = PolicyLabelSelector(matchExpressions: [.init(key: "app", operator: "In", values: [])])
            try await createPolicy(r, PolicyObject(metadata: KubeObjectMeta(name: name), spec: spec))
            let status = await eventually {
                (try? await r.client.get(PolicyObject.self, name: name))?.status.flatMap { $0.condition("Accepted") == nil ? nil : $0 }
            }
            await deletePolicy(r.client, name)
            let accepted = try #require(status?.condition("Accepted"), "the operator wrote no Accepted condition")
            #expect(accepted.status == .false)
            #expect(accepted.reason == "InvalidSpec")
            #expect(accepted.message.contains("spec.selector.podSelector.matchExpressions[0].values"), "message: \(accepted.message)")
            #expect(status?.condition("Ready")?.status == .false)
            #expect(status?.nodesApplied == 0)
        }
    }

    /// Issue 16: durations the CRD's pattern lets through but no clock can hold used to crash the operator (and every
    /// agent). Now the policy is not accepted, the message names each field and its range, and the operator goes on
    /// judging other policies.
    @Test func aPolicyWithDurationsBeyondAnyClockIsRefusedAndTheOperatorGoesOn() async throws {
        try await withOperator() { r in
            let poison = "poison-\(r.cluster.namespace)", good = "good-\(r.cluster.namespace)"
            var bad = TapioPolicySpec()
            bad.correlation.batchTimeout = "2562047.9h"
            bad.correlation.window = "2562047h47m16.854775808s"
            bad.insights.resolveAfter = "169h"
            try await createPolicy(r, PolicyObject(metadata: KubeObjectMeta(name: poison), spec: bad))
            try await createPolicy(r, PolicyObject(metadata: KubeObjectMeta(name: good), spec: TapioPolicySpec()))
            func accepted(_ name: String) async -> StatusCondition? {
                await eventually { (try? await r.client.get(PolicyObject.self, name: name))?.status?.condition("Accepted") }
            }
            let refused = await accepted(poison)
            let fine = await accepted(good)
            await deletePolicy(r.client, poison)
            await deletePolicy(r.client, good)
            let operatorRunning = !r.task.isCancelled
            let a = try #require(refused, "the operator wrote no Accepted condition for the poison policy")
            #expect(a.status == .false)
            #expect(a.reason == "InvalidSpec")
            #expect(a.message.contains("spec.correlation.batchTimeout") && a.message.contains("too large"), "\(a.message)")
            #expect(a.message.contains("spec.correlation.window"), "\(a.message)")
            #expect(a.message.contains("spec.insights.resolveAfter") && a.message.contains("must be between 1s and 168h"), "\(a.message)")
            #expect(fine?.status == .true, "a valid policy next to the poison one must still be accepted")
            #expect(operatorRunning)
        }
    }

    @Test func aValidPolicyIsAcceptedAndCountsTargetedAndAppliedNodesFromHeartbeats() async throws {
        try await withOperator() { r in
            let name = "valid-\(r.cluster.namespace)"
            let pool = r.cluster.namespace
            // Three nodes in this test's pool (one outside it): one agent runs the policy, one an old generation,
            // one sent no heartbeat at all.
            let nodes = ["a", "b", "c"].map { "\(pool)-\($0)" }
            for n in nodes {
                try await createNode(r, Node(metadata: KubeObjectMeta(name: n, labels: ["tapio-test-pool": pool])))
            }
            try await createNode(r, Node(metadata: KubeObjectMeta(name: "\(pool)-other", labels: ["tapio-test-pool": "elsewhere"])))
            var spec = TapioPolicySpec()
            spec.nodeSelector = PolicyLabelSelector(matchLabels: ["tapio-test-pool": pool])
            r.cluster.atCleanup { [client = r.client] in try? await client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: name) }
            let created = try await createPolicy(r, PolicyObject(metadata: KubeObjectMeta(name: name), spec: spec))
            let generation = try #require(created.metadata.generation)
            func heartbeat(_ node: String, applied: [String: Int64]) async throws {
                var lease = Lease(metadata: KubeObjectMeta(
                    name: HeartbeatAnnotations.leaseName(node: node), namespace: "tapio-system",
                    labels: [HeartbeatAnnotations.appLabel: "tapio", HeartbeatAnnotations.nodeLabel: node],
                    annotations: [HeartbeatAnnotations.applied: HeartbeatAnnotations.encodeApplied(applied)]))
                var s = Lease.Spec()
                s.holderIdentity = node
                s.renewTime = MicroTime.string()
                lease.spec = s
                _ = try await r.client.create(lease)
            }
            try await heartbeat(nodes[0], applied: [name: generation])
            try await heartbeat(nodes[1], applied: [name: generation + 1])  // another generation
            let status = await eventually {
                (try? await r.client.get(PolicyObject.self, name: name))?.status.flatMap { $0.nodesApplied == 1 ? $0 : nil }
            }
            let s = try #require(status, "the status never counted the one node that runs the policy")
            #expect(s.condition("Accepted")?.status == .true)
            #expect(s.condition("Accepted")?.reason == "Valid")
            #expect(s.observedGeneration == generation)
            #expect(s.nodesTargeted == 3)
            #expect(s.nodesApplied == 1)
            #expect(s.condition("Ready")?.reason == "Progressing")
            #expect(Set(s.failedNodes.map(\.name)) == [nodes[1], nodes[2]])
            #expect(s.failedNodes.first { $0.name == nodes[2] }?.reason.contains("no heartbeat") == true)
        }
    }

    /// Heartbeats that keep changing the status (an agent whose reported problems change at every renewal; nodes
    /// joining during a scale-up): every agent watches the policies, so the operator writes a status that follows
    /// from nodes and heartbeats at most once per status refresh, not once per reconcile — a status write is itself
    /// a change of the policy, reconciled at once, which found the status changed again and wrote again, as fast as
    /// the server answered. The last state is still written.
    @Test func changingHeartbeatsWriteThePolicyStatusAtMostOncePerRefresh() async throws {
        let refresh = Duration.seconds(1)
        try await withOperator(statusRefresh: refresh) { r in
            let name = "churn-\(r.cluster.namespace)"
            let pool = r.cluster.namespace
            let node = "\(pool)-churn"
            try await createNode(r, Node(metadata: KubeObjectMeta(name: node, labels: ["tapio-test-pool": pool])))
            var spec = TapioPolicySpec()
            spec.nodeSelector = PolicyLabelSelector(matchLabels: ["tapio-test-pool": pool])
            r.cluster.atCleanup { [client = r.client] in try? await client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: name) }
            let created = try await createPolicy(r, PolicyObject(metadata: KubeObjectMeta(name: name), spec: spec))
            let generation = try #require(created.metadata.generation)
            func lease(problems: [String]) -> Lease {
                var annotations = [HeartbeatAnnotations.applied: HeartbeatAnnotations.encodeApplied([name: generation])]
                if !problems.isEmpty { annotations[HeartbeatAnnotations.problems] = HeartbeatAnnotations.encodeProblems(problems) }
                var lease = Lease(metadata: KubeObjectMeta(
                    name: HeartbeatAnnotations.leaseName(node: node), namespace: "tapio-system",
                    labels: [HeartbeatAnnotations.appLabel: "tapio", HeartbeatAnnotations.nodeLabel: node],
                    annotations: annotations))
                var s = Lease.Spec()
                s.holderIdentity = node
                s.renewTime = MicroTime.string()
                lease.spec = s
                return lease
            }
            var current = try await r.client.create(lease(problems: []))
            let first = await eventually {
                (try? await r.client.get(PolicyObject.self, name: name)).flatMap { $0.status?.nodesApplied == 1 ? $0 : nil }
            }
            let version = try #require(first?.metadata.resourceVersion, "the operator never counted the node")

            // Count the writes to this policy from here on, through a watch (as an agent sees them).
            let writes = Mutex<[TapioPolicyStatus]>([])
            var options = WatchOptions(fieldSelector: "metadata.name=\(name)", resourceVersion: version)
            options.allowWatchBookmarks = false
            let stream = try await r.client.watch(PolicyObject.self, options: options)
            let counter = Task {
                for try await e in stream {
                    if case .modified(let p) = e, let s = p.status { writes.withLock { $0.append(s) } }
                }
            }
            defer { counter.cancel() }

            // The agent reports another problem at each renewal, for three refresh intervals and until the operator
            // has written one of them (a minute at most: the expectations below then say what was missing).
            let start = ContinuousClock.now
            var renewals = 0
            var reported = false
            while ContinuousClock.now - start < refresh * 3 || (!reported && ContinuousClock.now - start < .seconds(60)) {
                reported = writes.withLock { $0.contains { $0.condition("Degraded")?.status == .true } }
                renewals += 1
                var next = lease(problems: ["probe failure #\(renewals)"])
                next.metadata.resourceVersion = current.metadata.resourceVersion
                current = try await r.client.update(next)
            }
            var last = lease(problems: [])
            last.metadata.resourceVersion = current.metadata.resourceVersion
            _ = try await r.client.update(last)
            // The newest state arrives: the node runs as configured again.
            let done = await eventually(timeout: .seconds(60)) {
                writes.withLock { $0.last }.flatMap { $0.condition("Degraded")?.status == .false ? $0 : nil }
            }
            let elapsed = ContinuousClock.now - start
            let seen = writes.withLock { $0.map { $0.condition("Degraded")?.message ?? "-" } }
            #expect(done != nil, "the last status was never written: \(seen.suffix(3))")
            reported = writes.withLock { $0.contains { $0.condition("Degraded")?.status == .true } }
            #expect(reported && seen.count >= 2, "the changing heartbeats were never reported (\(renewals) renewals): \(seen)")
            // One write per refresh interval, plus one whose interval began before `start` and the last.
            let bound = Int(elapsed / refresh) + 2
            #expect(seen.count <= bound, "\(seen.count) status writes in \(elapsed) for \(renewals) renewals (at most \(bound))")
        }
    }

    /// GitOps: a policy applied from Git twice is unchanged the second time and `kubectl diff` is clean even after
    /// the operator wrote its status (it writes only the status subresource, never the spec or metadata).
    @Test func aPolicyAppliedFromGitTwiceIsUnchangedAndDiffsClean() async throws {
        guard Kubectl.isAvailable else {
            print("skipped aPolicyAppliedFromGitTwiceIsUnchangedAndDiffsClean: \(Kubectl.unavailableReason)")
            return
        }
        try await withOperator() { r in
            let name = "gitops-\(r.cluster.namespace)"
            let sample = try String(contentsOf: CommandRunner.repositoryRoot.appendingPathComponent("config/samples/tapio.io_v1alpha1_tapiopolicy.yaml"),
                                    encoding: .utf8)
            let manifest = try #require(sample.range(of: #"(?m)^  name: .*$"#, options: .regularExpression).map {
                sample.replacingCharacters(in: $0, with: "  name: \(name)")
            })
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).yaml").path
            try manifest.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            r.cluster.atCleanup { [client = r.client] in try? await client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: name) }
            // The emulator serves no OpenAPI documents, which kubectl's client-side validation downloads; the real
            // server validates with the CRD's schema either way.
            let validate = r.cluster.emulator == nil ? [] : ["--validate=false"]
            let first = try await Kubectl.run(kubeconfig: r.cluster.kubeconfigPath, ["apply", "-f", file] + validate)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let judged = await eventually {
                (try? await r.client.get(PolicyObject.self, name: name))?.status?.condition("Accepted")
            }
            #expect(judged?.status == .true, "the operator never accepted the sample policy")
            let second = try await Kubectl.run(kubeconfig: r.cluster.kubeconfigPath, ["apply", "-f", file] + validate)
            #expect(second.status == 0 && second.stdout.contains("unchanged"), "\(second.stdout)\(second.stderr)")
            let diff = try await Kubectl.run(kubeconfig: r.cluster.kubeconfigPath, ["diff", "-f", file])
            #expect(diff.status == 0 && diff.stdout.isEmpty, "kubectl diff after apply:\n\(diff.stdout)\(diff.stderr)")
        }
    }

    // MARK: Cluster-level detectors

    /// Two of three nodes under memory pressure, and OOM kills in five pods of one Deployment reported by the agents
    /// of two nodes: the operator writes one NodePressure and one ClusterHealth Insight in tapio-system (no node
    /// label, an Event each), and resolves the NodePressure one when the pressure is gone.
    @Test func findingsAcrossNodesBecomeClusterInsightsAndResolve() async throws {
        var detectors = ClusterDetectors.Config()
        detectors.pressureMinFraction = 0  // a real cluster's other nodes must not dilute the test's three
        detectors.resolveAfter = 2
        try await withOperator(cluster: detectors) { r in
            let ns = r.cluster.namespace
            let nodes = ["a", "b", "c"].map { "\(ns)-\($0)" }
            func setPressure(_ node: String, _ on: Bool) async throws {
                // On a real cluster the node controller writes these Nodes too (they have no kubelet): re-read and
                // write again on a conflict, as any controller does.
                for attempt in 1...10 {
                    var n = try await r.client.get(Node.self, name: node)
                    n.status = NodeStatus(conditions: [Condition(type: "Ready", status: "True"),
                                                       Condition(type: "MemoryPressure", status: on ? "True" : "False")])
                    do {
                        _ = try await r.client.updateStatus(n)
                        return
                    } catch KubeError.conflict(_, _) where attempt < 10 {
                        continue
                    }
                }
            }
            for (i, n) in nodes.enumerated() {
                try await createNode(r, Node(metadata: KubeObjectMeta(name: n)))
                try await setPressure(n, i < 2)
            }
            let pressureName = InsightIdentity(type: .nodePressure, subject: .cluster, detail: "MemoryPressure").name
            let healthName = InsightIdentity(type: .clusterHealth, subject: .cluster, detail: "OOMKilled Deployment \(ns)/api").name
            r.cluster.atCleanup { [client = r.client] in
                // The OOMKilled Insights first: while they exist (a namespace takes a while to go) the next test's
                // operator would write the ClusterHealth finding again.
                for o in (try? await client.list(InsightObject.self, namespace: ns).items) ?? [] {
                    try? await client.deleteRaw(ResourceType(InsightObject.self), namespace: ns, name: o.metadata.name ?? "")
                }
                for n in [pressureName, healthName] { try? await client.deleteRaw(ResourceType(InsightObject.self), namespace: "tapio-system", name: n) }
                try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            }
            _ = try await r.client.create(Namespace(metadata: KubeObjectMeta(name: ns)))
            let stamp = Date().formatted(.iso8601)
            for i in 0..<5 {
                let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "api-\(i) was OOM-killed", summary: "test",
                                       subject: ResourceRef(kind: "Pod", namespace: ns, name: "api-\(i)", uid: "uid-\(i)", container: "app"),
                                       resources: [ResourceRef(kind: "Deployment", namespace: ns, name: "api")])
                var o = try await r.client.create(InsightObject(
                    metadata: KubeObjectMeta(name: "oomkilled-api-\(i)", namespace: ns,
                                             labels: ["tapio.io/node": nodes[i % 2], "tapio.io/type": "OOMKilled"]), spec: spec))
                o.status = InsightStatus(phase: .active, firstSeen: stamp, lastSeen: stamp, occurrences: 1)
                _ = try await r.client.updateStatus(o)
            }
            func get(_ name: String) async -> InsightObject? { try? await r.client.get(InsightObject.self, namespace: "tapio-system", name: name) }
            let pressure = await eventually { await get(pressureName) }
            let health = await eventually { await get(healthName) }
            var options = ListOptions()
            options.fieldSelector = "regarding.name=\(pressureName)"
            let events = await eventually {
                (try? await r.client.list(Event.self, namespace: "tapio-system", options: options).items).flatMap { $0.isEmpty ? nil : $0 }
            }
            // The operator's /metrics counts the cluster's active Insights, every writer's.
            let scrape = await eventually { () -> String? in
                let text = String(decoding: r.metrics.render(), as: UTF8.self)
                let oom = Self.sample(text, #"tapio_insights{type="OOMKilled",severity="Critical"}"#) ?? 0
                let pressure = (Self.sample(text, #"tapio_insights{type="NodePressure",severity="Warning"}"#) ?? 0)
                    + (Self.sample(text, #"tapio_insights{type="NodePressure",severity="Critical"}"#) ?? 0)
                return oom >= 5 && pressure >= 1 ? text : nil
            }
            for n in nodes { try await setPressure(n, false) }
            let resolved = await eventually { await get(pressureName).flatMap { $0.status?.phase == .resolved ? $0 : nil } }

            let p = try #require(pressure, "no cluster NodePressure Insight")
            #expect(p.spec.title.hasPrefix("2 of "), "\(p.spec.title)")
            #expect(Set(p.spec.resources.map(\.name)).isSuperset(of: [nodes[0], nodes[1]]))
            #expect(!p.spec.resources.map(\.name).contains(nodes[2]))
            #expect(p.metadata.labels?["tapio.io/node"] == nil, "a cluster finding is no node's")
            #expect(p.metadata.labels?["tapio.io/type"] == "NodePressure")
            #expect(p.status?.phase == .active)
            let h = try #require(health, "no cluster ClusterHealth Insight")
            #expect(h.spec.subject == ResourceRef(kind: "Deployment", namespace: ns, name: "api"))
            #expect(h.spec.resources.filter { $0.kind == "Pod" }.count == 5)
            #expect(events?.first?.reportingController == "tapio.io/operator")
            #expect(resolved != nil, "the NodePressure Insight was not resolved once the pressure was gone")
            let text = try #require(scrape, "tapio_insights never counted the five OOMKilled and the NodePressure Insights")
            #expect((Self.sample(text, #"tapio_events_processed_total{source="insights"}"#) ?? 0) >= 5)
        }
    }

    /// Issue 17: the agents have no delete right on Insights, so the operator expires every writer's. An agent's
    /// Insight resolved longer ago than any `ttl` is deleted and counted; a recent one and an active one stay.
    @Test func theOperatorDeletesAnAgentsExpiredInsightAndNothingElse() async throws {
        try await withOperator() { r in
            let ns = r.cluster.namespace
            r.cluster.atCleanup { [client = r.client] in
                try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            }
            _ = try await r.client.create(Namespace(metadata: KubeObjectMeta(name: ns)))
            // Older than the longest ttl a policy may set (8760h): expired whatever policies the cluster has.
            let ancient = Date().addingTimeInterval(-400 * 86_400)
            for (name, phase, seen) in [("expired", InsightPhase.resolved, ancient), ("recent", .resolved, Date()),
                                        ("active", .active, ancient)] {
                let spec = InsightSpec(type: .oomKilled, severity: .warning, title: name, summary: "test",
                                       subject: ResourceRef(kind: "Pod", namespace: ns, name: name, container: "app"))
                var o = try await r.client.create(InsightObject(
                    metadata: KubeObjectMeta(name: name, namespace: ns, labels: ["tapio.io/node": "\(ns)-node"]), spec: spec))
                o.status = InsightStatus(phase: phase, firstSeen: seen.formatted(.iso8601), lastSeen: seen.formatted(.iso8601),
                                         occurrences: 1)
                _ = try await r.client.updateStatus(o)
            }
            let gone = await eventually { () -> Bool? in
                let names = (try? await r.client.list(InsightObject.self, namespace: ns).items)?.compactMap(\.metadata.name)
                return names.flatMap { $0.contains("expired") ? nil : true }
            }
            let left = Set(try await r.client.list(InsightObject.self, namespace: ns).items.compactMap(\.metadata.name))
            let text = String(decoding: r.metrics.render(), as: UTF8.self)
            #expect(gone == true, "the operator did not delete the expired Insight")
            #expect(left == ["recent", "active"])
            #expect((Self.sample(text, "tapio_insights_expired_total") ?? 0) >= 1, "not counted in tapio_insights_expired_total")
        }
    }

    /// Agents' Active Insights no agent will resolve are resolved by the operator: one written before its node's agent
    /// restarted (15 minutes ago, its heartbeat says) and not since, and one of a node that is gone (its agent's last
    /// heartbeat 15 minutes ago). One the restarted agent wrote again stays Active. They stayed Active for good.
    @Test func theOperatorResolvesWhatNoAgentWill() async throws {
        try await withOperator() { r in
            let ns = r.cluster.namespace
            let node = "\(ns)-restarted", goneNode = "\(ns)-gone"
            try await createNode(r, Node(metadata: KubeObjectMeta(name: node)))
            r.cluster.atCleanup { [client = r.client] in
                try? await client.deleteRaw(ResourceType(Lease.self), namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: goneNode))
                try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            }
            _ = try await r.client.create(Namespace(metadata: KubeObjectMeta(name: ns)))
            // The heartbeats: both agents started long ago enough (more than the default 5m window + 5m resolveAfter);
            // the gone node's last beat was as long ago.
            let started = Date().addingTimeInterval(-15 * 60)
            for (n, beat) in [(node, Date()), (goneNode, started)] {
                // Everything the restarted agent had was written by its last heartbeat.
                var lease = Lease(metadata: KubeObjectMeta(name: HeartbeatAnnotations.leaseName(node: n), namespace: "tapio-system",
                                                           labels: [HeartbeatAnnotations.appLabel: "tapio", HeartbeatAnnotations.nodeLabel: n],
                                                           annotations: [HeartbeatAnnotations.insightsWrittenThrough: MicroTime.string(beat)]))
                var spec = Lease.Spec()
                spec.holderIdentity = n
                spec.acquireTime = MicroTime.string(started)
                spec.renewTime = MicroTime.string(beat)
                spec.leaseDurationSeconds = 360
                lease.spec = spec
                _ = try await r.client.create(lease)
            }
            let before = Date().addingTimeInterval(-20 * 60), since = Date().addingTimeInterval(-60)
            for (name, n, seen) in [("left-behind", node, before), ("taken-over", node, since), ("on-a-gone-node", goneNode, since)] {
                let spec = InsightSpec(type: .oomPrediction, severity: .warning, title: name, summary: "test",
                                       subject: ResourceRef(kind: "Pod", namespace: ns, name: name, container: "app"))
                var o = try await r.client.create(InsightObject(
                    metadata: KubeObjectMeta(name: name, namespace: ns, labels: ["tapio.io/node": n]), spec: spec))
                o.status = InsightStatus(phase: .active, firstSeen: seen.formatted(.iso8601), lastSeen: seen.formatted(.iso8601),
                                         occurrences: 1)
                _ = try await r.client.updateStatus(o)
            }
            func phases() async -> [String: InsightPhase]? {
                guard let items = try? await r.client.list(InsightObject.self, namespace: ns).items else { return nil }
                return Dictionary(items.map { ($0.metadata.name ?? "", $0.status?.phase ?? .active) }, uniquingKeysWith: { a, _ in a })
            }
            let resolved = await eventually { () -> [String: InsightPhase]? in
                guard let p = await phases(), p["left-behind"] == .resolved, p["on-a-gone-node"] == .resolved else { return nil }
                return p
            }
            // Counted once both patches are through.
            let counted = await eventually { () -> Double? in
                let v = Self.sample(String(decoding: r.metrics.render(), as: UTF8.self), "tapio_insights_left_behind_resolved_total")
                return (v ?? 0) >= 2 ? v : nil
            }
            let last = await phases() ?? [:]
            let p = try #require(resolved, "not resolved: \(last)")
            #expect(p["taken-over"] == .active, "written by the restarted agent: it still holds it")
            #expect(last["taken-over"] == .active)
            #expect(counted == 2, "each resolved once")
            // Each says so itself, as an agent's resolution does, and why (the status goes first, then the spec).
            let said = await eventually { () -> [String: InsightSpec]? in
                guard let items = try? await r.client.list(InsightObject.self, namespace: ns).items else { return nil }
                let specs = Dictionary(items.map { ($0.metadata.name ?? "", $0.spec) }, uniquingKeysWith: { a, _ in a })
                return ["left-behind", "on-a-gone-node"].allSatisfy { specs[$0]?.summary.hasPrefix("Resolved: ") == true } ? specs : nil
            }
            let specs = try #require(said, "the resolved Insights' summaries do not say so")
            #expect(specs["left-behind"]?.summary == "Resolved: test")
            let why = specs["left-behind"]?.evidence.last?.description ?? ""
            #expect(why.hasPrefix("Resolved by the operator: node \(node)'s agent restarted at ")
                    && why.hasSuffix(" and has not seen it since"), "\(why)")
            #expect(specs["on-a-gone-node"]?.evidence.last?.description == "Resolved by the operator: node \(goneNode) is gone")
            #expect(specs["taken-over"]?.summary == "test" && specs["taken-over"]?.evidence.isEmpty == true)
        }
    }

    /// The value of one sample line (`name{labels} value`) in Prometheus text.
    static func sample(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    // MARK: Remediation gate matrix

    /// One row of the matrix: a policy (or none) and an Insight; what should happen to the Deployment.
    struct Case: Sendable {
        var id: String
        var remediation: RemediationSettings?
        var approved = true
        var newLimit = "256Mi"
        /// The limit the Deployment should end with.
        var expectPatched: Bool
        /// What the Insight's history must record (nil: nothing at all).
        var outcome: RemediationOutcome?
        var gate: RemediationGate.Gate?
        var state: RemediationState?
        /// Pods (name, memory request) in the case's namespace, created before its policy.
        var pods: [(String, String)] = []
        /// An Insight whose history shows an action applied under the case's policy 10 minutes ago (by an earlier
        /// leader), created before the policy.
        var appliedEarlier = false
        /// The Deployment's labels and annotations beyond its app label (GitOps controllers' marks).
        var deploymentLabels: [String: String] = [:]
        var deploymentAnnotations: [String: String] = [:]
        /// The Insight's patch body, when not Tapio's own memory-limit patch.
        var body: String?
        /// The Insight is marked Resolved before its policy is created: a finding that cleared is not acted on.
        var resolvedFirst = false
        /// A second policy, in mode Off, selects the subject by its pod labels (`app: api`); the pod itself is gone,
        /// so its labels are its Deployment's template's.
        var offByPodLabels = false
        /// The subject pod exists but is not the Deployment's (its controller is the Deployment itself, not one of
        /// its ReplicaSets): an Insight naming one workload's pod and patching another's.
        var foreignPod = false
    }

    static func apply(_ change: (inout RemediationSettings) -> Void = { _ in }) -> RemediationSettings {
        var r = RemediationSettings(mode: .apply, requireApproval: true, allowedActions: ["IncreaseMemoryLimit"],
                                    namespaces: [], maxActionsPerHour: 10, memoryCeiling: "1Gi")
        change(&r)
        return r
    }

    static let matrix: [Case] = [
        Case(id: "nopolicy", remediation: nil, expectPatched: false),
        Case(id: "off", remediation: .init(mode: .off), expectPatched: false),
        Case(id: "suggest", remediation: .init(mode: .suggest), expectPatched: false),
        Case(id: "propose", remediation: .init(mode: .propose), expectPatched: false, outcome: .proposed, state: .proposed),
        Case(id: "dryrun", remediation: .init(mode: .dryRun, allowedActions: ["IncreaseMemoryLimit"]), expectPatched: false,
             outcome: .dryRunSucceeded, state: .dryRunSucceeded),
        // A dry run is a request with the operator's patch rights: only for listed actions.
        Case(id: "dryrunaction", remediation: .init(mode: .dryRun), expectPatched: false, outcome: .blocked,
             gate: .allowedActions, state: .blocked),
        Case(id: "apply", remediation: apply(), expectPatched: true, outcome: .applied, state: .applied),
        Case(id: "approval", remediation: apply(), approved: false, expectPatched: false, outcome: .blocked,
             gate: .approval, state: .awaitingApproval),
        Case(id: "action", remediation: apply { $0.allowedActions = ["RestartPod"] }, expectPatched: false,
             outcome: .blocked, gate: .allowedActions, state: .blocked),
        Case(id: "namespace", remediation: apply { $0.namespaces = ["somewhere-else"] }, expectPatched: false,
             outcome: .blocked, gate: .namespace, state: .blocked),
        Case(id: "ceiling", remediation: apply { $0.memoryCeiling = "200Mi" }, expectPatched: false, outcome: .blocked,
             gate: .memoryCeiling, state: .blocked),
        Case(id: "budget", remediation: apply { $0.maxActionsPerHour = 0 }, expectPatched: false, outcome: .blocked,
             gate: .rateLimit, state: .blocked),
        // The budget is spent by an action an earlier leader applied: this operator has never seen it happen.
        Case(id: "budgetspent", remediation: apply { $0.maxActionsPerHour = 1 }, expectPatched: false, outcome: .blocked,
             gate: .rateLimit, state: .blocked, appliedEarlier: true),
        // Argo CD would revert a live patch: refused, and the change offered as a patch to commit.
        Case(id: "argocd", remediation: apply(), expectPatched: false, outcome: .blocked, gate: .managedByGitOps,
             state: .blocked, deploymentAnnotations: ["argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/api"]),
        // A policy that opts in patches a Flux-managed workload all the same.
        Case(id: "fluxallowed", remediation: apply { $0.allowGitOpsManaged = true }, expectPatched: true, outcome: .applied,
             state: .applied, deploymentLabels: ["kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"]),
        // An Insight's patch that changes more than a memory limit (here an image) is not sent, whatever allows it.
        Case(id: "image", remediation: apply(), expectPatched: false, outcome: .blocked, gate: .patch, state: .blocked,
             body: #"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"example/other:1","resources":{"limits":{"memory":"256Mi"}}}]}}}}"#),
        Case(id: "resolved", remediation: apply(), expectPatched: false, resolvedFirst: true),
        // The pod is gone: the Off policy that selects it by its labels still selects it, through its Deployment's
        // template, and wins — not the Apply policy alone, as with no labels read.
        Case(id: "offbypod", remediation: apply(), expectPatched: false, offByPodLabels: true),
        Case(id: "foreignpod", remediation: apply(), expectPatched: false, outcome: .blocked, gate: .target, state: .blocked,
             foreignPod: true),
        // The same under a policy that says Off: nothing is to be done, so nothing is refused or recorded.
        Case(id: "foreignoff", remediation: .init(mode: .off), expectPatched: false, foreignPod: true),
        // The Deployment's limit is 128Mi: a patch to 100Mi (advice from before someone raised it) would lower it.
        Case(id: "lower", remediation: apply(), newLimit: "100Mi", expectPatched: false, outcome: .blocked, gate: .patch,
             state: .blocked),
    ]

    /// Creates the case's namespace (labelled so only its own policy selects it), policy, Deployment and Insight.
    func setUp(_ c: Case, _ r: Running, run: String) async throws -> (namespace: String, policy: String?) {
        let client = r.client
        let ns = "\(run)-\(c.id)"
        r.cluster.atCleanup { try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns) }
        _ = try await client.create(Namespace(metadata: KubeObjectMeta(name: ns, labels: ["tapio-test-case": ns])))
        for (name, request) in c.pods {
            // The subject's pods are the Deployment's, as its ReplicaSet's (named <deployment>-<pod-template-hash>).
            // (On a real server the garbage collector removes them, their ReplicaSet being made up: the operator
            // then reads the Deployment's template instead, with the same labels.)
            var meta = KubeObjectMeta(name: name, namespace: ns)
            if name.hasPrefix("api-") {
                meta.labels = ["app": "api", "pod-template-hash": "5d4f8c"]
                meta.ownerReferences = [OwnerReference(apiVersion: "apps/v1", kind: "ReplicaSet", name: "api-5d4f8c",
                                                       uid: UUID().uuidString.lowercased(), controller: true)]
            }
            _ = try await client.create(Pod(metadata: meta, spec: PodSpec(containers: [
                Container(name: "app", image: "example/app:1",
                          resources: ResourceRequirements(limits: ["memory": "1Gi"], requests: ["memory": request])),
            ])))
        }
        if c.appliedEarlier {
            let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "web-0 was OOM-killed", summary: "test",
                                   subject: ResourceRef(kind: "Pod", namespace: ns, name: "web-0"))
            var earlier = try await client.create(InsightObject(metadata: KubeObjectMeta(name: "oomkilled-web-0", namespace: ns), spec: spec))
            var remediation = RemediationStatus()
            remediation.state = .applied
            remediation.record(RemediationHistoryEntry(time: Date().addingTimeInterval(-600).formatted(.iso8601),
                                                       action: "IncreaseMemoryLimit", outcome: .applied, policies: [ns],
                                                       message: "patched Deployment \(ns)/web"))
            earlier.status = InsightStatus(phase: .active, occurrences: 1, remediation: remediation)
            _ = try await client.updateStatus(earlier)
            try await Task.sleep(for: .seconds(1))
        }
        var policy: String?
        func makePolicies() async throws {
            guard let rem = c.remediation else { return }
            var spec = TapioPolicySpec()
            spec.selector.namespaceSelector = PolicyLabelSelector(matchLabels: ["tapio-test-case": ns])
            spec.remediation = rem
            let p = try await createPolicy(r, PolicyObject(metadata: KubeObjectMeta(name: ns), spec: spec))
            policy = p.metadata.name
            if c.offByPodLabels {
                spec.selector.podSelector = PolicyLabelSelector(matchLabels: ["app": "api"])
                spec.remediation = RemediationSettings(mode: .off)
                _ = try await createPolicy(r, PolicyObject(metadata: KubeObjectMeta(name: "\(ns)-off"), spec: spec))
            }
        }
        if !c.resolvedFirst { try await makePolicies() }
        let labels = ["app": "api"]
        let deployment = Deployment(metadata: KubeObjectMeta(name: "api", namespace: ns, labels: c.deploymentLabels.isEmpty ? nil : c.deploymentLabels,
                                                             annotations: c.deploymentAnnotations.isEmpty ? nil : c.deploymentAnnotations), spec: .init(
            replicas: 1, selector: .init(matchLabels: labels),
            template: PodTemplateSpec(metadata: KubeObjectMeta(labels: labels), spec: PodSpec(containers: [
                Container(name: "sidecar", image: "example/sidecar:1",
                          resources: ResourceRequirements(limits: ["memory": "32Mi"], requests: nil)),
                Container(name: "app", image: "example/app:1",
                          resources: ResourceRequirements(limits: ["memory": "128Mi"], requests: ["memory": "64Mi"])),
            ]))))
        let created = try await client.create(deployment)
        if c.foreignPod {
            var meta = KubeObjectMeta(name: "api-0", namespace: ns, labels: ["app": "api"])
            meta.ownerReferences = [OwnerReference(apiVersion: "apps/v1", kind: "Deployment", name: "api",
                                                   uid: created.metadata.uid ?? "", controller: true)]
            _ = try await client.create(Pod(metadata: meta, spec: PodSpec(containers: [Container(name: "app", image: "example/app:1")])))
        }
        let body = c.body ?? #"{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"\#(c.newLimit)"}}}]}}}}"#
        let action = RemediationAction(
            name: "IncreaseMemoryLimit", title: "Raise the memory limit", description: "test", risk: .low, impact: "rollout",
            commands: ["kubectl -n \(ns) set resources deployment/api -c app --limits=memory=\(c.newLimit)"],
            patch: Patch(target: PatchTarget(apiVersion: "apps/v1", kind: "Deployment", namespace: ns, name: "api"),
                         type: .strategicMerge, body: body))
        let spec = InsightSpec(type: .oomPrediction, severity: .critical, title: "api-0 will run out of memory",
                               summary: "test", subject: ResourceRef(kind: "Pod", namespace: ns, name: "api-0", container: "app"),
                               resources: [ResourceRef(kind: "Deployment", namespace: ns, name: "api")],
                               remediation: Remediation(actions: [action]))
        let annotations = c.approved ? [InsightResource.approveAnnotation: "true"] : [:]
        var insight = try await client.create(InsightObject(metadata: KubeObjectMeta(name: "oomprediction-api-0", namespace: ns,
                                                                                     annotations: annotations), spec: spec))
        if c.resolvedFirst {
            insight.status = InsightStatus(phase: .resolved, occurrences: 1)
            _ = try await client.updateStatus(insight)
            try await makePolicies()
        }
        return (ns, policy)
    }

    func limits(_ client: KubeClient, _ ns: String) async throws -> [String: String] {
        let d = try await client.get(Deployment.self, namespace: ns, name: "api")
        var out: [String: String] = [:]
        for c in d.spec?.template.spec?.containers ?? [] { out[c.name] = c.resources?.limits?["memory"] }
        return out
    }

    @Test func theRemediationGateMatrixPatchesExactlyWhenEveryGateAllowsIt() async throws {
        try await withOperator() { r in
            let run = r.cluster.namespace
            var created: [(Case, String, String?)] = []
            for c in Self.matrix {
                let (ns, p) = try await setUp(c, r, run: run)
                created.append((c, ns, p))
            }
            // Rows with an outcome are done when it is recorded; the rest show nothing, so they are checked once
            // every recorded row is done (the operator has seen all Insights by then) and a little later.
            var histories: [String: RemediationStatus] = [:]
            for (c, ns, _) in created where c.outcome != nil {
                histories[c.id] = await eventually {
                    (try? await r.client.get(InsightObject.self, namespace: ns, name: "oomprediction-api-0"))?.status?.remediation
                        .flatMap { $0.history.isEmpty ? nil : $0 }
                }
            }
            try await Task.sleep(for: .seconds(2))
            var results: [String: ([String: String], RemediationStatus?)] = [:]
            for (c, ns, _) in created {
                let insight = try await r.client.get(InsightObject.self, namespace: ns, name: "oomprediction-api-0")
                results[c.id] = (try await limits(r.client, ns), insight.status?.remediation)
            }
            for (_, ns, p) in created {
                if let p { await deletePolicy(r.client, p) }
                try? await r.client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            }

            for (c, _, _) in created {
                let (limits, remediation) = try #require(results[c.id])
                let expected = c.expectPatched ? c.newLimit : "128Mi"
                #expect(limits["app"] == expected, "case \(c.id): app limit \(limits["app"] ?? "-"), expected \(expected)")
                // Strategic merge by container name: the other container is untouched.
                #expect(limits["sidecar"] == "32Mi", "case \(c.id): the sidecar's limit changed")
                let history = remediation?.history ?? []
                guard let outcome = c.outcome else {
                    #expect(history.isEmpty, "case \(c.id): nothing should be recorded, got \(history)")
                    continue
                }
                #expect(history.count == 1, "case \(c.id): one entry, not one per resync: \(history)")
                let last = try #require(history.last, "case \(c.id): no history recorded")
                #expect(last.outcome == outcome, "case \(c.id): \(last)")
                #expect(last.action == "IncreaseMemoryLimit")
                #expect(last.gate == c.gate?.rawValue, "case \(c.id): gate \(last.gate ?? "-")")
                if c.gate != nil { #expect(!last.message.isEmpty) }
                #expect(remediation?.state == c.state, "case \(c.id): state \(remediation?.state.rawValue ?? "-")")
                // A change that goes to Git instead is in the status, ready to commit, with the new limit.
                let proposes = c.outcome == .proposed || c.gate == .managedByGitOps
                #expect((remediation?.proposal != nil) == proposes, "case \(c.id): proposal \(String(describing: remediation?.proposal))")
                if proposes { #expect(remediation?.proposal?.patch.contains(c.newLimit) == true && remediation?.proposal?.path.hasSuffix(".yaml") == true) }
            }
        }
    }

    /// Two Insights decided at once (the policy that allows them is created after both, so both are re-queued
    /// together, and the operator has two workers) under a budget of one action an hour: one is applied and the
    /// other refused by RateLimit — the budget is taken before the patch is sent, not counted after.
    @Test func aBudgetOfOneIsSpentOnceWhenTwoInsightsAreDecidedAtOnce() async throws {
        try await withOperator() { r in
            let run = r.cluster.namespace
            let a = try await setUp(Case(id: "race-a", remediation: nil, expectPatched: true), r, run: run)
            let b = try await setUp(Case(id: "race-b", remediation: nil, expectPatched: true), r, run: run)
            var spec = TapioPolicySpec()
            spec.selector.namespaceSelector = PolicyLabelSelector(matchExpressions: [
                LabelSelectorRequirement(key: "tapio-test-case", operator: "In", values: [a.namespace, b.namespace]),
            ])
            spec.remediation = Self.apply { $0.maxActionsPerHour = 1 }
            let name = "\(run)-race"
            _ = try await createPolicy(r, PolicyObject(metadata: KubeObjectMeta(name: name), spec: spec))
            let outcomes = await eventually(timeout: .seconds(30)) { () async -> [RemediationHistoryEntry]? in
                var out: [RemediationHistoryEntry] = []
                for ns in [a.namespace, b.namespace] {
                    guard let last = (try? await r.client.get(InsightObject.self, namespace: ns, name: "oomprediction-api-0"))?
                        .status?.remediation?.history.last else { return nil }
                    out.append(last)
                }
                return out
            }
            let patched = [try await limits(r.client, a.namespace)["app"], try await limits(r.client, b.namespace)["app"]]
            await deletePolicy(r.client, name)
            for ns in [a.namespace, b.namespace] { try? await r.client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns) }
            let entries = try #require(outcomes, "the two Insights were not both decided")
            #expect(entries.map(\.outcome).sorted { $0.rawValue < $1.rawValue } == [.applied, .blocked], "\(entries)")
            #expect(entries.first { $0.outcome == .blocked }?.gate == RemediationGate.Gate.rateLimit.rawValue, "\(entries)")
            #expect(patched.filter { $0 == "256Mi" }.count == 1, "limits after: \(patched)")
        }
    }

    /// The patch went through but the status write that records it failed: the next attempt records it as it
    /// was, and does not patch again (nor count against the hourly budget twice).
    @Test func aPatchWhoseRecordFailedIsRecordedNotSentAgain() async throws {
        try await withOperator() { r in
            guard let emu = r.cluster.requireEmulator() else { return }
            let run = r.cluster.namespace
            emu.injectFaults(status: 422, count: 1, method: "PATCH",
                             pathContains: "/namespaces/\(run)-unrecorded/insights/oomprediction-api-0/status")
            let (ns, p) = try await setUp(Case(id: "unrecorded", remediation: Self.apply(), expectPatched: true), r, run: run)
            let history = await eventually(timeout: .seconds(30)) {
                (try? await r.client.get(InsightObject.self, namespace: ns, name: "oomprediction-api-0"))?.status?.remediation
                    .flatMap { $0.history.isEmpty ? nil : $0.history }
            }
            let limit = try await limits(r.client, ns)["app"]
            let patches = emu.requestURIs(containing: "/namespaces/\(ns)/deployments/api?").filter { !$0.contains("dryRun") }
            let faultUsed = emu.pendingFaultCount == 0
            if let p { await deletePolicy(r.client, p) }
            try? await r.client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            #expect(faultUsed, "the status write was never refused: nothing was tested")
            #expect(history?.map(\.outcome) == [.applied], "\(history ?? [])")
            #expect(limit == "256Mi")
            #expect(patches.count == 1, "the Deployment was patched \(patches.count) times: \(patches)")
        }
    }

    /// The policy may raise limits up to 256Mi, but one pod it selects requests 512Mi: the policy is not accepted,
    /// says which container, and the operator patches nothing it selects — not even the Insight whose patch
    /// (200Mi) every other gate would allow.
    @Test func aCeilingBelowASelectedContainersRequestIsNotAcceptedAndNothingIsPatched() async throws {
        try await withOperator() { r in
            let c = Case(id: "lowceiling", remediation: Self.apply { $0.memoryCeiling = "256Mi" }, newLimit: "200Mi",
                         expectPatched: false, pods: [("api-0", "64Mi"), ("big-0", "512Mi")])
            let (ns, policy) = try await setUp(c, r, run: r.cluster.namespace)
            let name = try #require(policy)
            let accepted = await eventually {
                (try? await r.client.get(PolicyObject.self, name: name))?.status?.condition("Accepted").flatMap { $0.status == .false ? $0 : nil }
            }
            let history = await eventually {
                (try? await r.client.get(InsightObject.self, namespace: ns, name: "oomprediction-api-0"))?.status?.remediation
                    .flatMap { $0.history.isEmpty ? nil : $0.history }
            }
            try await Task.sleep(for: .seconds(2))
            let limit = try await limits(r.client, ns)["app"]
            await deletePolicy(r.client, name)
            try? await r.client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            let condition = try #require(accepted, "the policy was never marked Accepted=False")
            #expect(condition.reason == "CeilingBelowRequest")
            #expect(condition.message.contains("big-0") && condition.message.contains("512Mi"), "\(condition.message)")
            #expect(!condition.message.contains("api-0"), "api-0 requests less than the ceiling: \(condition.message)")
            #expect(limit == "128Mi", "the Deployment was patched to \(limit ?? "-")")
            #expect(history?.count == 1, "\(history ?? [])")
            #expect(history?.last?.gate == RemediationGate.Gate.notAccepted.rawValue, "\(history ?? [])")
        }
    }

    @Test func aPolicyCreatedAfterTheInsightStillGetsItRemediated() async throws {
        try await withOperator() { r in
            let ns = "\(r.cluster.namespace)-late"
            let c = Case(id: "late", remediation: nil, expectPatched: true)
            _ = try await setUp(c, r, run: r.cluster.namespace)
            try await Task.sleep(for: .seconds(1))
            var spec = TapioPolicySpec()
            spec.selector.namespaceSelector = PolicyLabelSelector(matchLabels: ["tapio-test-case": ns])
            spec.remediation = Self.apply()
            try await createPolicy(r, PolicyObject(metadata: KubeObjectMeta(name: ns), spec: spec))
            let patched = try await eventually(timeout: .seconds(20)) {
                try await limits(r.client, ns)["app"] == "256Mi" ? true : nil
            }
            await deletePolicy(r.client, ns)
            try? await r.client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            #expect(patched == true, "an Apply policy created after the Insight was never acted on")
        }
    }

    /// Issue 17, item 6: on the real cluster the operator's dry run was Forbidden (the remediation component was not
    /// installed); once the rights were granted it never tried again. Now a failed attempt is retried with backoff,
    /// each attempt recorded, until it goes through.
    @Test func aFailedDryRunIsRetriedWithBackoffUntilTheServerAllowsIt() async throws {
        try await withOperator(remediationRetry: .milliseconds(500)) { r in
            guard let emu = r.cluster.requireEmulator() else { return }
            let run = r.cluster.namespace
            let c = Case(id: "retry", remediation: .init(mode: .dryRun, allowedActions: ["IncreaseMemoryLimit"]), expectPatched: false)
            // The first two dry runs are refused as a missing RBAC rule would refuse them.
            emu.injectFaults(status: 403, count: 2, method: "PATCH", pathContains: "/namespaces/\(run)-retry/deployments/api")
            let (ns, p) = try await setUp(c, r, run: run)
            let history = await eventually(timeout: .seconds(60)) {
                (try? await r.client.get(InsightObject.self, namespace: ns, name: "oomprediction-api-0"))?.status?.remediation
                    .flatMap { $0.history.last?.outcome == .dryRunSucceeded ? $0 : nil }
            }
            if let p { await deletePolicy(r.client, p) }
            try? await r.client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            let h = try #require(history, "the dry run was not retried until it succeeded")
            #expect(h.history.map(\.outcome) == [.dryRunFailed, .dryRunFailed, .dryRunSucceeded])
            #expect(h.history.first?.message.contains("attempt 1; retrying in") == true, "\(h.history.first?.message ?? "")")
            #expect(h.state == .dryRunSucceeded)
        }
    }

    @Test func strategicMergeToACustomResourceIsRefusedLikeTheRealServerDoes() async throws {
        let refused: (any Error)? = try await TestCluster.withNamespace { cluster, client in
            let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "t", summary: "s",
                                   subject: ResourceRef(kind: "Pod", namespace: cluster.namespace, name: "p"))
            _ = try await client.create(InsightObject(metadata: KubeObjectMeta(name: "i", namespace: cluster.namespace), spec: spec))
            var refused: (any Error)?
            do {
                _ = try await client.patchRaw(ResourceType(InsightObject.self), namespace: cluster.namespace, name: "i",
                                              patch: Data(#"{"spec":{"title":"x"}}"#.utf8), patchType: .strategicMerge)
            } catch { refused = error }
            return refused
        }
        let error = try #require(refused, "a strategic merge patch to a custom resource was accepted")
        #expect("\(error)".contains("415") || "\(error)".contains("UnsupportedMediaType"), "\(error)")
    }

    // MARK: Leader election

    final class Leaders: Sendable {
        let state = Mutex<[String: Bool]>([:])
        let maxConcurrent = Mutex(0)
        func set(_ id: String, _ leading: Bool) {
            let n = state.withLock { s in
                s[id] = leading
                return s.values.filter { $0 }.count
            }
            maxConcurrent.withLock { $0 = max($0, n) }
        }
        var current: [String] { state.withLock { s in s.filter(\.value).map(\.key).sorted() } }
    }

    @Test func twoOperatorsElectOneLeaderAndTheOtherTakesOverWhenItStops() async throws {
        let leaders = Leaders()
        // The Lease lives in this test's namespace so a real cluster's own operator is not disturbed.
        let (first, stillFirst, takeover) = try await TestCluster.withNamespace { cluster, client in
            let clients = [try KubeClient(kubeconfigPath: cluster.kubeconfigPath), try KubeClient(kubeconfigPath: cluster.kubeconfigPath)]
            func start(_ id: String, _ c: KubeClient) -> Task<Void, any Error> {
                let op = Operator(options: .init(namespace: cluster.namespace, leaderElect: true, identity: id,
                                                 leaseDuration: .seconds(6), renewDeadline: .seconds(4),
                                                 retryPeriod: .milliseconds(500), metricsHost: "127.0.0.1", metricsPort: 0),
                                  client: c)
                return Task { try await op.run(signals: [], onLeadership: { leaders.set(id, $0) }) }
            }
            let tasks = ["op-a": start("op-a", clients[0]), "op-b": start("op-b", clients[1])]
            // Both stop before the namespace goes, whatever the test did.
            cluster.atCleanup {
                for t in tasks.values { t.cancel(); _ = await t.result }
                for c in clients { try? await c.shutdown() }
            }
            let first = await eventually(timeout: .seconds(30)) { leaders.current.count == 1 ? leaders.current[0] : nil }
            // Hold for longer than a lease: the follower must not take over while the leader renews. (Renewals every
            // 0.5 s lose the lease only after 4 s of failing ones: a loaded machine's slow answer does not.)
            try await Task.sleep(for: .seconds(8))
            let stillFirst = leaders.current
            var takeover: String?
            if let first, let leader = tasks[first] {
                leader.cancel()
                _ = await leader.result
                // A released Lease is taken at the follower's next retry; an unreleased one once it runs out (6 s).
                takeover = await eventually(timeout: .seconds(30)) { leaders.current.first { $0 != first } }
            }
            return (first, stillFirst, takeover)
        }

        let leader = try #require(first, "no operator became the leader")
        #expect(stillFirst == [leader], "leadership should stay with \(leader), got \(stillFirst)")
        #expect(leaders.maxConcurrent.withLock { $0 } == 1, "two operators led at once")
        let next = try #require(takeover, "the other operator never took over")
        #expect(next != leader)
    }
}
