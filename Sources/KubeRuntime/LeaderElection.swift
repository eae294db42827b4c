import Foundation
import KubeClient
import Logging
import Synchronization

/// Lease timings; the defaults are client-go's (15 s lease, 10 s renew deadline, 2 s retry).
public struct LeaderElectionConfig: Sendable {
    /// How long non-leaders wait after last seeing the lease change before taking it.
    public var leaseDuration: Duration
    /// How long the leader keeps trying to renew before it gives up leadership. Must be < leaseDuration.
    public var renewDeadline: Duration
    /// Pause between attempts.
    public var retryPeriod: Duration
    public init(leaseDuration: Duration = .seconds(15), renewDeadline: Duration = .seconds(10), retryPeriod: Duration = .seconds(2)) {
        self.leaseDuration = leaseDuration; self.renewDeadline = renewDeadline; self.retryPeriod = retryPeriod
    }
}

public enum LeadershipChange: Sendable, Equatable {
    case gained
    case lost
}

/// Leader election on a `coordination.k8s.io/v1` Lease with optimistic concurrency (every write carries the
/// resourceVersion it read). A candidate takes the lease when it is free or when its record has not changed for
/// `leaseDuration` (measured on the local clock from when this candidate last saw it change, as client-go does, so
/// clock skew between nodes does not matter). The leader renews every `retryPeriod` and steps down — reporting
/// `.lost` before anyone else can take over — when it has not renewed for `renewDeadline`. Cancelling `run` releases
/// the lease (empty holder), so a successor takes over at its next retry instead of waiting out the lease.
public final class LeaderElector: Sendable {
    public let client: KubeClient
    public let namespace: String
    public let name: String
    public let identity: String
    public let config: LeaderElectionConfig
    let leading = Atomic<Bool>(false)
    let logger: Logger

    public init(client: KubeClient, namespace: String, name: String, identity: String,
                config: LeaderElectionConfig = .init(), logger: Logger = Logger(label: "tapio.leader")) {
        self.client = client; self.namespace = namespace; self.name = name; self.identity = identity
        self.config = config; self.logger = logger
    }

    /// True while this candidate holds the lease (cheap; for metrics and guards in leader-only work).
    public var isLeader: Bool { leading.load(ordering: .acquiring) }

    struct Observed {
        var spec: Lease.Spec?
        var at: ContinuousClock.Instant
    }

    /// Campaigns until cancelled, calling `onChange` on every change of leadership (`.gained`, then `.lost`, …).
    /// `.lost` is delivered before this method returns when it held the lease at cancellation.
    public func run(onChange: @escaping @Sendable (LeadershipChange) async -> Void) async {
        let clock = ContinuousClock()
        var observed = Observed(spec: nil, at: clock.now)
        // Whether the server's record may name us though we do not lead: a claim was sent (its answer read just
        // now, as the stop came, or never — the request timed out, and the server may have made it all the same), or
        // a term ended with our name still on it. Stopped then, we give back whatever the server says is ours, or the
        // next leader waits out the whole lease for a candidate that is gone. A standby that never claimed (the lease held) does not ask.
        var mayHold = false
        while !Task.isCancelled {
            // Campaign.
            while !Task.isCancelled {
                if await attempt(&observed, clock: clock, claimSent: &mayHold) { break }
                try? await Task.sleep(for: config.retryPeriod * Double.random(in: 1.0...1.2))
            }
            if Task.isCancelled { break }
            leading.store(true, ordering: .releasing)
            logger.info("\(identity) became leader of lease \(namespace)/\(name)")
            await onChange(.gained)
            // Renew.
            var lastRenew = clock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: config.retryPeriod)
                if Task.isCancelled { break }
                let remaining = config.renewDeadline - (clock.now - lastRenew)
                var ok = false
                if remaining > .zero {
                    let o = observed
                    let result = try? await withTimeout(remaining) { [self] in
                        var copy = o
                        // Whether a write was sent does not matter here: a term that ends marks the record as
                        // possibly ours anyway (below).
                        var sent = false
                        let r = await self.attempt(&copy, clock: clock, claimSent: &sent)
                        return (r, copy)
                    }
                    if let (r, copy) = result { ok = r; observed = copy }
                }
                if ok { lastRenew = clock.now; continue }
                if clock.now - lastRenew >= config.renewDeadline { break }
            }
            leading.store(false, ordering: .releasing)
            if !Task.isCancelled {
                logger.warning("\(identity) lost lease \(namespace)/\(name): no renewal within \(config.renewDeadline)")
            }
            // Stopped or not, the record still names us.
            mayHold = true
            await onChange(.lost)
        }
        // Stopped: leader work first (`.lost` above, when leading), then the hand-over. The caller's task is
        // cancelled, which would abort the release request: it runs on its own.
        guard mayHold else { return }
        switch await releaseOnStop() {
        case .released: logger.info("\(identity) released lease \(namespace)/\(name) as it stopped")
        case .notHeld: logger.debug("\(identity) stopped; lease \(namespace)/\(name) is not its own")
        case .failed: break  // releaseOnStop warned
        }
    }

    /// One try to acquire or renew. True when we hold the lease afterwards. `claimSent` is set when a write was
    /// sent: the server may have made it even when this returns false (the request timed out). A claim — a create,
    /// or an update that makes us the holder — is seen through when the caller is cancelled (``seeThrough(_:)``); a
    /// renewal need not be: it carries the resourceVersion of a record that already names us, so landing late it
    /// changes nothing, or is refused as a conflict after the release's write (which reads again after a conflict).
    func attempt(_ observed: inout Observed, clock: ContinuousClock, claimSent: inout Bool) async -> Bool {
        let client = client
        let now = MicroTime.string()
        // The flag's duration may exceed what the field holds (Int32 seconds): saturate rather than trap.
        let seconds = Int32(clamping: max(1, config.leaseDuration.components.seconds))
        do {
            let lease: Lease
            do {
                lease = try await client.get(Lease.self, namespace: namespace, name: name)
            } catch KubeError.notFound {
                var spec = Lease.Spec()
                spec.holderIdentity = identity
                spec.leaseDurationSeconds = seconds
                spec.acquireTime = now
                spec.renewTime = now
                spec.leaseTransitions = 0
                claimSent = true
                let fresh = Lease(metadata: ObjectMeta(name: name, namespace: namespace), spec: spec)
                let created = try await seeThrough { try await client.create(fresh) }
                observed = Observed(spec: created.spec, at: clock.now)
                return true
            }
            if lease.spec != observed.spec { observed = Observed(spec: lease.spec, at: clock.now) }
            let holder = lease.spec?.holderIdentity ?? ""
            if !holder.isEmpty && holder != identity && clock.now - observed.at < config.leaseDuration {
                return false
            }
            var updated = lease
            var spec = lease.spec ?? Lease.Spec()
            if holder != identity {
                spec.acquireTime = now
                // The count comes from the server, and anyone who may update the Lease could set it to Int32.max: it
                // saturates there rather than trap, or wrap to a negative count the API server's validation refuses
                // (which would leave the Lease untakeable).
                let bump: Int32 = holder.isEmpty && spec.leaseTransitions == nil ? 0 : 1
                let (sum, overflow) = (spec.leaseTransitions ?? 0).addingReportingOverflow(bump)
                spec.leaseTransitions = overflow ? Int32.max : sum
            }
            spec.holderIdentity = identity
            spec.leaseDurationSeconds = seconds
            spec.renewTime = now
            updated.spec = spec
            claimSent = true
            let claim = updated
            let written = holder == identity ? try await client.update(claim) : try await seeThrough { try await client.update(claim) }
            observed = Observed(spec: written.spec, at: clock.now)
            return true
        } catch {
            if !(error is CancellationError) {
                client.logLimiter.log(logger, .info, key: "lease \(namespace)/\(name)",
                                      "\(identity): lease \(namespace)/\(name): \(error); trying again every \(config.retryPeriod)")
            }
            return false
        }
    }

    /// How long a stopped candidate gives each request it still makes — the claim it sees through, the release:
    /// `renewDeadline` or 5 s, whichever is shorter, so a server that never answers cannot hold a shutdown past a
    /// pod's grace period.
    var stopLimit: Duration { min(config.renewDeadline, .seconds(5)) }

    /// A claim once sent is seen through, cancelled or not. Abandoned in flight, the request may still be applied
    /// by the server after the release that follows a stop has read the Lease — found it not ours, and left — so the
    /// claim would stand for a candidate that is gone, and the next leader would wait out the whole lease. So the
    /// write runs on a task of its own, bounded by the client's request timeout as before; once the caller is
    /// cancelled it has at most `renewDeadline` or 5 s more (as the release): a server that never answers must not
    /// hold a shutdown.
    func seeThrough<T: Sendable>(_ request: @escaping @Sendable () async throws -> T) async throws -> T {
        let limit = stopLimit
        let write = Task.detached { try await request() }
        return try await withTaskCancellationHandler {
            try await write.value
        } onCancel: {
            Task.detached {
                try? await Task.sleep(for: limit)
                write.cancel()
            }
        }
    }

    enum Release: Equatable {
        /// The lease was ours and is given up.
        case released
        /// The lease is not ours (or does not exist): nothing to give up.
        case notHeld
        /// The server could not be asked or refused, within the time allowed.
        case failed
    }

    /// ``release()`` on a task of its own — the caller's is cancelled, which would abort the request — for at most
    /// `renewDeadline` or 5 s: a server that does not answer must not hold the shutdown past the pod's grace
    /// period. Without the release, the next leader waits out the lease instead; that is logged.
    func releaseOnStop() async -> Release {
        let limit = stopLimit
        let outcome = await Task.detached { [self] in await withDeadline(limit) { await self.release() } }.value ?? .failed
        if outcome == .failed {
            logger.warning("\(identity) could not release lease \(namespace)/\(name) within \(limit); the next leader takes over when it expires")
        }
        return outcome
    }

    /// Gives the lease up if we hold it: empty holder, 1 s duration (client-go's ReleaseOnCancel).
    /// A conflict means the Lease changed between the read and the write (another candidate took it): it is read
    /// again, once.
    func release() async -> Release {
        for attempt in 1...2 {
            do {
                var lease: Lease
                do {
                    lease = try await client.get(Lease.self, namespace: namespace, name: name)
                } catch KubeError.notFound {
                    return .notHeld
                }
                guard lease.spec?.holderIdentity == identity else { return .notHeld }
                lease.spec?.holderIdentity = nil
                lease.spec?.leaseDurationSeconds = 1
                lease.spec?.renewTime = MicroTime.string()
                _ = try await client.update(lease)
                return .released
            } catch KubeError.conflict where attempt == 1 {
                continue
            } catch {
                logger.debug("\(identity): releasing lease failed: \(error)")
                return .failed
            }
        }
        return .failed
    }
}
