import Foundation
import Synchronization
import TapioAgent
import TapioCorrelation
import TapioModel
import TapioNode
import TapioSinks
import TapioTestSupport
import Testing

/// The engine hears of a pod's deletion through bounded queues that shed their oldest events when full; a shed
/// deletion left the pod's findings Active until `resolveAfter` ran out (an hour here). The sniffer's deletion log
/// beside the queues gives the pipeline the deletion anyway.
@Suite(.timeLimit(.minutes(2)))
struct PodDeletionLogTests {
    struct NoAttribution: Attributor {
        func attribute(_ event: NodeEvent) -> (subject: Subject?, context: SubjectContext?) { (nil, nil) }
        func observe(_ event: ClusterEvent) {}
    }

    final class Recorded: InsightSink {
        let updates = Mutex<[InsightUpdate]>([])
        func emit(_ u: [InsightUpdate]) async { updates.withLock { $0 += u } }
        func changes(of pod: String) -> [InsightChange] {
            updates.withLock { $0.filter { $0.identity.subject.pod?.name == pod }.map(\.change) }
        }
    }

    @Test func aDeletionShedByAFullQueueStillResolvesThePodsFindings() async throws {
        var config = CorrelationConfig()
        config.resolveAfter = .seconds(3600)
        let source = ScriptedSource(), sink = Recorded(), deletions = PodDeletionLog()
        let pipeline = Pipeline(config: config, sources: [source], attributor: NoAttribution(), sinks: [sink],
                                deletions: deletions, deletionGrace: .milliseconds(200))
        let run = Task { await pipeline.run() }
        let a = PodRef(namespace: "shop", name: "api-0", uid: "u-api-0"), b = PodRef(namespace: "shop", name: "api-1", uid: "u-api-1")
        for pod in [a, b] {
            _ = source.queue.push(.cluster(ClusterEvent(timestampNanos: MonotonicClock.wallNanos(),
                                                        kind: .crashLoopBackOff(ContainerTermination(pod: pod, container: "app",
                                                                                                     restartCount: 6, termination: nil)))))
        }
        let announced = await eventually { sink.changes(of: "api-0") == [.new] && sink.changes(of: "api-1") == [.new] }
        // a is deleted; its event never reaches the engine (shed), only the log has it — with a pod the engine never
        // held, which changes nothing.
        deletions.record(a, at: MonotonicClock.wallNanos())
        deletions.record(PodRef(namespace: "shop", name: "other", uid: "u-other"), at: MonotonicClock.wallNanos())
        let resolved = await eventually(timeout: .seconds(30)) { sink.changes(of: "api-0").contains(.resolved) ? true : nil }
        let taken = await eventually { deletions.take(recordedBy: .max).isEmpty }
        run.cancel()
        await run.value
        #expect(announced)
        #expect(resolved == true, "the deleted pod's finding stayed Active: \(sink.changes(of: "api-0"))")
        #expect(sink.changes(of: "api-0") == [.new, .resolved])
        #expect(sink.changes(of: "api-1") == [.new], "a pod not deleted keeps its finding")
        #expect(taken, "the pipeline took what was due")
    }

    @Test func theLogGivesWhatIsDueOldestFirstAndCountsWhatItDrops() {
        let log = PodDeletionLog()
        let pods = (0...PodDeletionLog.capacity).map { PodRef(namespace: "ns", name: "p\($0)", uid: "u\($0)") }
        for (i, pod) in pods.enumerated() { log.record(pod, at: UInt64(i + 1)) }
        #expect(log.dropped == 1, "one past the capacity: the oldest went")
        #expect(log.take(recordedBy: 1).isEmpty, "the dropped one is gone")
        #expect(log.take(recordedBy: 3).map(\.name) == ["p1", "p2"])
        #expect(log.take(recordedBy: 3).isEmpty, "taken once")
        #expect(log.take(recordedBy: .max).count == PodDeletionLog.capacity - 2)
    }
}
