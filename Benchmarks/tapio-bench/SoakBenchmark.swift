import Foundation
import KubeClient
import TapioKube
import TapioModel
import TapioTestSupport

/// The agent over a long run with churn (issue 17, item 7: on the real node its anonymous memory rose ~0.7 MB/min
/// with no plateau). Reports memory over time — the series on stderr, the figures on stdout.
let soakBenchmarks: [Benchmark] = [
    Benchmark(name: "agent.soak",
              summary: "the tapio binary as an agent for TAPIO_SOAK_MINUTES (default 60) with churn: 40 pods with real limited cgroups, one replaced every 10 s, a real kernel OOM kill every 60 s, a crash-looping container; anonymous memory sampled every 30 s (root; build the tapio product too)") {
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
        func removeOldest() async {
            guard !idle.isEmpty else { return }
            let p = idle.removeFirst()
            try? await client.deleteRaw(ResourceType(Pod.self), namespace: ns, name: p.name)
            p.sleeper.kill()
            p.cgroup.destroy()
        }
        defer { for p in idle { p.sleeper.kill(); p.cgroup.destroy() } }
        for _ in 0..<pods { try await addPod() }

        // A container that keeps failing, as the kubelet reports it: restarts rise, the last state is an error.
        try await createPod(client, namespace: ns, name: "crashing", node: node, containerID: String(repeating: "c", count: 64))
        var restarts: Int32 = 0

        let stderrURL = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-soak-\(node).log")
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: tapio)
        agent.arguments = ["agent", "--kubeconfig", cluster.kubeconfigPath, "--node-name", node,
                           "--metrics-addr", "127.0.0.1:0", "--log-level", "warning"]
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = try FileHandle(forWritingTo: stderrURL)
        try agent.run()
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        let pid = agent.processIdentifier

        let start = ContinuousClock.now
        let end = start + .seconds(minutes * 60)
        var series: [(minutes: Double, anonKiB: UInt64, rssKiB: UInt64)] = []
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
                try? await client.deleteRaw(ResourceType(Pod.self), namespace: ns, name: "oom-\(serial)")
            }
            if tick % 3 == 0 {
                let t = (ContinuousClock.now - start).seconds / 60
                let anon = statusKiB(pid, "RssAnon"), rss = statusKiB(pid, "VmRSS")
                series.append((t, anon, rss))
                FileHandle.standardError.write(Data(String(format: "agent.soak t=%5.1f min  anon %6.1f MiB  rss %6.1f MiB  kills %d  churned %d\n",
                                                           t, Double(anon) / 1024, Double(rss) / 1024, kills, churned).utf8))
            }
        }
        let hwm = statusKiB(pid, "VmHWM")
        agent.terminate()
        agent.waitUntilExit()
        await removeOldest()
        try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
        try? await client.shutdown()
        await cluster.stop()

        // Growth: a least-squares slope over the second half, when start-up allocations are long done.
        let late = series.filter { $0.minutes >= Double(minutes) / 2 }
        let n = Double(late.count)
        var slope = 0.0
        if n >= 2 {
            let mx = late.map(\.minutes).reduce(0, +) / n, my = late.map { Double($0.anonKiB) }.reduce(0, +) / n
            let sxy = late.map { ($0.minutes - mx) * (Double($0.anonKiB) - my) }.reduce(0, +)
            let sxx = late.map { ($0.minutes - mx) * ($0.minutes - mx) }.reduce(0, +)
            slope = sxx > 0 ? sxy / sxx : 0
        }
        let at5 = series.first { $0.minutes >= 5 } ?? series.first
        return [
            Measurement(metric: "minutes", value: Double(minutes), unit: "min"),
            Measurement(metric: "anon_at_5min", value: Double(at5?.anonKiB ?? 0) / 1024, unit: "MiB"),
            Measurement(metric: "anon_end", value: Double(series.last?.anonKiB ?? 0) / 1024, unit: "MiB"),
            Measurement(metric: "anon_growth_second_half", value: slope * 60 / 1024, unit: "MiB/h"),
            Measurement(metric: "rss_end", value: Double(series.last?.rssKiB ?? 0) / 1024, unit: "MiB"),
            Measurement(metric: "rss_peak", value: Double(hwm) / 1024, unit: "MiB"),
            Measurement(metric: "oom_kills", value: Double(kills), unit: "kills"),
            Measurement(metric: "pods_replaced", value: Double(churned), unit: "pods"),
        ]
    }
}
