import Foundation
import KubeClient
import TapioKube
import TapioTestSupport
import Testing
import Yams

/// The real `tapio operator` and `tapio agent` binaries, started with the command and arguments of the shipped
/// manifests (so a flag the binary does not know fails here, not in a cluster), against the API server through a
/// kubeconfig: they run, and on SIGTERM they finish, release the election Lease, and exit 0 within the 30 s a pod
/// is given.
@Suite(.serialized)
struct AgentOperatorLifecycleTests {
    /// `command` + `args` of the first container in a manifest, with `$(VAR)` references replaced.
    func manifestArguments(_ file: String, _ vars: [String: String]) throws -> [String] {
        let text = try String(contentsOf: CommandRunner.repositoryRoot.appendingPathComponent(file), encoding: .utf8)
        let doc = try #require(try Yams.load(yaml: text) as? [String: Any])
        let spec = ((doc["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
        let container = try #require((spec?["containers"] as? [[String: Any]])?.first, "no container in \(file)")
        let words = ((container["command"] as? [String]) ?? []) + ((container["args"] as? [String]) ?? [])
        #expect(words.first == "tapio", "\(file) does not run tapio: \(words)")
        return words.dropFirst().map { w in vars.reduce(w) { $0.replacingOccurrences(of: "$(\($1.key))", with: $1.value) } }
    }

    func launch(_ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = CommandRunner.tapioExecutable
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    func stop(_ p: Process, signal: Int32 = SIGTERM) async throws -> (exited: Bool, seconds: Double) {
        let start = ContinuousClock.now
        kill(p.processIdentifier, signal)
        for _ in 0..<300 where p.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        let elapsed = ContinuousClock.now - start
        return (!p.isRunning, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    @Test(.timeLimit(.minutes(3))) func theOperatorReleasesItsElectionLeaseAndExitsZeroOnSIGTERM() async throws {
        let cluster = try await TestCluster.start()
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        // Its own namespace for the Lease, so a real cluster's operator is never disturbed.
        _ = try await client.create(Namespace(metadata: ObjectMeta(name: cluster.namespace)))
        let id = "op-\(cluster.namespace)"
        let args = try manifestArguments("config/operator/deployment.yaml", ["POD_NAMESPACE": cluster.namespace, "POD_NAME": id])
        #expect(args.contains("--leader-elect"), "the Deployment runs more than one replica: it must elect")
        let p = try launch(args + ["--kubeconfig", cluster.kubeconfigPath, "--metrics-addr", "127.0.0.1:0"])
        defer { if p.isRunning { p.terminate() } }
        func holder() async -> String? {
            (try? await client.get(Lease.self, namespace: cluster.namespace, name: "tapio-operator"))?.spec?.holderIdentity
        }
        let held = await eventually { await holder() == id ? true : nil }
        let (exited, seconds) = try await stop(p)
        let after = await holder()
        try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: cluster.namespace)
        try? await client.shutdown()
        await cluster.stop()
        #expect(held == true, "the operator never took the Lease")
        #expect(exited, "the operator did not exit within 30 s of SIGTERM")
        if exited { #expect(p.terminationStatus == 0, "exit status \(p.terminationStatus) after \(seconds) s") }
        #expect(after == nil || after == "", "the Lease is still held by \(after ?? "")")
    }

    @Test(.timeLimit(.minutes(3))) func theAgentExitsZeroOnSIGTERM() async throws {
        let cluster = try await TestCluster.start()
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        _ = try? await client.create(Namespace(metadata: ObjectMeta(name: "tapio-system")))
        let node = "lifecycle-" + String(UUID().uuidString.lowercased().prefix(8))
        var args = try manifestArguments("config/agent/daemonset.yaml", ["POD_NAMESPACE": "tapio-system", "NODE_NAME": node])
        // The manifest's state file is the node's /var/lib/tapio: here a directory of the test's own (not yet
        // there: the agent creates it).
        let stateDir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-state-\(node)")
        defer { try? FileManager.default.removeItem(at: stateDir) }
        let stateAt = try #require(args.firstIndex(of: "--state-file"), "the DaemonSet passes no --state-file") + 1
        args[stateAt] = stateDir.appendingPathComponent("engine-memory").path
        let p = try launch(args + ["--kubeconfig", cluster.kubeconfigPath, "--metrics-addr", "127.0.0.1:0"])
        defer { if p.isRunning { p.terminate() } }
        // Running for real once its heartbeat Lease exists.
        let beating = await eventually {
            (try? await client.get(Lease.self, namespace: "tapio-system", name: "tapio-agent-\(node)")) != nil ? true : nil
        }
        let signalled = Date()
        let (exited, seconds) = try await stop(p)
        // What it leaves in tapio-system: its heartbeat and the Insights about this machine's own processes.
        try? await client.deleteRaw(ResourceType(Lease.self), namespace: "tapio-system", name: "tapio-agent-\(node)")
        for insight in (try? await client.list(InsightObject.self, namespace: "tapio-system",
                                                options: ListOptions(labelSelector: "tapio.io/node=\(node)")).items) ?? [] {
            try? await client.deleteRaw(ResourceType(InsightObject.self), namespace: "tapio-system", name: insight.metadata.name ?? "")
        }
        try? await client.shutdown()
        await cluster.stop()
        #expect(beating == true, "the agent never wrote its heartbeat Lease")
        #expect(exited, "the agent did not exit within 30 s of SIGTERM")
        if exited { #expect(p.terminationStatus == 0, "exit status \(p.terminationStatus) after \(seconds) s") }
        // Its last act: the engine's memory written for the next start, whole (the temporary file renamed over it).
        let state = try? Data(contentsOf: stateDir.appendingPathComponent("engine-memory"))
        #expect(state.map { $0.starts(with: Array("TAPIOMEM".utf8)) } == true, "no state file written at shutdown")
        let written = (try? FileManager.default.attributesOfItem(atPath: stateDir.appendingPathComponent("engine-memory").path))?[.modificationDate] as? Date
        #expect(written.map { $0.timeIntervalSince(signalled) > -0.5 } == true, "the state file was last written at \(String(describing: written)), before SIGTERM at \(signalled)")
        #expect(!FileManager.default.fileExists(atPath: stateDir.appendingPathComponent("engine-memory.tmp").path))
    }
}
