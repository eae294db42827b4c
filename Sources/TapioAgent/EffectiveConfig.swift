import TapioCorrelation
import TapioModel

/// What one node runs with: the probe settings and the engine's configuration, merged from every TapioPolicy
/// that selects the node, then overridden by command-line flags (`tapio sniff`).
///
/// Overlap rule — the most observant setting wins, so adding a policy never silently blinds another one:
/// a probe runs if any selecting policy enables it; `samplingHz` and `window` take the largest value;
/// `leakThreshold`, `batchSize`, `batchTimeout` and `minSeverity` the smallest; `emitEvents` is on if any policy
/// has it on; `resolveAfter` takes the largest value. Neither `ttl` nor remediation is merged here: the operator
/// expires Insights (the largest `ttl` of the policies selecting their node, `ClusterWatch.ttlResolver`) and applies
/// the policies that select an Insight's subject, each with its own gates. Policies that fail
/// validation are skipped (their status says why). With no policy, every field has its default.
public struct EffectiveConfig: Sendable, Hashable {
    public var memoryProbe = true
    public var oomProbe = true
    public var processProbe = true
    public var networkProbe = true
    public var samplingHz = MemoryProbe.defaultSamplingHz
    /// The engine's configuration; systemic failures are grouped by node here (the operator groups across nodes).
    public var correlation = EffectiveConfig.agentDefaults
    public var emitEvents = true
    /// `name → generation` of the policies merged in (reported in the node's heartbeat Lease).
    public var appliedPolicies: [String: Int64] = [:]
    /// The policies merged in (their selectors decide which pods are watched: ``PolicyScope``).
    public var policies: [TapioPolicy] = []

    public init() {}

    /// Merges `policies` (already filtered to those selecting this node and valid).
    public static func merge(_ policies: [TapioPolicy]) -> EffectiveConfig {
        var c = EffectiveConfig()
        guard !policies.isEmpty else { return c }
        let specs = policies.map(\.spec)
        c.memoryProbe = specs.contains { $0.probes.memory.enabled }
        c.oomProbe = specs.contains { $0.probes.oom.enabled }
        c.processProbe = specs.contains { $0.probes.process.enabled }
        c.networkProbe = specs.contains { $0.probes.network.enabled }
        // Every value is clamped to its schema range as well: callers pass validated policies, but a value out of
        // range must never reach the probes or the engine's arithmetic, whatever the caller did.
        c.samplingHz = (specs.map(\.probes.memory.samplingHz).max() ?? c.samplingHz).clamped(to: MemoryProbe.samplingHzRange)
        c.emitEvents = specs.contains { $0.insights.emitEvents }

        var e = agentDefaults
        e.batchSize = (specs.map(\.correlation.batchSize).min() ?? e.batchSize).clamped(to: CorrelationSettings.batchSizeRange)
        e.batchTimeout = (specs.compactMap { try? $0.correlation.batchTimeoutDuration() }.min() ?? e.batchTimeout)
            .clamped(to: CorrelationSettings.batchTimeoutRange)
        e.window = (specs.compactMap { try? $0.correlation.windowDuration() }.max() ?? e.window).clamped(to: CorrelationSettings.windowRange)
        e.minSeverity = specs.map(\.correlation.minSeverity).min() ?? e.minSeverity
        if let leak = specs.compactMap({ try? $0.probes.memory.leakThresholdBytesPerHour() }).min() {
            e.leakThresholdBytesPerHour = Double(leak.clamped(to: MemoryProbe.leakThresholdRange))
        }
        e.resolveAfter = (specs.compactMap { try? $0.insights.resolveAfterDuration() }.max() ?? e.resolveAfter)
            .clamped(to: InsightSettings.resolveAfterRange)
        // The lowest ceiling is the safe one to suggest.
        e.memoryCeilingBytes = specs.compactMap { try? $0.remediation.memoryCeilingBytes() }.min()?
            .clamped(to: RemediationSettings.memoryCeilingRange)
        c.correlation = e
        for p in policies { c.appliedPolicies[p.metadata.name ?? ""] = p.metadata.generation ?? 0 }
        c.policies = policies
        return c
    }

    public static var agentDefaults: CorrelationConfig {
        var c = CorrelationConfig()
        c.clusterHealthByNodeOnly = true
        return c
    }

    /// Whether `policy` applies to a node with these labels (no `nodeSelector` = every node).
    public static func selects(_ policy: TapioPolicy, nodeLabels: [String: String]) -> Bool {
        policy.spec.nodeSelector?.matches(nodeLabels) ?? true
    }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}
