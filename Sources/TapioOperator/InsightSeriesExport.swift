import TapioCorrelation
import TapioKube
import TapioModel
import TapioSinks

/// The per-Insight series the leading operator exports (`tapio_insight_*`), built from its cache of every
/// writer's Insights. Only the leader exports them: Prometheus scrapes every replica, and series from each would
/// fire each alert once per replica; a follower exports none, and a replica that loses leadership removes its own.
enum InsightSeriesExport {
    static func series(_ objects: [InsightObject]) -> [InsightSeries] {
        objects.compactMap { o in
            guard (o.status?.phase ?? .active) == .active, let name = o.metadata.name else { return nil }  // not Resolved or Remediated
            let prediction = o.spec.prediction
            let tte = prediction?.timeToEvent.flatMap { try? GoDuration.parse($0) }.map(Self.seconds)
            // When the event is expected: the writer's own estimate, else its last write plus the time-to-event.
            var at = prediction?.expectedAt.flatMap(Formatting.parseRFC3339).map { Double($0) / 1e9 }
            if at == nil, let tte, let seen = o.status?.lastSeen.flatMap(Formatting.parseRFC3339) {
                at = Double(seen) / 1e9 + tte
            }
            let probability = prediction.map(\.probability).flatMap { $0.isFinite ? min(1, max(0, $0)) : nil }
            return InsightSeries(namespace: o.metadata.namespace ?? "", name: name, type: o.spec.type,
                                 severity: o.spec.severity, subjectKind: o.spec.subject.kind,
                                 subjectName: o.spec.subject.name, container: o.spec.subject.container ?? "",
                                 node: o.metadata.labels?["tapio.io/node"] ?? "", probability: probability,
                                 timeToEventSeconds: tte, eventTimestampSeconds: at)
        }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
