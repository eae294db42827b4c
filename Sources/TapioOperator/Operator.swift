import Foundation
import KubeClient
import KubeRuntime
import Logging
import ServiceLifecycle
import UnixSignals
import Synchronization
import TapioCorrelation
import TapioKube
import TapioModel
import TapioSinks

/// `tapio operator`: validates TapioPolicies and writes their status, and — only where a policy allows it —
/// carries out Insights' remediation patches. Leader-only work runs while this replica holds the Lease
/// `tapio-operator` (with `leaderElect`; otherwise always).
public struct Operator: Sendable {
    public struct Options: Sendable {
        public var namespace: String
        public var leaderElect: Bool
        public var identity: String
        public var leaseDuration: Duration
        public var renewDeadline: Duration
        public var retryPeriod: Duration
        public var metricsHost: String
        public var metricsPort: Int
        /// How often policy status is refreshed even without changes (node counts come from heartbeats).
        public var statusRefresh: Duration
        /// How often the cluster-level detectors run (``ClusterDetectors``).
        public var clusterCheck: Duration
        /// Thresholds of the cluster-level detectors.
        public var clusterDetectors = ClusterDetectors.Config()
        /// Wait before retrying a remediation attempt that failed (a dry run or a patch the API server refused):
        /// doubled after each consecutive failure of the same action and patch, at most `remediationRetryCap`.
        public var remediationRetry: Duration = .seconds(30)
        public var remediationRetryCap: Duration = .seconds(3600)
        /// At most this many active Insights get per-Insight series (`tapio_insight_*`); the rest are counted in
        /// `tapio_insight_series_omitted`.
        public var insightSeriesLimit = TapioMetrics.defaultInsightSeriesLimit
        /// How long after start-up (a follower at once; the leader once its watches are listed) the pages of code
        /// only start-up ran are given back (``StartupPageRelease``); nil keeps them. It acts on the whole process.
        public var releaseStartupPagesAfter: Duration?
        public init(namespace: String = "tapio-system", leaderElect: Bool = false, identity: String,
                    leaseDuration: Duration = .seconds(15), renewDeadline: Duration = .seconds(10),
                    retryPeriod: Duration = .seconds(2), metricsHost: String = "0.0.0.0", metricsPort: Int = 9464,
                    statusRefresh: Duration = .seconds(30), clusterCheck: Duration = .seconds(15)) {
            self.clusterCheck = clusterCheck
            self.namespace = namespace
            self.leaderElect = leaderElect
            self.identity = identity
            self.leaseDuration = leaseDuration
            self.renewDeadline = renewDeadline
            self.retryPeriod = retryPeriod
            self.metricsHost = metricsHost
            self.metricsPort = metricsPort
            self.statusRefresh = statusRefresh
        }
    }

    public static let leaseName = "tapio-operator"
    let options: Options
    let client: KubeClient
    let logger: Logger
    /// Served on `/metrics`; pass the one the client reports its requests to.
    public let metrics: TapioMetrics
    let ceilingChecks = CeilingChecks()

    public init(options: Options, client: KubeClient, metrics: TapioMetrics = TapioMetrics(),
                logger: Logger = Logger(label: "tapio.operator")) {
        self.options = options
        self.client = client
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs until SIGTERM/SIGINT (or cancellation); releases the Lease on the way out.
    public func run(signals: [UnixSignal] = [.sigterm, .sigint], onLeadership: (@Sendable (Bool) -> Void)? = nil) async throws {
        let leading = Mutex(!options.leaderElect)
        let endpoint = HTTPEndpoint(host: options.metricsHost, port: options.metricsPort, routes: [
            "/metrics": { [metrics] in .init(contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render()) },
            "/healthz": { .init(body: Array("ok\n".utf8)) },
            "/readyz": { [client] in
                // A role that lacks a rule the operator uses: not ready, so that it shows in `kubectl get pods`.
                let denied = client.accessDenials.current
                return denied.isEmpty ? .init(body: Array("ok\n".utf8))
                    : .init(status: 503, body: Array(denied.map { "the API server refused \($0)\n" }.joined().utf8))
            },
        ], metrics: metrics)
        let port = try await endpoint.start()
        logger.info("serving /metrics, /healthz and /readyz on port \(port)")
        // Set once the leader's watches are listed: the pages it ran to get there are start-up's too.
        let leaderListed = Mutex(false)
        let markListed: @Sendable () -> Void = { leaderListed.withLock { $0 = true } }
        let work = LeaderWork { await self.lead(listed: markListed) }
        let service: any Service
        if options.leaderElect {
            let elector = LeaderElector(client: client, namespace: options.namespace, name: Self.leaseName,
                                        identity: options.identity,
                                        config: LeaderElectionConfig(leaseDuration: options.leaseDuration,
                                                                     renewDeadline: options.renewDeadline,
                                                                     retryPeriod: options.retryPeriod), logger: logger)
            service = ClosureService { [metrics, logger] in
                await elector.run { change in
                    let isLeader = change == .gained
                    if isLeader { leaderListed.withLock { $0 = false } }  // a new term lists everything again
                    leading.withLock { $0 = isLeader }
                    metrics.leader(isLeader)
                    logger.info(isLeader ? "became the leader" : "lost leadership")
                    onLeadership?(isLeader)
                    if isLeader { work.start() } else { await work.stop() }
                }
                await work.stop()
            }
        } else {
            metrics.leader(true)
            onLeadership?(true)
            service = ClosureService { await self.lead(listed: markListed) }
        }
        // Heap memory a relist freed goes back to the system (see HeapTrimmer).
        let trimmer = ClosureService { await HeapTrimmer().run() }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: service), .init(service: trimmer)]
        if let delay = options.releaseStartupPagesAfter {
            let release = StartupPageRelease(delay: delay, isStarted: {
                !leading.withLock { $0 } || leaderListed.withLock { $0 }
            }, logger: logger)
            // Done once, then idle until shutdown (a service that ends makes the group stop).
            services.append(.init(service: ClosureService { await release.run(); try? await gracefulShutdown() }))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: signals, logger: logger))
        try await group.run()
        await endpoint.shutdown()
    }

    /// Leader-only: the policy status controller, the remediation controller and the cluster-level detectors.
    /// `listed` is called once the policies, Insights and heartbeats have been listed.
    func lead(listed: @escaping @Sendable () -> Void = {}) async {
        let policies = ReflectorStore<PolicyObject>()
        // The cache keeps what its readers need of each Insight (see InsightCacheView): at 50,000 Insights the rest
        // is most of the operator's memory.
        let insights = Controller<InsightObject>(store: ReflectorStore(transform: InsightCacheView.strip), logger: logger)
        let remediation = Remediator(client: client, policies: policies, insights: insights.store, metrics: metrics, logger: logger,
                                     retry: options.remediationRetry, retryCap: options.remediationRetryCap)
        // Which policies (name → generation and acceptance) the Insights were last judged under: when that changes,
        // every Insight is judged again, or an Insight seen before its Apply policy existed (or was accepted) would
        // never be acted on.
        // Deletions show up at the next policy reconcile (at most `statusRefresh` later).
        let judgedUnder = PolicyGenerations()
        // The agents' heartbeats, watched (not listed at every policy reconcile: at 5,000 nodes a list is 5,000 Leases).
        let beats = ReflectorStore<Lease>()
        let cluster = ClusterWatch(client: client, namespace: options.namespace, insights: insights.store,
                                   policies: policies, beats: beats, period: options.clusterCheck,
                                   config: options.clusterDetectors, insightSeriesLimit: options.insightSeriesLimit,
                                   metrics: metrics, otherRecorders: [remediation.recorder], logger: logger)
        let statusWrites = PolicyStatusWrites()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await policies.waitUntilReady()
                await insights.store.waitUntilReady()
                await beats.waitUntilReady()
                if !Task.isCancelled { listed() }  // a lost term returns from the waits unlisted
            }
            group.addTask { await remediation.recorder.run() }
            group.addTask { await cluster.run() }
            group.addTask {
                var config = WatcherConfig()
                config.labelSelector = "\(HeartbeatAnnotations.appLabel)=tapio,\(HeartbeatAnnotations.nodeLabel)"
                do {
                    try await beats.run(Watcher(client: self.client, Lease.self, namespace: self.options.namespace, config: config,
                                                logger: self.logger))
                } catch is CancellationError {
                } catch { self.logger.warning("watching heartbeat Leases ended: \(error)") }
            }
            group.addTask {
                let controller = Controller<PolicyObject>(store: policies, logger: self.logger)
                do {
                    try await controller.run(events: Watcher(client: self.client, PolicyObject.self, logger: self.logger)) { p in
                        self.metrics.eventsProcessed(source: "tapiopolicies", count: 1)
                        let action = try await self.reconcilePolicy(p, nodes: cluster.nodes, beats: beats, writes: statusWrites)
                        let current = Dictionary(policies.list().map { ($0.metadata.name ?? "", PolicyGenerations.verdict($0)) },
                                                 uniquingKeysWith: { a, _ in a })
                        statusWrites.retain(Set(current.keys))
                        self.ceilingChecks.retain(Set(current.keys))
                        let changed = judgedUnder.value.withLock { last in
                            defer { last = current }
                            return last != current
                        }
                        if changed {
                            for i in insights.store.list() { await insights.queue.add(i.key) }
                        }
                        return action
                    }
                } catch where !(error is CancellationError) { self.logger.warning("policy controller ended: \(error)") } catch {}
            }
            group.addTask {
                let controller = insights
                do {
                    try await controller.run(events: Watcher(client: self.client, InsightObject.self, logger: self.logger)) { i in
                        self.metrics.eventsProcessed(source: "insights", count: 1)
                        return try await remediation.reconcile(i)
                    }
                } catch where !(error is CancellationError) { self.logger.warning("remediation controller ended: \(error)") } catch {}
            }
        }
    }

    /// Level-based: the whole current state (nodes, heartbeats) decides the status. Both come from the operator's
    /// watches (reflector stores), not from lists: a reconcile costs the API server nothing but the status write.
    func reconcilePolicy(_ object: PolicyObject, nodes nodeStore: ReflectorStore<Node>,
                         beats beatStore: ReflectorStore<Lease>, writes: PolicyStatusWrites) async throws -> ReconcileAction {
        await nodeStore.waitUntilReady()
        await beatStore.waitUntilReady()
        let nodes = nodeStore.list().map {
            PolicyStatusComputer.NodeView(name: $0.metadata.name ?? "", labels: $0.metadata.labels ?? [:])
        }
        let beats = beatStore.list().compactMap { l -> PolicyStatusComputer.HeartbeatView? in
            guard let node = l.metadata.labels?[HeartbeatAnnotations.nodeLabel] else { return nil }
            let a = l.metadata.annotations ?? [:]
            return PolicyStatusComputer.HeartbeatView(
                node: node, applied: HeartbeatAnnotations.decodeApplied(a[HeartbeatAnnotations.applied] ?? ""),
                errors: HeartbeatAnnotations.decodeErrors(a[HeartbeatAnnotations.errors] ?? ""),
                renewed: Formatting.parseDate(l.spec?.renewTime),
                leaseDuration: l.spec?.leaseDurationSeconds.map { TimeInterval($0) },
                problems: HeartbeatAnnotations.decodeProblems(a[HeartbeatAnnotations.problems] ?? ""))
        }
        var conflict: String?
        if let ceiling = CeilingCheck.ceiling(of: object.policy) {
            let found = try await ceilingChecks.findings(for: object.policy, client: client)
            if !found.isEmpty { conflict = CeilingCheck.message(ceiling: ceiling, found) }
        }
        let status = PolicyStatusComputer.status(for: object.policy, previous: object.status, nodes: nodes,
                                                 heartbeats: beats, now: Date(), conflict: conflict)
        metrics.policyStatus(object.metadata.name ?? "", accepted: status.condition("Accepted")?.status == .true,
                             targeted: status.nodesTargeted, applied: status.nodesApplied)
        let interval = PolicyStatusPacing.interval(nodes: nodes.count, cap: options.statusRefresh)
        if status != object.status {
            let name = object.metadata.name ?? ""
            let now = ContinuousClock.now
            switch PolicyStatusPacing.decide(old: object.status, new: status, lastWrite: writes.lastWrite(name), now: now,
                                             interval: interval) {
            case .wait(let d):
                metrics.policyStatusWriteDeferred()
                return .requeue(after: d)
            case .write:
                var updated = object
                updated.status = status
                _ = try await client.updateStatus(updated)
                writes.wrote(name, at: now)
            }
        }
        // Heartbeats do not start a reconcile (at rest they are renewals only). While a generation rolls out
        // (`Progressing`), the status is judged again as often as it may be written, so that "every node runs it"
        // shows one interval after the last agent applied it, not up to a whole refresh later.
        let progressing = status.condition("Ready")?.reason == "Progressing"
        return .requeue(after: progressing ? interval : self.options.statusRefresh)
    }
}

/// The policies' generations and verdicts (name → "generation/Accepted status@observed generation"), shared
/// between the policy and remediation controllers.
final class PolicyGenerations: Sendable {
    let value = Mutex<[String: String]>([:])

    static func verdict(_ p: PolicyObject) -> String {
        let accepted = p.status?.conditions.first { $0.type == "Accepted" }
        return "\(p.metadata.generation ?? 0)/\(accepted.map { "\($0.status.rawValue)@\($0.observedGeneration ?? -1)" } ?? "-")"
    }
}

/// Starts and stops leader-only work.
final class LeaderWork: Sendable {
    let body: @Sendable () async -> Void
    private let task = Mutex<Task<Void, Never>?>(nil)
    init(_ body: @escaping @Sendable () async -> Void) { self.body = body }
    func start() {
        task.withLock { t in
            if t == nil { t = Task { await self.body() } }
        }
    }
    func stop() async {
        let t = task.withLock { t -> Task<Void, Never>? in
            defer { t = nil }
            return t
        }
        t?.cancel()
        await t?.value
    }
}
