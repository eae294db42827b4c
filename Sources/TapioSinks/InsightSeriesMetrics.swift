import Prometheus
import TapioModel

/// One active Insight as its per-Insight series show it, for alerting on a single finding with its pod,
/// probability and time-to-event (issue 15). Every series of an Insight carries the same labels, so alert
/// expressions can combine them with `and`/`unless` without `on(...)` clauses.
public struct InsightSeries: Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var type: InsightType
    public var severity: Severity
    public var subjectKind: String
    public var subjectName: String
    public var container: String
    public var node: String
    /// P(the predicted event within the horizon), for predictions.
    public var probability: Double?
    /// The predicted time to the event when the Insight was last written (seconds).
    public var timeToEventSeconds: Double?
    /// When the event is predicted (Unix seconds): last write plus time-to-event, so a rule can compare it with
    /// `time()` and the countdown does not freeze between writes.
    public var eventTimestampSeconds: Double?

    public init(namespace: String, name: String, type: InsightType, severity: Severity, subjectKind: String,
                subjectName: String, container: String, node: String, probability: Double? = nil,
                timeToEventSeconds: Double? = nil, eventTimestampSeconds: Double? = nil) {
        self.namespace = namespace; self.name = name; self.type = type; self.severity = severity
        self.subjectKind = subjectKind; self.subjectName = subjectName; self.container = container; self.node = node
        self.probability = probability; self.timeToEventSeconds = timeToEventSeconds
        self.eventTimestampSeconds = eventTimestampSeconds
    }

    var labels: [(String, String)] {
        [("namespace", namespace), ("name", name), ("type", type.rawValue), ("severity", severity.rawValue),
         ("subject_kind", subjectKind), ("subject_name", subjectName), ("container", container), ("node", node)]
    }

    /// Identifies the series set: a change of severity (say) replaces the old series rather than adding one.
    var key: String { labels.map { "\($0.0)=\($0.1)" }.joined(separator: "\u{1}") }
}

extension TapioMetrics {
    /// The default cap on per-Insight series: a Prometheus server handles millions of series, but an alerting
    /// metric that grows with a misbehaving cluster must not; 10,000 active Insights is far beyond any cluster
    /// where each still gets looked at. The most severe (then the first given) are kept.
    public static let defaultInsightSeriesLimit = 10_000

    /// Replaces the per-Insight series with `active` (at most `limit` of them; the rest are counted in
    /// `tapio_insight_series_omitted`). Series of Insights no longer given are removed, so a resolved or deleted
    /// Insight's alert resolves.
    public func setInsightSeries(_ active: [InsightSeries], limit: Int = TapioMetrics.defaultInsightSeriesLimit) {
        let kept = active.count > limit
            ? Array(active.enumerated().sorted { ($0.element.severity, -$0.offset) > ($1.element.severity, -$1.offset) }
                .prefix(max(0, limit)).map(\.element))
            : active
        registry.tapioGauge(name: "tapio_insight_series_omitted",
                            help: "Active Insights without per-Insight series because the series cap was reached.")
            .set(Double(active.count - kept.count))
        insightSeriesGauges.withLock { current in
            var next: [String: [Gauge]] = [:]
            for s in kept {
                let labels = s.labels
                var gauges: [Gauge] = []
                // Each present value its own gauge, all with the Insight's labels.
                let values: [(String, String, Double?)] = [
                    ("tapio_insight_info", "1 for each active Insight, labelled with what it is about.", 1),
                    ("tapio_insight_probability", "Probability of the predicted event within the prediction horizon.", s.probability),
                    ("tapio_insight_time_to_event_seconds", "Predicted seconds to the event when the Insight was last written.",
                     s.timeToEventSeconds),
                    ("tapio_insight_predicted_event_timestamp_seconds", "When the predicted event is expected, in Unix seconds.",
                     s.eventTimestampSeconds),
                ]
                for (name, help, value) in values {
                    guard let value else { continue }
                    let g = registry.tapioGauge(name: name, labels: labels, help: help)
                    g.set(value)
                    gauges.append(g)
                }
                next[s.key] = gauges
            }
            for (key, gauges) in current where next[key] == nil {
                for g in gauges { registry.unregisterGauge(g) }
            }
            // A series whose optional values went away (a prediction that lost its probability) drops that gauge.
            for (key, gauges) in current {
                guard let now = next[key] else { continue }
                for g in gauges where !now.contains(where: { $0 === g }) { registry.unregisterGauge(g) }
            }
            current = next
        }
    }

    /// Removes every per-Insight series (leadership ended: the new leader exports them).
    public func clearInsightSeries() {
        setInsightSeries([])
    }
}
