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

    private struct State {
        var ring: [Element?]
        var head = 0
        var count = 0
        var finished = false
        var waiter: CheckedContinuation<Void, Never>?
        var shed: UInt64 = 0
        var pushed: UInt64 = 0
    }

    public let capacity: Int
    public let policy: OverflowPolicy
    private let state: Mutex<State>

    public init(capacity: Int, policy: OverflowPolicy = .dropOldest) {
        precondition(capacity > 0, "a BoundedQueue needs room for at least one element")
        self.capacity = capacity
        self.policy = policy
        self.state = Mutex(State(ring: Array(repeating: nil, count: capacity)))
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
    @discardableResult
    public func push(_ element: Element) -> Bool {
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
                    s.head = (s.head + 1) % capacity
                    s.count -= 1
                }
            }
            s.ring[(s.head + s.count) % capacity] = element
            s.count += 1
            s.pushed &+= 1
            let w = s.waiter
            s.waiter = nil
            return (kept, w)
        }
        waiter?.resume()
        return kept
    }

    /// Adds several elements under one lock (a producer draining a batch, e.g. a ring buffer reader);
    /// sheds like ``push(_:)`` per element. Returns how many elements were shed (0 when all were kept).
    @discardableResult
    public func push(contentsOf elements: [Element]) -> Int {
        guard !elements.isEmpty else { return 0 }
        let (shedNow, waiter): (Int, CheckedContinuation<Void, Never>?) = state.withLock { s in
            if s.finished { return (elements.count, nil) }
            var shedNow = 0
            var head = s.head, count = s.count
            let capacity = self.capacity, dropNewest = policy == .dropNewest
            // One buffer access for the whole batch: unspecialised generic code pays per ring access otherwise.
            s.ring.withUnsafeMutableBufferPointer { ring in
                for element in elements {
                    if count == capacity {
                        shedNow += 1
                        if dropNewest { continue }
                        ring[head] = nil
                        head = (head + 1) % capacity
                        count -= 1
                    }
                    ring[(head + count) % capacity] = element
                    count += 1
                }
            }
            s.head = head
            s.count = count
            s.shed &+= UInt64(shedNow)
            s.pushed &+= UInt64(elements.count - (dropNewest ? shedNow : 0))
            let w = s.waiter
            s.waiter = nil
            return (shedNow, w)
        }
        waiter?.resume()
        return shedNow
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

    /// Up to `max` queued elements without waiting; nil when none are queued.
    public func takeBatch(max: Int) -> [Element]? {
        state.withLock { s -> [Element]? in
            guard s.count > 0 else { return nil }
            let n = Swift.min(max, s.count)
            var out: [Element] = []
            out.reserveCapacity(n)
            for _ in 0..<n {
                out.append(s.ring[s.head]!)
                s.ring[s.head] = nil
                s.head = (s.head + 1) % capacity
            }
            s.count -= n
            return out
        }
    }

    private var isFinishedAndEmpty: Bool { state.withLock { $0.finished && $0.count == 0 } }

    private func waitForElements() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.count > 0 || s.finished { return true }
                s.waiter = c
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
