/// A least-recently-used table keyed by `UInt64`, bounded by entry count and by estimated bytes.
///
/// Slots live in parallel arrays linked by `Int32` indices (an intrusive doubly-linked list), so a hit is one
/// dictionary probe and a few array stores with no allocation. Not thread-safe: the owner wraps it in a lock.
struct LRUTable<Value> {
    let maximumEntries: Int
    let maximumBytes: Int

    private(set) var index: [UInt64: Int32] = [:]
    private(set) var keys: [UInt64] = []
    private(set) var values: [Value?] = []
    /// When the entry was stored (monotonic ns) — for the owner's TTL.
    private(set) var stamps: [UInt64] = []
    /// A tag the owner compares on hit (the pod directory's generation).
    private(set) var tags: [UInt64] = []
    private var costs: [Int32] = []
    private var prev: [Int32] = []
    private var next: [Int32] = []
    private var head: Int32 = -1
    private var tail: Int32 = -1
    private var freeHead: Int32 = -1
    private(set) var bytes = 0
    private(set) var evictions: UInt64 = 0

    init(maximumEntries: Int, maximumBytes: Int) {
        precondition(maximumEntries > 0 && maximumEntries < Int(Int32.max), "maximumEntries must be in 1..<2^31")
        self.maximumEntries = maximumEntries
        self.maximumBytes = maximumBytes
        index.reserveCapacity(min(maximumEntries, 1 << 16))
    }

    var count: Int { index.count }

    /// The slot of `key`, without touching recency.
    @inline(__always) func slot(of key: UInt64) -> Int32? { index[key] }

    @inline(__always) func value(at slot: Int32) -> Value? { values[Int(slot)] }

    /// Marks a slot most recently used.
    @inline(__always) mutating func touch(_ slot: Int32) {
        guard slot != head else { return }
        unlink(slot)
        pushFront(slot)
    }

    /// Stores `value` under `key` (replacing any entry), evicting from the cold end to stay within both bounds.
    mutating func insert(_ key: UInt64, _ value: Value, stamp: UInt64, tag: UInt64, cost: Int) {
        let cost32 = Int32(clamping: cost)
        if let s = index[key] {
            let i = Int(s)
            bytes += Int(cost32) - Int(costs[i])
            values[i] = value
            stamps[i] = stamp
            tags[i] = tag
            costs[i] = cost32
            touch(s)
            evictToBounds(keeping: s)
            return
        }
        while !index.isEmpty && (index.count >= maximumEntries || bytes + Int(cost32) > maximumBytes) { evictTail() }
        let s: Int32
        if freeHead >= 0 {
            s = freeHead
            freeHead = next[Int(s)]
            let i = Int(s)
            keys[i] = key; values[i] = value; stamps[i] = stamp; tags[i] = tag; costs[i] = cost32
        } else {
            s = Int32(keys.count)
            keys.append(key); values.append(value); stamps.append(stamp); tags.append(tag); costs.append(cost32)
            prev.append(-1); next.append(-1)
        }
        index[key] = s
        bytes += Int(cost32)
        pushFront(s)
    }

    /// Removes `key`; true when it was there.
    @discardableResult mutating func remove(_ key: UInt64) -> Bool {
        guard let s = index.removeValue(forKey: key) else { return false }
        release(s)
        return true
    }

    /// Removes entries from the least recently used end while their stamp is before `cutoff`, at most `limit`;
    /// returns how many. Entries nobody looked up for a while sit there, so old ones go without a full walk.
    @discardableResult mutating func removeStaleFromTail(before cutoff: UInt64, limit: Int) -> Int {
        var removed = 0
        while removed < limit, tail >= 0, stamps[Int(tail)] < cutoff {
            remove(keys[Int(tail)])
            removed += 1
        }
        return removed
    }

    mutating func removeAll() {
        while tail >= 0 { remove(keys[Int(tail)]) }
    }

    private mutating func evictToBounds(keeping s: Int32) {
        while bytes > maximumBytes, tail >= 0, tail != s { evictTail() }
    }

    private mutating func evictTail() {
        let s = tail
        guard s >= 0 else { return }
        index.removeValue(forKey: keys[Int(s)])
        release(s)
        evictions &+= 1
    }

    private mutating func release(_ s: Int32) {
        let i = Int(s)
        unlink(s)
        bytes -= Int(costs[i])
        values[i] = nil
        costs[i] = 0
        next[i] = freeHead
        freeHead = s
    }

    @inline(__always) private mutating func unlink(_ s: Int32) {
        let i = Int(s)
        let p = prev[i], n = next[i]
        if p >= 0 { next[Int(p)] = n } else { head = n }
        if n >= 0 { prev[Int(n)] = p } else { tail = p }
        prev[i] = -1
        next[i] = -1
    }

    @inline(__always) private mutating func pushFront(_ s: Int32) {
        let i = Int(s)
        prev[i] = -1
        next[i] = head
        if head >= 0 { prev[Int(head)] = s }
        head = s
        if tail < 0 { tail = s }
    }

    /// Keys from most to least recently used (tests and debugging).
    var keysByRecency: [UInt64] {
        var out: [UInt64] = []
        var s = head
        while s >= 0 { out.append(keys[Int(s)]); s = next[Int(s)] }
        return out
    }

    /// Bytes of bookkeeping per slot besides the value's own cost: the parallel arrays plus a dictionary entry.
    static var slotOverheadBytes: Int { 8 + 8 + 8 + 8 + 4 + 4 + 4 + 32 }
}
