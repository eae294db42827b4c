import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KubeClient
import TapioKube
import TapioModel
import TapioTestSupport
import Testing

/// The real `tapio agent` and `tapio operator` give back their start-up pages once started (`--release-startup-pages`),
/// say so with the figures, and go on working; `/metrics` shows the agent's resident memory by kind.
@Suite(.timeLimit(.minutes(3)))
struct AgentStartupPagesTests {
    @Test func theAgentReleasesItsStartUpPagesOnceStartedAndKeepsRunning() async throws {
        let cluster = try await TestCluster.start()
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        _ = try? await client.create(Namespace(metadata: ObjectMeta(name: "tapio-system")))
        let node = "pages-" + String(UUID().uuidString.lowercased().prefix(8))
        let agent = try BackgroundCommand(tapio: ["agent", "--node-name", node, "--kubeconfig", cluster.kubeconfigPath,
                                                  "--metrics-addr", "127.0.0.1:0", "--log-level", "info",
                                                  "--release-startup-pages-after", "0s"])
        defer { agent.cleanUp() }
        let released = await agent.waitFor(timeout: .seconds(90)) { $0.stderr.contains("released start-up pages of ") }
        var scrape = ""
        if let port = agent.metricsPort, let url = URL(string: "http://127.0.0.1:\(port)/metrics"),
           let (data, _) = try? await URLSession.shared.data(from: url) {
            scrape = String(decoding: data, as: UTF8.self)
        }
        var beating = false
        for _ in 0..<600 where !beating {
            beating = (try? await client.get(Lease.self, namespace: "tapio-system", name: "tapio-agent-\(node)")) != nil
            if !beating { try? await Task.sleep(for: .milliseconds(100)) }
        }
        let (exited, _) = await agent.terminate()
        // What it leaves in tapio-system: its heartbeat and the Insights about this machine's own processes.
        try? await client.delete(Lease.self, namespace: "tapio-system", name: "tapio-agent-\(node)")
        for insight in (try? await client.list(InsightObject.self, namespace: "tapio-system",
                                                options: ListOptions(labelSelector: "tapio.io/node=\(node)")).items) ?? [] {
            try? await client.deleteRaw(ResourceType(InsightObject.self), namespace: "tapio-system", name: insight.metadata.name ?? "")
        }
        try? await client.shutdown()
        await cluster.stop()
        let log = agent.stderr
        #expect(released, "no release logged:\n\(log.suffix(3000))")
        let (line, mappings) = Self.releasedMappings(log)
        #expect((mappings ?? 0) > 0, "\(line)")
        #expect(!log.contains("madvise failed"), "\(log.suffix(3000))")
        #expect(scrape.contains(#"tapio_process_resident_bytes{kind="file"}"#), "\(scrape.prefix(2000))")
        #expect(beating, "the agent never wrote its heartbeat Lease")
        #expect(exited && agent.process.terminationStatus == 0, "exit status \(agent.process.terminationStatus)")
    }

    /// "released start-up pages of N mappings: resident files A → B MiB, …": the line and N (the program's own code
    /// at least, so N > 0).
    static func releasedMappings(_ log: String) -> (line: String, mappings: Int?) {
        let line = log.split(separator: "\n").first { $0.contains("released start-up pages of ") }.map(String.init) ?? ""
        return (line, line.components(separatedBy: "released start-up pages of ").last?.split(separator: " ").first.flatMap { Int($0) })
    }

    /// The operator runs the same binary as the agent on one of the nodes: pages it keeps mapped stay in the page
    /// cache, where the agent's faults map them again. The leader releases once its watches are listed, and a
    /// policy created after the release is still judged.
    @Test func theOperatorReleasesItsStartUpPagesOnceListedAndStillJudgesPolicies() async throws {
        let cluster = try await TestCluster.start()
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        _ = try? await client.create(Namespace(metadata: ObjectMeta(name: "tapio-system")))
        let op = try BackgroundCommand(tapio: ["operator", "--kubeconfig", cluster.kubeconfigPath, "--metrics-addr", "127.0.0.1:0",
                                               "--log-level", "info", "--release-startup-pages-after", "0s"])
        defer { op.cleanUp() }
        let released = await op.waitFor(timeout: .seconds(90)) { $0.stderr.contains("released start-up pages of ") }
        let name = "after-release-" + cluster.namespace
        var accepted: StatusCondition?
        if released {
            _ = try await client.create(PolicyObject(metadata: KubeObjectMeta(name: name), spec: TapioPolicySpec()))
            for _ in 0..<600 where accepted == nil {
                accepted = (try? await client.get(PolicyObject.self, name: name))?.status?.condition("Accepted")
                if accepted == nil { try? await Task.sleep(for: .milliseconds(100)) }
            }
            try? await client.deleteRaw(ResourceType(PolicyObject.self), namespace: nil, name: name)
        }
        let (exited, _) = await op.terminate()
        try? await client.shutdown()
        await cluster.stop()
        let log = op.stderr
        #expect(released, "no release logged:\n\(log.suffix(3000))")
        let (line, mappings) = Self.releasedMappings(log)
        #expect((mappings ?? 0) > 0, "\(line)")
        #expect(accepted?.status == .true, "the policy created after the release was not accepted: \(String(describing: accepted))\n\(log.suffix(3000))")
        #expect(exited && op.process.terminationStatus == 0, "exit status \(op.process.terminationStatus)")
    }
}
