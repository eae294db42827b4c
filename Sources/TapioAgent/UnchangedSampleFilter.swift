import TapioCorrelation

/// Which of a cgroup's once-a-second samples are worth sending to the engine: the first, every one that differs
/// from the last sent (usage, working set or limit), and the first of each engine bucket and of each minute of the
/// engine's long history. The rest are identical to the last one sent and are only counted
/// (`NodeEvent.CgroupMemory.unchangedBefore` on the next one sent).
///
/// Why: on a node at rest most containers' memory does not move for minutes, and each sample costs the pipeline an
/// attribution, a queue hop and an engine ingest — with 100 containers, 100 events a second, most of the agent's
/// work at rest. What the engine keeps of a series is the same either way: a bucket's maximum, minimum and when its
/// maximum came, the drops between consecutive samples, each minute's maximum and minimum and the last value are
/// all determined by the first sample of each bucket and minute plus every change; the jitter figure decays by
/// the counted repeats. Only the time of the last sample (`lastAt`) and the subject's `lastSeen` lag, by at most a
/// bucket (10 s with the default 5-minute window), far below the quiet period (window + resolve delay) that retires
/// a subject.
struct UnchangedSampleFilter: Sendable {
    typealias Sample = (usageBytes: UInt64, workingSetBytes: UInt64, limitBytes: UInt64)
    private var last: Sample?
    private var lastSentAt: UInt64 = 0
    private var held: UInt32 = 0

    /// The minute of the engine's long history: a sample in a new one is always sent.
    static var minuteNanos: UInt64 { CorrelationConfig.historyStepNanos }

    /// nil: hold this sample back (unchanged, same bucket and minute as the last one sent). Otherwise send it, with
    /// the count of samples held since the last one sent.
    mutating func admit(_ s: Sample, at stamp: UInt64, bucketNanos: UInt64) -> UInt32? {
        let bucket = Swift.max(bucketNanos, 1)
        if let last, last == s, stamp / bucket == lastSentAt / bucket,
           stamp / Self.minuteNanos == lastSentAt / Self.minuteNanos {
            if held < .max { held += 1 }
            return nil
        }
        let repeats = held
        last = s
        lastSentAt = stamp
        held = 0
        return repeats
    }
}
