import Synchronization
import TapioModel
import TapioNode

/// What a polling source shares: a bounded queue (oldest dropped when full), one detached loop started by the first
/// `events()` that runs a pass every `interval` until the queue is finished, and the counters `health()` reports.
/// ``ProcPoller`` and ``CgroupMemoryPoller`` differ only in their pass.
final class PollingLoop: Sendable {
    struct Counters: Sendable {
        var events: UInt64 = 0
        var errors: UInt64 = 0
        var lastNanos: UInt64 = 0
        var perSecond: Double = 0
        var running = false
        var stopped = false
    }

    let interval: Duration
    let queue: BoundedQueue<TapioEvent>
    private let counters = Mutex(Counters())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(interval: Duration, capacity: Int) {
        self.interval = interval
        self.queue = BoundedQueue(capacity: capacity, policy: .dropOldest)
    }

    /// Starts the loop once; `pass` queues its events and returns how many, plus the errors it met.
    func start(_ pass: @escaping @Sendable () -> (events: Int, errors: UInt64)) -> BoundedQueue<TapioEvent> {
        task.withLock { t in
            guard t == nil else { return }
            t = Task.detached { [self] in
                counters.withLock { $0.running = true }
                let seconds = max(Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18, 0.001)
                while !Task.isCancelled && !queue.isFinished {
                    let started = ContinuousClock.now
                    let (n, errors) = pass()
                    let now = MonotonicClock.wallNanos()
                    counters.withLock { c in
                        c.events &+= UInt64(n)
                        c.errors &+= errors
                        c.lastNanos = now
                        c.perSecond = Double(n) / seconds
                    }
                    try? await Task.sleep(until: started + interval)
                }
                counters.withLock { $0.stopped = true }
            }
        }
        return queue
    }

    /// Health with this loop's counters; `failure` (e.g. no memory controller) overrides the state.
    func health(failure: String? = nil) -> SourceHealth {
        let c = counters.withLock { $0 }
        let state: SourceHealth.State = failure.map { .failed($0) } ?? (c.stopped ? .stopped : c.running ? .running : .starting)
        return SourceHealth(state: state, lastEventNanos: c.lastNanos, events: c.events, errors: c.errors,
                            shed: queue.shed, eventsPerSecond: c.perSecond)
    }
}
