import DequeModule

/// A subject's memory over the window, downsampled into fixed-width time buckets so memory stays bounded no
/// matter how fast samples arrive (19 Hz sampling or a flood): each bucket keeps the maximum (the upper envelope
/// that GC sawtooth and reclaim cannot hide a leak under), the minimum (the floor after reclaim), when the
/// maximum was seen, and how many sharp drops (reclaim, GC) happened in it. Buckets older than the window are
/// dropped.
struct MemorySeries: Sendable {
    struct Bucket: Sendable, Hashable {
        var index: Int64
        var maxAt: UInt64
        var max: UInt64
        var min: UInt64
        var count: UInt32
        var drops: UInt32
    }

    var buckets: Deque<Bucket> = []
    var lastValue: UInt64 = 0
    var lastAt: UInt64 = 0
    var samples: UInt64 = 0
    /// Running mean of |difference| between consecutive samples: the series' own jitter.
    var meanAbsDelta: Double = 0
    /// The size (KiB) of the last drop that counted as reclaim on the 10 % rule, and when the last drop counted at all
    /// (seconds, wrapping), so that the same workload's teeth keep counting once its level has grown past ten of them
    /// (``add(at:value:bucketNanos:windowNanos:repeats:)``).
    var reclaimKiB: UInt32 = 0
    var reclaimSecond: UInt32 = 0

    /// Adds a sample; returns true when it opened a new bucket (the previous one is complete — time to evaluate).
    /// `repeats`: samples equal to the previous one that came before this one and were not sent (the cgroup
    /// poller's) — each a zero change, so the jitter decays as if they had been added one by one.
    @inline(__always)
    mutating func add(at t: UInt64, value: UInt64, bucketNanos: UInt64, windowNanos: UInt64, repeats: UInt32 = 0) -> Bool {
        let index = Int64(t / bucketNanos)
        if repeats > 0 && samples > 0 {
            // The same arithmetic as a zero delta below, repeated (past a few thousand the jitter is 0 either way).
            for _ in 0..<Swift.min(repeats, 4096) { meanAbsDelta += (0 - meanAbsDelta) / 16 }
            samples &+= UInt64(repeats)
        }
        // A drop of more than 10 %, 1 MiB and four times the usual jitter between consecutive samples is reclaim or
        // GC, not noise. Within a window of the last counted drop, half the size of the last one that cleared the
        // 10 % is enough instead: a GC sawtooth whose floor climbs keeps teeth of the same size while its level
        // outgrows ten of them, and read as noise from then on, its series is fitted on bucket maxima that half-catch
        // the teeth instead of on the cycles' peaks (`oom-gc-leak-2`'s 40Mi teeth past 400Mi: its time-to-OOM jumped
        // 70 s later 3½ minutes before the kill on four of eight noise seeds).
        var dropped = false
        if samples > 0 {
            let delta = lastValue > value ? lastValue - value : value - lastValue
            // (The common sample, a rise or a small dip, stops at the first test.)
            if lastValue > value, delta > 1 << 20, Double(delta) > 4 * meanAbsDelta {
                let second = UInt32(truncatingIfNeeded: t / 1_000_000_000)
                let tenth = lastValue / 10
                var share = tenth
                if reclaimKiB > 0, UInt64(second &- reclaimSecond) * 1_000_000_000 <= windowNanos {
                    share = Swift.min(share, UInt64(reclaimKiB) << 9)
                }
                if delta > share {
                    dropped = true
                    // The size is a drop's that cleared the 10 % on its own: the teeth counted by half of it do not
                    // lower the bar further (else each dip could halve it for the next), but they keep it alive.
                    if delta > tenth { reclaimKiB = UInt32(clamping: delta >> 10) }
                    reclaimSecond = second
                }
            }
            meanAbsDelta += (Double(delta) - meanAbsDelta) / 16
        }
        samples &+= 1
        if t >= lastAt {
            lastValue = value
            lastAt = t
        }
        var opened = false
        if let lastIndex = buckets.last?.index, index <= lastIndex {
            if index == lastIndex {
                updateLast(t: t, value: value, dropped: dropped)
            } else if let i = buckets.lastIndex(where: { $0.index == index }) {
                // Late sample: fold it into its bucket; older than the window: ignore.
                if value > buckets[i].max { buckets[i].max = value; buckets[i].maxAt = t }
                if value < buckets[i].min { buckets[i].min = value }
                buckets[i].count &+= 1
            }
        } else {
            opened = !buckets.isEmpty
            buckets.append(Bucket(index: index, maxAt: t, max: value, min: value, count: 1, drops: dropped ? 1 : 0))
        }
        let oldest = Int64((t > windowNanos ? t - windowNanos : 0) / bucketNanos)
        while let first = buckets.first, first.index < oldest { buckets.removeFirst() }
        return opened
    }

    @inline(__always)
    private mutating func updateLast(t: UInt64, value: UInt64, dropped: Bool) {
        let i = buckets.count - 1
        if value > buckets[i].max {
            buckets[i].max = value
            buckets[i].maxAt = t
        }
        if value < buckets[i].min { buckets[i].min = value }
        buckets[i].count &+= 1
        if dropped { buckets[i].drops &+= 1 }
    }

    /// Forget everything (a new container instance after a restart starts from scratch).
    mutating func reset() {
        buckets.removeAll()
        lastValue = 0
        lastAt = 0
        samples = 0
        meanAbsDelta = 0
        reclaimKiB = 0
        reclaimSecond = 0
    }

    var peak: UInt64 { buckets.reduce(0) { Swift.max($0, $1.max) } }
}
