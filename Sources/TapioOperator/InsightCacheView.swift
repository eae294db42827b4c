import TapioKube
import TapioModel

/// What the leading operator keeps of each agent's Insight in its cache. At 5,000 nodes the cache holds every
/// Insight of the cluster (50,000 measured), and its readers need only a few fields of each:
/// - the cluster detectors: type, phase, node label, subject, the owning workload in `resources`, `lastSeen`;
/// - the per-Insight metrics: type, severity, subject, prediction, phase;
/// - the janitor: name, uid, resourceVersion, `lastSeen`, phase;
/// - the remediator: whether an action carries a patch (it reads the whole Insight from the server before it decides,
///   see ``Remediator/reconcile(_:)``) and the history of applied actions.
///
/// So the text written for people — title, summary, evidence, and each action's description and commands — is
/// dropped, and actions without a patch too, and of the metadata the creation time and every label but the node's
/// (the server selects by the others; no reader of the cache does). The operator's own Insights (no node label: ClusterHealth,
/// NodePressure) stay whole: a new leader adopts them with their spec.
public enum InsightCacheView {
    public static func strip(_ o: InsightObject) -> InsightObject {
        guard let node = o.metadata.labels?["tapio.io/node"] else { return o }
        var o = o
        o.metadata.labels = ["tapio.io/node": node]
        o.metadata.creationTimestamp = nil
        o.spec.title = ""
        o.spec.summary = ""
        o.spec.evidence = []
        if var r = o.spec.remediation {
            r.actions = r.actions.compactMap { a in
                guard a.patch != nil else { return nil }
                var a = a
                a.title = ""
                a.description = ""
                a.impact = ""
                a.commands = []
                return a
            }
            o.spec.remediation = r
        }
        return o
    }
}
