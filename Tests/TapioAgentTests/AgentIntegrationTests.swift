import Foundation
import KubeClient
import Synchronization
import TapioAgent
import TapioKube
import TapioModel
import TapioTestSupport
import Testing

/// The agent against an API server reached through a kubeconfig (the emulator, or TAPIO_TEST_KUBECONFIG),
/// with a real kubelet-style memory cgroup on this machine standing for the pod's container.
final class Applied: Sendable { let configs = Mutex<[EffectiveConfig]>([]) }

@Suite(.serialized, .enabled(if: TestCgroup.isAvailable, "\(TestCgroup.unavailableReason ?? "")"), .timeLimit(.minutes(5)))
struct AgentIntegrationTests {
    struct Running {
        let cluster: TestCluster
        let client: KubeClient
        let node: String
        let cgroup: TestCgroup
        let pod: Pod
        let source: ScriptedSource
        let task: Task<Void, any Error>
        let applied: Applied
        let port: AgentPort
        let stopped = Once()

        /// Stops the agent and removes what the test made (namespace, cgroup, the cluster's clean-ups); only the
        /// first call does anything, so a test may stop before its assertions and ``withAgent`` stops again.
        func stop() async {
            guard stopped.first() else { return }
            task.cancel()
            _ = await task.result
            try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: cluster.namespace)
            await cluster.runCleanups()
            try? await client.shutdown()
            cgroup.destroy()
            await cluster.stop()
        }

        /// What the probes report for a kill in `cgroup` (the test's pod by default): the OOM kill, then the
        /// victim's SIGKILL exit.
        func oomKill(pid: Int32 = 4242, in target: TestCgroup? = nil) {
            let id = try! (target ?? cgroup).inode
            let now = nowNanos()
            source.push(NodeEvent(timestampNanos: now, pid: pid, cgroupID: id, comm: "app",
                                  kind: .oomKill(.init(victimPID: pid, totalVMBytes: 200 << 20, anonRSSBytes: 63 << 20,
                                                       fileRSSBytes: 1 << 20, shmemRSSBytes: 0))))
            source.push(NodeEvent(timestampNanos: now + 1_000_000, pid: pid, cgroupID: id, comm: "app",
                                  kind: .processExit(.init(exitCode: 137, signal: 9, peakRSSBytes: 64 << 20))))
        }

        func insights() async throws -> [InsightObject] {
            try await client.list(InsightObject.self, namespace: cluster.namespace).items
        }
    }

    func start() async throws -> Running {
        let cluster = try await TestCluster.start()
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        let node = randomNodeName()
        let cgroup: TestCgroup, pod: Pod
        do {
            try await registerTestNode(at: cluster, client: client, node: node)
            cgroup = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20)
            do {
                _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: "tapio-system")))
                pod = try await createPod(client, namespace: cluster.namespace, name: "api-0", node: node,
                                          containerID: cgroup.containerID)
            } catch {
                cgroup.destroy()
                throw error
            }
        } catch {
            // Nothing started yet: what was made goes before the error does.
            try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: cluster.namespace)
            await cluster.runCleanups()
            try? await client.shutdown()
            await cluster.stop()
            throw error
        }
        let source = ScriptedSource()
        let applied = Applied()
        let port = AgentPort()
        let options = Agent.Options(nodeName: node, metricsHost: "127.0.0.1", metricsPort: 0,
                                    heartbeatPeriod: .seconds(1))
        let agent = Agent(options: options, client: client)
        let task = Task {
            try await agent.run(extraSources: [source], signals: [], onReady: { port.set($0) },
                                onPolicyApplied: { c in applied.configs.withLock { $0.append(c) } })
        }
        return Running(cluster: cluster, client: client, node: node, cgroup: cgroup, pod: pod, source: source, task: task,
                       applied: applied, port: port)
    }

    /// Runs `body` against a started agent and stops it whatever the outcome: a test that throws (a `#require`, a
    /// failed request) must not leave its namespace, Node or cgroup behind on a shared cluster.
    func withAgent(_ body: (Running) async throws -> Void) async throws {
        let r = try await start()
        do {
            try await body(r)
        } catch {
            await r.stop()
            throw error
        }
        await r.stop()
    }

    @Test func aKernelOOMKillOfAPodOnThisNodeBecomesAnInsightAndAnEvent() async throws {
        try await withAgent { r in
            // The pod reflector has listed the pod before the kill arrives.
            try await r.port.waitUntilReady()
            r.oomKill()
            let found = try await eventually { try await r.insights().first { $0.spec.type == .oomKilled } }
            let insight = try #require(found, "no OOMKilled Insight appeared")
            await r.stop()
            #expect(insight.spec.subject.name == "api-0")
            #expect(insight.spec.subject.container == "app")
            #expect(insight.metadata.labels?["tapio.io/type"] == "OOMKilled")
            #expect(insight.metadata.labels?["tapio.io/node"] == r.node)
            #expect(insight.status?.phase == .active)
        }
    }

    /// A container that is OOM-killed as it starts: its cgroup appeared after the agent's last walk of the
    /// hierarchy, and the kubelet reports the container's id a second after the kill. The kill must still be
    /// pinned on the pod, not on an anonymous local cgroup.
    @Test func anOOMKillInAContainerTooNewForTheCachesIsPinnedOnItsPod() async throws {
        try await withAgent { r in
            try await r.port.waitUntilReady()
            let fresh = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20)
            defer { fresh.destroy() }
            var pod = try await r.client.create(Pod(
                metadata: KubeObjectMeta(name: "starting-0", namespace: r.cluster.namespace),
                spec: PodSpec(nodeName: r.node, containers: [Container(name: "app", image: "example/app:1")])))
            r.oomKill(pid: 5151, in: fresh)
            try await Task.sleep(for: .seconds(1))
            var cs = ContainerStatus(name: "app", containerID: "containerd://\(fresh.containerID)", ready: false, restartCount: 0)
            cs.image = "example/app:1"
            var status = PodStatus(phase: "Running")
            status.containerStatuses = [cs]
            pod.status = status
            _ = try await r.client.updateStatus(pod)
            let found = try await eventually { try await r.insights().first { $0.spec.type == .oomKilled && $0.spec.subject.name == "starting-0" } }
            var options = ListOptions()
            options.labelSelector = "tapio.io/node=\(r.node),tapio.io/type=OOMKilled"
            let elsewhere = try await r.client.list(InsightObject.self, namespace: "tapio-system", options: options).items
            await r.stop()
            #expect(found != nil, "the kill was not attributed to pod starting-0")
            #expect(found?.spec.subject.container == "app")
            #expect(elsewhere.isEmpty, "the kill was also reported about a local subject: \(elsewhere.map { $0.spec.subject.name })")
        }
    }

    /// Issue 17, item 5: each restart of the agent on the real node announced the last OOM kill again (the kubelet
    /// keeps reporting it in the pod's status, and a fresh engine calls it new). The Insight is still Active, so the
    /// new agent updates it and sends no second Event.
    @Test func aRestartedAgentDoesNotAnnounceAnActiveFindingAgain() async throws {
        try await withAgent { r in
            try await r.port.waitUntilReady()
            r.oomKill(pid: 300)
            // Written whole: on a real API server the status is a second request after the create (the status
            // subresource), and an agent stopped between the two never announced the finding.
            let first = try await eventually {
                try await r.insights().first { $0.spec.type == .oomKilled && $0.status?.firstSeen != nil }
            }
            var options = ListOptions()
            options.fieldSelector = "regarding.name=api-0"
            func kills() async throws -> [Event] {
                try await r.client.list(Event.self, namespace: r.cluster.namespace, options: options).items
                    .filter { $0.reason == "OOMKilled" && $0.reportingController == "tapio.io/agent" }
            }
            // Its Event too, before the agent is cancelled (cancelled, not shut down, it writes nothing pending: on
            // a loaded machine the Event was still queued).
            _ = try await eventually { try await kills().isEmpty ? nil : true }
            r.task.cancel()
            _ = await r.task.result
            // The same node's next agent, seeing the same kill.
            let source = ScriptedSource()
            let agent = Agent(options: Agent.Options(nodeName: r.node, metricsHost: "127.0.0.1", metricsPort: 0, heartbeatPeriod: .seconds(1)),
                              client: r.client)
            let secondPort = AgentPort()
            let second = Task { try await agent.run(extraSources: [source], signals: [], onReady: { secondPort.set($0) }) }
            try await secondPort.waitUntilReady()
            let restarted = Running(cluster: r.cluster, client: r.client, node: r.node, cgroup: r.cgroup, pod: r.pod, source: source,
                                    task: second, applied: r.applied, port: secondPort)
            restarted.oomKill(pid: 300)
            let rewritten = try await eventually {
                try await r.insights().first { $0.spec.type == .oomKilled && $0.status?.lastSeen != first?.status?.lastSeen }
            }
            second.cancel()
            _ = await second.result  // the shutdown flush writes pending Events
            let events = try await kills()
            await r.stop()
            #expect(first != nil && rewritten != nil, "the restarted agent did not write the Insight")
            #expect(rewritten?.status?.firstSeen == first?.status?.firstSeen, "the first sighting is kept")
            #expect(rewritten?.status?.phase == .active)
            #expect(events.count == 1 && (events.first?.series?.count ?? 1) == 1,
                    "one Event for one kill: \(events.map { "\($0.metadata.name ?? "") series \($0.series?.count ?? 1)" })")
        }
    }

    /// A deleted pod's findings resolve under a policy that selects pods by label: the pod store forgets the pod (its
    /// labels with it) before the engine resolves them, and the selector used to refuse the resolution — the Insight
    /// stayed Active for good, one per deleted pod that had a finding.
    @Test func aDeletedPodsFindingResolvesUnderAPodSelector() async throws {
        try await withAgent { r in
            try await r.port.waitUntilReady()
            // The policy selects this node only (a label the test gives it) and pods labelled app=checkout.
            let name = "selected-\(r.cluster.namespace)"
            var spec = TapioPolicySpec()
            spec.nodeSelector = LabelSelector(matchLabels: ["tapio-test/selected": r.node], matchExpressions: nil)
            spec.selector.podSelector = PolicyLabelSelector(matchLabels: ["app": "checkout"])
            _ = try await r.client.create(PolicyObject(metadata: KubeObjectMeta(name: name), spec: spec))
            r.cluster.atCleanup { try? await r.client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: name) }
            var node = try await r.client.get(Node.self, name: r.node)
            node.metadata.labels = ["tapio-test/selected": r.node]
            _ = try await r.client.update(node)
            let applied = await eventually { r.applied.configs.withLock { $0.last { $0.appliedPolicies[name] != nil } } }
            try #require(applied != nil, "the policy was never applied")
            let labelled = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20)
            defer { labelled.destroy() }
            _ = try await createPod(r.client, namespace: r.cluster.namespace, name: "checkout-0", node: r.node,
                                    containerID: labelled.containerID, labels: ["app": "checkout"])
            // The pod is known to the agent once a kill in its cgroup is pinned on it.
            let found = try await eventually(timeout: .seconds(60), every: .seconds(1)) {
                r.oomKill(pid: 7070, in: labelled)
                return try await r.insights().first { $0.spec.type == .oomKilled && $0.spec.subject.name == "checkout-0" }
            }
            let insight = try #require(found, "the kill in the selected pod never became an Insight")
            #expect(insight.status?.phase == .active)
            // At once, as the kubelet confirms a deletion: with a grace period the pod stays Terminating (no kubelet here).
            try await r.client.deleteRaw(ResourceType(Pod.self), namespace: r.cluster.namespace, name: "checkout-0",
                                         options: WriteOptions(gracePeriodSeconds: 0))
            let resolved = try await eventually {
                try await r.client.get(InsightObject.self, namespace: r.cluster.namespace, name: insight.metadata.name ?? "")
                    .status.flatMap { $0.phase == .resolved ? $0 : nil }
            }
            await r.stop()
            #expect(resolved != nil, "the Insight of the deleted pod stayed \(insight.status?.phase.rawValue ?? "?")")
        }
    }

    @Test func repeatedDetectionsUpdateOneInsightAndEmitAnEvent() async throws {
        try await withAgent { r in
            try await r.port.waitUntilReady()
            r.oomKill(pid: 100)
            _ = try await eventually { try await r.insights().first { $0.spec.type == .oomKilled } }
            try await Task.sleep(for: .seconds(2))
            r.oomKill(pid: 101)
            let updated = try await eventually {
                try await r.insights().first { $0.spec.type == .oomKilled && ($0.status?.occurrences ?? 0) >= 2 }
            }
            let all = try await r.insights().filter { $0.spec.type == .oomKilled }
            var options = ListOptions()
            options.fieldSelector = "regarding.name=api-0"
            let events = try await r.client.list(Event.self, namespace: r.cluster.namespace, options: options).items
            await r.stop()
            #expect(updated != nil, "the second kill did not update the Insight")
            #expect(all.count == 1, "one Insight per (type, subject), got \(all.count)")
            let event = events.first { $0.reportingController == "tapio.io/agent" && $0.reason == "OOMKilled" }
            #expect(event?.reportingInstance == r.node)
            #expect(event?.metadata.annotations?["tapio.io/insight"] == all.first?.metadata.name)
            let remediation = event?.metadata.annotations?["tapio.io/remediation"].flatMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(remediation?["actions"] is [Any], "the remediation annotation is JSON with the actions")
        }
    }

    /// Issue 14: the agent learns its Node's labels from its watch of the Node (no GET a minute), and its heartbeat —
    /// on a period far longer than the test — is rewritten at once when they make a policy apply. It never lists or
    /// watches Events cluster-wide, nor namespaces while no policy needs their labels.
    @Test func aNodeLabelChangeReachesTheHeartbeatAtOnceThroughTheNodeWatch() async throws {
        let cluster = try await TestCluster.start()
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        let node = randomNodeName()
        _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: "tapio-system")))
        let name = "labelled-\(cluster.namespace)"
        var spec = TapioPolicySpec()
        spec.nodeSelector = LabelSelector(matchLabels: ["tapio-test/tier": "special-\(node)"], matchExpressions: nil)
        do {
            try await registerTestNode(at: cluster, client: client, node: node)
            _ = try await client.create(PolicyObject(metadata: KubeObjectMeta(name: name), spec: spec))
        } catch {
            await cluster.stop()
            throw error
        }
        cluster.atCleanup { try? await client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: name) }
        var options = Agent.Options(nodeName: node, metricsHost: "127.0.0.1", metricsPort: 0, heartbeatPeriod: .seconds(3600))
        options.kernelSources = false
        let agent = Agent(options: options, client: client)
        let task = Task { try await agent.run(signals: []) }
        func leaseApplied() async -> [String: Int64]? {
            let l = try? await client.get(Lease.self, namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: node))
            return l.map { HeartbeatAnnotations.decodeApplied($0.metadata.annotations?[HeartbeatAnnotations.applied] ?? "") }
        }
        let first = await eventually { await leaseApplied() }
        do {
            var labelled = try await client.get(Node.self, name: node)
            labelled.metadata.labels = ["tapio-test/tier": "special-\(node)"]
            _ = try await client.update(labelled)
        } catch {
            task.cancel()
            _ = await task.result
            await cluster.stop()
            throw error
        }
        let applied = await eventually { await leaseApplied()?[name] }
        let lease = try? await client.get(Lease.self, namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: node))
        task.cancel()
        _ = await task.result
        if let emulator = cluster.emulator {
            #expect(emulator.requestTimes(containing: "Unhealthy").isEmpty && emulator.requestTimes(containing: "Evicted").isEmpty,
                    "the agent asked for the kubelet's Events")
            #expect(emulator.requestTimes(containing: "/api/v1/namespaces?").isEmpty, "the agent listed namespaces no policy needs")
            // The test's own GET and PUT, nothing from the agent.
            #expect(emulator.requestTimes(containing: "/api/v1/nodes/\(node)").count == 2, "the agent read its Node other than by its watch")
        }
        await cluster.stop()
        #expect(first != nil && first?[name] == nil, "the first heartbeat: the policy does not select the node yet")
        #expect(applied == 1, "the label change did not reach the heartbeat")
        #expect(lease?.spec?.leaseDurationSeconds.map { Int($0) } == 10_800, "three periods")
        #expect(lease?.spec?.acquireTime != nil, "the agent's start, for the operator to tell what it has not taken over")
        #expect(lease?.metadata.annotations?[HeartbeatAnnotations.insightsWrittenThrough] != nil)
        #expect(lease?.metadata.annotations?[HeartbeatAnnotations.engineStarted] != nil)
    }

    @Test func aPolicyChangeReachesTheProbesAndTheHeartbeat() async throws {
        try await withAgent { r in
            var spec = TapioPolicySpec()
            spec.probes.memory.samplingHz = 49
            spec.probes.network.enabled = false
            spec.nodeSelector = LabelSelector(matchLabels: nil, matchExpressions: nil)
            let name = "test-\(r.cluster.namespace)"
            _ = try await r.client.create(PolicyObject(metadata: KubeObjectMeta(name: name), spec: spec))
            let config = await eventually { r.applied.configs.withLock { $0.last { $0.appliedPolicies[name] != nil } } }
            let lease = await eventually {
                let l = try? await r.client.get(Lease.self, namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: r.node))
                return l.flatMap { HeartbeatAnnotations.decodeApplied($0.metadata.annotations?[HeartbeatAnnotations.applied] ?? "")[name] }
            }
            try? await r.client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: name)
            await r.stop()
            #expect(config?.samplingHz == 49)
            #expect(config?.networkProbe == false)
            #expect(lease == 1, "the heartbeat Lease should name generation 1 of \(name)")
        }
    }

    /// Issue 16: a policy the API server accepts (the durations match the CRD's pattern) but whose values are beyond
    /// any duration used to crash every agent. Now it is refused by name in the heartbeat, and a good policy created
    /// beside it is applied as usual by the same, still running, agent.
    @Test func aPoisonPolicyIsRefusedByNameAndTheAgentKeepsApplyingTheOthers() async throws {
        try await withAgent { r in
            let poison = "poison-\(r.cluster.namespace)", good = "good-\(r.cluster.namespace)"
            var bad = TapioPolicySpec()
            bad.correlation.batchTimeout = "2562047.9h"
            bad.correlation.window = "2562047h47m16.854775808s"
            bad.insights.resolveAfter = "9999999999h"
            bad.insights.ttl = "2562047h"
            _ = try await r.client.create(PolicyObject(metadata: KubeObjectMeta(name: poison), spec: bad))
            let refused = await eventually {
                let l = try? await r.client.get(Lease.self, namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: r.node))
                return l.flatMap { HeartbeatAnnotations.decodeErrors($0.metadata.annotations?[HeartbeatAnnotations.errors] ?? "")[poison] }
            }
            var spec = TapioPolicySpec()
            spec.probes.memory.samplingHz = 47
            _ = try await r.client.create(PolicyObject(metadata: KubeObjectMeta(name: good), spec: spec))
            let config = await eventually { r.applied.configs.withLock { $0.last { $0.appliedPolicies[good] != nil } } }
            let stillRunning = !r.task.isCancelled
            for n in [poison, good] { try? await r.client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: n) }
            await r.stop()
            let why = try #require(refused, "the heartbeat never named the poison policy")
            #expect(why.contains("spec.correlation.batchTimeout") && why.contains("too large"), "\(why)")
            #expect(why.contains("spec.insights.ttl") && why.contains("must be between 1m and 8760h"), "\(why)")
            let c = try #require(config, "the good policy was never applied")
            #expect(c.appliedPolicies[poison] == nil)
            #expect(c.samplingHz == 47)
            #expect(c.correlation.batchTimeout <= CorrelationSettings.batchTimeoutRange.upperBound)
            #expect(stillRunning)
        }
    }

    @Test func theAgentKeepsInsightsThroughAnAPIOutageAndWritesThemAfterwards() async throws {
        try await withAgent { r in
            guard let emulator = r.cluster.requireEmulator() else { await r.stop(); return }
            try await r.port.waitUntilReady()
            // The next 8 requests for Insights fail as an overloaded server's would; only the agent sends them.
            emulator.injectFaults(status: 503, count: 8, pathContains: "/insights")
            let before = emulator.requestCount
            r.oomKill()
            let after = await eventually(timeout: .seconds(40)) { try? await r.insights().first { $0.spec.type == .oomKilled } }
            let requests = emulator.requestCount - before
            await r.stop()
            #expect(after != nil, "the Insight held during the outage was never written")
            #expect(requests > 8, "the writer must have retried past the failures")
        }
    }

    /// A write the API server rejects (422: the same document cannot pass on a retry) is given up on, and counted
    /// in /metrics — it used to vanish, counted nowhere. The other losses are exported beside it.
    @Test func aRejectedInsightWriteIsCountedAsDropped() async throws {
        try await withAgent { r in
            guard let emulator = r.cluster.requireEmulator() else { await r.stop(); return }
            try await r.port.waitUntilReady()
            // The apply of the Insight (its GET, to see whether it exists, answers as usual).
            emulator.injectFaults(status: 422, count: 1, method: "PATCH", pathContains: "/insights")
            r.oomKill()
            func sample(_ text: String, _ series: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
            }
            let port = try #require(r.port.value)
            let text = await eventually { () -> String? in
                guard let (code, body) = try? await Loopback.get(port: port, path: "/metrics"), code == 200 else { return nil }
                return (sample(body, #"tapio_writes_dropped{what="insights",why="failed"}"#) ?? 0) >= 1 ? body : nil
            }
            await r.stop()
            let scraped = try #require(text, "the rejected write was never counted in tapio_writes_dropped")
            #expect(sample(scraped, #"tapio_writes_dropped{what="insights",why="full"}"#) == 0)
            #expect(sample(scraped, #"tapio_writes_dropped{what="events",why="full"}"#) == 0)
            #expect(sample(scraped, #"tapio_writes_dropped{what="events",why="failed"}"#) != nil)
            #expect(sample(scraped, #"tapio_events_shed{stage="engine_evicted"}"#) == 0)
            #expect(sample(scraped, #"tapio_events_shed{stage="cgroup_poller_walk"}"#) == 0)
        }
    }

    /// A kube-apiserver that has just started refuses ServiceAccounts for a few seconds while its authorization
    /// caches fill (seen on the real cluster after a restart): the writer retries a refused write a few times
    /// instead of dropping the Insight at the first 403.
    @Test func anInsightWriteRefusedForAMomentIsRetriedNotLost() async throws {
        try await withAgent { r in
            guard let emulator = r.cluster.requireEmulator() else { await r.stop(); return }
            try await r.port.waitUntilReady()
            emulator.injectFaults(status: 403, count: 2, pathContains: "/insights")
            r.oomKill()
            let written = await eventually(timeout: .seconds(60)) { try? await r.insights().first { $0.spec.type == .oomKilled } }
            await r.stop()
            #expect(written != nil, "an Insight refused twice with 403 was dropped")
        }
    }
}
