import Foundation
import KubeClient
import KubeRuntime
import TapioTestSupport
import Testing

/// Objects whose fields anyone with write access (or a hostile server) can set to the edge of their type: the runtime
/// must keep running. Found by the trap audit of issue 16.
@Suite("Hostile field values in API objects", .timeLimit(.minutes(3)))
struct HostileObjectTests {
    /// A free Lease whose `leaseTransitions` is Int32.max: taking it used to overflow (every operator replica trapped
    /// on its next attempt). It stays at Int32.max: a wrapped, negative count would be refused by the API server.
    @Test func aFreeLeaseWithTransitionsAtInt32MaxIsTakenAndTheCountSaturates() async throws {
        try await withCluster { _, client, ns in
            var spec = Lease.Spec()
            spec.holderIdentity = ""
            spec.leaseTransitions = Int32.max
            _ = try await client.create(Lease(metadata: ObjectMeta(name: "lock", namespace: ns), spec: spec))
            let cfg = LeaderElectionConfig(leaseDuration: .seconds(1), renewDeadline: .milliseconds(700), retryPeriod: .milliseconds(100))
            let e = LeaderElector(client: client, namespace: ns, name: "lock", identity: "heir", config: cfg)
            let gained = Box(false)
            let t = Task { await e.run { c in if c == .gained { gained.with { $0 = true } } } }
            #expect(await eventually { gained.get })
            let l = try await client.get(Lease.self, namespace: ns, name: "lock")
            t.cancel()
            await t.value
            #expect(l.spec?.holderIdentity == "heir")
            #expect(l.spec?.leaseTransitions == Int32.max)
        }
    }
}

@Suite("A client's lifetime", .timeLimit(.minutes(2)))
struct ClientLifetimeTests {
    /// A test that threw before its clean-up used to crash the whole test process (AsyncHTTPClient traps in debug
    /// builds on an HTTPClient released while running), and a process that drops a client leaked its connections.
    @Test func aClientDroppedWithoutShutdownClosesItselfInsteadOfTrapping() async throws {
        let cluster = try await TestCluster.start()
        do {
            let dropped = try KubeClient(config: KubeConfig.load(path: cluster.kubeconfigPath))
            _ = try await dropped.list(Namespace.self)
        }
        // Reaching this line is the assertion; the client after it still works, and shutting down twice is harmless.
        let client = try KubeClient(config: KubeConfig.load(path: cluster.kubeconfigPath))
        #expect(try await client.list(Namespace.self).metadata.resourceVersion != nil)
        try await client.shutdown()
        try await client.shutdown()
        await cluster.stop()
    }
}

@Suite("Lease times", .timeLimit(.minutes(2)))
struct LeaseTimeTests {
    /// The real server decodes a Lease's renewTime and acquireTime as metav1.MicroTime — exactly six fractional
    /// digits — and refuses anything else with 400; the emulator accepted it, and a test passed there only.
    @Test func aLeaseTimeWithoutMicrosecondsIsRefusedAsTheRealServerRefusesIt() async throws {
        try await withCluster { _, client, ns in
            var spec = Lease.Spec()
            spec.renewTime = "2026-12-02T01:55:21Z"
            let refused = await #expect(throws: KubeError.self) {
                _ = try await client.create(Lease(metadata: ObjectMeta(name: "seconds", namespace: ns), spec: spec))
            }
            let message = "\(refused.map { "\($0)" } ?? "")"
            #expect(message.contains(#"cannot be handled as a Lease: parsing time "2026-12-02T01:55:21Z""#), "\(message)")
            spec.renewTime = "2026-12-02T01:55:21.000000Z"
            _ = try await client.create(Lease(metadata: ObjectMeta(name: "micro", namespace: ns), spec: spec))
        }
    }
}
