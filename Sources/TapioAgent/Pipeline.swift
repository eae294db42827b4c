import Foundation
import Logging
import Synchronization
import TapioCorrelation
import TapioModel
import TapioNode
import TapioSinks

/// Says which subject a node event is about (the pid/cgroup → container → pod translator behind it).
public protocol Attributor: Sendable {
    func attribute(_ event: NodeEvent) -> (subject: Subject?, context: SubjectContext?)
    /// Called for every cluster event before the engine sees it (a pod directory learns pods from these).
    func observe(_ event: ClusterEvent)
    /// Whether `subject` may be only what the caches know so far for an event too important to misattribute;
    /// the pipeline then holds the event and asks ``reattribute(_:)`` again shortly.
    func shouldRetry(_ event: NodeEvent, subject: Subject?) -> Bool
    /// Fresh attributions for held events, looking past caches that may be stale.
    func reattribute(_ events: [NodeEvent]) -> [(subject: Subject?, context: SubjectContext?)]
}

extension Attributor {
    public func shouldRetry(_ event: NodeEvent, subject: Subject?) -> Bool { false }
    public func reattribute(_ events: [NodeEvent]) -> [(subject: Subject?, context: SubjectContext?)] {
        events.map { attribute($0) }
    }
}

/// Sources → attribution → correlation engine → sinks, with bounded queues between the stages.
///
/// Each source is drained by its own task that attributes node events (so attribution runs beside the engine)
/// and pushes into one bounded merge queue; one task owns the engine and feeds it batches, waiting for events only
/// until the engine has timed work (a partial batch's timeout, housekeeping), so partial batches and resolutions
/// happen without new events and an idle pipeline does not wake up needlessly. Everything a full queue drops is
/// counted in ``PipelineStatus/shedByStage``.
public final class Pipeline: Sendable {
    enum Item: Sendable {
        case event(AttributedEvent)
    }

    public let config: CorrelationConfig
    let sources: [any EventSource]
    let attributor: any Attributor
    let sinks: [any InsightSink]
    let merged: BoundedQueue<Item>
    let retry = AttributionRetry()
    let filter: @Sendable (InsightUpdate) -> Bool
    /// Pod deletions seen beside the sources' queues (``PodDeletionLog``), applied ``deletionGrace`` after they were
    /// seen if a queue shed events meanwhile, their own has not reached the engine, and it still holds the pod.
    let deletions: PodDeletionLog?
    let deletionGrace: UInt64
    /// Where the engine's memory beyond its window is kept across restarts (nil: nowhere), and how often it is written.
    let memoryFile: EngineMemoryFile?
    let checkpointNanos: UInt64
    let logger: Logger
    private let current = Mutex(PipelineStatus())
    private let nextConfig = Mutex<CorrelationConfig?>(nil)

    /// - Parameter filter: which updates reach the sinks (e.g. a namespace filter); all by default. A finding it let
    ///   out is followed by its resolution whatever it says then (``PublishedFindings``).
    public init(config: CorrelationConfig, sources: [any EventSource], attributor: any Attributor,
                sinks: [any InsightSink], queueCapacity: Int = 65_536, deletions: PodDeletionLog? = nil,
                deletionGrace: Duration = .seconds(10), memoryFile: EngineMemoryFile? = nil,
                checkpointEvery: Duration = .seconds(60), logger: Logger = Logger(label: "tapio.pipeline"),
                filter: @escaping @Sendable (InsightUpdate) -> Bool = { _ in true }) {
        self.config = config
        self.sources = sources
        self.attributor = attributor
        self.sinks = sinks
        self.merged = BoundedQueue(capacity: queueCapacity, policy: .dropOldest)
        self.logger = logger
        self.filter = filter
        self.deletions = deletions
        self.deletionGrace = deletionGrace.nanos
        self.memoryFile = memoryFile
        self.checkpointNanos = max(checkpointEvery.nanos, 1_000_000_000)
    }

    /// Switches the engine to a new configuration (a policy changed). The engine starts over with the new
    /// windows and thresholds, keeping the active findings: each is updated on its next detection, or resolved once
    /// `resolveAfter` passes without one (``CorrelationEngine/adoptActiveFindings(of:now:)``).
    public func reconfigure(_ config: CorrelationConfig) {
        nextConfig.withLock { $0 = config }
    }

    /// A snapshot of the counters.
    public var status: PipelineStatus { current.withLock { $0 } }

    /// Runs until the task is cancelled (or every source ends); then flushes the engine once more.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for source in sources {
                group.addTask { await self.drain(source) }
            }
            group.addTask { await self.retryLoop() }
            await self.correlate()
            group.cancelAll()
        }
    }

    /// Attributes what a source queued and hands it to the engine's queue a batch at a time (one wake-up of the
    /// engine's task per batch, not per event); an OOM kill in it wakes the engine at once.
    private func drain(_ source: any EventSource) async {
        let queue = source.events()
        var out: [Item] = []
        await withTaskCancellationHandler {
            while let batch = await queue.nextBatch(max: 256) {
                out.reserveCapacity(batch.count)
                var urgent = false
                for e in batch {
                    switch e {
                    case .node(let n):
                        let (subject, context) = attributor.attribute(n)
                        if attributor.shouldRetry(n, subject: subject), retry.hold(n, now: MonotonicClock.coarseNanos()) {
                            continue
                        }
                        if n.isUrgent { urgent = true }
                        out.append(.event(.node(n, subject: subject, context: context)))
                    case .cluster(let c):
                        attributor.observe(c)
                        out.append(.event(.cluster(c)))
                    }
                }
                // Something older was shed: perhaps a pod deletion (``PodDeletionLog``).
                if merged.push(contentsOf: out, urgent: urgent) > 0 { deletions?.markShed() }
                out.removeAll(keepingCapacity: true)
            }
        } onCancel: {
            queue.finish()
        }
    }


    /// Releases held events once they name a pod's container or their schedule runs out (``AttributionRetry``).
    /// Sleeps until the earliest held event is due, or until one is held (no periodic wakeups at rest).
    private func retryLoop() async {
        var wakes = retry.wakes.makeAsyncIterator()
        while !Task.isCancelled {
            guard let wait = retry.nanosUntilNextDue(now: MonotonicClock.coarseNanos()) else {
                guard await wakes.next() != nil else { return }
                continue
            }
            if wait > 0 { try? await Task.sleep(for: .nanoseconds(Int64(wait))) }
            let due = retry.takeDue(now: MonotonicClock.coarseNanos())
            guard !due.isEmpty else { continue }
            let fresh = attributor.reattribute(due.map(\.event))
            for (held, (subject, context)) in zip(due, fresh) {
                if attributor.shouldRetry(held.event, subject: subject) {
                    if retry.again(held) { continue }
                } else {
                    retry.noteResolved()
                }
                if !merged.push(.event(.node(held.event, subject: subject, context: context)), urgent: held.event.isUrgent) {
                    deletions?.markShed()
                }
            }
        }
    }

    private func refreshSources() -> PipelineStatus {
        let healths = sources.map { (name: $0.name, health: $0.health()) }
        return current.withLock { s in
            s.sources = healths
            for h in healths { s.shedByStage["source:\(h.name)"] = h.health.shed }
            s.shedByStage["merge"] = merged.shed
            if let deletions { s.shedByStage["pod_deletion_log"] = deletions.dropped }
            s.attributionRetries = retry.counters.byOutcome
            return s
        }
    }

    private func correlate() async {
        var engine = CorrelationEngine(config: config)
        var updates: [InsightUpdate] = []
        var published = PublishedFindings()
        // What earlier engines shed and evicted: the exported totals never go backwards at a reconfiguration.
        var carried: (shed: UInt64, evicted: UInt64) = (0, 0)
        var events: UInt64 = 0
        var lastSnapshot: UInt64 = 0
        var lastStatus: UInt64 = 0
        // What the last agent on this node knew of memory beyond the window, before the first event.
        if let memoryFile, let memory = await memoryFile.load() {
            let containers = engine.restore(memory, now: MonotonicClock.wallNanos())
            memoryFile.noteRestored(memory, containers: containers, workloads: engine.workloadCycleCount)
        }
        var lastCheckpoint = MonotonicClock.wallNanos()
        let onCancel = merged
        await withTaskCancellationHandler {
            // Waits for events only as long as the engine has nothing due: a partial batch's timeout or the
            // once-a-second housekeeping (an empty batch means the wait ran out: tick). With a partial batch in
            // hand it waits for the rest of it (or an OOM kill), not for each event.
            while let batch = await merged.nextBatch(
                max: max(config.batchSize, 1),
                timeout: .nanoseconds(Int64(min(engine.nanosUntilDue(now: MonotonicClock.wallNanos()), 1_000_000_000))),
                minimum: engine.pendingBatchCount > 0 ? max(engine.config.batchSize - engine.pendingBatchCount, 1) : 1) {
                let now = MonotonicClock.wallNanos()
                if let new = nextConfig.withLock({ c -> CorrelationConfig? in defer { c = nil }; return c }),
                   new != engine.config {
                    updates.append(contentsOf: engine.flush(now: now))
                    // What the old engine said goes out first: the adoption asks what was published, and a finding
                    // its last batch announced would otherwise be adopted as never announced — and never resolved.
                    await publish(&updates, engine: engine, carried: carried, published: &published, events: events, snapshot: false)
                    carried.shed &+= engine.stats.shed
                    carried.evicted &+= engine.stats.evictedSubjects
                    var next = CorrelationEngine(config: new)
                    next.adoptActiveFindings(of: engine, now: now, published: { [published] in published.identities.contains($0) })
                    engine = next
                    current.withLock { $0.engineStartedAt = Date() }
                    logger.info("correlation engine reconfigured")
                }
                if batch.isEmpty { engine.tick(now: now, into: &updates) }
                for item in batch {
                    switch item {
                    case .event(let e):
                        events &+= 1
                        if let deletions, case .cluster(let c) = e.event, case .podDeleted(let pod) = c.kind {
                            deletions.forget(pod.uid)
                        }
                        engine.ingest(e, now: now, into: &updates)
                    }
                }
                let statusDue = now &- lastStatus >= 1_000_000_000
                if statusDue, let deletions {
                    // Once a second: deletions seen `deletionGrace` ago, perhaps shed, whose pod the engine still holds.
                    var gone: [PodRef] = []
                    let seen = MonotonicClock.coarseNanos()
                    for pod in deletions.take(recordedBy: seen &- min(seen, deletionGrace), now: seen)
                    where engine.podGone(pod, now: now, into: &updates) { gone.append(pod) }
                    if !gone.isEmpty {
                        logger.info("\(gone.count) pod deletion\(gone.count == 1 ? "" : "s") reached the engine only from the deletion log (their events were not there \(deletionGrace / 1_000_000) ms later, and a full queue had shed events): \(gone.prefix(5).map { "\($0.namespace)/\($0.name)" }.joined(separator: ", "))")
                    }
                }
                engine.flushIfUrgent(now: now, into: &updates)
                // The active set costs a walk over every subject: refresh it once a second, or when insights changed.
                let snapshot = !updates.isEmpty || now &- lastSnapshot >= 1_000_000_000
                if snapshot { lastSnapshot = now }
                await publish(&updates, engine: engine, carried: carried, published: &published, events: events, snapshot: snapshot)
                // The sources' health and the counters go to the sinks once a second from here: this loop wakes
                // at least that often (housekeeping), so a timer of its own would only add wake-ups.
                if let memoryFile, now &- lastCheckpoint >= checkpointNanos {
                    lastCheckpoint = now
                    memoryFile.submit(engine.memory(now: now))
                }
                if statusDue {
                    lastStatus = now
                    let s = refreshSources()
                    for sink in sinks { await sink.status(s) }
                }
            }
        } onCancel: {
            onCancel.finish()
        }
        // Shutdown: events still held for attribution go in as they are known now; nothing is left behind.
        let held = retry.takeAll().map(\.event)
        for (n, (subject, context)) in zip(held, attributor.reattribute(held)) {
            engine.ingest(.node(n, subject: subject, context: context), now: MonotonicClock.wallNanos(), into: &updates)
        }
        updates.append(contentsOf: engine.flush(now: MonotonicClock.wallNanos()))
        await publish(&updates, engine: engine, carried: carried, published: &published, events: events, snapshot: true)
        memoryFile?.writeNow(engine.memory(now: MonotonicClock.wallNanos()))
    }

    private func publish(_ updates: inout [InsightUpdate], engine: CorrelationEngine, carried: (shed: UInt64, evicted: UInt64),
                         published: inout PublishedFindings, events: UInt64, snapshot: Bool) async {
        let all = snapshot ? engine.activeInsights : nil
        let active = all?.filter(filter)
        let stats = engine.stats
        let subjects = engine.trackedSubjects
        let sizes = snapshot ? engine.sizes : nil
        current.withLock { s in
            s.events = events
            s.correlations = stats.evaluations
            s.subjects = subjects
            if let active { s.activeInsights = active }
            if let sizes { s.engineSizes = sizes }
            s.shedByStage["engine"] = carried.shed &+ stats.shed
            // Subjects pushed out of a full engine (`maxSubjects`), with what they held.
            s.shedByStage["engine_evicted"] = carried.evicted &+ stats.evictedSubjects
        }
        let out = updates.filter { published.pass($0, filter: filter) }
        updates.removeAll(keepingCapacity: true)
        // After the updates: a resolution in them has just left the engine's active set.
        if let all { published.retain(all) }
        guard !out.isEmpty else { return }
        for sink in sinks { await sink.emit(out) }
    }
}

/// The findings a pipeline's filter let out and that have not been resolved since. A resolution follows its finding
/// out whatever the filter says by then: a deleted pod is gone from the pod store (its labels with it) before the
/// engine resolves its findings, so a policy's `podSelector` refused the resolution and the Insight stayed Active for
/// good; a pod relabelled out of a selector must not leave one behind either. Pruned to the engine's active findings
/// at each snapshot (once a second), so it never holds more than they (a subject evicted from a full engine has
/// its findings resolved as it goes, handed out with the same call that evicted it, before any snapshot).
struct PublishedFindings {
    private(set) var identities: Set<InsightIdentity> = []

    /// Whether `update` goes out, noting what does.
    mutating func pass(_ update: InsightUpdate, filter: (InsightUpdate) -> Bool) -> Bool {
        if update.change == .resolved { return identities.remove(update.identity) != nil || filter(update) }
        guard filter(update) else { return false }
        identities.insert(update.identity)
        return true
    }

    /// Forgets what is no longer active in the engine.
    mutating func retain(_ active: [InsightUpdate]) {
        guard !identities.isEmpty else { return }
        identities.formIntersection(active.lazy.map(\.identity))
    }
}
