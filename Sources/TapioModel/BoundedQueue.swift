import Dispatch
import Synchronization

/// A bounded, multi-producer single-consumer hand-off between pipeline stages.
///
/// Unlike `AsyncStream`, a full queue never drops silently: ``push(_:)`` reports whether the element was kept,
/// and ``shed`` counts every element dropped (the oldest, or the newest, by ``OverflowPolicy``), so callers can
/// export it as a metric. Producers never wait; the single consumer waits for elements with ``next()`` or
/// ``nextBatch(max:)``. ``finish()`` ends the sequence after the consumer has drained what is queued.
public final class BoundedQueue<Element: Sendable>: Sendable {
    public enum OverflowPolicy: Sendable {
        /// Keep the newest: drop the oldest queued element (right for samples, where fresh data matters most).
        case dropOldest
        /// Keep what is queued: drop the element being pushed.
        case dropNewest
    }

    // The hot paths (push, push(contentsOf:), takeBatch) are @inlinable so callers in other modules get them
    // specialised for their element type: unspecialised generic code went through value witnesses for every
    // element copy, which was most of the BPF ring buffer → pipeline cost.
    @usableFromInline
    struct State {
        @usableFromInline var ring: [Element?]
        @usableFromInline var head = 0
        @usableFromInline var count = 0
        @usableFromInline var finished = false
        @usableFromInline var waiter: CheckedContinuation<Void, Never>?
        @usableFromInline var shed: UInt64 = 0
        @usableFromInline var pushed: UInt64 = 0
        /// A timed wait's deadline passed before its waiter was registered: the next wait returns at once.
        @usableFromInline var pendingWake = false
        /// How many queued elements resume the waiting consumer (a consumer that has a partial batch in hand
        /// waits for the rest of it, not for every element).
        @usableFromInline var wakeAt = 1
        /// An urgent element is queued: the consumer is resumed whatever ``wakeAt`` says.
        @usableFromInline var urgentQueued = false
        /// Numbers the timed waits, so the timer of one that ended early cannot wake a later one.
        @usableFromInline var timedWait: UInt64 = 0
        @usableFromInline init(ring: [Element?]) { self.ring = ring }
    }

    public let capacity: Int
    public let policy: OverflowPolicy
    @usableFromInline let state: Mutex<State>

    public init(capacity: Int, policy: OverflowPolicy = .dropOldest) {
        precondition(capacity > 0, "a BoundedQueue needs room for at least one element")
        self.capacity = capacity
        self.policy = policy
        // The ring grows by doubling as elements wait, up to `capacity`: an idle queue of 65,536 slots would
        // otherwise hold megabytes it never uses.
        self.state = Mutex(State(ring: Array(repeating: nil, count: Swift.min(capacity, Self.initialRing))))
    }

    @usableFromInline static var initialRing: Int { 256 }

    /// Makes room for `needed` waiting elements (at most `capacity`), keeping their order; head moves to 0.
    @inlinable
    static func grow(_ s: inout State, toHold needed: Int, capacity: Int) {
        let size = s.ring.count
        guard needed > size, size < capacity else { return }
        var newSize = size
        while newSize < needed && newSize < capacity { newSize *= 2 }
        newSize = Swift.min(newSize, capacity)
        var ring = [Element?](repeating: nil, count: newSize)
        s.ring.withUnsafeMutableBufferPointer { old in
            for i in 0..<s.count { ring[i] = old[(s.head + i) % size].take() }
        }
        s.ring = ring
        s.head = 0
    }

    /// Elements dropped because the queue was full.
    public var shed: UInt64 { state.withLock { $0.shed } }
    /// Elements accepted.
    public var pushed: UInt64 { state.withLock { $0.pushed } }
    public var count: Int { state.withLock { $0.count } }
    /// True once ``finish()`` was called (producers can stop early).
    public var isFinished: Bool { state.withLock { $0.finished } }

    /// Adds an element; returns false if it (or, with `.dropOldest`, an older one) had to be shed,
    /// or the queue is finished.
    @inlinable @discardableResult
    public func push(_ element: Element) -> Bool {
        push(element, urgent: false)
    }

    /// Adds an element; an `urgent` one resumes a consumer waiting with a ``nextBatch(max:timeout:minimum:)``
    /// minimum at once (e.g. an OOM kill, which should not wait for a batch to fill).
    @inlinable @discardableResult
    public func push(_ element: Element, urgent: Bool) -> Bool {
        let (kept, waiter): (Bool, CheckedContinuation<Void, Never>?) = state.withLock { s in
            if s.finished { return (false, nil) }
            var kept = true
            if s.count == capacity {
                s.shed &+= 1
                kept = false
                switch policy {
                case .dropNewest:
                    return (false, nil)
                case .dropOldest:
                    s.ring[s.head] = nil
                    s.head = (s.head + 1) % s.ring.count
                    s.count -= 1
                }
            } else {
                Self.grow(&s, toHold: s.count + 1, capacity: capacity)
            }
            s.ring[(s.head + s.count) % s.ring.count] = element
            s.count += 1
            s.pushed &+= 1
            if urgent { s.urgentQueued = true }
            return (kept, Self.takeWaiter(&s))
        }
        waiter?.resume()
        return kept
    }

    /// Adds several elements under one lock (a producer draining a batch, e.g. a ring buffer reader);
    /// sheds like ``push(_:)`` per element. Returns how many elements were shed (0 when all were kept).
    @inlinable @discardableResult
    public func push(contentsOf elements: [Element], urgent: Bool = false) -> Int {
        guard !elements.isEmpty else { return 0 }
        let (shedNow, waiter): (Int, CheckedContinuation<Void, Never>?) = state.withLock { s in
            if s.finished { return (elements.count, nil) }
            var shedNow = 0
            let capacity = self.capacity, dropNewest = policy == .dropNewest
            Self.grow(&s, toHold: s.count + elements.count, capacity: capacity)
            var head = s.head, count = s.count
            let size = s.ring.count
            // One buffer access for the whole batch.
            s.ring.withUnsafeMutableBufferPointer { ring in
                for element in elements {
                    if count == capacity {
                        shedNow += 1
                        if dropNewest { continue }
                        ring[head] = nil
                        head = (head + 1) % size
                        count -= 1
                    }
                    ring[(head + count) % size] = element
                    count += 1
                }
            }
            s.head = head
            s.count = count
            s.shed &+= UInt64(shedNow)
            s.pushed &+= UInt64(elements.count - (dropNewest ? shedNow : 0))
            if urgent { s.urgentQueued = true }
            return (shedNow, Self.takeWaiter(&s))
        }
        waiter?.resume()
        return shedNow
    }

    /// The waiting consumer, when what is queued now is enough to resume it.
    @inlinable
    static func takeWaiter(_ s: inout State) -> CheckedContinuation<Void, Never>? {
        guard s.count >= s.wakeAt || s.urgentQueued, let w = s.waiter else { return nil }
        s.waiter = nil
        return w
    }

    /// Ends the queue: the consumer gets what is queued, then nil.
    public func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.finished = true
            let w = s.waiter
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// The next element, waiting for one; nil once finished and drained. One consumer only.
    public func next() async -> Element? {
        while true {
            if let batch = takeBatch(max: 1) { return batch.first }
            if isFinishedAndEmpty { return nil }
            await waitForElements()
        }
    }

    /// Up to `max` elements at once (at least one), waiting for the first; nil once finished and drained.
    public func nextBatch(max: Int) async -> [Element]? {
        while true {
            if let batch = takeBatch(max: max) { return batch }
            if isFinishedAndEmpty { return nil }
            await waitForElements()
        }
    }

    /// Like ``nextBatch(max:)``, but waits at most `timeout`: an empty array when nothing arrived in time (a
    /// consumer with timed work to do — a partial batch to flush — waits exactly as long as it may, instead of
    /// being woken by a periodic tick). With a `minimum`, fewer queued elements do not end the wait early (an
    /// urgent push does): a consumer filling a batch is woken once for the rest of it, not for every element;
    /// when the wait runs out it gets what is there. One consumer only.
    public func nextBatch(max: Int, timeout: Duration, minimum: Int = 1) async -> [Element]? {
        let minimum = Swift.max(minimum, 1)
        if state.withLock({ $0.count >= minimum || $0.urgentQueued }), let batch = takeBatch(max: max) { return batch }
        if isFinishedAndEmpty { return nil }
        if timeout <= .zero { return takeBatch(max: max) ?? [] }
        // A plain dispatch timer rather than a sleeping child task: a timed wait happens several times a second
        // in an idle agent, and two child tasks and a task group per wait were a visible part of its CPU.
        let wait = state.withLock { s -> UInt64 in
            s.timedWait &+= 1
            return s.timedWait
        }
        let nanos = Int(Swift.min(timeout.nanos, UInt64(Int.max / 2)))
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanos)) { [self] in
            wakeConsumer(ifStill: wait)
        }
        await waitForElements(minimum: minimum)
        // This wait is over: its timer, if it has not fired, must not end the next one.
        state.withLock { s in
            s.timedWait &+= 1
            s.pendingWake = false
        }
        if let batch = takeBatch(max: max) { return batch }
        return isFinishedAndEmpty ? nil : []
    }

    /// A timed wait's deadline: resumes the consumer if that wait is still the current one (or makes it return
    /// at once, when the deadline came before the consumer had registered).
    private func wakeConsumer(ifStill wait: UInt64) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard s.timedWait == wait else { return nil }
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.pendingWake = true
            return nil
        }
        waiter?.resume()
    }

    /// Up to `max` queued elements without waiting; nil when none are queued.
    @inlinable
    public func takeBatch(max: Int) -> [Element]? {
        state.withLock { s -> [Element]? in
            guard s.count > 0 else { return nil }
            let n = Swift.min(max, s.count)
            var out: [Element] = []
            out.reserveCapacity(n)
            var head = s.head
            let size = s.ring.count
            s.ring.withUnsafeMutableBufferPointer { ring in
                for _ in 0..<n {
                    out.append(ring[head].take()!)
                    head = (head + 1) % size
                }
            }
            s.head = head
            s.count -= n
            // Cleared only once drained: an urgent element left behind by a smaller `max` still counts.
            if s.count == 0 { s.urgentQueued = false }
            // Drained after a burst: give the grown ring back.
            if s.count == 0 && size > 4 * Self.initialRing {
                s.ring = Array(repeating: nil, count: Swift.min(capacity, Self.initialRing))
                s.head = 0
            }
            return out
        }
    }

    private var isFinishedAndEmpty: Bool { state.withLock { $0.finished && $0.count == 0 } }

    private func waitForElements(minimum: Int = 1) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.count >= minimum || s.urgentQueued || s.finished || s.pendingWake {
                    s.pendingWake = false
                    return true
                }
                s.waiter = c
                s.wakeAt = minimum
                return false
            }
            if resumeNow { c.resume() }
        }
    }
}

extension BoundedQueue: AsyncSequence {
    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: BoundedQueue
        public mutating func next() async -> Element? { await queue.next() }
    }
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: self) }
}
