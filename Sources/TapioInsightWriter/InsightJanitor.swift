import Foundation
import KubeClient
import Logging
import Synchronization
import TapioCorrelation
import TapioKube
import TapioModel

/// Deletes Resolved Insights once they have been resolved for longer than the policy's `ttl` (`insights.ttl`,
/// default 24h). Only the writer's own Insights are touched: an agent's are labelled with its node, the operator's
/// cluster-level ones carry no node label.
public final class InsightJanitor: Sendable {
    let client: KubeClient
    /// Which Insights are this writer's.
    let labelSelector: String
    let period: Duration
    let logger: Logger
    private let ttl = Mutex<Duration>(.seconds(86_400))
    private let deletedCount = Mutex<Int>(0)

    /// An agent's janitor: the Insights labelled with its node.
    public convenience init(client: KubeClient, nodeName: String, period: Duration = .seconds(60), logger: Logger) {
        self.init(client: client, labelSelector: "tapio.io/node=\(InsightDocument.labelValue(nodeName))", period: period,
                  logger: logger)
    }

    public init(client: KubeClient, labelSelector: String, period: Duration = .seconds(60), logger: Logger) {
        self.client = client
        self.labelSelector = labelSelector
        self.period = period
        self.logger = logger
    }

    public func setTTL(_ d: Duration) { ttl.withLock { $0 = d } }
    public var deleted: Int { deletedCount.withLock { $0 } }

    public func run() async {
        while !Task.isCancelled {
            await sweep(now: Date())
            try? await Task.sleep(for: period)
        }
    }

    /// One pass: every Resolved (or Remediated) Insight of this writer whose `lastSeen` is older than the TTL is deleted.
    public func sweep(now: Date) async {
        let limit = ttl.withLock { $0 }
        let seconds = Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18
        var options = ListOptions()
        options.labelSelector = labelSelector
        guard let all = try? await client.listAll(InsightObject.self, options: options).items else { return }
        for i in all where (i.status?.phase ?? .active) != .active {
            guard let seen = i.status?.lastSeen.flatMap(Formatting.parseRFC3339) else { continue }
            let age = now.timeIntervalSince1970 - Double(seen) / 1e9
            guard age > seconds, let name = i.metadata.name else { continue }
            do {
                try await client.delete(InsightObject.self, namespace: i.metadata.namespace, name: name)
                deletedCount.withLock { $0 += 1 }
            } catch {
                logger.warning("deleting expired Insight \(i.metadata.namespace ?? "")/\(name): \(error)")
            }
        }
    }
}
