import Foundation
import KubeClient
import Logging
import Synchronization
import TapioCorrelation
import TapioKube
import TapioModel
import TapioSinks

/// Deletes Resolved Insights once they have been resolved for longer than the policy's `ttl` (`insights.ttl`,
/// default 24h). Only the writer's own Insights are touched: an agent's are labelled with its node, the operator's
/// cluster-level ones carry no node label.
///
/// It lists only when something may be due: at start, when the earliest Resolved Insight it knows of expires (from its
/// last list, and from the resolutions that pass through it as a sink), when the TTL changes, and otherwise every
/// `period` — a backstop for Insights resolved by someone else. An agent at rest therefore sends no request for it
/// (`period` is an hour there) instead of a LIST a minute.
public final class InsightJanitor: InsightSink {
    let client: KubeClient
    /// Which Insights are this writer's.
    let labelSelector: String
    let period: Duration
    let logger: Logger
    private let ttl = Mutex<Duration>(.seconds(86_400))
    private let deletedCount = Mutex<Int>(0)
    private let sweeps = Mutex<Int>(0)
    /// The earliest moment something is known to expire (seconds since 1970); nil: nothing known.
    private let due = Mutex<Double?>(nil)

    /// An agent's janitor: the Insights labelled with its node.
    public convenience init(client: KubeClient, nodeName: String, period: Duration = .seconds(3600), logger: Logger) {
        self.init(client: client, labelSelector: "tapio.io/node=\(InsightDocument.labelValue(nodeName))", period: period,
                  logger: logger)
    }

    public init(client: KubeClient, labelSelector: String, period: Duration = .seconds(60), logger: Logger) {
        self.client = client
        self.labelSelector = labelSelector
        self.period = period
        self.logger = logger
    }

    /// A new TTL may make something due sooner: the next check lists.
    public func setTTL(_ d: Duration) {
        let changed = ttl.withLock { t in
            defer { t = d }
            return t != d
        }
        if changed { due.withLock { $0 = 0 } }
    }

    public var deleted: Int { deletedCount.withLock { $0 } }
    /// Lists made so far.
    public var listed: Int { sweeps.withLock { $0 } }

    var ttlSeconds: Double { ttl.withLock { $0 }.inSeconds }

    /// Resolutions this process wrote expire `ttl` after they were observed.
    public func emit(_ updates: [InsightUpdate]) async {
        guard let last = updates.filter({ $0.change == .resolved }).map(\.observedAt).max() else { return }
        noteDue(Double(last) / 1e9 + ttlSeconds)
    }

    private func noteDue(_ at: Double) { due.withLock { $0 = min($0 ?? at, at) } }

    public func run() async {
        let tick = min(period, .seconds(10))
        var backstop = ContinuousClock.now
        while !Task.isCancelled {
            let now = Date()
            let dueNow = due.withLock { $0.map { $0 <= now.timeIntervalSince1970 } ?? false }
            if dueNow || ContinuousClock.now >= backstop {
                due.withLock { $0 = nil }
                await sweep(now: now)
                backstop = ContinuousClock.now + period
            }
            try? await Task.sleep(for: tick)
        }
    }

    /// One pass: every Resolved (or Remediated) Insight of this writer whose `lastSeen` is older than the TTL is deleted;
    /// the earliest expiry of those left is remembered.
    public func sweep(now: Date) async {
        let seconds = ttlSeconds
        var options = ListOptions()
        options.labelSelector = labelSelector
        sweeps.withLock { $0 += 1 }
        guard let all = try? await client.listAll(InsightObject.self, options: options).items else {
            noteDue(now.timeIntervalSince1970 + 60)  // the list failed: try again in a minute
            return
        }
        for i in all where (i.status?.phase ?? .active) != .active {
            guard let seen = i.status?.lastSeen.flatMap(Formatting.parseRFC3339) else { continue }
            let expires = Double(seen) / 1e9 + seconds
            guard expires < now.timeIntervalSince1970, let name = i.metadata.name else {
                noteDue(expires)
                continue
            }
            do {
                try await client.delete(InsightObject.self, namespace: i.metadata.namespace, name: name)
                deletedCount.withLock { $0 += 1 }
            } catch {
                noteDue(now.timeIntervalSince1970 + 60)
                logger.warning("deleting expired Insight \(i.metadata.namespace ?? "")/\(name): \(error)")
            }
        }
    }
}
