import Foundation
import KubeClient
import TapioCorrelation
import TapioInsightWriter
import TapioKube
import TapioModel
import TapioTestSupport
import Testing

/// What the writer says of itself for the heartbeat: `writtenThrough` does not move past an update still waiting to be
/// written, and catches up once it is (the operator resolves a restarted agent's old Insights only after that).
@Suite(.timeLimit(.minutes(2)))
struct InsightWriterTests {
    @Test func writtenThroughWaitsForWhatIsPending() async throws {
        try await TestCluster.with { cluster in
            guard let emulator = cluster.requireEmulator() else { return }
            let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
            let ns = cluster.namespace
            _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: ns)))
            let writer = InsightWriter(client: client, recorder: nil, nodeName: "n", ownNamespace: ns)
            let idle = writer.writtenThrough
            #expect(abs(idle.timeIntervalSinceNow) < 5, "idle: now")
            // The server fails the writes, as an overloaded one would, until the test lets them through.
            emulator.injectFaults(status: 503, count: 10_000, pathContains: "/insights")
            let subject = Subject.podContainer(PodRef(namespace: ns, name: "p", uid: "u"), container: "app")
            let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "t", summary: "s", subject: subject.resourceRef)
            await writer.emit([InsightUpdate(identity: InsightIdentity(type: .oomKilled, subject: subject), spec: spec, change: .new,
                                             observedAt: 1, firstSeenAt: 1, occurrences: 1)])
            let emitted = Date()
            await writer.flush()
            let failing = writer.writtenThrough
            #expect(writer.pendingCount == 1, "a 503 keeps the update")
            #expect(failing <= emitted, "not past the update still waiting: \(failing) vs \(emitted)")
            await writer.flush()
            #expect(writer.pendingCount == 1 && writer.writtenThrough == failing, "still failing: it stays where it was")
            emulator.clearFaults()
            let run = Task { await writer.run() }
            let written = await eventually(timeout: .seconds(60)) { writer.written == 1 ? true : nil }
            let caughtUp = writer.writtenThrough
            run.cancel()
            _ = await run.value
            try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            try await client.shutdown()
            #expect(written == true, "never written")
            #expect(caughtUp > emitted, "written: caught up")
        }
    }
}
