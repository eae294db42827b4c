import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KubeClient
import Synchronization
import TapioAgent
import TapioKube
import TapioModel
import TapioTestSupport

/// Benchmarks of the whole agent: kernel event in, Kubernetes object out.
let agentBenchmarks: [Benchmark] = [
    Benchmark(name: "agent.oom-to-insight",
              summary: "kernel OOM kill (injected at the probes' hand-off) → Insight CR and Event visible through a watch; emulator over HTTPS, real cgroups (root)") {
        try await AgentBench.oomToInsight(rounds: 5, podsPerRound: 4)
    },
    Benchmark(name: "agent.at-rest-100-pods",
              summary: "the tapio binary as an agent at rest: 100 idle pods with real memory-limited cgroups on its node, default policy (19 Hz, all probes), /healthz and /readyz asked every 10 s as the kubelet's probes do; CPU over 60 s after 20 s of warm-up (TAPIO_AT_REST_SECONDS for another window), RSS at its end (root; build the tapio product too)") {
        // TAPIO_AT_REST_SECONDS measures longer (the RSS after ten minutes: pages start-up released come back as
        // rest needs them).
        let seconds = ProcessInfo.processInfo.environment["TAPIO_AT_REST_SECONDS"].flatMap(Int.init).map { min(max($0, 10), 86_400) } ?? 60
        return try await AgentBench.atRest(pods: 100, warmUp: .seconds(20), measure: .seconds(seconds))
    },
    Benchmark(name: "agent.cgroup-walk",
              summary: "the cgroup memory poller's walk of a node-like memory hierarchy (root; a node: 300 system services in system.slice, unlimited; the kubelet's kubepods/burstable with 100 pods of one limited container): a full walk, a walk of the kubelet's subtree only, and a pass between walks; median of 25 each (root)") {
        try AgentBench.cgroupWalk(services: 300, pods: 100, rounds: 25)
    },
]

enum AgentBench {
    /// A source standing in for the BPF ring buffer: what is pushed reaches the pipeline exactly like probe events.
    final class InjectedSource: EventSource {
        let name = "injected"
        let queue = BoundedQueue<TapioEvent>(capacity: 1024)
        func events() -> BoundedQueue<TapioEvent> { queue }
        func health() -> SourceHealth { SourceHealth(state: .running) }
    }

    /// Each round starts an agent for a fresh node with `podsPerRound` pods (each a real limited cgroup), waits for
    /// its caches to sync, then kills the pods' containers one by one (`fresh_*`: containers started 100 ms before
    /// the kill, which the caches have not seen yet) — an OOM kill and the SIGKILL exit, as the
    /// probes report them — and times, through watches, until the `OOMKilled` Insight and its Event exist.
    /// Rounds stay below the engine's cluster-health threshold (5 failing pods on a node), where per-pod
    /// Insights are rightly folded into one.
    static func oomToInsight(rounds: Int, podsPerRound: Int) async throws -> [Measurement] {
        guard TestCgroup.isAvailable else {
            FileHandle.standardError.write(Data("agent.oom-to-insight skipped: \(TestCgroup.unavailableReason ?? "")\n".utf8))
            return []
        }
        let cluster = try await TestCluster.start()
        defer { Task { await cluster.stop() } }
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: "tapio-system")))
        _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: cluster.namespace)))
        var toInsight: [Double] = []
        var toEvent: [Double] = []
        var freshToInsight: [Double] = []
        for round in 0..<rounds {
            let node = "bench-node-\(round)-" + String(UUID().uuidString.lowercased().prefix(6))
            var pods: [(name: String, cgroup: TestCgroup)] = []
            defer { for p in pods { p.cgroup.destroy() } }
            // Half the pods exist (and are cached) before the agent starts; the other half start during the round
            // and are killed 100 ms later, before the 1 s cgroup poll has seen them.
            for i in 0..<podsPerRound / 2 {
                let cg = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20)
                let name = "r\(round)-known\(i)"
                pods.append((name, cg))
                try await createPod(client, namespace: cluster.namespace, name: name, node: node, containerID: cg.containerID)
            }
            let source = InjectedSource()
            let agent = Agent(options: .init(nodeName: node, metricsHost: "127.0.0.1", metricsPort: 0), client: client)
            let task = Task { try await agent.run(extraSources: [source], signals: []) }
            // Caches: the pod reflector syncs and the cgroup poller (1 s) indexes the new cgroups.
            try await Task.sleep(for: .seconds(3))
            let seen = Seen()
            let watches = Task {
                await withTaskGroup(of: Void.self) { g in
                    g.addTask {
                        guard let stream = try? await client.watch(InsightObject.self, namespace: cluster.namespace) else { return }
                        do {
                            for try await e in stream {
                                guard case .added(let o) = e, o.spec.type == .oomKilled else { continue }
                                seen.insight(o.spec.subject.name)
                            }
                        } catch {}
                    }
                    g.addTask {
                        guard let stream = try? await client.watch(Event.self, namespace: cluster.namespace) else { return }
                        do {
                            for try await e in stream {
                                guard case .added(let o) = e, o.reason == "OOMKilled", let name = o.regarding?.name else { continue }
                                seen.event(name)
                            }
                        } catch {}
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(500))
            for i in 0..<podsPerRound {
                let fresh = i >= podsPerRound / 2
                if fresh {
                    let cg = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20)
                    let name = "r\(round)-fresh\(i)"
                    pods.append((name, cg))
                    try await createPod(client, namespace: cluster.namespace, name: name, node: node, containerID: cg.containerID)
                    try await Task.sleep(for: .milliseconds(100))
                }
                let (name, cg) = pods[i]
                let pid: Int32 = 40_000 + Int32(round * podsPerRound + i)
                let wall = UInt64(Date().timeIntervalSince1970 * 1e9)
                let start = ContinuousClock.now
                source.queue.push(.node(NodeEvent(timestampNanos: wall, pid: pid, cgroupID: try cg.inode, comm: "app",
                                                  kind: .oomKill(.init(victimPID: pid, totalVMBytes: 200 << 20,
                                                                       anonRSSBytes: 63 << 20, fileRSSBytes: 1 << 20,
                                                                       shmemRSSBytes: 0)))))
                source.queue.push(.node(NodeEvent(timestampNanos: wall + 1_000_000, pid: pid, cgroupID: try cg.inode, comm: "app",
                                                  kind: .processExit(.init(exitCode: 137, signal: 9, peakRSSBytes: 64 << 20)))))
                let deadline = start + .seconds(30)
                while ContinuousClock.now < deadline, seen.insightAt(name) == nil || seen.eventAt(name) == nil {
                    try await Task.sleep(for: .milliseconds(2))
                }
                if let t = seen.insightAt(name) {
                    let ms = (t - start).seconds * 1000
                    if fresh { freshToInsight.append(ms) } else { toInsight.append(ms) }
                } else {
                    FileHandle.standardError.write(Data("agent.oom-to-insight: no Insight for \(name) within 30 s\n".utf8))
                }
                if let t = seen.eventAt(name), !fresh { toEvent.append((t - start).seconds * 1000) }
                try await Task.sleep(for: .milliseconds(200))
            }
            watches.cancel()
            task.cancel()
            _ = await task.result
        }
        try? await client.shutdown()
        func pct(_ xs: [Double], _ p: Double) -> Double {
            guard !xs.isEmpty else { return .nan }
            let s = xs.sorted()
            return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
        }
        return [
            Measurement(metric: "insight_p50", value: pct(toInsight, 0.5), unit: "ms"),
            Measurement(metric: "insight_p99", value: pct(toInsight, 0.99), unit: "ms"),
            Measurement(metric: "insight_max", value: toInsight.max() ?? .nan, unit: "ms"),
            Measurement(metric: "event_p50", value: pct(toEvent, 0.5), unit: "ms"),
            Measurement(metric: "event_max", value: toEvent.max() ?? .nan, unit: "ms"),
            Measurement(metric: "fresh_insight_p50", value: pct(freshToInsight, 0.5), unit: "ms"),
            Measurement(metric: "fresh_insight_max", value: freshToInsight.max() ?? .nan, unit: "ms"),
            Measurement(metric: "samples", value: Double(toInsight.count + freshToInsight.count), unit: "kills"),
        ]
    }

    /// Runs `tapio agent` (the binary next to this one) against the emulator with `pods` idle pods on its node, each
    /// a real cgroup with a 64 MiB limit holding one sleeping process, and reads the agent's CPU time and RSS from
    /// /proc. The emulator runs in this process, so its own work is not charged to the agent.
    static func atRest(pods: Int, warmUp: Duration, measure: Duration) async throws -> [Measurement] {
        guard TestCgroup.isAvailable else {
            FileHandle.standardError.write(Data("agent.at-rest-100-pods skipped: \(TestCgroup.unavailableReason ?? "")\n".utf8))
            return []
        }
        let tapio = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tapio").path
        guard FileManager.default.isExecutableFile(atPath: tapio) else {
            FileHandle.standardError.write(Data("agent.at-rest-100-pods skipped: no tapio binary at \(tapio); build it with the same configuration (swift build -c release --product tapio)\n".utf8))
            return []
        }
        // Watch bookmarks about once a minute, as kube-apiserver sends them (the tests' emulator sends them twice a
        // second, which would be charged to the agent here).
        let cluster = try await TestCluster.start(bookmarkInterval: .seconds(60))
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: "tapio-system")))
        _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: cluster.namespace)))
        let node = "bench-rest-" + String(UUID().uuidString.lowercased().prefix(6))
        var cgroups: [TestCgroup] = []
        var sleepers: [TestProcess] = []
        defer {
            for p in sleepers { p.kill() }
            for c in cgroups { c.destroy() }
        }
        for i in 0..<pods {
            let cg = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20)
            cgroups.append(cg)
            let p = try TestProcess.sleep(seconds: 3600)
            try cg.add(pid: p.pid)
            sleepers.append(p)
            try await createPod(client, namespace: cluster.namespace, name: "idle-\(i)", node: node, containerID: cg.containerID)
        }
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: tapio)
        let port = Int.random(in: 20_000..<30_000)
        agent.arguments = ["agent", "--kubeconfig", cluster.kubeconfigPath, "--node-name", node,
                           "--metrics-addr", "127.0.0.1:\(port)", "--log-level", "warning"]
        agent.standardOutput = FileHandle.nullDevice
        try agent.run()
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        // The kubelet's probes of the DaemonSet (config/agent/daemonset.yaml): /healthz and /readyz every 10 s. A
        // deployed agent answers them; its CPU and the code it keeps resident include that.
        let probes = Task {
            while !Task.isCancelled {
                for path in ["/healthz", "/readyz"] {
                    if let url = URL(string: "http://127.0.0.1:\(port)\(path)") { _ = try? await URLSession.shared.data(from: url) }
                }
                try? await Task.sleep(for: .seconds(10))
            }
        }
        defer { probes.cancel() }
        try await Task.sleep(for: warmUp)
        guard agent.isRunning else { throw BenchError("the agent exited during warm-up (status \(agent.terminationStatus))") }
        let pid = agent.processIdentifier
        let cpu0 = cpuTicks(pid), wall0 = ContinuousClock.now
        try await Task.sleep(for: measure)
        let cpu1 = cpuTicks(pid), wall1 = ContinuousClock.now
        let rss = statusKiB(pid, "VmRSS"), hwm = statusKiB(pid, "VmHWM")
        let anon = statusKiB(pid, "RssAnon"), file = statusKiB(pid, "RssFile")
        agent.terminate()
        agent.waitUntilExit()
        try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: cluster.namespace)
        try? await client.shutdown()
        await cluster.stop()
        let seconds = (wall1 - wall0).seconds
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return [
            Measurement(metric: "cpu", value: Double(cpu1 - cpu0) / ticks / seconds * 1000, unit: "millicores"),
            Measurement(metric: "rss", value: Double(rss) / 1024, unit: "MiB"),
            Measurement(metric: "rss_peak", value: Double(hwm) / 1024, unit: "MiB"),
            Measurement(metric: "rss_anonymous", value: Double(anon) / 1024, unit: "MiB"),
            Measurement(metric: "rss_file", value: Double(file) / 1024, unit: "MiB"),
            Measurement(metric: "seconds", value: seconds, unit: "s"),
            Measurement(metric: "pods", value: Double(pods), unit: "pods"),
        ]
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    /// utime + stime of `pid`, in clock ticks (/proc/<pid>/stat fields 14 and 15).
    static func cpuTicks(_ pid: Int32) -> UInt64 {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let f = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard f.count > 13, let u = UInt64(f[11]), let s = UInt64(f[12]) else { return 0 }
        return u + s
    }

    /// A `kB` field of /proc/<pid>/status.
    static func statusKiB(_ pid: Int32, _ field: String) -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return UInt64(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    /// First time each pod's Insight / Event was seen.
    final class Seen: Sendable {
        private let state = Mutex<(insights: [String: ContinuousClock.Instant], events: [String: ContinuousClock.Instant])>(([:], [:]))
        func insight(_ name: String) { state.withLock { s in if s.insights[name] == nil { s.insights[name] = .now } } }
        func event(_ name: String) { state.withLock { s in if s.events[name] == nil { s.events[name] = .now } } }
        func insightAt(_ name: String) -> ContinuousClock.Instant? { state.withLock { $0.insights[name] } }
        func eventAt(_ name: String) -> ContinuousClock.Instant? { state.withLock { $0.events[name] } }
    }

    /// A pod bound to `node` with one running container whose runtime id is `containerID`.
    static func createPod(_ client: KubeClient, namespace: String, name: String, node: String, containerID: String) async throws {
        var pod = Pod(metadata: KubeObjectMeta(name: name, namespace: namespace),
                      spec: PodSpec(nodeName: node, containers: [
                          Container(name: "app", image: "example/\(name):1",
                                    resources: ResourceRequirements(limits: ["memory": "64Mi"], requests: ["memory": "32Mi"])),
                      ]))
        pod = try await client.create(pod)
        var status = PodStatus(phase: "Running")
        var cs = ContainerStatus(name: "app", containerID: "containerd://\(containerID)", ready: true, restartCount: 0)
        cs.image = "example/\(name):1"
        status.containerStatuses = [cs]
        pod.status = status
        _ = try await client.updateStatus(pod)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension AgentBench {
    /// Times the poller's three kinds of pass on a hierarchy shaped like a node's: full walks (every 60 s), walks of
    /// the kubelet's subtree (when a pod changed, else every 30 s) and the per-second reads of the known limited cgroups.
    static func cgroupWalk(services: Int, pods: Int, rounds: Int) throws -> [Measurement] {
        guard TestCgroup.isAvailable else {
            FileHandle.standardError.write(Data("agent.cgroup-walk skipped: \(TestCgroup.unavailableReason ?? "")\n".utf8))
            return []
        }
        let node = try TestCgroup.create(layout: .custom(["node"]))
        defer { node.destroy() }
        for i in 0..<services { _ = try node.addChild("node/system.slice/service-\(i).service", memoryLimit: nil) }
        for i in 0..<pods {
            _ = try node.addChild("node/kubepods/burstable/pod\(UUID().uuidString.lowercased())/\(TestCgroup.randomHex(64))",
                                  memoryLimit: UInt64(64 + i) << 20)
        }
        func median(_ make: () -> CgroupMemoryPoller, warm: Bool) -> (ms: Double, sampled: Int) {
            var times: [Double] = []
            var sampled = 0
            for _ in 0..<rounds {
                let poller = make()
                if warm { poller.pollOnce() }  // the first pass is a full walk
                let start = nowNanos()
                sampled = poller.pollOnce()
                times.append(Double(nowNanos() - start) / 1e6)
            }
            times.sort()
            return (times[times.count / 2], sampled)
        }
        let full = median({ CgroupMemoryPoller(interval: .seconds(1), rewalk: .zero, fullRewalk: .zero) }, warm: true)
        let partial = median({ CgroupMemoryPoller(interval: .seconds(1), rewalk: .zero, fullRewalk: .seconds(3600)) }, warm: true)
        let between = median({ CgroupMemoryPoller(interval: .seconds(1), rewalk: .seconds(3600)) }, warm: true)
        // Per 60 s with the defaults and no pod changing: one full walk, one subtree walk (30 s), 58 passes between
        // walks (until 3 December the subtree was walked every 10 s: five walks and 54 passes).
        let perMinute = full.ms + partial.ms + 58 * between.ms
        let before = 6 * full.ms + 54 * between.ms
        return [Measurement(metric: "cgroups", value: Double(1 + services + 3 + 2 * pods + 2), unit: "cgroups"),
                Measurement(metric: "full_walk", value: full.ms, unit: "ms"),
                Measurement(metric: "kubelet_subtree_walk", value: partial.ms, unit: "ms"),
                Measurement(metric: "pass_between_walks", value: between.ms, unit: "ms"),
                Measurement(metric: "limited_sampled", value: Double(partial.sampled), unit: "cgroups"),
                Measurement(metric: "cpu_defaults", value: perMinute / 60, unit: "millicores"),
                Measurement(metric: "cpu_full_walk_every_10s", value: before / 60, unit: "millicores")]
    }
}
