import TapioModel

/// The cycles a workload's containers went through, kept beyond any one pod.
///
/// A subject's own ``MemoryHistory`` recognises a ramp that came back down before as a cycle, but a subject is one
/// container of one pod: a rollout or a scale-down replaces the pod, and the new pod's first ramp of a periodic
/// workload (a batch phase, a nightly cache rebuild, a flush every 45 minutes) was a fresh "OOM kill predicted"
/// on every rollout — the engine never learnt that *this workload* always comes back down. So when a pod's
/// container leaves the engine (its pod deleted, forgotten when quiet, or evicted to make room), and every
/// ``sweepNanos`` for those it still tracks, the drops its history holds are kept here under the workload's name
/// (namespace, owner kind and name — a ReplicaSet is already its Deployment — and container name). A container of
/// the same workload with no drop of its own reads them as the OOM prediction reads its own once-seen drop: a climb
/// back to about there is that cycle again; above it, new ground that may still be a cycle with a higher peak.
///
/// Only drops the workload made itself are kept (``MemoryHistory/cyclesLivedThrough(minDrop:)``): not a kill's, a
/// restart's, or one in a container's last minutes (a shutdown); and a pod deleted at its peak left no drop. Bounded: ``dropsKept`` drops per workload, ``capacity`` workloads (the one
/// noted least recently goes first), each kept ``keepForNanos`` after it was last noted: 308 bytes a workload with
/// four drops (`tapio-bench correlation-workload-cycles`), 0.30 MiB for all of them.
struct WorkloadCycles: Sendable {
    struct Drop: Sendable, Hashable {
        /// The pod whose container came back down (its uid, so that a drop noted twice counts once, and its name for
        /// the evidence).
        var podUID: String
        var podName: String
        /// The minute (since the epoch) of the cycle's peak, and the peak in bytes.
        var minute: Int64
        var peak: Double
    }

    struct Entry: Sendable {
        var drops: [Drop] = []
        var lastNoted: UInt64
    }

    static let dropsKept = 4
    static let capacity = 1024
    /// Six hours: a rollout or a scale-up some hours after the last pod that cycled is still the same workload
    /// doing the same thing; a day later its code or its load may not be.
    static let keepForNanos: UInt64 = 6 * 3_600_000_000_000

    /// How often the engine also notes the drops of the containers it still tracks (replicas running side by side
    /// learn from each other, not only from pods that are gone): five minutes, against climbs that take minutes to
    /// look like a leak; a sweep costs a pass over each tracked container's 128 minutes.
    static let sweepNanos: UInt64 = 300_000_000_000

    /// A workload's container: built from the strings the subject already holds (no allocation, unlike a joined
    /// string), since the OOM prediction looks it up at every evaluation of a climb once anything is kept.
    struct Key: Sendable, Hashable {
        var namespace: String
        var ownerKind: String
        var ownerName: String
        var container: String
    }

    private(set) var entries: [Key: Entry] = [:]
    /// No entry is older than this (the earliest `lastNoted`): housekeeping runs every second, the filter only when
    /// something can have expired.
    private var oldestNoted: UInt64 = .max

    var count: Int { entries.count }

    /// The workload a subject belongs to, when it is a pod's container with a known owner.
    static func key(_ subject: Subject, owner: OwnerRef?) -> Key? {
        guard case .podContainer(let pod, let container) = subject, let owner else { return nil }
        return Key(namespace: pod.namespace, ownerKind: owner.kind, ownerName: owner.name, container: container)
    }

    /// Keeps the drops of a container (`cycles`, from ``CycleReading/cyclesLivedThrough(in:limit:)``): the newest
    /// ``dropsKept`` of the workload's.
    mutating func note(_ key: Key, pod: PodRef, cycles: [MemoryHistory.Cycle], now: UInt64) {
        guard !cycles.isEmpty else { return }
        merge(key, Entry(drops: cycles.map { Drop(podUID: pod.uid, podName: pod.name, minute: $0.minute, peak: $0.peak) },
                         lastNoted: now))
    }

    /// Adds `entry`'s drops to the workload's (each pod's drop in a minute once; the newest ``dropsKept``), noted at
    /// the later of the two times; a new workload past ``capacity`` pushes out the one noted least recently.
    mutating func merge(_ key: Key, _ entry: Entry) {
        guard !entry.drops.isEmpty else { return }
        if entries[key] == nil, entries.count >= Self.capacity,
           let oldest = entries.min(by: { $0.value.lastNoted < $1.value.lastNoted })?.key {
            entries[oldest] = nil
        }
        var e = entries[key] ?? Entry(lastNoted: entry.lastNoted)
        for d in entry.drops where !e.drops.contains(where: { $0.podUID == d.podUID && $0.minute == d.minute }) {
            e.drops.append(d)
        }
        e.drops.sort { $0.minute < $1.minute }
        if e.drops.count > Self.dropsKept { e.drops.removeFirst(e.drops.count - Self.dropsKept) }
        e.lastNoted = max(e.lastNoted, entry.lastNoted)
        entries[key] = e
        oldestNoted = min(oldestNoted, e.lastNoted)
    }

    /// The highest drop the workload's containers came back down from, with how many such drops were kept and the pod
    /// that peaked highest; nil when there is none. Not the asking pod's own drops from minute `ownFrom` on: its own
    /// history still holds those and reads them with their order (read here as one highest drop they would hide
    /// peaks that climb, a leak across cycles); older ones it has forgotten count (a cycle longer than its two hours).
    /// Under a limit (bytes; 0 without one) only drops from below it by more than the slack a climb back is allowed
    /// (``CycleReading/limitShare``) count: peaks an earlier pod reached under a higher limit say nothing about this
    /// one's, which memory would reach first.
    func highest(_ key: Key, except podUID: String, from ownFrom: Int64, limit: Double) -> (peak: Double, drops: Int, pod: String)? {
        guard let e = entries[key] else { return nil }
        let ceiling = limit > 0 ? (1 - CycleReading.limitShare) * limit : .infinity
        let usable = e.drops.filter { ($0.podUID != podUID || $0.minute < ownFrom) && $0.peak < ceiling }
        guard let top = usable.max(by: { $0.peak < $1.peak }) else { return nil }
        return (top.peak, usable.count, top.podName)
    }

    /// Forgets workloads not noted for ``keepForNanos``.
    mutating func prune(now: UInt64) {
        let cutoff = now.subtracting(saturating: Self.keepForNanos)
        guard oldestNoted < cutoff else { return }
        entries = entries.filter { $0.value.lastNoted >= cutoff }
        oldestNoted = entries.values.map(\.lastNoted).min() ?? .max
    }
}
