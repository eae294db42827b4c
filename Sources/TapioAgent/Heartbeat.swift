import Foundation
import KubeClient
import KubeRuntime
import Logging
import ServiceLifecycle
import Synchronization
import TapioKube

/// The agent's per-node heartbeat Lease (format in ``HeartbeatAnnotations``), written when ``HeartbeatSchedule`` says:
/// at once when what it reports changes, otherwise every `period`. The operator reads these to fill TapioPolicy
/// status, and judges an agent alive while its Lease is younger than the Lease's own `leaseDurationSeconds`.
public final class Heartbeat: Service, Sendable {
    let client: KubeClient
    let namespace: String
    let node: String
    let logger: Logger
    private let applied = Mutex<(policies: [String: Int64], errors: [String: String])>(([:], [:]))
    /// What keeps this node's agent from working fully (``HeartbeatAnnotations/problems``); read every `check`, and a
    /// change is written at once.
    let problems: @Sendable () -> [String]
    private let schedule: Mutex<HeartbeatSchedule>
    /// How often `problems` is looked at (a local call; no request unless it changed).
    let check: Duration
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    private let writes = Mutex<Int>(0)
    /// When this agent started (the Lease's `acquireTime`): the leading operator resolves the node's Active Insights
    /// written before it that it has not taken over (``TapioOperator`` `LeftBehindInsights`).
    let started: String

    /// The agent's Insight writer's ``TapioInsightWriter/InsightWriter/writtenThrough``, carried at each renewal (its
    /// change alone writes nothing).
    let writtenThrough: @Sendable () -> Date?
    /// When the agent's correlation engine last started afresh (``PipelineStatus/engineStartedAt``), carried likewise.
    let engineStarted: @Sendable () -> Date?

    public init(client: KubeClient, namespace: String, node: String, period: Duration = .seconds(120), logger: Logger,
                problems: @escaping @Sendable () -> [String] = { [] }, writtenThrough: @escaping @Sendable () -> Date? = { nil },
                engineStarted: @escaping @Sendable () -> Date? = { nil }, started: Date = Date()) {
        self.started = MicroTime.string(started)
        self.problems = problems
        self.writtenThrough = writtenThrough
        self.engineStarted = engineStarted
        self.client = client
        self.namespace = namespace
        self.node = node
        self.logger = logger
        schedule = Mutex(HeartbeatSchedule(period: period, phase: Double.random(in: 0.5...1)))
        check = min(period, .seconds(5))
        (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Lease writes so far (for tests and the scale benchmark).
    public var written: Int { writes.withLock { $0 } }

    /// Records what the node now runs with; written at once if it differs from what the Lease says.
    public func report(applied policies: [String: Int64], errors: [String: String]) {
        applied.withLock { $0 = (policies, errors) }
        wake.yield()
    }

    public func run() async throws {
        let clock = ContinuousClock()
        let origin = clock.now
        let now: @Sendable () -> Double = { (clock.now - origin).inSeconds }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        self.wake.yield()
                        try? await Task.sleep(for: self.check)
                    }
                }
                for await _ in self.wakes {
                    if Task.isCancelled { break }
                    let a = self.applied.withLock { $0 }
                    let report = HeartbeatSchedule.Report(applied: a.policies, errors: a.errors, problems: self.problems())
                    guard self.schedule.withLock({ $0.due(report, now: now()) }) else { continue }
                    let ok = await self.renew(report)
                    self.schedule.withLock { ok ? $0.wrote(report, at: now()) : $0.failed(at: now()) }
                }
                group.cancelAll()
            }
        }
    }

    func renew(_ report: HeartbeatSchedule.Report) async -> Bool {
        typealias H = HeartbeatAnnotations
        var annotations = [H.applied: H.encodeApplied(report.applied), H.errors: H.encodeErrors(report.errors),
                           H.problems: H.encodeProblems(report.problems)]
        if let through = writtenThrough() { annotations[H.insightsWrittenThrough] = MicroTime.string(through) }
        if let engine = engineStarted() { annotations[H.engineStarted] = MicroTime.string(engine) }
        var lease = Lease(metadata: ObjectMeta(name: H.leaseName(node: node), namespace: namespace,
                                               labels: [H.appLabel: "tapio", H.nodeLabel: node], annotations: annotations))
        var spec = Lease.Spec()
        spec.holderIdentity = node
        spec.acquireTime = started
        spec.leaseDurationSeconds = schedule.withLock { $0.leaseDurationSeconds }
        spec.renewTime = MicroTime.string()
        lease.spec = spec
        do {
            _ = try await client.apply(lease, fieldManager: "tapio-agent", force: true)
            writes.withLock { $0 += 1 }
            return true
        } catch {
            if error is CancellationError { return false }
            client.logLimiter.log(logger, .warning, key: "heartbeat",
                                  "heartbeat Lease \(namespace)/\(HeartbeatAnnotations.leaseName(node: node)): \(error)")
            return false
        }
    }
}
