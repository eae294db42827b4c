import Foundation
import Prometheus
import Synchronization
import TapioCorrelation
import TapioModel

/// Tapio's Prometheus metrics (served on `/metrics` by the agent, the operator and `tapio sniff -o prometheus`).
///
/// | metric | type | labels |
/// | --- | --- | --- |
/// | `tapio_insights` | gauge | `type`, `severity` — active insights |
/// | `tapio_predicted_time_to_oom_seconds` | gauge | `namespace`, `pod`, `container` (or `subject` for local ones) |
/// | `tapio_memory_growth_bytes_per_second` | gauge | same as above |
/// | `tapio_events_processed_total` | counter | `source` |
/// | `tapio_events_shed` | gauge | `stage` — total dropped so far by a full bounded queue or an open circuit breaker |
/// | `tapio_writes_dropped` | gauge | `what` (`insights`, `events`), `why` (`full`: pushed out of a full queue; `failed`: refused or rejected by the API server, given up on) — total so far, read at each scrape |
/// | `tapio_insights_left_behind_resolved_total` | counter | — agents' Insights the leading operator resolved because no agent would (see `LeftBehindInsights`) |
/// | `tapio_http_refused_total` | counter | — connections and requests the HTTP endpoint refused (`HTTPEndpoint.Limits`) |
/// | `tapio_source_up` | gauge | `source` — 1 running or starting, 0.5 degraded, 0 failed or stopped |
/// | `tapio_api_requests_total`, `tapio_api_errors_total` | counter | `verb` |
/// | `tapio_remediation_attempts_total` | counter | `outcome` |
/// | `tapio_leader` | gauge | — 1 while this replica leads |
/// | `tapio_cluster_detectors_pass_seconds` | gauge | — the leading operator's last cluster-detector pass |
/// | `tapio_insight_info`, `tapio_insight_probability`, `tapio_insight_time_to_event_seconds`, `tapio_insight_predicted_event_timestamp_seconds` | gauge | one series per active Insight (the leading operator, and `tapio sniff`; see `InsightSeries`) |
/// | `tapio_insight_series_omitted` | gauge | — active Insights left out by the series cap |
/// | `tapio_policy_accepted`, `tapio_policy_nodes_targeted`, `tapio_policy_nodes_applied` | gauge | `policy` (the leading operator) |
/// | `tapio_policy_status_writes_deferred_total` | counter | — policy reconciles that held a node-driven status write back |
/// | `tapio_process_heap_bytes` | gauge | `state`: `in_use` (allocated, not freed), `free` (freed, kept by malloc) — read at each scrape |
/// | `tapio_process_heap_arenas` | gauge | — malloc's arenas, read at each scrape |
/// | `tapio_process_resident_bytes` | gauge | `kind`: `anonymous`, `file`, `shmem` — from /proc/self/status at each scrape |
/// | `tapio_state_entries` | gauge | `structure` — entries in each of the agent's bounded maps and queues, read at each scrape |
public final class TapioMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let predictionGauges = Mutex<[String: (Gauge, Gauge)]>([:])
    /// Per-Insight gauges by series key (see InsightSeriesMetrics.swift).
    let insightSeriesGauges = Mutex<[String: [Gauge]]>([:])
    /// Per-policy gauges by policy name.
    private let policyGauges = Mutex<[String: [Gauge]]>([:])
    /// The counts `tapio_insights` was last set to (nil: never set), so an unchanged count is not set again.
    private let insightCounts = Mutex<[InsightKind: Int]?>(nil)
    private let lastStateEntries = Mutex<[String: Int]>([:])
    struct InsightKind: Hashable {
        var type: InsightType
        var severity: Severity
    }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// The exposition text (Prometheus text format 0.0.4). The process's heap gauges are read now, so a scrape
    /// sees them current without a timer.
    public func render() -> [UInt8] {
        processHeap(ProcessHeap.current())
        processResident(Resident.current())
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    public func eventsProcessed(source: String, count: Int) {
        registry.tapioCounter(name: "tapio_events_processed_total", labels: [("source", source)],
                             help: "Events taken from a source into the correlation engine.").increment(by: Int64(count))
    }

    /// Sets the shed total of a stage to the stage's own running count (sources and queues keep their counters).
    public func shedTotal(stage: String, total: UInt64) {
        registry.tapioGauge(name: "tapio_events_shed", labels: [("stage", stage)],
                           help: "Events dropped so far at this stage (full bounded queue or open circuit breaker).")
            .set(Double(total))
    }

    /// Writes to the API server lost so far (an `InsightWriter`'s updates, an `EventRecorder`'s Events), by why.
    public func writesDropped(what: String, full: UInt64, failed: UInt64) {
        for (why, n) in [("full", full), ("failed", failed)] {
            registry.tapioGauge(name: "tapio_writes_dropped", labels: [("what", what), ("why", why)],
                               help: "Insight updates and Events lost so far: pushed out of a full queue, or refused or rejected by the API server and given up on.")
                .set(Double(n))
        }
    }

    /// The agent's state file (`--state-file`: the engine's memory beyond its window, kept across restarts): writes so
    /// far by result, the last one's size, and what start-up read back.
    public func stateFile(written: UInt64, failed: UInt64, superseded: UInt64, locked: UInt64, bytes: Int,
                          readOutcome: String, restoredContainers: Int, restoredWorkloads: Int) {
        for (result, n) in [("written", written), ("failed", failed), ("superseded", superseded), ("locked", locked)] {
            registry.tapioGauge(name: "tapio_state_file_writes", labels: [("result", result)],
                               help: "Writes of the agent's state file so far: written, failed (the error is logged), superseded (a newer snapshot replaced one still waiting to be written), or locked (not written: another agent holds the file's lock).")
                .set(Double(n))
        }
        registry.tapioGauge(name: "tapio_state_file_bytes", help: "Size of the agent's state file as last written.").set(Double(bytes))
        if !readOutcome.isEmpty {
            registry.tapioGauge(name: "tapio_state_file_read", labels: [("outcome", readOutcome)],
                               help: "1 for what the agent's start-up read back from its state file: restored, none (no file yet), invalid (moved aside to <file>.invalid, see the log), unreadable, or locked (another agent uses the file).")
                .set(1.0)
        }
        for (what, n) in [("containers", restoredContainers), ("workloads", restoredWorkloads)] {
            registry.tapioGauge(name: "tapio_state_file_restored", labels: [("what", what)],
                               help: "What start-up took over from the state file: pod containers' minute histories, and workloads' kept cycles.")
                .set(Double(n))
        }
    }

    /// One connection or request the HTTP endpoint refused (``HTTPEndpoint/Limits``).
    public func httpRefused() {
        registry.tapioCounter(name: "tapio_http_refused_total", labels: [],
                             help: "Connections and requests the /metrics, /healthz and /readyz endpoint refused: past its connection cap, or asking again before taking the last answer, or past the budget of unsent answers.")
            .increment()
    }

    public func attributionRetries(outcome: String, total: UInt64) {
        registry.tapioGauge(name: "tapio_attribution_retries", labels: [("outcome", outcome)],
                           help: "OOM kills and their victims' exits held for a fresh pod attribution so far, by outcome: held, resolved (a pod's container), unresolved (released as known when the retries ran out), overflow (the hold was full; passed on at once).")
            .set(Double(total))
    }

    public func sourceHealth(_ name: String, _ health: SourceHealth) {
        let value: Double = switch health.state {
        case .running, .starting: 1
        case .degraded: 0.5
        case .failed, .stopped: 0
        }
        registry.tapioGauge(name: "tapio_source_up", labels: [("source", name)],
                           help: "1 running or starting, 0.5 degraded, 0 failed or stopped.").set(value)
    }

    public func apiRequest(verb: String, failed: Bool) {
        registry.tapioCounter(name: "tapio_api_requests_total", labels: [("verb", verb)],
                             help: "Kubernetes API requests.").increment()
        if failed {
            registry.tapioCounter(name: "tapio_api_errors_total", labels: [("verb", verb)],
                                 help: "Kubernetes API requests that failed, and watch streams that broke (ERROR events, cut connections, oversized lines).").increment()
        }
    }

    /// A failure that is not a request of its own: an open watch stream that broke (an `ERROR` event such as 410,
    /// a cut connection, a line past the limit).
    public func apiError(verb: String) {
        registry.tapioCounter(name: "tapio_api_errors_total", labels: [("verb", verb)],
                             help: "Kubernetes API requests that failed, and watch streams that broke (ERROR events, cut connections, oversized lines).").increment()
    }

    /// Subjects the engine keeps state for (containers, pods, cgroups, processes): what its memory grows with.
    public func subjects(_ n: Int) {
        registry.tapioGauge(name: "tapio_engine_subjects", help: "Subjects (containers, pods, cgroups, processes) the correlation engine keeps state for.")
            .set(Double(n))
    }

    /// glibc's heap: what the process holds (`in_use`) against what it freed and malloc kept (`free`), which
    /// separates state that grows from memory the allocator retains when anonymous memory rises.
    public func processHeap(_ heap: ProcessHeap?) {
        guard let heap else { return }
        let help = "Bytes of the C heap: in_use (allocated and not freed, large mmap'd blocks included), free (freed and kept by malloc's arenas)."
        registry.tapioGauge(name: "tapio_process_heap_bytes", labels: [("state", "in_use")], help: help).set(Double(heap.inUse))
        registry.tapioGauge(name: "tapio_process_heap_bytes", labels: [("state", "free")], help: help).set(Double(heap.free))
        registry.tapioGauge(name: "tapio_process_heap_arenas", help: "malloc arenas of the process (glibc).").set(Double(heap.arenas))
    }

    /// Resident memory by kind: after the agent released its start-up pages (``ProcessFilePages``), `file` shows
    /// what of its code rest brings back.
    public func processResident(_ resident: Resident?) {
        guard let resident else { return }
        let help = "Resident bytes of this process by kind: anonymous, file (mapped code and constants), shmem."
        registry.tapioGauge(name: "tapio_process_resident_bytes", labels: [("kind", "anonymous")], help: help).set(Double(resident.anonymous))
        registry.tapioGauge(name: "tapio_process_resident_bytes", labels: [("kind", "file")], help: help).set(Double(resident.file))
        registry.tapioGauge(name: "tapio_process_resident_bytes", labels: [("kind", "shmem")], help: help).set(Double(resident.shmem))
    }

    /// Entries in the bounded structures that hold state over time (caches, maps, queues), by name: which one grows,
    /// when memory does. Names are fixed by the caller (a handful), never data.
    public func stateEntries(_ sizes: [(structure: String, entries: Int)]) {
        // The pipeline reports the engine's sizes once a second: set only those that moved (see setInsightCounts).
        let changed = lastStateEntries.withLock { last in
            sizes.filter { s in
                defer { last[s.structure] = s.entries }
                return last[s.structure] != s.entries
            }
        }
        for (structure, n) in changed {
            registry.tapioGauge(name: "tapio_state_entries", labels: [("structure", structure)],
                                help: "Entries in a bounded map, cache or queue of the process, by structure.").set(Double(n))
        }
    }

    /// How long the leading operator's last pass of the cluster-level detectors took (what grows with the cluster's
    /// Nodes and Insights).
    public func clusterDetectorsPass(seconds: Double) {
        registry.tapioGauge(name: "tapio_cluster_detectors_pass_seconds",
                            help: "Duration of the leading operator's last pass of the cluster-level detectors.").set(seconds)
    }

    /// Agents' Insights the leading operator resolved because no agent would: the node's agent restarted and did not
    /// see them again, or the node is gone.
    public func insightsLeftBehindResolved(_ n: Int) {
        registry.tapioCounter(name: "tapio_insights_left_behind_resolved_total",
                              help: "Active agent Insights the leading operator resolved because no agent would: written before their node's agent restarted and not seen since, or of a node that is gone.")
            .increment(by: Int64(n))
    }

    /// Expired Insights the leading operator deleted (every writer's: agents have no delete right).
    public func insightsExpired(_ n: Int) {
        registry.tapioCounter(name: "tapio_insights_expired_total",
                              help: "Resolved or Remediated Insights deleted by the leading operator once older than their insights.ttl.")
            .increment(by: Int64(n))
    }

    /// An object in a list or watch that did not decode and was skipped.
    public func undecodableObject(resource: String) {
        registry.tapioCounter(name: "tapio_api_undecodable_objects_total", labels: [("resource", resource)],
                             help: "Objects in lists and watch events that could not be decoded and were skipped (the log names them).").increment()
    }

    public func remediationAttempt(outcome: String) {
        registry.tapioCounter(name: "tapio_remediation_attempts_total", labels: [("outcome", outcome)],
                             help: "Remediation attempts by outcome (refused, proposed, dry-run, dry-run-failed, applied, failed).").increment()
    }

    /// A TapioPolicy's status as numbers, for the "a node's agent does not apply its policy" alert.
    public func policyStatus(_ policy: String, accepted: Bool, targeted: Int, applied: Int) {
        let labels = [("policy", policy)]
        let gauges = [
            registry.tapioGauge(name: "tapio_policy_accepted", labels: labels, help: "1 when the TapioPolicy is valid (its Accepted condition)."),
            registry.tapioGauge(name: "tapio_policy_nodes_targeted", labels: labels, help: "Nodes the TapioPolicy selects."),
            registry.tapioGauge(name: "tapio_policy_nodes_applied", labels: labels, help: "Targeted nodes whose agent runs the policy's current generation."),
        ]
        gauges[0].set(accepted ? 1.0 : 0.0)
        gauges[1].set(Double(targeted))
        gauges[2].set(Double(applied))
        policyGauges.withLock { $0[policy] = gauges }
    }

    /// A reconcile that found a TapioPolicy's status changed only by nodes and heartbeats and held the write back:
    /// the last write was less than the pacing interval ago (nodes / 100 s, 1–30 s; ``PolicyStatusPacing``). The
    /// newest status is written when the interval has passed.
    public func policyStatusWriteDeferred() {
        registry.tapioCounter(name: "tapio_policy_status_writes_deferred_total",
                              help: "Policy reconciles that held back a status changed only by nodes and heartbeats (at most one such write per nodes/100 s, 1-30 s; the newest is written then).")
            .increment()
    }

    /// Removes the gauges of policies that no longer exist (or, with an empty set, of all: leadership ended).
    public func retainPolicies(_ names: Set<String>) {
        policyGauges.withLock { all in
            for (name, gauges) in all where !names.contains(name) {
                for g in gauges { registry.unregisterGauge(g) }
                all[name] = nil
            }
        }
    }

    public func leader(_ isLeader: Bool) {
        registry.tapioGauge(name: "tapio_leader", help: "1 while this replica is the elected leader.").set(isLeader ? 1.0 : 0.0)
    }

    /// Updates the per-type/severity counts and the per-subject prediction gauges from the set of active insights.
    /// `tapio_insights` from (type, severity) pairs: the operator counts the cluster's active Insight objects.
    public func setInsightCounts(_ active: [(InsightType, Severity)]) {
        var counts: [InsightKind: Int] = [:]
        for (t, s) in active { counts[InsightKind(type: t, severity: s), default: 0] += 1 }
        // Called once a second by every agent: only the gauges whose count moved are looked up and set (each lookup
        // builds its labels and takes the registry's lock — 3 % of an idle agent's CPU when all 32 were set).
        let changed = insightCounts.withLock { last -> [(InsightKind, Int)] in
            defer { last = counts }
            var out: [(InsightKind, Int)] = []
            for t in InsightType.allCases {
                for s in Severity.allCases {
                    let k = InsightKind(type: t, severity: s)
                    let n = counts[k] ?? 0
                    if last == nil || (last?[k] ?? 0) != n { out.append((k, n)) }
                }
            }
            return out
        }
        for (k, n) in changed {
            registry.tapioGauge(name: "tapio_insights", labels: [("type", k.type.rawValue), ("severity", k.severity.rawValue)],
                               help: "Active insights by type and severity.").set(Double(n))
        }
    }

    public func insights(active: [InsightUpdate]) {
        setInsightCounts(active.map { ($0.spec.type, $0.spec.severity) })

        var live: [String: (Gauge, Gauge)] = [:]
        for r in active where r.spec.type == .oomPrediction {
            let labels = subjectLabels(r.spec.subject)
            let key = labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
            let ttl = registry.tapioGauge(name: "tapio_predicted_time_to_oom_seconds", labels: labels,
                                         help: "Predicted seconds until the container is OOM-killed.")
            let growth = registry.tapioGauge(name: "tapio_memory_growth_bytes_per_second", labels: labels,
                                            help: "Fitted memory growth rate of the container.")
            if let s = r.spec.prediction?.timeToEvent.flatMap({ try? GoDuration.parse($0) }) {
                ttl.set(Double(s.components.seconds) + Double(s.components.attoseconds) / 1e18)
            }
            if let rate = r.spec.evidence.first(where: { $0.unit == "bytes/s" })?.value { growth.set(rate) }
            live[key] = (ttl, growth)
        }
        // Drop gauges of subjects no longer predicted, so a scrape never shows a stale countdown.
        predictionGauges.withLock { old in
            for (key, gauges) in old where live[key] == nil {
                registry.unregisterGauge(gauges.0)
                registry.unregisterGauge(gauges.1)
            }
            old = live
        }
    }

    private func subjectLabels(_ r: ResourceRef) -> [(String, String)] {
        if let ns = r.namespace {
            return [("namespace", ns), ("pod", r.name), ("container", r.container ?? "")]
        }
        return [("subject", "\(r.kind)/\(r.name)"), ("container", r.container ?? "")]
    }
}

extension PrometheusCollectorRegistry {
    /// A counter named exactly `name` (swift-prometheus builds names from descriptors; ours are already whole).
    func tapioCounter(name: String, labels: [(String, String)] = [], help: String) -> Counter {
        makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    /// A gauge named exactly `name`.
    func tapioGauge(name: String, labels: [(String, String)] = [], help: String) -> Gauge {
        makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }
}
