import Logging
import Synchronization
import TapioModel

/// Reads a set of cgroups' memory periodically and hands out `NodeEvent.Kind.cgroupMemory` events.
///
/// The set is whatever `targets` returns at each tick (for instance the container cgroups the translator has seen),
/// so containers come and go without re-configuration. Unreadable cgroups (removed between ticks) are skipped and
/// counted, never fatal.
public final class CgroupMemorySampler: Sendable {
    /// One cgroup to read: its id (for the event) and its reader.
    public struct Target: Sendable, Hashable {
        public var cgroupID: UInt64
        public var reader: CgroupMemoryReader
        public init(cgroupID: UInt64, reader: CgroupMemoryReader) {
            self.cgroupID = cgroupID
            self.reader = reader
        }
    }

    public let interval: Duration
    let targets: @Sendable () -> [Target]
    let logger: Logger
    let failures = Atomic<UInt64>(0)

    public init(interval: Duration, logger: Logger = Logger(label: "tapio.node.cgroup-memory"),
                targets: @escaping @Sendable () -> [Target]) {
        self.interval = interval
        self.targets = targets
        self.logger = logger
    }

    /// Reads that failed so far (cgroups removed mid-tick, permissions).
    public var failureCount: UInt64 { failures.load(ordering: .relaxed) }

    /// Reads every target once.
    public func sample() -> [NodeEvent] {
        let now = MonotonicClock.wallNanos()
        var out: [NodeEvent] = []
        for t in targets() {
            do {
                out.append(try t.reader.event(cgroupID: t.cgroupID, timestampNanos: now))
            } catch {
                failures.add(1, ordering: .relaxed)
                logger.debug("cgroup memory read failed", metadata: ["error": "\(error)"])
            }
        }
        return out
    }

    /// Samples every `interval` and passes each batch to `emit`, until cancelled.
    public func run(emit: @Sendable ([NodeEvent]) async -> Void) async throws {
        while !Task.isCancelled {
            let batch = sample()
            if !batch.isEmpty { await emit(batch) }
            do { try await Task.sleep(for: interval) } catch is CancellationError { return }
        }
    }
}
