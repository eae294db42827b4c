import Foundation
import KubeClient
import TapioAgent
import TapioKube
import TapioModel
import TapioOperator
import TapioTestSupport
import Testing

/// The issue's end-to-end run on this machine, as a person could follow it in the README: an API server (the
/// emulator, or TAPIO_TEST_KUBECONFIG), a Pod object bound to this test's node, a kubelet-style memory cgroup for
/// the pod's container with a real process leaking memory in it, `tapio agent` with its real probes and `tapio operator`
/// (leader-elected) against the same server. The agent must predict the OOM kill while the process still runs, then
/// report the kill; each Insight must show in `kubectl get insights` (when kubectl is installed; reached through the
/// same kubeconfig, so against TAPIO_TEST_KUBECONFIG too).
@Suite(.serialized, .enabled(if: TestCgroup.isAvailable, "\(TestCgroup.unavailableReason ?? "")"), .timeLimit(.minutes(10)))
struct EndToEndTests {
    /// 300 MiB limit and 2 MiB/s: the kill comes ~145 s after the start; the prediction comes well before it.
    static let limit: UInt64 = 300 << 20
    static let rateMiBps = 2

    /// Alive and not a zombie waiting to be reaped (a zombie still answers kill(pid, 0)).
    static func running(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != nil && state != "Z" && state != "X"
    }

    /// One run's parts: a test node and namespace, a kubelet-style memory cgroup (the pod's container) with a
    /// 300 MiB limit, the Pod bound to the node, `tapio agent` with its real probes and, when asked, `tapio operator`.
    struct Fixture {
        let cluster: TestCluster
        let client: KubeClient
        let agentClient: KubeClient
        let node: String
        let cgroup: TestCgroup
        let agentTask: Task<Void, any Error>
        let operatorClient: KubeClient?
        let operatorTask: Task<Void, any Error>?
        let operatorIdentity: String
        let stopped = Once()

        /// Starts Tests/Fixtures/leak.py in the pod's cgroup, growing by `rateMiBps`: moved into the cgroup at its gate,
        /// so every byte it allocates is charged there.
        func startLeak(rateMiBps: Int) throws -> TestProcess {
            let script = CommandRunner.repositoryRoot.appendingPathComponent("Tests/Fixtures/leak.py").path
            let process = try TestProcess.gated(shell: "exec python3 \(script) \(rateMiBps)")
            do {
                try cgroup.add(pid: process.pid)
                try process.release()
            } catch {
                process.kill()
                throw error
            }
            return process
        }

                /// Stops both processes and removes everything the run made; only the first call does anything.
        func stop() async {
            guard stopped.first() else { return }
            agentTask.cancel()
            _ = await agentTask.result
            operatorTask?.cancel()
            _ = await operatorTask?.result
            try? await operatorClient?.shutdown()
            try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: cluster.namespace)
            await cluster.runCleanups()
            try? await agentClient.shutdown()
            try? await client.shutdown()
            cgroup.destroy()
            await cluster.stop()
        }
    }

    /// Runs `body` with a started ``Fixture`` and stops it whatever the outcome: a run that throws must not leave
    /// its agent running, or its namespace, Node or cgroup behind on a shared cluster. (`body` kills its leaking
    /// process on the way out, before the cgroup is removed.)
    func withFixture(pod: String, heartbeat: Duration, operator withOperator: Bool,
                     _ body: (Fixture) async throws -> Void) async throws {
        let cluster = try await TestCluster.start()
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        let cgroup: TestCgroup
        let node = randomNodeName()
        do {
            try await registerTestNode(at: cluster, client: client, node: node)
            cgroup = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: Self.limit)
        } catch {
            await cluster.runCleanups()
            try? await client.shutdown()
            await cluster.stop()
            throw error
        }
        let agentClient = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        let agent = Agent(options: .init(nodeName: node, metricsHost: "127.0.0.1", metricsPort: 0, heartbeatPeriod: heartbeat),
                          client: agentClient)
        let agentPort = AgentPort()
        let agentTask = Task { try await agent.run(signals: [], onReady: { agentPort.set($0) }) }
        // The operator runs beside the agent, as in a cluster: leader-elected, so on a real cluster whose own operator
        // holds the Lease it only follows.
        let operatorIdentity = "e2e-\(cluster.namespace)"
        let operatorClient = withOperator ? try? KubeClient(kubeconfigPath: cluster.kubeconfigPath) : nil
        let operatorTask = operatorClient.map { c in
            let op = Operator(options: .init(leaderElect: true, identity: operatorIdentity, metricsHost: "127.0.0.1", metricsPort: 0),
                              client: c)
            return Task { try await op.run(signals: []) }
        }
        let f = Fixture(cluster: cluster, client: client, agentClient: agentClient, node: node, cgroup: cgroup, agentTask: agentTask,
                        operatorClient: operatorClient, operatorTask: operatorTask, operatorIdentity: operatorIdentity)
        do {
            _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: "tapio-system")))
            _ = try await createPod(client, namespace: cluster.namespace, name: pod, node: node,
                                    containerID: cgroup.containerID, memoryLimit: "300Mi")
            // The agent has listed every watch and written its heartbeat before the scenario starts.
            try await agentPort.waitUntilReady()
            let lease = await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                try? await client.get(Lease.self, namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: node))
            }
            try #require(lease != nil, "the agent wrote no heartbeat Lease within 60 s")
            try await body(f)
        } catch {
            await f.stop()
            throw error
        }
        await f.stop()
    }

    @Test(.timeLimit(.minutes(5)))
    func aLeakingPodGetsAnOOMPredictionBeforeTheKernelKillsItThenAnOOMKilledInsight() async throws {
        try await withFixture(pod: "leaky-0", heartbeat: .seconds(2), operator: true) { f in
            let (cluster, client, node, operatorIdentity) = (f.cluster, f.client, f.node, f.operatorIdentity)
            let usesEmulator = cluster.emulator != nil
            if !Kubectl.isAvailable {
                FileHandle.standardError.write(Data("[e2e] kubectl checks skipped: \(Kubectl.unavailableReason)\n".utf8))
            }
            /// `kubectl get insights -n <ns>` as a user would run it, as rows keyed by column (nil without kubectl).
            func kubectlInsights() async -> (rows: [[String: String]], output: String)? {
                guard Kubectl.isAvailable,
                      let r = try? await Kubectl.run(kubeconfig: cluster.kubeconfigPath, ["get", "insights", "-n", cluster.namespace]) else { return nil }
                return (Kubectl.table(r.stdout), r.stdout + r.stderr)
            }

            let process = try f.startLeak(rateMiBps: Self.rateMiBps)
            defer { process.kill() }
            let started = ContinuousClock.now
            func log(_ s: String) {
                FileHandle.standardError.write(Data("[e2e +\(ContinuousClock.now - started)] \(s)\n".utf8))
            }

            var prediction: InsightObject?
            var predictionInKubectl: (rows: [[String: String]], output: String)?
            var killedInKubectl: (rows: [[String: String]], output: String)?
            var predictedWhileRunning = false
            var killed: InsightObject?
            var processDiedAt: Duration?
            let deadline = ContinuousClock.now + .seconds(240)
            while ContinuousClock.now < deadline, killed == nil {
                let alive = Self.running(process.pid)
                if !alive, processDiedAt == nil {
                    processDiedAt = ContinuousClock.now - started
                    log("the leaking process is gone")
                }
                let insights = (try? await client.list(InsightObject.self, namespace: cluster.namespace).items) ?? []
                if prediction == nil, let p = insights.first(where: { $0.spec.type == .oomPrediction }) {
                    prediction = p
                    predictedWhileRunning = alive
                    log("OOMPrediction \(p.metadata.name ?? "") (process running: \(alive)): \(p.spec.title)")
                    predictionInKubectl = await kubectlInsights()
                    if let k = predictionInKubectl { log("kubectl get insights:\n\(k.output)") }
                }
                if let k = insights.first(where: { $0.spec.type == .oomKilled }) {
                    killed = k
                    if processDiedAt == nil, !Self.running(process.pid) { processDiedAt = ContinuousClock.now - started }
                    log("OOMKilled \(k.metadata.name ?? ""): \(k.spec.title)")
                    killedInKubectl = await kubectlInsights()
                    if let k = killedInKubectl { log("kubectl get insights:\n\(k.output)") }
                }
                try await Task.sleep(for: .seconds(1))
            }

            // The kernel announces the victim (mark_victim) before the victim has finished dying — freeing 300 MiB takes
            // a moment — and the Insight can now be written within milliseconds: the kill must be real, within seconds.
            if killed != nil, processDiedAt == nil {
                for _ in 0..<50 where Self.running(process.pid) { try await Task.sleep(for: .milliseconds(100)) }
                if !Self.running(process.pid) { processDiedAt = ContinuousClock.now - started }
            }

            // The operator's leader Lease, as `kubectl get leases -n tapio-system` shows it, while it still runs.
            var leases: [[String: String]]?
            if Kubectl.isAvailable, let r = try? await Kubectl.run(kubeconfig: cluster.kubeconfigPath, ["get", "leases", "-n", "tapio-system"]) {
                leases = Kubectl.table(r.stdout)
                log("kubectl get leases -n tapio-system:\n\(r.stdout)\(r.stderr)")
            }

            await f.stop()

            let p = try #require(prediction, "no OOMPrediction Insight within 240 s (process died at \(String(describing: processDiedAt)))")
            #expect(predictedWhileRunning, "the prediction appeared only after the kernel killed the process")
            #expect(p.spec.subject.kind == "Pod")
            #expect(p.spec.subject.name == "leaky-0")
            #expect(p.spec.subject.container == "app")
            #expect(p.metadata.labels?["tapio.io/node"] == node)
            let k = try #require(killed, "no OOMKilled Insight after the kill (process died at \(String(describing: processDiedAt)))")
            #expect(processDiedAt != nil, "an OOMKilled Insight appeared but the process was not killed within 5 s")
            #expect(k.spec.subject.name == "leaky-0")
            #expect(k.spec.subject.container == "app")

            // What a user sees: each Insight in `kubectl get insights`, with its type.
            guard Kubectl.isAvailable else { return }
            let predicted = try #require(predictionInKubectl, "kubectl get insights failed when the OOMPrediction was found")
            #expect(predicted.rows.contains { $0["NAME"] == p.metadata.name && $0["TYPE"] == "OOMPrediction" },
                    "the OOMPrediction is not in kubectl's table:\n\(predicted.output)")
            let killedRows = try #require(killedInKubectl, "kubectl get insights failed when the OOMKilled Insight was found")
            #expect(killedRows.rows.contains { $0["NAME"] == k.metadata.name && $0["TYPE"] == "OOMKilled" },
                    "the OOMKilled Insight is not in kubectl's table:\n\(killedRows.output)")
            if usesEmulator {
                // Against the emulator this run's operator is the only candidate, so it leads.
                #expect(leases?.contains { $0["NAME"] == Operator.leaseName && $0["HOLDER"] == operatorIdentity } == true,
                        "kubectl get leases -n tapio-system: \(String(describing: leases))")
            }
        }
    }

    /// Issue 12's fast leak on the real kernel: 3 MiB/s into a 300 MiB limit, so the kernel kills the process
    /// 80–120 s after it starts (python's own ~10 MiB included). The early warning must reach the API server at
    /// least 30 s before the kill. Only conditions are waited for: the agent's heartbeat Lease before the leak starts,
    /// then the Insight or the kill, polled every 250 ms.
    @Test(.timeLimit(.minutes(5)))
    func aFastLeakIsWarnedAtLeast30SecondsBeforeTheKill() async throws {
        try await withFixture(pod: "fast-leak-0", heartbeat: .seconds(1), operator: false) { f in
            let (cluster, client, stop) = (f.cluster, f.client, f.stop)
            let process = try f.startLeak(rateMiBps: 3)
            defer { process.kill() }
            let started = ContinuousClock.now
            func log(_ s: String) {
                FileHandle.standardError.write(Data("[e2e fast +\(ContinuousClock.now - started)] \(s)\n".utf8))
            }
            var predictedAt: Duration?
            var prediction: InsightObject?
            var diedAt: Duration?
            let deadline = started + .seconds(200)
            while ContinuousClock.now < deadline, diedAt == nil {
                let alive = Self.running(process.pid)
                let insights = (try? await client.list(InsightObject.self, namespace: cluster.namespace).items) ?? []
                if prediction == nil, let p = insights.first(where: { $0.spec.type == .oomPrediction }) {
                    prediction = p
                    // Seen by this poll; counted as seen only if the process still ran when the poll began.
                    if alive { predictedAt = ContinuousClock.now - started }
                    log("OOMPrediction (process running: \(alive)): \(p.spec.severity.rawValue) \(p.spec.title), "
                        + "probability \(p.spec.prediction?.probability ?? -1)")
                }
                if !alive {
                    diedAt = ContinuousClock.now - started
                    log("the leaking process is gone")
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            await stop()

            let died = try #require(diedAt, "the leaking process was not killed within 200 s")
            // It must be the fast leak the issue means (80–120 s); slack either way for a loaded machine.
            #expect(died >= .seconds(60) && died <= .seconds(180), "killed \(died) after the start")
            // Recorded as a known issue until runs got the prediction ~97 s in, 2 s before the kill. It has not recurred
            // since 4eebaf2 (the first cgroup sample replaces a new container's per-process samples, which read as reclaim
            // drops and held the prediction back): warned 45–47 s ahead here with the machine under load 5–10.
            let p = try #require(prediction, "no OOMPrediction Insight before the kill at \(died)")
            let at = try #require(predictedAt, "the OOMPrediction appeared only after the kernel killed the process")
            #expect(died - at >= .seconds(30), "warned at \(at), killed at \(died): only \(died - at) before")
            #expect(p.spec.subject.name == "fast-leak-0")
            let probability = try #require(p.spec.prediction?.probability)
            #expect(probability > 0 && probability < 0.9, "an early warning is not near-certain: \(probability)")
        }
    }
}
