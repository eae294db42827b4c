import Foundation
import KubeClient
import Logging
import Synchronization
import TapioAgent
import TapioCorrelation
import TapioKube
import TapioModel
import TapioSinks
import TapioTestSupport

/// Issue 14: Tapio's load on a real kube-apiserver at N nodes.
let scaleBenchmarks: [Benchmark] = [
    Benchmark(name: "scale",
              summary: "N simulated agents in this process (the real agent from the API side down, no kernel sources) and the real operator (the tapio binary beside this one) against a real kube-apiserver: TAPIO_SCALE_KUBECONFIG (required), TAPIO_SCALE_AGENTS (100), TAPIO_SCALE_PODS_PER_NODE (30), TAPIO_SCALE_REST_SECONDS (120), TAPIO_SCALE_INCIDENTS_PER_SECOND (2), TAPIO_SCALE_INCIDENT_SECONDS (60), TAPIO_SCALE_STORM (1000, at most 3 per node), TAPIO_SCALE_JOIN (0: nodes that join one at a time after the rest phase, each with its agent), TAPIO_SCALE_JOIN_EVERY_MS (1000), TAPIO_SCALE_POLICY_CHANGE (0; 1: change the policy's spec once and measure until every node runs it), TAPIO_SCALE_INSIGHTS (0: copies of a real Insight up to this many, kept), TAPIO_SCALE_APISERVER_PID, TAPIO_SCALE_ETCD_PID") {
        try await ScaleBench.run(try ScaleBench.Config.fromEnvironment())
    },
]

enum ScaleBench {
    struct Config: Sendable {
        var kubeconfig: String
        var agents = 100
        var podsPerNode = 30
        var restSeconds = 120
        var incidentsPerSecond = 2.0
        var incidentSeconds = 60
        var storm = 1000
        /// Nodes that join one at a time after the rest phase, each with its agent (0: no join phase).
        var join = 0
        /// …one every this long at most (each also waits for the one before to be ready).
        var joinEvery = Duration.seconds(1)
        /// Change the policy's spec once after the rest (and join) phase and measure until every node runs it.
        var policyChange = false
        /// Insights in the cluster for the operator's measurement (copies of a real one are added up to this).
        var insights = 0
        var apiserverPID: Int32?
        var etcdPID: Int32?

        static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> Config {
            guard let path = env["TAPIO_SCALE_KUBECONFIG"], !path.isEmpty else {
                throw AgentBench.BenchError("set TAPIO_SCALE_KUBECONFIG to a real kube-apiserver's kubeconfig (with crds/ applied; not a shared cluster: it creates TAPIO_SCALE_AGENTS Nodes)")
            }
            var c = Config(kubeconfig: path)
            func int(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
                guard let text = env[name] else { return nil }
                guard let v = Int(text), range.contains(v) else { throw AgentBench.BenchError("\(name)=\(text): not a whole number in \(range)") }
                return v
            }
            c.agents = try int("TAPIO_SCALE_AGENTS", 1...20_000) ?? c.agents
            c.podsPerNode = try int("TAPIO_SCALE_PODS_PER_NODE", 1...250) ?? c.podsPerNode
            c.restSeconds = try int("TAPIO_SCALE_REST_SECONDS", 10...86_400) ?? c.restSeconds
            c.incidentSeconds = try int("TAPIO_SCALE_INCIDENT_SECONDS", 0...86_400) ?? c.incidentSeconds
            c.storm = try int("TAPIO_SCALE_STORM", 0...1_000_000) ?? c.storm
            c.join = try int("TAPIO_SCALE_JOIN", 0...10_000) ?? c.join
            c.joinEvery = try int("TAPIO_SCALE_JOIN_EVERY_MS", 0...3_600_000).map { .milliseconds($0) } ?? c.joinEvery
            c.policyChange = try int("TAPIO_SCALE_POLICY_CHANGE", 0...1).map { $0 == 1 } ?? c.policyChange
            c.insights = try int("TAPIO_SCALE_INSIGHTS", 0...1_000_000) ?? c.insights
            if let text = env["TAPIO_SCALE_INCIDENTS_PER_SECOND"] {
                guard let v = Double(text), v > 0, v <= 1000 else { throw AgentBench.BenchError("TAPIO_SCALE_INCIDENTS_PER_SECOND=\(text): not in (0, 1000]") }
                c.incidentsPerSecond = v
            }
            c.apiserverPID = try int("TAPIO_SCALE_APISERVER_PID", 1...Int(Int32.max)).map { Int32($0) }
            c.etcdPID = try int("TAPIO_SCALE_ETCD_PID", 1...Int(Int32.max)).map { Int32($0) }
            return c
        }
    }

    /// Requests the simulated agents sent, by verb, and per agent (from each agent's client observer).
    final class AgentRequests: Sendable {
        private let state: Mutex<(byVerb: [String: UInt64], perAgent: [UInt64], writesPerAgent: [UInt64])>
        init(agents: Int) { state = Mutex(([:], Array(repeating: 0, count: agents), Array(repeating: 0, count: agents))) }

        func observer(agent i: Int) -> KubeClient.RequestObserver {
            { verb, outcome in
                guard outcome == .succeeded || outcome == .failed else { return }
                self.state.withLock { s in
                    s.byVerb[verb, default: 0] += 1
                    s.perAgent[i] += 1
                    if ["POST", "PUT", "PATCH", "DELETE"].contains(verb) { s.writesPerAgent[i] += 1 }
                }
            }
        }

        var snapshot: (byVerb: [String: UInt64], perAgent: [UInt64], writesPerAgent: [UInt64]) { state.withLock { $0 } }
    }

    final class Count: Sendable {
        private let n = Mutex(0)
        func add() { n.withLock { $0 += 1 } }
        var value: Int { n.withLock { $0 } }
    }

    /// When each pod's OOMKilled Insight was first written after its incident.
    final class InsightArrivals: Sendable {
        private let state = Mutex<(issued: [String: (wall: Date, at: ContinuousClock.Instant)], seen: [String: Duration])>(([:], [:]))
        func issued(_ pod: String) { state.withLock { $0.issued[pod] = (Date(), .now) } }
        func saw(_ pod: String, lastSeen: String?) {
            state.withLock { s in
                guard s.seen[pod] == nil, let i = s.issued[pod] else { return }
                // An Insight left from an earlier run, or rewritten at startup, is not this incident's.
                guard let seen = lastSeen.flatMap(Formatting.parseRFC3339), Double(seen) / 1e9 >= i.wall.timeIntervalSince1970 - 1 else { return }
                s.seen[pod] = .now - i.at
            }
        }
        func latencies(of pods: [String]) -> [Double] { state.withLock { s in pods.compactMap { s.seen[$0]?.inSeconds } } }
    }

    static func run(_ c: Config) async throws -> [Measurement] {
        var out: [Measurement] = []
        func note(_ metric: String, _ value: Double, _ unit: String) {
            out.append(Measurement(metric: metric, value: value, unit: unit))
            FileHandle.standardError.write(Data("scale: \(metric) = \(value) \(unit)\n".utf8))
        }
        let quiet = {
            var l = Logger(label: "tapio.scale")
            l.logLevel = .error
            return l
        }()
        let config = try KubeConfig.load(path: c.kubeconfig)
        let admin = try KubeClient(config: config, logger: quiet)
        let namespace = "tapio-scale"
        let population = ScalePopulation(client: admin, nodes: c.agents, podsPerNode: c.podsPerNode, namespace: namespace)
        let setupStart = ContinuousClock.now
        let created = try await population.create()
        note("setup.objects_created", Double(created), "objects")
        note("setup.seconds", (ContinuousClock.now - setupStart).inSeconds, "s")

        // The real operator, as its own process, so that its memory and CPU are its own.
        let op = try BackgroundCommand(tapio: ["operator", "--kubeconfig", c.kubeconfig, "--namespace", "tapio-system",
                                               "--identity", "scale-bench", "--metrics-addr", "127.0.0.1:0"])
        defer { op.cleanUp() }
        guard await op.waitFor(timeout: .seconds(120), { $0.metricsPort != nil }), let opPort = op.metricsPort else {
            throw AgentBench.BenchError("the operator did not start: \(op.stderr.suffix(2000))")
        }

        // N agents, each with its own client (its own connection, as on N nodes).
        let requests = AgentRequests(agents: c.agents + c.join)
        let ready = Count()
        let shared = TapioMetrics()
        let agentsStart = ContinuousClock.now
        // The start of N agents is the churn a DaemonSet rollout makes: N first heartbeats, each changing the policy's
        // status, each status write sent to every agent.
        let beforeStart = try await APIServerScrape.take(admin)
        let rssBefore = currentRSSBytes()
        let agents = Task {
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<c.agents {
                    group.addTask { await runAgent(i, config: config, requests: requests, metrics: shared, logger: quiet, ready: ready) }
                }
            }
        }
        defer { agents.cancel() }
        var beats = ListOptions()
        beats.labelSelector = "\(HeartbeatAnnotations.appLabel)=tapio,\(HeartbeatAnnotations.nodeLabel)"
        while true {
            let beating = (try? await admin.listAll(Lease.self, namespace: "tapio-system", options: beats).items.count) ?? 0
            if ready.value >= c.agents && beating >= c.agents { break }
            try await Task.sleep(for: .seconds(2))
        }
        note("startup.seconds_until_every_agent_ready_and_beating", (ContinuousClock.now - agentsStart).inSeconds, "s")
        // Startup writes settle before the rest phase: the operator has judged every node applied (its policy status
        // says Ready), so the rest window holds no start-up tail. Bounded: a run that never gets there says so.
        let settled = await waitForPolicyReady(admin, nodes: c.agents)
        note("startup.seconds_until_policy_ready_on_every_node", settled ? (ContinuousClock.now - agentsStart).inSeconds : -1, "s")
        let startup = try await APIServerScrape.take(admin).since(beforeStart)
        note("startup.tapiopolicy_writes", startup.tapioPolicyWrites, "writes")
        note("startup.tapiopolicy_events_per_agent", startup.tapioPolicyEvents / Double(c.agents + 1), "events/agent")
        if !settled {
            FileHandle.standardError.write(Data("scale: the policy's status did not say Ready on all \(c.agents) nodes within 600 s; the rest phase may hold start-up writes\n".utf8))
        }
        note("agents.rss_per_agent", Double(currentRSSBytes() &- rssBefore) / Double(c.agents) / 1024, "KiB")

        let arrivals = InsightArrivals()
        let watch = Task {
            while !Task.isCancelled {
                guard let stream = try? await admin.watch(InsightObject.self, namespace: namespace) else {
                    try? await Task.sleep(for: .seconds(1))
                    continue
                }
                do {
                    for try await e in stream {
                        switch e {
                        case .added(let o), .modified(let o):
                            if o.spec.type == .oomKilled { arrivals.saw(o.spec.subject.name, lastSeen: o.status?.lastSeen) }
                        default: break
                        }
                    }
                } catch {}
            }
        }
        defer { watch.cancel() }

        let phase = Phase(admin: admin, requests: requests, agents: c.agents, apiserver: c.apiserverPID, etcd: c.etcdPID, operator: op.pid)
        // At rest.
        var start = try await phase.begin()
        try await Task.sleep(for: .seconds(c.restSeconds))
        try await phase.end(start, name: "rest", note: note)

        if c.join > 0 {
            try await joinPhase(c, admin: admin, config: config, requests: requests, metrics: shared, logger: quiet,
                                phase: phase, note: note)
        }
        if c.policyChange {
            try await policyChangePhase(c, admin: admin, phase: phase, note: note)
        }

        // A steady incident rate, cluster-wide: OOM kills and readiness failures by turns, each on a new pod.
        var touched: [String] = []
        var ooms: [String] = []
        let restarts = Int(Date().timeIntervalSince1970) % 1_000_000
        var k = 0
        func nextPod() -> (name: String, node: Int) {
            defer { k += 1 }
            let node = k % c.agents, pod = (k / c.agents) % c.podsPerNode
            return (ScalePopulation.podName(node: node, pod: pod), node)
        }
        let incidents = Int((Double(c.incidentSeconds) * c.incidentsPerSecond).rounded())
        if incidents > 0 {
            start = try await phase.begin()
            let every = Duration.clamped(seconds: 1 / c.incidentsPerSecond)
            var due = ContinuousClock.now
            for n in 0..<incidents {
                let (pod, node) = nextPod()
                touched.append(pod)
                if n % 2 == 0 {
                    ooms.append(pod)
                    arrivals.issued(pod)
                    try? await population.oomKill(pod, restarts: restarts)
                } else {
                    try? await population.readinessFailure(pod, node: node, restarts: 0)
                }
                due = due + every
                try await Task.sleep(until: due)
            }
            try await phase.end(start, name: "incidents", note: note)
            note("incidents.issued", Double(incidents), "incidents")
            try await report(arrivals, ooms, name: "incidents", note: note)
        }

        // A storm: `storm` pods OOM-killed at once across the cluster — at most 3 per node: from 5 failing pods of one
        // namespace on a node the agent rightly folds them into one ClusterHealth Insight instead of one per pod.
        let stormPods = (0..<min(c.storm, 3 * c.agents, c.agents * c.podsPerNode - touched.count)).map { _ in nextPod().name }
        if !stormPods.isEmpty {
            start = try await phase.begin()
            let began = ContinuousClock.now
            for p in stormPods { arrivals.issued(p) }
            try await ScalePopulation.run(stormPods.map { p in { try? await population.oomKill(p, restarts: restarts) } }, parallel: 32)
            touched += stormPods
            note("storm.seconds_to_issue", (ContinuousClock.now - began).inSeconds, "s")
            try await report(arrivals, stormPods, name: "storm", note: note)
            try await phase.end(start, name: "storm", note: note)
        }

        // The operator holding everything: its memory and its detectors' pass.
        if c.insights > 0 {
            let began = ContinuousClock.now
            note("insights.copies_created", Double(try await fillInsights(admin, namespace: namespace, nodes: c.agents, target: c.insights)),
                 "Insights")
            note("insights.seconds_to_create", (ContinuousClock.now - began).inSeconds, "s")
            // Two passes of the operator's detectors (every 15 s) over what it now holds.
            try await Task.sleep(for: .seconds(40))
        }
        let opMetrics = (try? String(contentsOf: URL(string: "http://127.0.0.1:\(opPort)/metrics")!, encoding: .utf8)) ?? ""
        if let line = opMetrics.split(separator: "\n").first(where: { $0.hasPrefix("tapio_cluster_detectors_pass_seconds ") }),
           let v = Double(line.split(separator: " ").last ?? "") {
            note("operator.cluster_detectors_pass", v * 1000, "ms")
        }
        note("operator.rss", Double(AgentBench.statusKiB(op.pid, "VmRSS")) / 1024, "MiB")
        let insights = (try? await admin.listAll(InsightObject.self).items.count) ?? 0
        note("cluster.insights", Double(insights), "Insights")

        agents.cancel()
        _ = await agents.value
        _ = await op.terminate(grace: .seconds(20))
        try await cleanUp(population, touched: touched)
        try? await admin.shutdown()
        return out
    }

    /// Insight latency and completeness for the pods whose OOM kill was issued.
    static func report(_ arrivals: InsightArrivals, _ pods: [String], name: String,
                       note: (String, Double, String) -> Void) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while arrivals.latencies(of: pods).count < pods.count && ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(1))
        }
        let l = arrivals.latencies(of: pods).sorted()
        note("\(name).insights_missing", Double(pods.count - l.count), "Insights")
        guard !l.isEmpty else { return }
        note("\(name).insight_latency_p50", l[l.count / 2] * 1000, "ms")
        note("\(name).insight_latency_p99", l[min(l.count - 1, Int(Double(l.count) * 0.99))] * 1000, "ms")
        note("\(name).insight_latency_max", (l.last ?? 0) * 1000, "ms")
    }

    /// Puts the touched pods back as they were and deletes the Insights this run caused, so the next run starts alike.
    static func cleanUp(_ population: ScalePopulation, touched: [String]) async throws {
        let admin = population.client
        try await ScalePopulation.run(touched.map { p in { try? await population.setStatus(p, restarts: 0, ready: true, lastState: nil) } },
                                      parallel: 32)
        var names: [(String?, String)] = []
        for i in (try? await admin.listAll(InsightObject.self).items) ?? [] {
            if let n = i.metadata.name, !n.hasPrefix(extraPrefix) { names.append((i.metadata.namespace, n)) }
        }
        try await ScalePopulation.run(names.map { ns, n in { try? await admin.delete(InsightObject.self, namespace: ns, name: n) } },
                                      parallel: 32)
    }
}
