/// The one small interface every source of events answers — kernel probes, the /proc and cgroup poller,
/// the Kubernetes sniffer: a name, its stream of typed events, and its health.
///
/// Sources hand events over through bounded buffers; what a full buffer sheds is counted in
/// ``SourceHealth/shed`` and exported as a metric, never dropped silently.
public protocol EventSource: Sendable {
    /// A short stable name (`ebpf`, `proc`, `kubernetes`), used in metrics and the start-up checklist.
    var name: String { get }
    /// The events, until the source stops: a bounded queue with one consumer (what it sheds is counted).
    func events() -> BoundedQueue<TapioEvent>
    /// A snapshot of the source's health; cheap, callable from any task.
    func health() -> SourceHealth
}

public struct SourceHealth: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case starting
        case running
        /// Running with less than it should have (e.g. an optional probe failed to load), and why.
        case degraded(String)
        /// Not running, and why (e.g. "BPF needs CAP_BPF and CAP_PERFMON: running as uid 1000").
        case failed(String)
        case stopped
    }
    public var state: State
    /// Nanoseconds since the Unix epoch of the last event, 0 if none yet.
    public var lastEventNanos: UInt64
    public var events: UInt64
    public var errors: UInt64
    /// Events dropped because a bounded buffer was full.
    public var shed: UInt64
    public var eventsPerSecond: Double

    public init(state: State, lastEventNanos: UInt64 = 0, events: UInt64 = 0, errors: UInt64 = 0, shed: UInt64 = 0,
                eventsPerSecond: Double = 0) {
        self.state = state
        self.lastEventNanos = lastEventNanos
        self.events = events
        self.errors = errors
        self.shed = shed
        self.eventsPerSecond = eventsPerSecond
    }
}
