import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KubeClient
import KubeEmulator
import TapioTestSupport
import Testing

/// The real `tapio agent` and `tapio operator` binaries against an API server that turns hostile while they run:
/// on SIGTERM they still exit 0 within the 30 s a pod is given, and while it lasts they back off, count and log.
@Suite(.serialized)
struct HostileServerLifecycleTests {
    static let modes: [Misbehaviour] = [.expireWatchesInStream, .status(500), .redirectLoop, .endlessWatchLine, .neverAnswer]

    /// Turns the emulator hostile and waits until the process has met it: its open watches are cut, so it reopens
    /// them into the misbehaviour, and two requests have arrived since.
    func turnHostile(_ emu: KubeEmulator, _ mode: Misbehaviour) async -> Bool {
        let before = emu.requestCount
        emu.misbehave(mode)
        emu.dropWatches()
        return await eventually(timeout: .seconds(30), every: .milliseconds(50)) { emu.requestCount >= before + 2 }
    }

    @Test(.timeLimit(.minutes(3)), arguments: modes)
    func theAgentExitsZeroWithinTheGracePeriodOnSIGTERMWhileTheServerMisbehaves(_ mode: Misbehaviour) async throws {
        let cluster = try await TestCluster.start()
        guard let emu = cluster.requireEmulator() else { return await cluster.stop() }
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        _ = try? await client.create(Namespace(metadata: ObjectMeta(name: "tapio-system")))
        let node = "hostile-" + String(UUID().uuidString.lowercased().prefix(8))
        let agent = try BackgroundCommand(tapio: ["agent", "--node-name", node, "--kubeconfig", cluster.kubeconfigPath, "--metrics-addr", "127.0.0.1:0"])
        defer { agent.cleanUp() }
        let beating = await eventually(timeout: .seconds(30), every: .milliseconds(50)) {
            (try? await client.get(Lease.self, namespace: "tapio-system", name: "tapio-agent-\(node)")) != nil
        }
        let met = await turnHostile(emu, mode)
        let (exited, after) = await agent.terminate()
        try? await client.shutdown()
        await cluster.stop()
        #expect(beating, "the agent never wrote its heartbeat Lease")
        #expect(met, "the agent made no request after the server turned \(mode)")
        #expect(exited, "the agent ignored SIGTERM for 30 s while the server was \(mode)\n\(agent.stderr.suffix(3000))")
        if exited { #expect(agent.process.terminationStatus == 0, "exit status \(agent.process.terminationStatus) after \(after)") }
        print("agent, \(mode): exited \(after) after SIGTERM")
    }

    @Test(.timeLimit(.minutes(3)), arguments: modes)
    func theLeadingOperatorExitsZeroWithinTheGracePeriodOnSIGTERMWhileTheServerMisbehaves(_ mode: Misbehaviour) async throws {
        let cluster = try await TestCluster.start()
        guard let emu = cluster.requireEmulator() else { return await cluster.stop() }
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        _ = try await client.create(Namespace(metadata: ObjectMeta(name: cluster.namespace)))
        let id = "op-\(cluster.namespace)"
        let op = try BackgroundCommand(tapio: ["operator", "--leader-elect", "--namespace", cluster.namespace, "--identity", id,
                            "--kubeconfig", cluster.kubeconfigPath, "--metrics-addr", "127.0.0.1:0"])
        defer { op.cleanUp() }
        let leading = await eventually(timeout: .seconds(30), every: .milliseconds(50)) {
            (try? await client.get(Lease.self, namespace: cluster.namespace, name: "tapio-operator"))?.spec?.holderIdentity == id
        }
        let met = await turnHostile(emu, mode)
        let (exited, after) = await op.terminate()
        try? await client.shutdown()
        await cluster.stop()
        #expect(leading, "the operator never took the Lease")
        #expect(met, "the operator made no request after the server turned \(mode)")
        #expect(exited, "the operator ignored SIGTERM for 30 s while the server was \(mode)\n\(op.stderr.suffix(3000))")
        if exited { #expect(op.process.terminationStatus == 0, "exit status \(op.process.terminationStatus) after \(after)") }
        print("operator, \(mode): exited \(after) after SIGTERM")
    }

    @Test(.timeLimit(.minutes(3)))
    func theAgentRelistsEverSlowerWhenEveryWatchAnswers410AndCountsAndLogsIt() async throws {
        let cluster = try await TestCluster.start()
        guard let emu = cluster.requireEmulator() else { return await cluster.stop() }
        let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
        _ = try? await client.create(Namespace(metadata: ObjectMeta(name: "tapio-system")))
        let podWatches = "/api/v1/pods?watch=true"
        emu.misbehave(.expireWatchesInStream, pathContains: podWatches)
        let node = "relist-" + String(UUID().uuidString.lowercased().prefix(8))
        let agent = try BackgroundCommand(tapio: ["agent", "--node-name", node, "--kubeconfig", cluster.kubeconfigPath, "--metrics-addr", "127.0.0.1:0"])
        defer { agent.cleanUp() }
        // Five watches of its pods: four failures in between, which the reflector schedule spaces by at least
        // 0 + 0.8 + 1.6 + 3.2 s (before: ~44 relists a second).
        #expect(await eventually(timeout: .seconds(60), every: .milliseconds(50)) { emu.requestTimes(containing: podWatches).count >= 5 })
        let times = emu.requestTimes(containing: podWatches)
        let least = BackoffSchedule.reflector.minimumTotal(failures: 4)
        if times.count >= 5 { #expect(times[4] - times[0] >= least, "5 watches in \(times[4] - times[0]), less than \(least)") }
        let port = try #require(agent.metricsPort, "no metrics port in the log:\n\(agent.stderr.suffix(2000))")
        let (data, _) = try await URLSession.shared.data(from: try #require(URL(string: "http://127.0.0.1:\(port)/metrics")))
        let scrape = String(decoding: data, as: UTF8.self)
        let watchErrors = scrape.split(separator: "\n").first { $0.hasPrefix("tapio_api_errors_total{verb=\"WATCH\"}") }
        let count = watchErrors.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(count >= 4, "tapio_api_errors_total{verb=\"WATCH\"} is \(count):\n\(scrape.prefix(3000))")
        let log = agent.stderr.split(separator: "\n").filter { $0.contains("watch pods") && $0.contains("relisting") }
        #expect(log.contains { $0.contains(" info ") }, "the first relist is logged at info:\n\(log.joined(separator: "\n"))")
        #expect(log.contains { $0.contains(" warning ") }, "repeats at warning:\n\(log.joined(separator: "\n"))")
        #expect(log.count <= 4, "rate-limited to a line per kind per 30 s:\n\(log.joined(separator: "\n"))")
        let (exited, _) = await agent.terminate()
        #expect(exited)
        print("agent under a persistent in-stream 410: \(emu.requestTimes(containing: podWatches).count) pod watches in \(ContinuousClock.now - times[0])")
        try? await client.shutdown()
        await cluster.stop()
    }
}
