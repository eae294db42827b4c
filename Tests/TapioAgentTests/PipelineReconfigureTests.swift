import Foundation
import Synchronization
import TapioAgent
import TapioCorrelation
import TapioModel
import TapioNode
import TapioSinks
import TapioTestSupport
import Testing

/// A policy change starts the pipeline's engine afresh; the findings the old one held are adopted, and resolved by
/// the new one when they do not come back. Including one the old engine's last batch announced at that very moment:
/// adopted as never announced, it was never resolved, and its Insight stayed Active.
@Suite(.timeLimit(.minutes(2)))
struct PipelineReconfigureTests {
    @Test func aFindingAnnouncedByTheOldEnginesLastBatchIsStillResolved() async throws {
        var config = CorrelationConfig()
        // Cluster events wait for their batch: the crash loop is announced only when the batch is run, by the
        // reconfiguration's flush.
        config.batchSize = 1000
        config.batchTimeout = .seconds(60)
        config.window = .seconds(1)
        config.resolveAfter = .seconds(1)
        let source = ScriptedSource(), sink = RecordingSink()
        let pipeline = Pipeline(config: config, sources: [source], attributor: NoAttribution(), sinks: [sink])
        let run = Task { await pipeline.run() }
        let pod = PodRef(namespace: "shop", name: "api-0", uid: "u-api-0")
        _ = source.queue.push(.cluster(ClusterEvent(timestampNanos: MonotonicClock.wallNanos(),
                                                    kind: .crashLoopBackOff(ContainerTermination(pod: pod, container: "app",
                                                                                                 restartCount: 6, termination: nil)))))
        let ingested = await eventually(timeout: .seconds(60)) { pipeline.status.events >= 1 }
        #expect(sink.changes(of: "api-0").isEmpty, "announced before its batch ran")
        var changed = config
        changed.batchTimeout = .seconds(59)
        pipeline.reconfigure(changed)
        // Announced by the flush, then — not seen again by the new engine — resolved after its window and resolveAfter.
        let resolved = await eventually(timeout: .seconds(30)) { sink.changes(of: "api-0").contains(.resolved) ? true : nil }
        run.cancel()
        await run.value
        #expect(ingested)
        #expect(sink.changes(of: "api-0").first == .new)
        #expect(resolved == true, "the finding stayed active: \(sink.changes(of: "api-0"))")
    }
}
