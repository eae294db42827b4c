import Foundation
import TapioCorrelation
import TapioModel

/// `-o json`: one JSON object per line, each an insight or a status record.
///
/// Schema version 1 (`"schema": "tapio.io/sniff/v1"`): an insight record is
/// `{"schema", "record": "insight", "name", "change", "phase", "firstSeen", "lastSeen", "occurrences", "spec"}`
/// (`change`: new, updated, escalated, resolved; `phase`: Active or Resolved)
/// where `spec` has exactly the Insight CR's `spec` fields; a status record is
/// `{"schema", "record": "status", "time", "events", "insights", "correlations", "subjects", "shed", "sources": [{name, state, reason?, events, errors, shed, eventsPerSecond}]}`.
/// Fields are only ever added within a schema version.
///
/// `tapio replay` prints the same insight records under `"schema": "tapio.io/replay/v1"`, with `observedAt` (the
/// scenario's virtual time of the update, equal to `lastSeen`) added.
public enum JSONLines {
    public static let schema = "tapio.io/sniff/v1"
    public static let replaySchema = "tapio.io/replay/v1"

    struct InsightLine: Encodable {
        let schema: String
        let record = "insight"
        let name: String
        let change: InsightChange
        let phase: String
        let firstSeen: String
        let lastSeen: String
        let occurrences: Int
        let spec: InsightSpec
        /// Replay only.
        let observedAt: String?
    }

    struct SourceLine: Encodable {
        let name: String
        let state: String
        let reason: String?
        let events: UInt64
        let errors: UInt64
        let shed: UInt64
        let eventsPerSecond: Double
    }

    struct StatusLine: Encodable {
        let schema = JSONLines.schema
        let record = "status"
        let time: String
        let events: UInt64
        let insights: Int
        let correlations: UInt64
        let subjects: Int
        let shed: UInt64
        let sources: [SourceLine]
    }

    /// One insight record (no trailing newline); `replay` selects the replay schema and adds `observedAt`.
    public static func encode(_ u: InsightUpdate, replay: Bool = false) -> String {
        let observed = Formatting.rfc3339(nanos: u.observedAt)
        return line(InsightLine(schema: replay ? replaySchema : schema, name: u.identity.name, change: u.change,
                                phase: u.change == .resolved ? "Resolved" : "Active",
                                firstSeen: Formatting.rfc3339(nanos: u.firstSeenAt), lastSeen: observed,
                                occurrences: u.occurrences, spec: u.spec, observedAt: replay ? observed : nil))
    }

    public static func encode(_ s: PipelineStatus, at time: Date) -> String {
        let sources = s.sources.map { src -> SourceLine in
            let (state, reason): (String, String?) = switch src.health.state {
            case .starting: ("starting", nil)
            case .running: ("running", nil)
            case .degraded(let why): ("degraded", why)
            case .failed(let why): ("failed", why)
            case .stopped: ("stopped", nil)
            }
            return SourceLine(name: src.name, state: state, reason: reason, events: src.health.events,
                              errors: src.health.errors, shed: src.health.shed,
                              eventsPerSecond: src.health.eventsPerSecond)
        }
        return line(StatusLine(time: rfc3339(time), events: s.events, insights: s.activeInsights.count,
                               correlations: s.correlations, subjects: s.subjects, shed: s.shed, sources: sources))
    }

    static func line(_ value: some Encodable) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public static func rfc3339(_ d: Date) -> String { d.formatted(.iso8601) }
}
