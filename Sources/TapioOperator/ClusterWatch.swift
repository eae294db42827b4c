import Foundation
import KubeClient
import KubeRuntime
import Logging
import TapioCorrelation
import TapioInsightWriter
import TapioKube
import TapioModel
import TapioSinks

/// Leader-only: runs ``ClusterDetectors`` over the Nodes and the agents' Insights every `period` and writes what
/// they find as Insights in the operator's namespace (no node label), with Events; resolves them when they stop
/// holding. Each pass also deletes every writer's expired Insights (``InsightJanitor``, ``ttlResolver``): the agents
/// have no delete right.
final class ClusterWatch: Sendable {
    /// The operator's own Insights: cluster-level types, no node label.
    static let ownSelector = "tapio.io/type in (ClusterHealth,NodePressure),!tapio.io/node"

    let client: KubeClient
    let namespace: String
    let insights: ReflectorStore<InsightObject>
    let policies: ReflectorStore<PolicyObject>
    /// The agents' heartbeat Leases (when each node's agent started, when it last beat): ``LeftBehindInsights``.
    let beats: ReflectorStore<Lease>
    let period: Duration
    let config: ClusterDetectors.Config
    let insightSeriesLimit: Int
    let metrics: TapioMetrics
    let logger: Logger
    let nodes = ReflectorStore<Node>()
    let recorder: EventRecorder
    let writer: InsightWriter
    let janitor: InsightJanitor
    /// The leader's other Event recorders (the remediation controller's), whose losses each pass exports with its own.
    let otherRecorders: [EventRecorder]

    init(client: KubeClient, namespace: String, insights: ReflectorStore<InsightObject>, policies: ReflectorStore<PolicyObject>,
         beats: ReflectorStore<Lease>,
         period: Duration, config: ClusterDetectors.Config = .init(), insightSeriesLimit: Int = TapioMetrics.defaultInsightSeriesLimit,
         metrics: TapioMetrics, otherRecorders: [EventRecorder] = [], logger: Logger) {
        self.insightSeriesLimit = insightSeriesLimit
        self.otherRecorders = otherRecorders
        self.client = client
        self.metrics = metrics
        self.namespace = namespace
        self.insights = insights
        self.policies = policies
        self.beats = beats
        self.period = period
        self.config = config
        self.logger = logger
        recorder = EventRecorder(client: client, reportingController: "tapio.io/operator",
                                 reportingInstance: ProcessInfo.processInfo.hostName, logger: logger)
        writer = InsightWriter(client: client, recorder: recorder, nodeName: nil, ownNamespace: namespace,
                               alwaysOwnNamespace: true, fieldManager: "tapio-operator", logger: logger)
        janitor = InsightJanitor(client: client, logger: logger)
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.writer.run() }
            group.addTask { await self.recorder.run() }
            group.addTask {
                do {
                    try await self.nodes.run(Watcher(client: self.client, Node.self, logger: self.logger))
                } catch is CancellationError {
                } catch { self.logger.warning("watching Nodes ended: \(error)") }
            }
            group.addTask { await self.detect() }
            group.addTask { await self.expire() }
            await group.waitForAll()
        }
        // Leadership ended (or shutdown): the new leader exports the per-Insight series; what is pending gets one
        // more chance.
        metrics.clearInsightSeries()
        metrics.retainPolicies([])
        await writer.flush()
        await recorder.drain()
        // This term's lost writes: a replica that no longer leads loses none.
        metrics.writesDropped(what: "insights", full: 0, failed: 0)
        metrics.writesDropped(what: "events", full: 0, failed: 0)
    }

    private func detect() async {
        await nodes.waitUntilReady()
        await insights.waitUntilReady()
        var tracker = ClusterFindingTracker(config: config)
        // Findings a previous leader left Active: adopted when they still hold, resolved when they stay absent.
        var orphans: [String: (object: InsightObject, missingSince: Date)] = [:]
        for o in insights.list() where Self.isOwn(o) && (o.status?.phase ?? .active) == .active {
            if let name = o.metadata.name { orphans[name] = (o, Date()) }
        }
        while !Task.isCancelled {
            // What the writer's full queue pushed out is written again once it has drained, as on an agent: asked
            // first, a period after the last pass's updates were handed over (asked after them, it would find them
            // still waiting on every busy pass).
            var held = PipelineStatus()
            held.activeInsights = tracker.activeInsights
            await writer.status(held)
            let now = Date()
            let started = ContinuousClock.now
            // One copy of the store per pass for everything below: at 50,000 Insights each copy is tens of MiB that
            // malloc keeps after the pass (three copies per pass held the operator's RSS ~100 MiB above its state).
            let all = insights.list()
            let findings = ClusterDetectors.all(nodes: nodeViews(), pods: Self.podFindings(all), now: now, config: config)
            metrics.clusterDetectorsPass(seconds: (ContinuousClock.now - started).inSeconds)
            let nanos = UInt64.rounding(clamping: now.timeIntervalSince1970 * 1e9)
            for f in findings {
                guard let (o, _) = orphans.removeValue(forKey: f.identity.name) else { continue }
                let first = o.status?.firstSeen.flatMap(Formatting.parseRFC3339) ?? nanos
                tracker.adopt(f.identity, spec: o.spec, firstSeen: first, lastSeen: nanos, occurrences: o.status?.occurrences ?? 1)
            }
            let updates = tracker.evaluate(findings, now: nanos)
            if !updates.isEmpty { await writer.emit(updates) }
            for (name, orphan) in orphans where now.timeIntervalSince(orphan.missingSince) >= Double(tracker.resolveAfter) / 1e9 {
                orphans[name] = nil
                await resolve(orphan.object, now: now,
                              why: "no cluster detector found it again since this operator began leading")
            }
            // The cluster's active Insights by type and severity, every writer's (`tapio_insights`).
            metrics.setInsightCounts(all.filter { ($0.status?.phase ?? .active) == .active }.map { ($0.spec.type, $0.spec.severity) })
            // One series per active Insight, for alerting on a single finding (`tapio_insight_*`).
            metrics.setInsightSeries(InsightSeriesExport.series(all), limit: insightSeriesLimit)
            metrics.retainPolicies(Set(policies.list().compactMap(\.metadata.name)))
            // This term's lost writes (a new leader starts from zero).
            metrics.writesDropped(insights: writer, events: [recorder] + otherRecorders)
            try? await Task.sleep(for: period)
        }
    }

    /// Deletes expired Insights every `period`, on a task of its own: a server slow to answer deletes must not hold
    /// up the detectors.
    private func expire() async {
        // Every input listed first: judged before the policies are known, an Insight would get the default 24 h where a
        // policy keeps it longer.
        await nodes.waitUntilReady()
        await insights.waitUntilReady()
        await policies.waitUntilReady()
        await beats.waitUntilReady()
        var missingSince: [String: Date] = [:]
        while !Task.isCancelled {
            let policies = policies.list().map(\.policy), nodes = nodes.list(), all = insights.list()
            let ttl = Self.ttlResolver(policies: policies, nodes: nodes)
            let expired = await janitor.sweep(all, ttl: ttl, now: Date())
            if expired > 0 { metrics.insightsExpired(expired) }
            await resolveLeftBehind(all, nodes: nodes, policies: policies, missingSince: &missingSince)
            try? await Task.sleep(for: period)
        }
    }

    /// Resolves agents' Insights no agent will resolve (``LeftBehindInsights``): at most `maxDeletesPerSweep` per pass,
    /// as the janitor deletes, so an upgrade of every agent does not land as a burst of writes.
    private func resolveLeftBehind(_ all: [InsightObject], nodes: [Node], policies: [TapioPolicy],
                                   missingSince: inout [String: Date]) async {
        let now = Date()
        let present = Set(nodes.compactMap { $0.metadata.name.map(InsightDocument.labelValue) })
        var missing: [String: Date] = [:]
        for i in all {
            guard let node = i.metadata.labels?["tapio.io/node"], !present.contains(node) else { continue }
            missing[node] = missingSince[node] ?? now
        }
        missingSince = missing
        let found = LeftBehindInsights.find(all, nodes: present, agents: LeftBehindInsights.agents(beats.list(), now: now),
                                            missingSince: missingSince, grace: Self.graceResolver(policies: policies, nodes: nodes),
                                            now: now)
        var resolved = 0
        for (insight, why) in found.prefix(janitor.maxDeletesPerSweep) {
            if await resolve(insight, now: now, why: why, onlyIfUnchanged: true) {
                resolved += 1
                logger.info("resolved Insight \(insight.metadata.namespace ?? "")/\(insight.metadata.name ?? ""): \(why)")
            }
        }
        if resolved > 0 { metrics.insightsLeftBehindResolved(resolved) }
    }

    static func isOwn(_ o: InsightObject) -> Bool {
        let labels = o.metadata.labels ?? [:]
        return labels["tapio.io/node"] == nil && [InsightType.clusterHealth, .nodePressure].contains(o.spec.type)
    }

    func nodeViews() -> [ClusterDetectors.NodeView] {
        nodes.list().map { n in
            var c: [String: String] = [:]
            for x in n.status?.conditions ?? [] { c[x.type] = x.status }
            return ClusterDetectors.NodeView(name: n.metadata.name ?? "", conditions: c)
        }
    }

    /// The agents' active per-pod findings (labelled with their node) among `objects`.
    static func podFindings(_ objects: [InsightObject]) -> [ClusterDetectors.PodFinding] {
        objects.compactMap { o in
            guard (o.status?.phase ?? .active) == .active, let node = o.metadata.labels?["tapio.io/node"],
                  o.spec.subject.kind == "Pod", let ns = o.spec.subject.namespace else { return nil }
            let seen = Formatting.parseDate(o.status?.lastSeen)
            let owner = o.spec.resources.first { ClusterDetectors.workloadKinds.contains($0.kind) }
            return ClusterDetectors.PodFinding(
                type: o.spec.type, pod: ResourceRef(kind: "Pod", namespace: ns, name: o.spec.subject.name, uid: o.spec.subject.uid),
                node: node, owner: owner, lastSeen: seen ?? Date())
        }
    }

    /// Each Insight's `insights.ttl`, as its writer merges it: an agent's Insight (labelled with its node) expires
    /// after the longest `ttl` of the valid policies selecting that node, 24h when none does — what the node's agent
    /// applies (`EffectiveConfig`). The operator's own Insights, and those of a node that is gone, keep the longest
    /// `ttl` of all valid policies: never deleted sooner than some policy asks.
    static func ttlResolver(policies: [TapioPolicy], nodes: [Node]) -> (InsightObject) -> Duration {
        let byNode = longestPerNode(policies: policies, nodes: nodes) { p in
            within((try? p.spec.insights.ttlDuration()) ?? .seconds(86_400), InsightSettings.ttlRange)
        }
        return { o in byNode(o.metadata.labels?["tapio.io/node"]) }
    }

    /// How long after a node's agent started, or its node went, its Insights are judged left behind
    /// (``LeftBehindInsights``): the node's `window` + `resolveAfter`, as its agent merges them (the largest of the
    /// valid policies selecting it; a gone node's, of all). By the Insight label value of the node's name.
    static func graceResolver(policies: [TapioPolicy], nodes: [Node]) -> (String) -> Duration {
        // Each the largest on its own, as the agent merges them: not the largest sum of one policy's two.
        let window = longestPerNode(policies: policies, nodes: nodes) { p in
            within((try? p.spec.correlation.windowDuration()) ?? .seconds(300), CorrelationSettings.windowRange)
        }
        let resolveAfter = longestPerNode(policies: policies, nodes: nodes) { p in
            within((try? p.spec.insights.resolveAfterDuration()) ?? .seconds(300), InsightSettings.resolveAfterRange)
        }
        return { node in window(node) + resolveAfter(node) }
    }

    /// `d` within `range`, as the agent clamps a policy's durations.
    private static func within(_ d: Duration, _ range: ClosedRange<Duration>) -> Duration {
        min(max(d, range.lowerBound), range.upperBound)
    }

    /// A per-node setting merged as the agents merge it: the largest `value` of the valid policies selecting the node
    /// (by the Insight label value of its name), or of all of them for a node not among `nodes` (nil too); `value` of
    /// a default policy when none applies.
    static func longestPerNode(policies: [TapioPolicy], nodes: [Node],
                               _ value: (TapioPolicy) -> Duration) -> (String?) -> Duration {
        let fallback = value(TapioPolicy(name: "", spec: TapioPolicySpec()))
        let valid = policies.filter { TapioPolicyValidation.validate($0).allSatisfy { $0.level != .error } }
        func longest(_ ps: [TapioPolicy]) -> Duration { ps.map(value).max() ?? fallback }
        let ofAll = longest(valid)
        var byNodeLabel: [String: Duration] = [:]
        for n in nodes {
            guard let name = n.metadata.name else { continue }
            let labels = n.metadata.labels ?? [:]
            byNodeLabel[InsightDocument.labelValue(name)] = longest(valid.filter { $0.spec.nodeSelector?.matches(labels) ?? true })
        }
        return { label in label.flatMap { byNodeLabel[$0] } ?? ofAll }
    }

    /// Marks a finding nobody will resolve — left by a previous leader, or by an agent (``LeftBehindInsights``) —
    /// Resolved, or Remediated when its fix was applied, saying why (``InsightResolution``). With `onlyIfUnchanged`
    /// one written since it was judged (an agent saw it again) answers 409 and stays, to be judged again.
    @discardableResult
    func resolve(_ o: InsightObject, now: Date, why: String, onlyIfUnchanged: Bool = false) async -> Bool {
        do {
            try await InsightResolution.resolve(o, client: client, lastSeen: now, why: why, by: "the operator",
                                                onlyIfUnchanged: onlyIfUnchanged, logger: logger)
            return true
        } catch KubeError.conflict, KubeError.notFound {
            // Written again since, or deleted: judged afresh on the next pass, if at all.
            return false
        } catch {
            logger.warning("resolving Insight \(o.metadata.name ?? "") failed: \(error)")
            return false
        }
    }
}
