import TapioModel
import Testing

@testable import TapioAgent
@testable import TapioCorrelation

/// The cgroup poller sends an unchanged sample only once per engine bucket (``UnchangedSampleFilter``). What the
/// engine concludes must not change: the same insights, predictions and summaries as with every sample.
struct UnchangedSampleFilterTests {
    static let second: UInt64 = 1_000_000_000
    static let t0: UInt64 = 1_800_000_000 * second

    @Test func aChangeABucketAndAMinuteEachSendASampleAndTheHeldOnesAreCounted() {
        var f = UnchangedSampleFilter()
        let bucket = 10 * Self.second
        let s = (usageBytes: UInt64(10 << 20), workingSetBytes: UInt64(8 << 20), limitBytes: UInt64(64 << 20))
        let start = Self.t0 + 60 * Self.second  // a minute's and a bucket's start
        #expect(f.admit(s, at: start, bucketNanos: bucket) == 0)
        #expect(f.admit(s, at: start + Self.second, bucketNanos: bucket) == nil)
        #expect(f.admit(s, at: start + 2 * Self.second, bucketNanos: bucket) == nil)
        var moved = s
        moved.workingSetBytes += 4096
        #expect(f.admit(moved, at: start + 3 * Self.second, bucketNanos: bucket) == 2, "a change is sent with the two held")
        #expect(f.admit(moved, at: start + 4 * Self.second, bucketNanos: bucket) == nil)
        var limited = moved
        limited.limitBytes = 128 << 20
        #expect(f.admit(limited, at: start + 5 * Self.second, bucketNanos: bucket) == 1, "a new limit is a change")
        for k in 6..<10 { #expect(f.admit(limited, at: start + UInt64(k) * Self.second, bucketNanos: bucket) == nil) }
        #expect(f.admit(limited, at: start + 10 * Self.second, bucketNanos: bucket) == 4, "the next bucket's first sample is sent")
        // A bucket longer than a minute: the minute's start still sends one (the engine's long history is per minute).
        var g = UnchangedSampleFilter()
        let long = 120 * Self.second
        #expect(g.admit(s, at: start + 50 * Self.second, bucketNanos: long) == 0)
        #expect(g.admit(s, at: start + 59 * Self.second, bucketNanos: long) == nil)
        #expect(g.admit(s, at: start + 60 * Self.second, bucketNanos: long) == 1)
    }

    /// A 1-Hz series in steps and holds, as a container's memory looks when read once a second.
    struct Series {
        let name: String
        let values: [UInt64]
        let limit: UInt64
    }

    /// SplitMix64: seeded noise, the same on every run.
    struct Noise {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: UInt64) -> UInt64 { next() % n }
    }

    static var corpus: [Series] {
        let MiB: UInt64 = 1 << 20
        var noise = Noise(state: 14)
        var out: [Series] = []
        // Idle for seven minutes, then a staircase leak (a step every 7 s) that reaches the limit.
        out.append(Series(name: "idle then staircase leak", values: (0..<1500).map { t in
            t < 420 ? 40 * MiB : min(40 * MiB + UInt64((t - 420) / 7) * 3 * MiB / 2, 256 * MiB)
        }, limit: 256 * MiB))
        // A GC sawtooth (a 2-MiB step every 3 s for 45 s, then back down) whose floor creeps up each cycle.
        out.append(Series(name: "sawtooth over a creeping floor", values: (0..<1500).map { t in
            let cycle = UInt64(t / 48), phase = UInt64(t % 48)
            return 60 * MiB + cycle * MiB / 2 + min(phase / 3, 15) * 2 * MiB
        }, limit: 192 * MiB))
        // Noise (every sample differs), then flat, a one-sample spike, and flat near the limit.
        out.append(Series(name: "noise, flat, spike, near the limit", values: (0..<1500).map { t in
            if t < 300 { return 80 * MiB + noise.below(3 * MiB) }
            if t < 700 { return 80 * MiB }
            if t == 700 { return 200 * MiB }
            if t < 900 { return 80 * MiB }
            return 240 * MiB
        }, limit: 256 * MiB))
        // Ramps of three minutes that drop back, every four minutes, in 1-MiB steps (held between steps).
        out.append(Series(name: "periodic ramps", values: (0..<1800).map { t in
            let phase = UInt64(t % 240)
            return 50 * MiB + (phase < 180 ? (phase * 400 * 1024) & ~(MiB - 1) : 0)
        }, limit: 256 * MiB))
        // A slow leak: 64 KiB every 5 s, otherwise still.
        out.append(Series(name: "slow leak", values: (0..<1800).map { t in 100 * MiB + UInt64(t / 5) * 64 * 1024 },
                          limit: 160 * MiB))
        return out
    }

    static func event(_ value: UInt64, limit: UInt64, at t: UInt64, unchangedBefore: UInt32) -> AttributedEvent {
        .node(NodeEvent(timestampNanos: t, pid: 0, cgroupID: 7, comm: "",
                        kind: .cgroupMemory(.init(usageBytes: value, workingSetBytes: value, limitBytes: limit,
                                                  unchangedBefore: unchangedBefore))),
              subject: .podContainer(PodRef(namespace: "default", name: "app", uid: "uid-app"), container: "app"),
              context: SubjectContext(owner: OwnerRef(kind: "Deployment", name: "app"), node: "node-1"))
    }

    /// Both engines are evaluated at the same instants (once a second, as the pipeline's batch timeout brings
    /// about); one is fed every sample, the other only what the filter sends.
    @Test(arguments: corpus.map(\.name))
    func theEngineConcludesTheSameFromTheSentSamplesAsFromEverySample(_ name: String) throws {
        let series = try #require(Self.corpus.first { $0.name == name })
        let config = CorrelationConfig()
        var every = CorrelationEngine(config: config)
        var filtered = CorrelationEngine(config: config)
        var filter = UnchangedSampleFilter()
        var fromEvery: [InsightUpdate] = []
        var fromFiltered: [InsightUpdate] = []
        var sent = 0
        var jitterMismatches = 0
        for (k, v) in series.values.enumerated() {
            let t = Self.t0 + UInt64(k) * Self.second
            every.ingest(Self.event(v, limit: series.limit, at: t, unchangedBefore: 0), now: t, into: &fromEvery)
            every.flush(now: t, into: &fromEvery)
            if let held = filter.admit((v, v, series.limit), at: t, bucketNanos: config.bucketNanos) {
                sent += 1
                filtered.ingest(Self.event(v, limit: series.limit, at: t, unchangedBefore: held), now: t, into: &fromFiltered)
                // The series' jitter agrees after every sample sent (the held ones counted in): drops are judged alike.
                if every.states.first?.memory.meanAbsDelta != filtered.states.first?.memory.meanAbsDelta { jitterMismatches += 1 }
            }
            filtered.flush(now: t, into: &fromFiltered)
        }
        #expect(fromFiltered == fromEvery, "\(name): \(fromFiltered.count) updates from the sent samples, \(fromEvery.count) from all")
        #expect(jitterMismatches == 0)
        // Not vacuous: the filter held most samples back wherever memory stood still.
        if name != "noise, flat, spike, near the limit" {
            #expect(sent * 2 < series.values.count, "\(name): \(sent) of \(series.values.count) samples sent")
        }
        print("\(name): \(sent) of \(series.values.count) samples sent; \(fromEvery.count) updates, kinds \(Set(fromEvery.map(\.identity.type)))")
    }

    /// At least one of the series makes the engine predict an OOM kill, so the comparison above covers predictions.
    @Test func theCorpusContainsAPrediction() {
        var found = false
        for series in Self.corpus where !found {
            var engine = CorrelationEngine()
            var out: [InsightUpdate] = []
            for (k, v) in series.values.enumerated() {
                let t = Self.t0 + UInt64(k) * Self.second
                engine.ingest(Self.event(v, limit: series.limit, at: t, unchangedBefore: 0), now: t, into: &out)
                engine.flush(now: t, into: &out)
            }
            found = out.contains { $0.spec.prediction != nil }
        }
        #expect(found)
    }
}
