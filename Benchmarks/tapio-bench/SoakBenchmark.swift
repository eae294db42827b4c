import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KubeClient
import TapioKube
import TapioModel
import TapioTestSupport

/// The agent over a long run with churn (issue 17, item 7: on the real node its anonymous memory rose ~0.7 MB/min
/// with no plateau). Reports memory over time — the series on stderr, the figures on stdout: anonymous memory and,
/// from the agent's /metrics, glibc's heap (in use vs freed-and-kept) and the entries of its bounded structures, so a
/// rise can be told apart as state that grows or memory the allocator keeps.
///
/// `TAPIO_SOAK_AGENT_ARGS` (space-separated) is appended to the agent's arguments; the agent inherits the
/// environment, so glibc's tunables (`MALLOC_ARENA_MAX=2`) reach it too.
let soakBenchmarks: [Benchmark] = [
    Benchmark(name: "agent.soak",
              summary: "the tapio binary as an agent for TAPIO_SOAK_MINUTES (default 60) with churn: 40 pods with real limited cgroups, one replaced every 10 s, a real kernel OOM kill every 60 s, a crash-looping container; anonymous memory, heap in use/free and state sizes from /metrics sampled every 30 s (root; build the tapio product too)") {
        let minutes = ProcessInfo.processInfo.environment["TAPIO_SOAK_MINUTES"].flatMap(Int.init) ?? 60
        return try await AgentBench.soak(minutes: max(2, minutes), pods: 40)
    },
]

extension AgentBench {
    /// One idle pod: a limited cgroup holding a sleeping process, and the pod object naming its container.
    struct IdlePod {
        var name: String
        var cgroup: TestCgroup
        var sleeper: TestProcess
    }

    static func soak(minutes: Int, pods: Int) async throws -> [Measurement] {
        guard TestCgroup.isAvailable else {
            FileHandle.standardError.write(Data("agent.soak skipped: \(TestCgroup.unavailableReason ?? "")\n".utf8))
            return []
        }
        let tapio = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tapio").path
        guard FileManager.default.isExecutableFile(atPath: tapio) else {
            FileHandle.standardError.write(Data("agent.soak skipped: no tapio binary at \(tapio) (swift build -c release --product tapio)\n".utf8))
            return []
        }
        let cluster = try await TestCluster.start(bookmarkInterval: .seconds(60))
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        let ns = cluster.namespace
        _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: "tapio-system")))
        _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: ns)))
        let node = "bench-soak-" + String(UUID().uuidString.lowercased().prefix(6))
        var idle: [IdlePod] = []
        var serial = 0
        func addPod() async throws {
            let cg = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20)
            let p = try TestProcess.sleep(seconds: 4 * 3600)
            try cg.add(pid: p.pid)
            serial += 1
            let name = "idle-\(serial)"
            try await createPod(client, namespace: ns, name: name, node: node, containerID: cg.containerID)
            idle.append(IdlePod(name: name, cgroup: cg, sleeper: p))
        }
        // A pod bound to a node is only marked Terminating by a delete with a grace period; its kubelet removes it
        // once the containers stopped, with a grace period of 0. There is no kubelet here: the benchmark stops the
        // container and removes the pod the same way. (Before, every replaced pod stayed Terminating for the whole run
        // — 420 pods an hour in the agent's watch, pod directory and engine: growth of the benchmark's making.)
        let gone = WriteOptions(gracePeriodSeconds: 0)
        func removeOldest() async {
            guard !idle.isEmpty else { return }
            let p = idle.removeFirst()
            p.sleeper.kill()
            p.cgroup.destroy()
            try? await client.deleteRaw(ResourceType(Pod.self), namespace: ns, name: p.name, options: gone)
        }
        defer { for p in idle { p.sleeper.kill(); p.cgroup.destroy() } }
        for _ in 0..<pods { try await addPod() }

        // A container that keeps failing, as the kubelet reports it: restarts rise, the last state is an error.
        try await createPod(client, namespace: ns, name: "crashing", node: node, containerID: String(repeating: "c", count: 64))
        var restarts: Int32 = 0

        let stderrURL = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-soak-\(node).log")
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: tapio)
        let port = try Loopback.freePort()
        let extra = (ProcessInfo.processInfo.environment["TAPIO_SOAK_AGENT_ARGS"] ?? "").split(separator: " ").map(String.init)
        agent.arguments = ["agent", "--kubeconfig", cluster.kubeconfigPath, "--node-name", node,
                           "--metrics-addr", "127.0.0.1:\(port)", "--log-level", "warning"] + extra
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = try FileHandle(forWritingTo: stderrURL)
        try agent.run()
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        let pid = agent.processIdentifier

        let start = ContinuousClock.now
        let end = start + .seconds(minutes * 60)
        typealias Sample = (minutes: Double, anonKiB: UInt64, rssKiB: UInt64, scrape: [String: Double])
        var series: [Sample] = []
        var kills = 0, churned = 0
        var tick = 0
        while ContinuousClock.now < end {
            try await Task.sleep(for: .seconds(10))
            guard agent.isRunning else { throw BenchError("the agent exited (status \(agent.terminationStatus)); log: \(stderrURL.path)") }
            tick += 1
            // Churn: the oldest pod goes, a new one comes.
            await removeOldest()
            try await addPod()
            churned += 1
            if tick % 2 == 0 {
                restarts += 1
                var pod = try await client.get(Pod.self, namespace: ns, name: "crashing")
                let cs = """
                    {"name":"app","containerID":"containerd://\(String(repeating: "c", count: 64))","ready":false,"restartCount":\(restarts),
                     "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off restarting failed container"}},
                     "lastState":{"terminated":{"exitCode":3,"reason":"Error","finishedAt":"\(Date().formatted(.iso8601))"}}}
                    """
                var status = PodStatus(phase: "Running")
                status.containerStatuses = [try JSONDecoder().decode(ContainerStatus.self, from: Data(cs.utf8))]
                pod.status = status
                _ = try? await client.updateStatus(pod)
            }
            if tick % 6 == 0 {
                // A real kernel OOM kill in a pod's container: 48 MiB touched under a 32 MiB limit.
                let cg = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: 32 << 20)
                serial += 1
                try await createPod(client, namespace: ns, name: "oom-\(serial)", node: node, containerID: cg.containerID)
                let hog = try TestProcess.allocating(bytes: 48 << 20)
                try cg.add(pid: hog.pid)
                try hog.release()
                let killedBy = ContinuousClock.now + .seconds(10)
                while cg.processes().contains(hog.pid) && ContinuousClock.now < killedBy { try await Task.sleep(for: .milliseconds(100)) }
                if !cg.processes().contains(hog.pid) { kills += 1 }
                hog.kill()
                cg.destroy()
                try? await client.deleteRaw(ResourceType(Pod.self), namespace: ns, name: "oom-\(serial)", options: gone)
            }
            if tick % 3 == 0 {
                let t = (ContinuousClock.now - start).seconds / 60
                let anon = statusKiB(pid, "RssAnon"), rss = statusKiB(pid, "VmRSS")
                let scrape = await scrapeAgent(port: port)
                series.append((t, anon, rss, scrape))
                func mib(_ key: String) -> Double { (scrape[key] ?? .nan) / 1_048_576 }
                var line = String(format: "agent.soak t=%5.1f min  anon %6.1f MiB  rss %6.1f MiB  heap in use %6.1f free %6.1f MiB  arenas %.0f  kills %d  churned %d",
                                  t, Double(anon) / 1024, Double(rss) / 1024, mib("heap_in_use"), mib("heap_free"),
                                  scrape["heap_arenas"] ?? .nan, kills, churned)
                line += "  state " + scrape.filter { !$0.key.hasPrefix("heap_") }.sorted { $0.key < $1.key }
                    .map { "\($0.key)=\(Int($0.value))" }.joined(separator: " ")
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        }
        let hwm = statusKiB(pid, "VmHWM")
        agent.terminate()
        agent.waitUntilExit()
        await removeOldest()
        try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
        try? await client.shutdown()
        await cluster.stop()

        // Growth: a least-squares slope (per hour) over the second half, when start-up allocations are long done.
        let late = series.filter { $0.minutes >= Double(minutes) / 2 }
        func slopePerHour(_ value: (Sample) -> Double?) -> Double {
            var xs: [Double] = [], ys: [Double] = []
            for s in late { if let y = value(s) { xs.append(s.minutes); ys.append(y) } }
            let n = Double(xs.count)
            guard n >= 2 else { return 0 }
            let mx: Double = xs.reduce(0, +) / n, my: Double = ys.reduce(0, +) / n
            var sxy = 0.0, sxx = 0.0
            for (x, y) in zip(xs, ys) {
                sxy += (x - mx) * (y - my)
                sxx += (x - mx) * (x - mx)
            }
            return sxx > 0 ? sxy / sxx * 60 : 0
        }
        let at5 = series.first { $0.minutes >= 5 } ?? series.first
        let last = series.last
        var heap: [Measurement] = []
        if let at5, let inUse = at5.scrape["heap_in_use"], let free = at5.scrape["heap_free"] {
            heap += [Measurement(metric: "heap_in_use_at_5min", value: inUse / 1_048_576, unit: "MiB"),
                     Measurement(metric: "heap_free_at_5min", value: free / 1_048_576, unit: "MiB")]
        }
        if let last, let inUse = last.scrape["heap_in_use"], let free = last.scrape["heap_free"] {
            heap += [Measurement(metric: "heap_in_use_end", value: inUse / 1_048_576, unit: "MiB"),
                     Measurement(metric: "heap_free_end", value: free / 1_048_576, unit: "MiB"),
                     Measurement(metric: "heap_in_use_growth_second_half", value: slopePerHour { $0.scrape["heap_in_use"] } / 1_048_576, unit: "MiB/h"),
                     Measurement(metric: "heap_free_growth_second_half", value: slopePerHour { $0.scrape["heap_free"] } / 1_048_576, unit: "MiB/h"),
                     Measurement(metric: "heap_arenas_end", value: last.scrape["heap_arenas"] ?? 0, unit: "arenas")]
            for (key, value) in last.scrape.sorted(by: { $0.key < $1.key }) where !key.hasPrefix("heap_") {
                heap.append(Measurement(metric: "\(key)_end", value: value, unit: "entries"))
            }
        }
        return heap + [
            Measurement(metric: "minutes", value: Double(minutes), unit: "min"),
            Measurement(metric: "anon_at_5min", value: Double(at5?.anonKiB ?? 0) / 1024, unit: "MiB"),
            Measurement(metric: "anon_end", value: Double(series.last?.anonKiB ?? 0) / 1024, unit: "MiB"),
            Measurement(metric: "anon_growth_second_half", value: slopePerHour { Double($0.anonKiB) } / 1024, unit: "MiB/h"),
            Measurement(metric: "rss_end", value: Double(series.last?.rssKiB ?? 0) / 1024, unit: "MiB"),
            Measurement(metric: "rss_peak", value: Double(hwm) / 1024, unit: "MiB"),
            Measurement(metric: "oom_kills", value: Double(kills), unit: "kills"),
            Measurement(metric: "pods_replaced", value: Double(churned), unit: "pods"),
        ]
    }
}

extension AgentBench {
    /// The agent's heap and state gauges from its /metrics: `heap_in_use`, `heap_free`, `heap_arenas`, `subjects`
    /// and one key per `tapio_state_entries` structure. Empty if the scrape failed (the sample keeps its /proc figures).
    static func scrapeAgent(port: Int) async -> [String: Double] {
        guard let url = URL(string: "http://127.0.0.1:\(port)/metrics"),
              let (data, _) = try? await URLSession.shared.data(from: url) else { return [:] }
        var out: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            func label(_ name: String) -> String? {
                guard let r = series.range(of: name + "=\"") else { return nil }
                return String(series[r.upperBound...].prefix { $0 != "\"" })
            }
            if series.hasPrefix("tapio_process_heap_bytes{"), let state = label("state") {
                out["heap_" + state] = value
            } else if series == "tapio_process_heap_arenas" {
                out["heap_arenas"] = value
            } else if series == "tapio_engine_subjects" {
                out["subjects"] = value
            } else if series.hasPrefix("tapio_state_entries{"), let structure = label("structure"), structure != "engine_subjects" {
                out[structure] = value
            }
        }
        return out
    }
}
