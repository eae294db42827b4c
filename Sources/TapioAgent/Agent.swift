import Foundation
import KubeClient
import TapioKube
import KubeRuntime
import Logging
import ServiceLifecycle
import UnixSignals
import Synchronization
import TapioCorrelation
import TapioModel
import TapioSinks
import TapioInsightWriter

/// `tapio agent`: one per node. Kernel probes → attribution → engine → Insight CRs and Events, configured live
/// by the TapioPolicies that select the node, with a heartbeat Lease and `/metrics`, `/healthz`, `/readyz`.
public struct Agent: Sendable {
    public struct Options: Sendable {
        public var nodeName: String
        public var namespace: String
        public var metricsHost: String
        public var metricsPort: Int
        /// How often the heartbeat Lease is renewed when nothing it reports changed (a change is written at once);
        /// the Lease's duration is three periods (``HeartbeatSchedule``).
        public var heartbeatPeriod: Duration
        public var cgroupRoot: String
        /// How long, after SIGTERM, pending Insights and Events may take to be written (the pod has 30 s in all).
        public var shutdownFlushLimit: Duration = .seconds(10)
        /// Whether to start this machine's kernel sources (BPF probes or the /proc poller, and the cgroup poller).
        /// False runs the agent from the API side down with only the `extraSources` given to ``Agent/run`` — the
        /// scale benchmark's simulated nodes.
        public var kernelSources = true
        /// How long after start-up (every watch listed, the first policy configuration applied) the pages of code
        /// only start-up ran are given back (``StartupPageRelease``); nil keeps them. It acts on the whole process,
        /// so only `tapio agent` sets it (30 s unless told otherwise), not the tests and benchmarks that run agents
        /// in their own process; never with `kernelSources` off.
        public var releaseStartupPagesAfter: Duration?
        /// Where the engine's memory beyond its window (each pod container's two-hour minute history, the cycles its
        /// workloads went through) is kept across agent restarts (``EngineMemoryFile``); nil: nowhere.
        public var stateFile: String?
        public init(nodeName: String, namespace: String = "tapio-system", metricsHost: String = "0.0.0.0",
                    metricsPort: Int = 9464, heartbeatPeriod: Duration = .seconds(120), cgroupRoot: String = "/sys/fs/cgroup") {
            self.nodeName = nodeName
            self.namespace = namespace
            self.metricsHost = metricsHost
            self.metricsPort = metricsPort
            self.heartbeatPeriod = heartbeatPeriod
            self.cgroupRoot = cgroupRoot
        }
    }

    let options: Options
    let client: KubeClient
    let logger: Logger
    /// Served on `/metrics`; pass the one the client reports its requests to.
    public let metrics: TapioMetrics

    public init(options: Options, client: KubeClient, metrics: TapioMetrics = TapioMetrics(),
                logger: Logger = Logger(label: "tapio.agent")) {
        self.options = options
        self.client = client
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs until SIGTERM/SIGINT (or the task is cancelled); then finishes in-flight writes and exits.
    /// - Parameter onReady: called with the bound metrics port once everything is started (tests use it).
    /// - Parameter onPolicyApplied: called with each configuration applied after a policy change (tests use it).
    public func run(extraSources: [any EventSource] = [], signals: [UnixSignal] = [.sigterm, .sigint],
                    onReady: (@Sendable (Int) -> Void)? = nil,
                    onPolicyApplied: (@Sendable (EffectiveConfig) -> Void)? = nil) async throws {
        let initial = EffectiveConfig()
        let node = options.kernelSources ? NodeSide.start(initial, logger: logger) : NodeSide.simulated()
        let sniffer = KubeSniffer(client: client, nodeName: options.nodeName, logger: logger)
        let attributor = node.attributor
        attributor.followPods(of: sniffer)
        let recorder = EventRecorder(client: client, reportingController: "tapio.io/agent",
                                     reportingInstance: options.nodeName, logger: logger)
        // One instant for the heartbeat's `acquireTime` and the earliest `lastSeen` the writer gives: the operator
        // resolves what was last seen before the agent started, and a wall clock stepped back must not date a
        // re-detection before it.
        let started = Date()
        let writer = InsightWriter(client: client, recorder: recorder, nodeName: options.nodeName,
                                   ownNamespace: options.namespace, notBefore: started, logger: logger)
        let metrics = self.metrics
        let scope = PolicyScope(pods: sniffer.pods)
        let memoryFile = options.stateFile.map { EngineMemoryFile(path: $0, logger: logger) }
        let pipeline = Pipeline(config: initial.correlation, sources: node.sources + [sniffer] + extraSources,
                                attributor: attributor, sinks: [MetricsSink(metrics: metrics), writer],
                                deletions: sniffer.deletions, memoryFile: memoryFile, logger: logger,
                                filter: { scope.allows($0) })
        let client = self.client
        let problems: @Sendable () -> [String] = {
            (node.bpfFailure.map { ["eBPF probes did not load, the agent polls /proc instead (no memory sampling per process, no TCP or OOM probes): \($0)"] } ?? [])
                + client.accessDenials.current.map { "the API server refused \($0)" }
        }
        let heartbeat = Heartbeat(client: client, namespace: options.namespace, node: options.nodeName,
                                  period: options.heartbeatPeriod, logger: logger, problems: problems,
                                  writtenThrough: { writer.writtenThrough }, engineStarted: { pipeline.status.engineStartedAt },
                                  started: started)
        let policies = PolicyFollower(client: client, nodeName: options.nodeName, logger: logger) { effective, errors in
            if let probes = node.probes {
                do { try probes.apply(NodeSide.bpfSettings(effective)) } catch {
                    logger.error("applying probe settings failed: \(error)")
                }
            }
            pipeline.reconfigure(effective.correlation)
            node.cgroupPoller?.setSeriesBucket(nanos: effective.correlation.bucketNanos)
            scope.setPolicies(effective.policies)
            heartbeat.report(applied: effective.appliedPolicies, errors: errors)
            onPolicyApplied?(effective)
        }
        sniffer.onNodeLabels { policies.setNodeLabels($0) }
        let ready = Mutex(false)
        // The rest of the agent's state that lives across events, counted at each scrape (the engine's own comes
        // through the pipeline's status): what a soak looks at when memory grows.
        let stateSizes: @Sendable () -> [(structure: String, entries: Int)] = {
            let t = attributor.translator.stats
            let index = attributor.translator.index?.entries
            let events = recorder.entries
            return [("translator_cache", t.entries), ("translator_negative", t.negativeEntries),
                    ("cgroup_index_ids", index?.ids ?? 0), ("cgroup_index_paths", index?.paths ?? 0),
                    ("pod_directory", attributor.directory.podCount), ("pods_watched", sniffer.pods.count),
                    ("attribution_held", pipeline.retry.count), ("insights_pending", writer.pendingCount),
                    ("events_queued", events.queued), ("event_series", events.series),
                    ("log_limiter_keys", client.logLimiter.count)]
        }
        let endpoint = HTTPEndpoint(host: options.metricsHost, port: options.metricsPort, routes: [
            "/metrics": {
                metrics.stateEntries(stateSizes())
                // Walks of the cgroup hierarchy that stopped at the index's cap: cgroups past it go unattributed.
                if let index = attributor.translator.index {
                    metrics.shedTotal(stage: "cgroup_index_walk", total: index.truncatedWalkCount)
                }
                // Walks of the memory poller that stopped at its cap: limited cgroups past it go unsampled.
                if let poller = node.cgroupPoller {
                    metrics.shedTotal(stage: "cgroup_poller_walk", total: poller.truncatedWalkCount)
                }
                // Records the kernel could not fit in the ring buffer (the queue behind it counts its own).
                if let probes = node.probes {
                    metrics.shedTotal(stage: "kernel_ringbuf", total: probes.kernelStats().ringBufferDrops)
                }
                metrics.writesDropped(insights: writer, events: [recorder])
                if let f = memoryFile?.stats {
                    metrics.stateFile(written: f.writesSucceeded, failed: f.writesFailed, superseded: f.writesSuperseded,
                                      locked: f.writesLocked, bytes: f.lastWriteBytes, readOutcome: f.readOutcome,
                                      restoredContainers: f.restoredContainers, restoredWorkloads: f.restoredWorkloads)
                }
                return .init(contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render())
            },
            "/healthz": { .init(body: Array("ok\n".utf8)) },
            "/readyz": {
                // A role that lacks a rule the agent uses: not ready, saying which, so that it shows in `kubectl get pods`
                // and `kubectl describe pod` (said first: such a watch also never finishes its first list).
                let denied = client.accessDenials.current
                guard denied.isEmpty else {
                    return .init(status: 503, body: Array(denied.map { "the API server refused \($0)\n" }.joined().utf8))
                }
                // Ready once every watch has listed.
                guard ready.withLock({ $0 }) && sniffer.isSynced else { return .init(status: 503, body: Array("starting\n".utf8)) }
                return .init(body: Array("ok\n".utf8))
            },
        ], metrics: metrics)
        let port = try await endpoint.start()
        logger.info("serving /metrics, /healthz and /readyz on port \(port)")
        defer { node.close() }

        let services: [any Service] = [
            PipelineService(pipeline), ClosureService { await writer.run() }, ClosureService { await recorder.run() },
            heartbeat, ClosureService { await policies.run() },
            ClosureService { [logger] in await scope.followNamespaces(client, logger: logger) },
            // Heap memory a relist or a burst of events freed goes back to the system (see HeapTrimmer). From 1 MiB
            // free, not the operator's 8: an agent's whole heap is ~8 MiB, and on a real node with 100 containers
            // malloc kept 2.5–3.8 MiB of freed chunks, resident, against a 32 MiB budget.
            ClosureService { await HeapTrimmer(minimumFree: 1 << 20).run() },
            // Services stop in reverse order: this one, last, stops first and ends the Kubernetes watches, which
            // would otherwise go on reading (and, from a hostile server, burning CPU) until everything else stopped.
            StopOnShutdown { sniffer.stop() },
        ]
        var configurations = services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        if let delay = options.releaseStartupPagesAfter, options.kernelSources {
            let release = StartupPageRelease(delay: delay, isStarted: {
                ready.withLock { $0 } && sniffer.isSynced && policies.hasApplied
            }, logger: logger)
            // Done once, then idle until shutdown (a service that ends makes the group stop — during a shutdown too,
            // whatever its termination behaviour). Before StopOnShutdown, which must stay last.
            configurations.insert(.init(service: ClosureService { await release.run(); try? await gracefulShutdown() }),
                                  at: configurations.count - 1)
        }
        let group = ServiceGroup(configuration: .init(
            services: configurations, gracefulShutdownSignals: signals, logger: logger))
        if let failure = node.bpfFailure {
            // The running sources' health reaches /metrics through the pipeline's status; probes that never loaded
            // are no source there, so their 0 is set here, once.
            metrics.sourceHealth("ebpf", SourceHealth(state: .failed(failure)))
            recorder.record(regarding: ObjectReference(apiVersion: "v1", kind: "Node", name: options.nodeName), type: .warning,
                            reason: "ProbesUnavailable", action: "LoadProbes",
                            note: "Tapio's eBPF probes did not load on this node; the agent polls /proc instead: \(failure)")
        }
        ready.withLock { $0 = true }
        onReady?(port)
        try await group.run()
        func unwritten() -> String {
            let (insights, events) = (writer.pendingCount, recorder.entries.queued)
            return insights == 0 && events == 0 ? "" : "\(insights) Insights and \(events) Events"
        }
        if Task.isCancelled {
            // Cancelled (an embedding task stopped, as tests do), not shut down by a signal: cancellation asks to
            // stop at once, and every request would fail cancelled anyway. Say what is left, truthfully.
            let left = unwritten()
            if left.isEmpty { logger.debug("cancelled: nothing was pending") } else { logger.notice("cancelled: \(left) pending were not written") }
        } else {
            // Graceful shutdown: what is still pending gets one more chance, bounded so that a server that does not
            // answer cannot keep the agent past the 30 s a pod is given.
            logger.debug("shutting down: writing pending Insights and Events (at most \(options.shutdownFlushLimit))")
            let flushed = await withDeadline(options.shutdownFlushLimit) {
                await writer.flush()
                await recorder.drain()
                return true
            }
            if flushed == nil {
                let left = unwritten()
                let why = Task.isCancelled ? "cancelled during the shutdown" : "not done within \(options.shutdownFlushLimit) of shutdown"
                logger.warning("writing pending Insights and Events \(why)\(left.isEmpty ? "" : ": \(left) left unwritten")")
            }
        }
        await endpoint.shutdown()
        logger.debug("shut down")
    }
}

/// Follows the TapioPolicies and this node's labels; calls `apply` with the merged configuration whenever the
/// policies that select the node (or their generations) change. The labels come from the sniffer's watch of the Node
/// (``setNodeLabels(_:)``), never from polling it; nothing is applied before both the policies have been listed and the
/// labels are known, so an agent's first heartbeat already says what it runs.
public final class PolicyFollower: Sendable {
    let client: KubeClient
    let nodeName: String
    let logger: Logger
    let store = ReflectorStore<PolicyObject>()
    let apply: @Sendable (EffectiveConfig, [String: String]) -> Void
    private let last = Mutex<(applied: [String: Int64], errors: [String: String])?>(nil)
    private let inputs = Mutex<(labels: [String: String]?, listed: Bool)>((nil, false))
    /// One recomputation at a time (labels and policies arrive on different tasks): an older view must never be
    /// applied after a newer one.
    private let serial = Mutex(())

    public init(client: KubeClient, nodeName: String, logger: Logger,
                apply: @escaping @Sendable (EffectiveConfig, [String: String]) -> Void) {
        self.client = client
        self.nodeName = nodeName
        self.logger = logger
        self.apply = apply
    }

    /// Whether a configuration has been computed and handed to `apply` (the policies listed, the labels known).
    public var hasApplied: Bool { last.withLock { $0 != nil } }

    /// The Node's current labels (a Node that does not exist has none).
    public func setNodeLabels(_ labels: [String: String]) {
        inputs.withLock { $0.labels = labels }
        recompute(force: false)
    }

    public func run() async {
        do {
            try await store.run(Watcher(client: client, PolicyObject.self, logger: logger)) { event in
                if case .initStart = event { return }
                if case .initApply = event { return }
                self.inputs.withLock { $0.listed = true }
                self.recompute(force: false)
            }
        } catch is CancellationError {
        } catch { logger.warning("watching TapioPolicies ended: \(error)") }
    }

    func recompute(force: Bool) {
        serial.withLock { _ in recomputeSerially(force: force) }
    }

    private func recomputeSerially(force: Bool) {
        guard let labels = inputs.withLock({ $0.listed ? $0.labels : nil }) else { return }
        var selected: [TapioPolicy] = []
        var errors: [String: String] = [:]
        for object in store.list() {
            let p = object.policy
            guard EffectiveConfig.selects(p, nodeLabels: labels) else { continue }
            let problems = TapioPolicyValidation.validate(p).filter { $0.level == .error }
            if problems.isEmpty { selected.append(p) } else {
                // Bounded: the heartbeat Lease carries these in one annotation (the API server caps all of an
                // object's annotations at 256 KiB), and a policy can have thousands of problems.
                var why = problems.prefix(5).map(\.description).joined(separator: "; ")
                if problems.count > 5 { why += "; and \(problems.count - 5) more" }
                why = why.clipped(toScalars: 600)
                errors[p.metadata.name ?? "?"] = why
            }
        }
        let effective = EffectiveConfig.merge(selected)
        let changed = last.withLock { l -> Bool in
            defer { l = (effective.appliedPolicies, errors) }
            return l?.applied != effective.appliedPolicies || l?.errors != errors
        }
        if changed || force {
            for (name, why) in errors.sorted(by: { $0.key < $1.key }) {
                logger.warning("not applying TapioPolicy \(name): \(why)")
            }
            logger.info("applying policies", metadata: ["policies": "\(HeartbeatAnnotations.encodeApplied(effective.appliedPolicies))"])
            apply(effective, errors)
        }
    }
}
