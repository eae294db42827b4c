import Foundation
import KubeClient
import Logging
import TapioAgent
import TapioKube
import TapioModel
import TapioSinks

extension ScaleBench {
    /// One simulated agent on node `i`, run until cancelled: the real agent from the API side down, no kernel
    /// sources, with a client of its own (its own connection, as on its own node).
    static func runAgent(_ i: Int, config: KubeConfig, requests: AgentRequests, metrics: TapioMetrics, logger: Logger,
                         ready: Count) async {
        do {
            let client = try KubeClient(config: config, logger: logger, observer: requests.observer(agent: i))
            var options = Agent.Options(nodeName: ScalePopulation.nodeName(i), metricsHost: "127.0.0.1", metricsPort: 0)
            options.kernelSources = false
            let agent = Agent(options: options, client: client, metrics: metrics, logger: logger)
            try? await agent.run(signals: [], onReady: { _ in ready.add() })
            try? await client.shutdown()
        } catch {
            FileHandle.standardError.write(Data("scale: agent \(i) did not start: \(error)\n".utf8))
        }
    }

    /// Waits (at most `timeout`, looking every second) until the scale policy's status says Ready with `nodes` nodes
    /// applied — of `generation`, when given.
    static func waitForPolicyReady(_ admin: KubeClient, nodes: Int, generation: Int64? = nil,
                                   timeout: Duration = .seconds(600)) async -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if let p = try? await admin.get(PolicyObject.self, name: "tapio-scale"), let s = p.status,
               s.condition("Ready")?.status == .true, s.nodesApplied == nodes,
               generation == nil || s.observedGeneration == generation {
                return true
            }
            try? await Task.sleep(for: .seconds(1))
        }
        return false
    }

    /// Nodes joining one at a time (a cluster autoscaler's scale-up): each new Node gets an agent, the next joins once
    /// it is ready and `joinEvery` after the one before (nodes arrive over minutes, not all at once). Every join changes the policy's status (one more node targeted, then applied) — the churn in which
    /// the operator's status writes, each sent to every agent, must stay paced. Measured as the phase `join`, until the
    /// status counts every node; the joined Nodes and their Leases are deleted after (a scale-down), so that a later
    /// run against the same API server starts from N nodes again.
    static func joinPhase(_ c: Config, admin: KubeClient, config: KubeConfig, requests: AgentRequests,
                          metrics: TapioMetrics, logger: Logger, phase: Phase,
                          note: @escaping (String, Double, String) -> Void) async throws {
        let ready = Count()
        // Per-agent figures over every agent running in the phase, the joined ones included.
        let phase = Phase(admin: phase.admin, requests: phase.requests, agents: c.agents + c.join, apiserver: phase.apiserver,
                          etcd: phase.etcd, operator: phase.operatorPID)
        let start = try await phase.begin()
        let began = ContinuousClock.now
        let joined = Task {
            await withTaskGroup(of: Void.self) { group in
                for k in 0..<c.join {
                    let i = c.agents + k
                    _ = try? await admin.create(Node(metadata: ObjectMeta(name: ScalePopulation.nodeName(i), labels: ["tapio-scale": "true"])))
                    group.addTask { await runAgent(i, config: config, requests: requests, metrics: metrics, logger: logger, ready: ready) }
                    // An agent that does not start (its error is printed) holds the next join back 2 minutes at most.
                    let giveUp = ContinuousClock.now + .seconds(120)
                    while ready.value < k + 1, !Task.isCancelled, ContinuousClock.now < giveUp {
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    let next = began + c.joinEvery * (k + 1)
                    if next > .now { try? await Task.sleep(until: next) }
                }
                // The agents run until the phase is over.
                await group.waitForAll()
            }
        }
        // Whatever happens, the joined agents stop and their Nodes and Leases go (a later run starts from N nodes).
        func cleanUp() async {
            joined.cancel()
            await joined.value
            for k in 0..<c.join {
                let node = ScalePopulation.nodeName(c.agents + k)
                try? await admin.deleteRaw(ResourceType(Node.self), namespace: nil, name: node)
                try? await admin.deleteRaw(ResourceType(Lease.self), namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: node))
            }
        }
        do {
            let deadline = began + .seconds(600) + c.joinEvery * c.join
            while ready.value < c.join, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
            if ready.value < c.join {
                FileHandle.standardError.write(Data("scale: only \(ready.value) of \(c.join) joining agents became ready\n".utf8))
            }
            note("join.agents_ready", Double(ready.value), "agents")
            note("join.seconds_until_every_joined_agent_ready", (ContinuousClock.now - began).inSeconds, "s")
            let settled = await waitForPolicyReady(admin, nodes: c.agents + c.join)
            note("join.seconds_until_policy_ready_on_every_node", settled ? (ContinuousClock.now - began).inSeconds : -1, "s")
            try await phase.end(start, name: "join", note: note)
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }

    /// A change of the policy's spec, as a GitOps sync makes: every agent applies the new generation within seconds
    /// and says so in its heartbeat, each heartbeat changing the policy's status (one more node applied). Measured as
    /// the phase `policy_change`, until the status says every node runs the new generation.
    static func policyChangePhase(_ c: Config, admin: KubeClient, phase: Phase,
                                  note: @escaping (String, Double, String) -> Void) async throws {
        let start = try await phase.begin()
        let began = ContinuousClock.now
        var generation: Int64 = 0
        for attempt in 1...5 {
            var p = try await admin.get(PolicyObject.self, name: "tapio-scale")
            // Between two sampling rates no run depends on (the simulated agents have no kernel sources).
            p.spec.probes.memory.samplingHz = p.spec.probes.memory.samplingHz == 97 ? 98 : 97
            do {
                generation = try await admin.update(p).metadata.generation ?? 0
                break
            } catch KubeError.conflict where attempt < 5 {
                continue  // the operator wrote the status in between
            }
        }
        let applied = await waitForPolicyReady(admin, nodes: c.agents, generation: generation)
        note("policy_change.seconds_until_every_node_runs_it", applied ? (ContinuousClock.now - began).inSeconds : -1, "s")
        try await phase.end(start, name: "policy_change", note: note)
    }
}
