import Foundation
import TapioCorrelation
import TapioSinks
import TapioModel

/// Benchmarks for the correlation engine (DESIGN.md §7: ≥ 1,000,000 events/s on one core, batch-to-insight
/// p99 ≤ 1 ms). Events are built outside the timed sections; only `ingest` is timed.
let correlationBenchmarks: [Benchmark] = [
    Benchmark(name: "correlation-throughput",
              summary: "events/s through the engine on one core (1,000 containers at 10 Hz, 5% leaking, TCP and exits mixed in)") {
        let rounds = 20, perRound = 100_000
        var engine = CorrelationEngine()
        var gen = CorrelationLoad(subjects: 1_000)
        var out: [InsightUpdate] = []
        out.reserveCapacity(1024)
        var timed: UInt64 = 0
        var updates = 0
        // Warm-up round (fills windows, dictionary, capacities).
        for e in gen.next(perRound) { engine.ingest(e, now: e.timestampNanos, into: &out) }
        out.removeAll(keepingCapacity: true)
        for _ in 0..<rounds {
            let batch = gen.next(perRound)
            let t0 = nowNanos()
            for e in batch { engine.ingest(e, now: e.timestampNanos, into: &out) }
            timed += nowNanos() - t0
            updates += out.count
            out.removeAll(keepingCapacity: true)
        }
        blackHole(engine)
        let n = Double(rounds * perRound)
        return [Measurement(metric: "events_per_second", value: (n / (Double(timed) / 1e9)).rounded(), unit: "events/s"),
                Measurement(metric: "ns_per_event", value: Double(timed) / n, unit: "ns"),
                Measurement(metric: "insight_updates", value: Double(updates), unit: "updates"),
                Measurement(metric: "evaluations", value: Double(engine.stats.evaluations), unit: "evaluations")]
    },
    Benchmark(name: "correlation-latency",
              summary: "batch-to-insight latency: one batch of 100 events in, its insight updates out (p50/p99/max)") {
        var engine = CorrelationEngine()
        var gen = CorrelationLoad(subjects: 1_000)
        for e in gen.next(100_000) { _ = engine.ingest([e], now: e.timestampNanos) }
        var samples: [UInt64] = []
        samples.reserveCapacity(20_000)
        for _ in 0..<200 {
            let events = gen.next(10_000)
            var i = 0
            while i < events.count {
                let batch = Array(events[i..<min(i + 100, events.count)])
                let now = batch.last!.timestampNanos
                let t0 = nowNanos()
                let updates = engine.ingest(batch, now: now)
                samples.append(nowNanos() - t0)
                blackHole(updates)
                i += 100
            }
        }
        samples.sort()
        func pct(_ p: Double) -> Double { Double(samples[min(samples.count - 1, Int(Double(samples.count) * p))]) / 1000 }
        return [Measurement(metric: "p50", value: pct(0.50), unit: "µs"),
                Measurement(metric: "p99", value: pct(0.99), unit: "µs"),
                Measurement(metric: "max", value: Double(samples.last ?? 0) / 1000, unit: "µs"),
                Measurement(metric: "batches", value: Double(samples.count), unit: "batches")]
    },
    Benchmark(name: "correlation-memory",
              summary: "resident memory per tracked subject: 100,000 containers with a full 5-minute window each") {
        // 31 samples 10 s apart per subject: every subject holds a full window of buckets.
        memoryPerSubject(subjects: 100_000, steps: Array(repeating: 10_000_000_000, count: 31))
    },
    Benchmark(name: "correlation-memory-history",
              summary: "resident memory per tracked subject with a full two-hour history and a full 5-minute window (20,000 containers)") {
        // A sample a minute for 125 minutes fills the long history (128 minutes); then 31 samples 10 s apart fill
        // the window's buckets too.
        memoryPerSubject(subjects: 20_000, steps: Array(repeating: 60_000_000_000, count: 125)
                             + Array(repeating: 10_000_000_000, count: 31))
    },
    Benchmark(name: "correlation-workload-cycles",
              summary: "heap the engine keeps per workload for its pods' cycles once the pods are gone (WorkloadCycles): 1,024 workloads, each one pod that went through four 3-minute cycles and was deleted, against the same pods flat") {
        workloadCyclesHeap(workloads: 1024)
    },
    Benchmark(name: "engine-memory-checkpoint",
              summary: "the agent's state file (--state-file): taking the engine's memory, writing it to bytes, reading it back and restoring it, for a full node (110 pods) and for 10,000 pod containers, each with a full two-hour history") {
        engineMemoryCheckpoint(containers: 110, prefix: "node") + engineMemoryCheckpoint(containers: 10_000, prefix: "10k")
    },
]

/// Costs of one checkpoint of `containers` pod containers whose minute histories are full (125 minutes of a sawtooth),
/// best of five: what the engine's task spends taking the memory every minute, what the writer spends encoding it,
/// and what a start spends decoding and restoring it; the file's size.
func engineMemoryCheckpoint(containers n: Int, prefix: String) -> [Measurement] {
    let t0: UInt64 = 1_795_000_000 * 1_000_000_000
    var config = CorrelationConfig()
    config.maxSubjects = max(n * 2, 1000)
    var engine = CorrelationEngine(config: config)
    var sink: [InsightUpdate] = []
    let pods = (0..<n).map { k in
        PodRef(namespace: "ns-\(k % 50)", name: "app-\(k)-7d9f8c6b5-x2k4q", uid: "3f1c9a2e-5b7d-4e8f-9a0b-\(String(format: "%012d", k))")
    }
    for minute in 0..<125 {
        let t = t0 + UInt64(minute) * 60_000_000_000
        let ws = UInt64(200 + (minute % 30) * 10) << 20
        for (k, p) in pods.enumerated() {
            let e = NodeEvent(timestampNanos: t, pid: Int32(1000 + k), cgroupID: UInt64(5000 + k), comm: "app",
                              kind: .cgroupMemory(.init(usageBytes: ws, workingSetBytes: ws, limitBytes: 1 << 30)))
            engine.ingest(AttributedEvent(event: .node(e), subject: .podContainer(p, container: "app"),
                                          context: SubjectContext(owner: OwnerRef(kind: "Deployment", name: "app-\(k)"), node: "node-1")),
                          now: t, into: &sink)
        }
        sink.removeAll(keepingCapacity: true)
    }
    let now = t0 + 125 * 60_000_000_000
    func best(_ body: () -> Void) -> Double {
        (0..<5).map { _ in let a = nowNanos(); body(); return Double(nowNanos() - a) / 1e6 }.min() ?? 0
    }
    var memory = EngineMemory()
    let take = best { memory = engine.memory(now: now) }
    var bytes: [UInt8] = []
    let encode = best { bytes = EngineMemoryCodec.encode(memory) }
    var back = EngineMemory()
    let decode = best { back = (try? EngineMemoryCodec.decode(bytes)) ?? EngineMemory() }
    var restored = 0
    let restore = best {
        var fresh = CorrelationEngine(config: config)
        restored = fresh.restore(back, now: now)
        blackHole(fresh)
    }
    blackHole(engine)
    return [Measurement(metric: "\(prefix)_containers_restored", value: Double(restored), unit: "containers"),
            Measurement(metric: "\(prefix)_file_bytes", value: Double(bytes.count), unit: "bytes"),
            Measurement(metric: "\(prefix)_bytes_per_container", value: (Double(bytes.count) / Double(max(n, 1))).rounded(), unit: "bytes"),
            Measurement(metric: "\(prefix)_take_ms", value: take, unit: "ms"),
            Measurement(metric: "\(prefix)_encode_ms", value: encode, unit: "ms"),
            Measurement(metric: "\(prefix)_decode_ms", value: decode, unit: "ms"),
            Measurement(metric: "\(prefix)_restore_ms", value: restore, unit: "ms")]
}

/// Heap held after `workloads` pods (one per workload) cycled four times and were deleted, minus the same with flat
/// pods: what the engine keeps of their drops. Allocations, not time: a debug build measures it as well.
func workloadCyclesHeap(workloads n: Int) -> [Measurement] {
    let mi: UInt64 = 1 << 20
    let t0: UInt64 = 1_795_000_000 * 1_000_000_000
    // Names and uids as Kubernetes makes them: a Deployment's pod name and a 36-character uid.
    let pods = (0..<n).map { k in
        PodRef(namespace: "ns-\(k % 50)", name: "batch-\(k)-7d9f8c6b5-x2k4q",
               uid: "3f1c9a2e-5b7d-4e8f-9a0b-\(String(format: "%012d", k))")
    }
    func run(cycling: Bool) -> (held: Double, entries: Int) {
        let before = ProcessHeap.current(countingArenas: false)?.inUse ?? 0
        var config = CorrelationConfig()
        config.maxSubjects = 10_000
        var engine = CorrelationEngine(config: config)
        var sink: [InsightUpdate] = []
        // Four cycles of 3 minutes (2 minutes climbing from 100Mi to 375Mi, 1 minute back at 100Mi), a sample every 10 s.
        for step in 0..<73 {
            let t = t0 + UInt64(step) * 10_000_000_000
            let phase = UInt64(step % 18)
            let ws = cycling && phase < 12 ? 100 * mi + phase * 25 * mi : 100 * mi
            for (k, p) in pods.enumerated() {
                let e = NodeEvent(timestampNanos: t, pid: Int32(1000 + k), cgroupID: UInt64(5000 + k), comm: "app",
                                  kind: .cgroupMemory(.init(usageBytes: ws, workingSetBytes: ws, limitBytes: 1 << 30)))
                engine.ingest(AttributedEvent(event: .node(e), subject: .podContainer(p, container: "app"),
                                              context: SubjectContext(owner: OwnerRef(kind: "Deployment", name: "batch-\(k)"),
                                                                      node: "node-1")),
                              now: t, into: &sink)
            }
            sink.removeAll(keepingCapacity: true)
        }
        let end = t0 + 73 * 10_000_000_000
        for p in pods { engine.ingest(.cluster(ClusterEvent(timestampNanos: end, kind: .podDeleted(p))), now: end, into: &sink) }
        // Past the window the tombstones (which share the uids' storage) are gone: what is left is the kept drops.
        engine.tick(now: end + 600_000_000_000, into: &sink)
        sink = []
        let after = ProcessHeap.current(countingArenas: false)?.inUse ?? before
        let entries = engine.sizes.first { $0.structure == "engine_workload_cycles" }?.entries ?? 0
        blackHole(engine)
        return (after > before ? Double(after - before) : 0, entries)
    }
    let flat = run(cycling: false)
    let cycling = run(cycling: true)
    return [Measurement(metric: "workloads_kept", value: Double(cycling.entries), unit: "workloads"),
            Measurement(metric: "workloads_kept_flat", value: Double(flat.entries), unit: "workloads"),
            Measurement(metric: "bytes_per_workload", value: ((cycling.held - flat.held) / Double(max(cycling.entries, 1))).rounded(),
                        unit: "bytes"),
            Measurement(metric: "held_cycling", value: cycling.held / 1_048_576, unit: "MiB"),
            Measurement(metric: "held_flat", value: flat.held / 1_048_576, unit: "MiB")]
}

/// Resident memory the engine gains per subject after one round of samples per entry of `steps` (its virtual step).
func memoryPerSubject(subjects: Int, steps: [UInt64]) -> [Measurement] {
    var config = CorrelationConfig()
    config.maxSubjects = 200_000
    let before = currentRSSBytes()
    var engine = CorrelationEngine(config: config)
    var gen = CorrelationLoad(subjects: subjects, leakingShare: 0, tcpShare: 0)
    for step in steps {
        for e in gen.nextRound(step: step) { engine.ingest(e, now: e.timestampNanos, into: &gen.sink) }
        gen.sink.removeAll(keepingCapacity: true)
    }
    let after = currentRSSBytes()
    blackHole(engine)
    return [Measurement(metric: "subjects", value: Double(engine.trackedSubjects), unit: "subjects"),
            Measurement(metric: "bytes_per_subject", value: (Double(after &- before) / Double(subjects)).rounded(), unit: "bytes"),
            Measurement(metric: "rss_growth", value: Double(after &- before) / 1_048_576, unit: "MiB")]
}

/// A deterministic synthetic load: `subjects` pod containers sampled round-robin every 100 ms of virtual time
/// each, some leaking toward their limit, with TCP retransmits/refusals and process exits mixed in.
struct CorrelationLoad {
    let subjects: [Subject]
    let contexts: [SubjectContext]
    let leakingShare: Double
    let tcpShare: Double
    var clock: UInt64 = 1_795_000_000 * 1_000_000_000
    var cursor = 0
    var rng: UInt64 = 0x9e37_79b9_7f4a_7c15
    var sink: [InsightUpdate] = []

    init(subjects n: Int, leakingShare: Double = 0.05, tcpShare: Double = 0.08) {
        subjects = (0..<n).map { k in
            .podContainer(PodRef(namespace: "ns-\(k % 50)", name: "pod-\(k)", uid: "uid-\(k)"), container: "app")
        }
        contexts = (0..<n).map { k in
            SubjectContext(owner: OwnerRef(kind: "Deployment", name: "app-\(k / 3)"), node: "node-\(k % 20)",
                           image: "registry.example/app:\(k % 7)")
        }
        self.leakingShare = leakingShare
        self.tcpShare = tcpShare
    }

    mutating func random() -> UInt64 {
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        return rng
    }

    /// The next `count` events, advancing virtual time so each subject is sampled every 100 ms.
    mutating func next(_ count: Int) -> [AttributedEvent] {
        var out: [AttributedEvent] = []
        out.reserveCapacity(count)
        let step = 100_000_000 / UInt64(subjects.count)
        for _ in 0..<count {
            out.append(event(for: cursor, at: clock))
            cursor += 1
            if cursor == subjects.count { cursor = 0 }
            clock &+= max(step, 1)
        }
        return out
    }

    /// One sample for every subject, `step` after the previous round.
    mutating func nextRound(step: UInt64) -> [AttributedEvent] {
        clock &+= step
        return (0..<subjects.count).map { event(for: $0, at: clock) }
    }

    mutating func event(for k: Int, at t: UInt64) -> AttributedEvent {
        let r = random()
        let roll = Double(r % 10_000) / 10_000
        let kind: NodeEvent.Kind
        if roll < tcpShare {
            kind = .tcp(.init(kind: roll < tcpShare / 4 ? .connectFailed : .retransmit, sourceAddress: "10.244.0.\(k % 250)",
                              sourcePort: 40000, destinationAddress: "10.96.0.10", destinationPort: 5432, errno: 111))
        } else if roll < tcpShare + 0.002 {
            kind = .processExit(.init(exitCode: 0, signal: 0, peakRSSBytes: 1 << 20))
        } else {
            let leaking = Double(k) < Double(subjects.count) * leakingShare
            let seconds = Double(t / 1_000_000_000 % 3600)
            let base = 200.0 * 1_048_576 + Double(r % 4_000_000)
            let ws = UInt64(base + (leaking ? seconds * 1_000_000 : 0))
            kind = .cgroupMemory(.init(usageBytes: ws, workingSetBytes: ws, limitBytes: 2 << 30))
        }
        return AttributedEvent(event: .node(NodeEvent(timestampNanos: t, pid: Int32(1000 + k), cgroupID: UInt64(5000 + k),
                                                      comm: "app", kind: kind)),
                               subject: subjects[k], context: contexts[k])
    }
}

/// The worst case for the long-climb reading (issue 12): every subject's memory speeds up, so every evaluation fits
/// a parabola, a compounding curve and a knee to an hour of minute maxima (the most the bend reads). 1,000 containers
/// sampled at 1 Hz; 60 minutes of virtual time fill the long history untimed, then 5 minutes are timed. The same
/// with straight leaks (no fits) for comparison, and with logarithmic climbs over two hours (a line, a parabola, a
/// logarithm and an approach to a level fitted to all 127 finished minutes the history holds at every evaluation).
let climbCurveBenchmarks: [Benchmark] = [
    Benchmark(name: "correlation-accelerating",
              summary: "events/s with every subject speeding up (1,000 containers at 1 Hz, 60 min of history, the long-climb fits at every evaluation) against straight leaks and 2-hour logarithmic climbs") {
        func run(minutes: Int = 60, _ curve: (Double) -> Double) -> (eventsPerSecond: Double, predictions: Int) {
            let n = 1_000, s: UInt64 = 1_000_000_000, t0: UInt64 = 1_795_000_000 * s
            var engine = CorrelationEngine()
            var out: [InsightUpdate] = []
            out.reserveCapacity(4096)
            var rng: UInt64 = 0x9e37_79b9_7f4a_7c15
            let subjects = (0..<n).map { Subject.podContainer(PodRef(namespace: "bench", name: "pod-\($0)", uid: "uid-\($0)"), container: "app") }
            let context = SubjectContext(owner: OwnerRef(kind: "Deployment", name: "app"), node: "node-1")
            var timed: UInt64 = 0, events = 0
            var predicted = Set<Subject>()
            for second in 0..<((minutes + 5) * 60) {
                let t = t0 + UInt64(second) * s
                var batch: [AttributedEvent] = []
                batch.reserveCapacity(n)
                for k in 0..<n {
                    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
                    // ±2 MiB of noise, each subject's curve shifted by its own offset.
                    let v = curve(Double(second)) + Double(k % 100) * 1_048_576 + Double(rng % 4_000_000) - 2_000_000
                    let ws = UInt64(max(0, v))
                    batch.append(AttributedEvent(
                        event: .node(NodeEvent(timestampNanos: t, pid: Int32(1000 + k), cgroupID: UInt64(5000 + k), comm: "app",
                                               kind: .cgroupMemory(.init(usageBytes: ws, workingSetBytes: ws, limitBytes: 64 << 30)))),
                        subject: subjects[k], context: context))
                }
                let start = nowNanos()
                for e in batch { engine.ingest(e, now: t, into: &out) }
                if second >= minutes * 60 {
                    timed += nowNanos() - start
                    events += n
                }
                for u in out where u.identity.type == .oomPrediction { predicted.insert(u.identity.subject) }
                out.removeAll(keepingCapacity: true)
            }
            blackHole(engine)
            return (Double(events) / (Double(timed) / 1e9), predicted.count)
        }
        let mi = 1_048_576.0
        // 200Mi plus 30Mi·e^(t/15 min) toward a 64Gi limit, reached after ~115 minutes: predicted (within the hour's
        // horizon) from the 60th minute on.
        let accelerating = run { 200 * mi + 30 * mi * exp($0 / 900) }
        // Straight leaks of 15Mi/s: 64Gi after ~72 minutes, predicted at 60–65 minutes too.
        let straight = run { 200 * mi + 15 * mi * $0 }
        // 200Mi + 2Gi·ln(1 + t/20 s): growing 0.3Mi/s after two hours, far from the 64Gi limit (not predicted), with
        // all 127 finished minutes of the climb in the history.
        let logarithmic = run(minutes: 128) { 200 * mi + 2048 * mi * log1p($0 / 20) }
        return [Measurement(metric: "accelerating_events_per_second", value: accelerating.eventsPerSecond.rounded(), unit: "events/s"),
                Measurement(metric: "accelerating_predicted_subjects", value: Double(accelerating.predictions), unit: "subjects"),
                Measurement(metric: "straight_events_per_second", value: straight.eventsPerSecond.rounded(), unit: "events/s"),
                Measurement(metric: "straight_predicted_subjects", value: Double(straight.predictions), unit: "subjects"),
                Measurement(metric: "logarithmic_events_per_second", value: logarithmic.eventsPerSecond.rounded(), unit: "events/s")]
    },
]

/// DESIGN.md §7: an OOM warning on a steady leak comes ≥ 60 s before the kill, with time-to-OOM within 20 %.
/// Steady leaks of several speeds, sampled at 1 Hz like the cgroup poller (±1 % noise around a 100 MiB baseline,
/// 1 GiB limit), through the engine on virtual time: how long before the kill the first `OOMPrediction` came, and
/// how far its time-to-OOM was from the truth.
let oomWarningBenchmarks: [Benchmark] = [
    Benchmark(name: "correlation-oom-warning",
              summary: "steady leaks reaching a 1 GiB limit in 3 min to 2 h, sampled at 1 Hz: warning lead time and time-to-OOM error of the first prediction") {
        var out: [Measurement] = []
        for minutes in [3, 5, 10, 30, 60, 120] {
            let r = OOMWarning.run(secondsToOOM: minutes * 60)
            out.append(Measurement(metric: "\(minutes)m_lead", value: r.leadSeconds, unit: "s"))
            out.append(Measurement(metric: "\(minutes)m_ttoom_error", value: r.errorPercent, unit: "%"))
        }
        return out
    },
]

enum OOMWarning {
    /// Lead time (s) of the first OOMPrediction and its time-to-OOM error (%); NaN when none came.
    static func run(secondsToOOM: Int) -> (leadSeconds: Double, errorPercent: Double) {
        let limit: UInt64 = 1 << 30
        let base: UInt64 = 100 << 20
        let rate = Double(limit - base) / Double(secondsToOOM)
        var engine = CorrelationEngine()
        var rng = SystemRandomNumberGenerator()
        let s: UInt64 = 1_000_000_000
        let t0: UInt64 = 1_795_000_000 * s
        let pod = PodRef(namespace: "bench", name: "leaky-0", uid: "uid-leaky-0")
        var out: [InsightUpdate] = []
        for second in 0..<secondsToOOM {
            let t = t0 + UInt64(second) * s
            let noise = Double.random(in: -0.01...0.01, using: &rng) * Double(base)
            let ws = UInt64(max(0, Double(base) + rate * Double(second) + noise))
            let e = AttributedEvent.node(
                NodeEvent(timestampNanos: t, pid: 1, cgroupID: 7, comm: "app",
                          kind: .cgroupMemory(.init(usageBytes: ws, workingSetBytes: ws, limitBytes: limit))),
                subject: .podContainer(pod, container: "app"),
                context: SubjectContext(owner: OwnerRef(kind: "Deployment", name: "leaky"), node: "node-1"))
            engine.ingest(e, now: t, into: &out)
            engine.tick(now: t + s / 2, into: &out)
            if let p = out.first(where: { $0.identity.type == .oomPrediction && $0.change == .new }) {
                let lead = Double(secondsToOOM - second)
                let predicted = p.spec.prediction?.timeToEvent.flatMap { try? GoDuration.parse($0) }
                let predictedSeconds = predicted.map { Double($0.components.seconds) } ?? .nan
                return (lead, abs(predictedSeconds - lead) / lead * 100)
            }
            out.removeAll(keepingCapacity: true)
        }
        return (.nan, .nan)
    }
}
