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
    @Test func aDeletionShedByAFullQueueStillResolvesThePodsFindings() async throws {
        var config = CorrelationConfig()
        config.resolveAfter = .seconds(3600)
        let source = ScriptedSource(), sink = RecordingSink(), deletions = PodDeletionLog()
        let pipeline = Pipeline(config: config, sources: [source], attributor: NoAttribution(), sinks: [sink],
                                deletions: deletions, deletionGrace: .milliseconds(200))
        let run = Task { await pipeline.run() }
        let a = PodRef(namespace: "shop", name: "api-0", uid: "u-api-0"), b = PodRef(namespace: "shop", name: "api-1", uid: "u-api-1")
        for pod in [a, b] {
            _ = source.queue.push(.cluster(ClusterEvent(timestampNanos: MonotonicClock.wallNanos(),
                                                        kind: .crashLoopBackOff(ContainerTermination(pod: pod, container: "app",
                                                                                                     restartCount: 6, termination: nil)))))
        }
        // (A generous wait: under the whole suite run in parallel on two cores this took over 20 s.)
        let announced = await eventually(timeout: .seconds(60)) { sink.changes(of: "api-0") == [.new] && sink.changes(of: "api-1") == [.new] }
        // a is deleted and a queue sheds events: a's deletion may be what went, and it never reaches the engine;
        // so is a pod the engine never held, which changes nothing. Then b is deleted with nothing shed since: its
        // event is only late (a deletion applied early would make the engine ignore the pod's events queued before it).
        let seen = MonotonicClock.coarseNanos()
        deletions.record(a, at: seen)
        deletions.record(PodRef(namespace: "shop", name: "other", uid: "u-other"), at: seen)
        deletions.markShed()
        deletions.record(b, at: seen)
        let resolved = await eventually(timeout: .seconds(30)) { sink.changes(of: "api-0").contains(.resolved) ? true : nil }
        let waiting = deletions.waiting.map(\.name)
        run.cancel()
        await run.value
        #expect(announced)
        #expect(resolved == true, "the deleted pod's finding stayed Active: \(sink.changes(of: "api-0"))")
        #expect(sink.changes(of: "api-0") == [.new, .resolved])
        #expect(sink.changes(of: "api-1") == [.new], "b's deletion was not shed: it waits for its event")
        #expect(waiting == ["api-1"], "a's and the other pod's deletions taken, b's waiting: \(waiting)")
    }

    @Test func theLogGivesWhatIsDueAndMaybeShedOldestFirstAndCountsWhatItDrops() {
        let log = PodDeletionLog()
        let pods = (0...PodDeletionLog.capacity).map { PodRef(namespace: "ns", name: "p\($0)", uid: "u\($0)") }
        for (i, pod) in pods.enumerated() { log.record(pod, at: UInt64(i + 1)) }
        #expect(log.dropped == 1, "one past the capacity: the oldest went")
        #expect(log.take(recordedBy: .max, now: 10).isEmpty, "nothing shed yet: every deletion waits for its event")
        log.forget("u2")
        log.markShed()
        #expect(log.take(recordedBy: 1, now: 10).isEmpty, "the dropped one is gone")
        #expect(log.take(recordedBy: 4, now: 10).map(\.name) == ["p1", "p3"], "due, oldest first; p2's event arrived")
        #expect(log.take(recordedBy: 4, now: 10).isEmpty, "taken once")
        log.record(PodRef(namespace: "ns", name: "late", uid: "u-late"), at: 2_000)
        #expect(log.take(recordedBy: .max, now: 2_000).count == PodDeletionLog.capacity - 3, "the late one was recorded after the shed")
        #expect(log.waiting.map(\.name) == ["late"])
        #expect(log.take(recordedBy: .max, now: 2_000 + 601_000_000_000).isEmpty && log.count == 0,
                "not shed, never arrived: let go after ten minutes")
    }
}
