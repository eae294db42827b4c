import Foundation
import KubeClient
import Logging
import Synchronization

/// What a reconcile asks for next.
public enum ReconcileAction: Sendable, Equatable {
    /// Reconcile this object again after the delay even if nothing changes.
    case requeue(after: Duration)
    /// Nothing to do until the object changes.
    case awaitChange
}

/// A level-based controller: watcher events put object keys on a `WorkQueue`; workers take keys and call `reconcile`
/// with the object's current state from the store (never with the event that woke it). One key is never reconciled
/// twice at once. Errors go through `errorPolicy`, whose action is taken as is; a thrown error with no policy
/// requeues with the queue's per-key exponential backoff (5 ms doubling to ~1000 s).
public struct Controller<K: KubeResource>: Sendable {
    public typealias Reconcile = @Sendable (K) async throws -> ReconcileAction
    public typealias ErrorPolicy = @Sendable (K, any Error, _ failures: Int) -> ReconcileAction?

    public let store: ReflectorStore<K>
    public let queue: WorkQueue
    let concurrency: Int
    let logger: Logger

    public init(store: ReflectorStore<K> = ReflectorStore(), queue: WorkQueue = WorkQueue(), concurrency: Int = 2,
                logger: Logger = Logger(label: "tapio.controller")) {
        self.store = store; self.queue = queue; self.concurrency = concurrency; self.logger = logger
    }

    /// Runs until cancelled: feeds `events` into the store, enqueues every touched key, reconciles with `concurrency`
    /// workers. `errorPolicy` returning nil means: back off per key.
    public func run<S: AsyncSequence & Sendable>(events: S, reconcile: @escaping Reconcile, errorPolicy: ErrorPolicy? = nil) async throws
    where S.Element == WatcherEvent<K> {
        let queue = self.queue, store = self.store, logger = self.logger
        // Delayed requeues run as child tasks of one structured loop.
        let (delays, delayInput) = AsyncStream<(String, Duration)>.makeStream()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                // One pending requeue per key, the earliest (RequeueSchedule).
                let schedule = RequeueTimers()
                let clock = ContinuousClock()
                let origin = clock.now
                // Bounded to 10^9 s so the product stays below UInt64.max.
                @Sendable func nanos(_ d: Duration) -> UInt64 { UInt64(min(max(0, d.inSeconds), 1e9) * 1e9) }
                await withDiscardingTaskGroup { timers in
                    for await (key, after) in delays {
                        let at = nanos(clock.now - origin) &+ nanos(after)
                        guard schedule.state.withLock({ $0.schedule(key, at: at) }) else { continue }
                        timers.addTask {
                            try? await Task.sleep(for: after)
                            if schedule.state.withLock({ $0.fire(key, at: at) }) { await queue.add(key) }
                        }
                    }
                }
            }
            group.addTask {
                var pending: [String] = []
                do {
                    for try await e in events {
                        store.apply(e)
                        switch e {
                        case .initStart: pending = []
                        case .initApply(let o): pending.append(o.key)
                        case .initDone:
                            for k in pending { await queue.add(k) }
                            pending = []
                        case .apply(let o), .delete(let o): await queue.add(o.key)
                        }
                    }
                } catch {
                    delayInput.finish()
                    await queue.shutDown()
                    throw error
                }
                delayInput.finish()
                await queue.shutDown()
            }
            for _ in 0..<max(1, concurrency) {
                group.addTask {
                    while let key = await queue.get() {
                        // Deleted objects are not reconciled (level-based: there is no state left to converge).
                        if let obj = store.get(key) {
                            let action: ReconcileAction
                            do {
                                action = try await reconcile(obj)
                                await queue.forget(key)
                            } catch {
                                let failures = await queue.failureCount(key) + 1
                                if let a = errorPolicy?(obj, error, failures) {
                                    _ = await queue.backoff(for: key)
                                    action = a
                                } else {
                                    let d = await queue.backoff(for: key)
                                    logger.debug("reconcile \(key) failed: \(error); retry in \(d)")
                                    action = .requeue(after: d)
                                }
                            }
                            if case .requeue(let after) = action { delayInput.yield((key, after)) }
                        } else {
                            // Its failures go with it: kept, one entry per object that failed and was then deleted.
                            await queue.forget(key)
                        }
                        await queue.done(key)
                    }
                }
            }
        }
    }
}
