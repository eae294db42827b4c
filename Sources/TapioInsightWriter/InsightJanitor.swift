import Foundation
import KubeClient
import Logging
import Synchronization
import TapioCorrelation
import TapioKube
import TapioModel

/// Deletes expired Insights — Resolved or Remediated for longer than their TTL (`insights.ttl`, default 24h) — of
/// every writer. The leading operator runs it: agents have no delete right on Insights (least privilege,
/// config/rbac/agent_clusterrole.yaml), so an agent at rest sends no request for expiry at all.
///
/// It judges the operator's watched copy of the Insights, never a LIST, so a sweep sends a request only for what is
/// due. Each delete carries the copy's uid and resourceVersion as preconditions: an Insight that changed since (an
/// agent saw the problem again and reactivated it) answers 409 and is judged again on the next sweep, never deleted.
public final class InsightJanitor: Sendable {
    let client: KubeClient
    /// At most this many deletes per sweep: a burst of expiries (an incident that resolved thousands of Insights at
    /// once) is spread over the next sweeps instead of landing on the API server at once.
    public let maxDeletesPerSweep: Int
    let logger: Logger
    private let deletedCount = Mutex<Int>(0)

    public init(client: KubeClient, maxDeletesPerSweep: Int = 100, logger: Logger) {
        self.client = client
        self.maxDeletesPerSweep = max(1, maxDeletesPerSweep)
        self.logger = logger
    }

    /// Insights deleted so far.
    public var deleted: Int { deletedCount.withLock { $0 } }

    /// The Insights of `insights` that have expired at `now`, the longest expired first. Active ones never expire;
    /// one without a readable `lastSeen` is kept (nothing says how old it is).
    public static func expired(_ insights: [InsightObject], ttl: (InsightObject) -> Duration, now: Date) -> [InsightObject] {
        let nowNanos = now.timeIntervalSince1970 * 1e9
        var due: [(InsightObject, Double)] = []
        for i in insights where (i.status?.phase ?? .active) != .active {
            guard let seen = i.status?.lastSeen.flatMap(Formatting.parseRFC3339) else { continue }
            let expires = Double(seen) + ttl(i).inSeconds * 1e9
            if expires < nowNanos { due.append((i, expires)) }
        }
        return due.sorted { $0.1 < $1.1 }.map(\.0)
    }

    /// One pass over `insights` (the watched copies): deletes up to ``maxDeletesPerSweep`` expired ones and returns
    /// how many it deleted. Gone already (404) or changed since (409) is not an error: the watch will say.
    @discardableResult
    public func sweep(_ insights: [InsightObject], ttl: (InsightObject) -> Duration, now: Date) async -> Int {
        var deleted = 0
        var failures: [String] = []
        for i in Self.expired(insights, ttl: ttl, now: now).prefix(maxDeletesPerSweep) {
            guard let name = i.metadata.name else { continue }
            let options = WriteOptions(preconditions: .init(uid: i.metadata.uid, resourceVersion: i.metadata.resourceVersion))
            do {
                try await client.delete(InsightObject.self, namespace: i.metadata.namespace, name: name, options: options)
                deleted += 1
            } catch KubeError.notFound, KubeError.conflict {
                continue
            } catch is CancellationError {
                break
            } catch {
                failures.append("\(i.metadata.namespace ?? "")/\(name): \(error)")
            }
        }
        deletedCount.withLock { $0 += deleted }
        // One line per sweep, not one per Insight: a refused or failing server would otherwise flood the log.
        if let first = failures.first {
            logger.warning("deleting expired Insights: \(failures.count) failed, retried on the next sweep; first: \(first)")
        }
        return deleted
    }
}
