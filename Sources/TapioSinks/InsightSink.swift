import Foundation
import TapioCorrelation
import TapioModel

/// Where insight updates go: the terminal, JSON lines, metrics, Insight CRs, Events.
///
/// A sink must not block the engine: slow work (API writes) goes through the sink's own bounded queue.
public protocol InsightSink: Sendable {
    func emit(_ updates: [InsightUpdate]) async
    /// Called once a second with the pipeline's counters (for footers and metrics).
    func status(_ status: PipelineStatus) async
}

extension InsightSink {
    public func status(_ status: PipelineStatus) async {}
}

/// The pipeline's counters, as the status footer, `-o json` status records and `/metrics` show them.
public struct PipelineStatus: Sendable {
    public var events: UInt64 = 0
    public var correlations: UInt64 = 0
    public var subjects: Int = 0
    public var activeInsights: [InsightUpdate] = []
    /// Events shed: by the merge queue, by each source's queue, by the engine's breaker.
    public var shedByStage: [String: UInt64] = [:]
    public var sources: [(name: String, health: SourceHealth)] = []
    /// OOM kills and their victims' exits held for a fresh attribution, totals by outcome (`held`, `resolved`,
    /// `unresolved`, `overflow`).
    public var attributionRetries: [String: UInt64] = [:]
    /// The engine's ``CorrelationEngine/sizes``, refreshed with the active set (once a second at most).
    public var engineSizes: [(structure: String, entries: Int)] = []
    /// When the current engine started: the pipeline's start, or its last reconfiguration (a policy changed), from
    /// which the engine gathers its evidence afresh.
    public var engineStartedAt = Date()
    public init() {}
    public var shed: UInt64 { shedByStage.values.reduce(0, &+) }
}

