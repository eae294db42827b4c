import Testing
import TapioTestTraits
import TapioModel
@testable import TapioCorrelation

/// A workload's cycles outlive its pods: a rollout's new pod climbing where the old pods came back down from is that
/// cycle again, not a new "OOM kill predicted" on every rollout (issue 12's "the engine never learns that this
/// workload always comes back down").
@Suite("Cycles kept per workload, across its pods", .cpuBound, .timeLimit(.minutes(5)))
struct WorkloadCyclesTests {
    static let mi = Double(1 << 20)
    static let gi: UInt64 = 1 << 30
    static let t0 = TestEvents.memoryStart

    /// A pod's memory: starting at `start` (seconds), climbing from 300Mi to 800Mi over 450 s under a 1Gi limit,
    /// then back to 300Mi until `drop + 150` — one cycle of a 10-minute batch phase (`quiet-periodic-10m`'s shape) —
    /// or, with `cycles: false`, climbing on at the same rate until the limit.
    struct Climb {
        var pod: String
        var owner: String
        var start: Int
        var cycles = true
        var end: Int { start + 600 }

        func value(_ k: Int, noise: inout TestNoise) -> Double? {
            guard k >= start, k < end || !cycles else { return nil }
            let t = Double(k - start)
            let rate = 500 * WorkloadCyclesTests.mi / 450
            let v = cycles ? (t < 450 ? 300 * WorkloadCyclesTests.mi + rate * t : 300 * WorkloadCyclesTests.mi)
                : 300 * WorkloadCyclesTests.mi + rate * t
            return v + 0.5 * WorkloadCyclesTests.mi * noise.gauss()
        }
    }

    /// Replays the climbs (one sample a second each), deleting each pod at the end of its cycle (`deleted`), until
    /// `seconds`; every update.
    func replay(_ climbs: [Climb], deleted: Set<String>, seconds: Int, seed: Int) -> [InsightUpdate] {
        var noise = TestNoise(state: UInt64(seed) &* 0x9e37_79b9_7f4a_7c15 | 1)
        let pods = climbs.map { c in
            Pod(name: c.pod, owner: c.owner, deleteAt: deleted.contains(c.pod) ? c.end : nil) { k in c.value(k, noise: &noise) }
        }
        return replay(pods, limit: Self.gi, seconds: seconds)
    }

    /// One pod of a replay: its memory each second (nil: no sample) and when it is deleted.
    struct Pod {
        var name: String
        var owner: String
        var deleteAt: Int?
        var value: (Int) -> Double?
    }

    func replay(_ pods: [Pod], limit: UInt64?, seconds: Int) -> [InsightUpdate] {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0...seconds {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            for p in pods {
                if let v = p.value(k), v < Double(limit ?? .max) {
                    engine.ingest(TestEvents.memory(pod: p.name, ws: UInt64(max(0, v)), limit: limit, owner: p.owner,
                                                    at: t), now: t, into: &out)
                }
                if p.deleteAt == k {
                    engine.ingest(.cluster(ClusterEvent(timestampNanos: t, kind: .podDeleted(TestEvents.ref(p.name)))),
                                  now: t, into: &out)
                }
            }
        }
        return out
    }

    func raised(_ u: [InsightUpdate], _ type: InsightType, pod: String) -> [InsightUpdate] {
        u.filter { $0.identity.type == type && $0.change == .new && $0.identity.subject.pod?.name == pod }
    }

    @Test("a rollout's new pod climbing where the old pod came back down is that cycle again", arguments: 1...3)
    func newPodOfACyclingWorkload(seed: Int) {
        // batch-a cycles once and is deleted (a rollout); batch-b, same workload, then climbs the same way. other-c,
        // another workload, climbs alongside it: the same series, with nothing of its own to remember.
        let u = replay([Climb(pod: "batch-a", owner: "batch", start: 0), Climb(pod: "batch-b", owner: "batch", start: 620),
                        Climb(pod: "other-c", owner: "other", start: 620)],
                       deleted: ["batch-a"], seconds: 1200, seed: seed)
        #expect(!raised(u, .oomPrediction, pod: "batch-a").isEmpty, "the first pod's ramp was not predicted: nothing to test")
        #expect(!raised(u, .oomPrediction, pod: "other-c").isEmpty, "another workload's same ramp was not predicted")
        let b = raised(u, .oomPrediction, pod: "batch-b").map { Double($0.observedAt - Self.t0) / 1e9 }
        #expect(b.isEmpty, "the new pod of the cycling workload was predicted at \(b) s")
    }

    /// A scale-up: batch-a keeps running (cycling every 10 minutes) when batch-b joins it. What batch-a's history
    /// holds is noted every five minutes of housekeeping, so batch-b's first climb already reads it.
    @Test("a replica added beside one that came back down climbs as that cycle, not a new prediction", arguments: 1...3)
    func scaleUp(seed: Int) {
        var noise = TestNoise(state: UInt64(seed) &* 0x2545_f491_4f6c_dd1d | 1)
        let a = (0..<3).map { Climb(pod: "batch-a", owner: "batch", start: 600 * $0) }
        let pods = [Pod(name: "batch-a", owner: "batch") { k in a.lazy.compactMap { $0.value(k, noise: &noise) }.first },
                    Pod(name: "batch-b", owner: "batch") { k in Climb(pod: "batch-b", owner: "batch", start: 1220).value(k, noise: &noise) },
                    Pod(name: "other-c", owner: "other") { k in Climb(pod: "other-c", owner: "other", start: 1220).value(k, noise: &noise) }]
        let u = replay(pods, limit: Self.gi, seconds: 1800)
        #expect(!raised(u, .oomPrediction, pod: "other-c").isEmpty, "another workload's same ramp was not predicted")
        let b = raised(u, .oomPrediction, pod: "batch-b").map { Double($0.observedAt - Self.t0) / 1e9 }
        #expect(b.isEmpty, "the added replica was predicted at \(b) s")
        let again = raised(u, .oomPrediction, pod: "batch-a").map { Double($0.observedAt - Self.t0) / 1e9 }
        #expect(again.count == 1 && again.allSatisfy { $0 < 600 }, "the first replica was predicted at \(again) s")
    }

    @Test("a new pod that climbs past where the workload came back down is new ground, and said so", arguments: 1...2)
    func newGroundInANewPod(seed: Int) throws {
        let u = replay([Climb(pod: "batch-a", owner: "batch", start: 0),
                        Climb(pod: "batch-b", owner: "batch", start: 620, cycles: false)],
                       deleted: ["batch-a"], seconds: 1250, seed: seed)
        let b = try #require(u.last { $0.identity.type == .oomPrediction && $0.identity.subject.pod?.name == "batch-b"
                                      && $0.change != .resolved },
                             "a climb on past the old pod's peak to the limit was not predicted")
        #expect(b.spec.evidence.contains { $0.description.contains("came back down once in its earlier pods") },
                "\(b.spec.evidence.map(\.description))")
    }

    /// `LeakJudgementTests.cycleIsNotALeak`'s batch phase (22.5 minutes from 200Mi to 400Mi, then back; no limit),
    /// in a new pod.
    @Test("a new pod's climb where the workload's earlier pod came back down is not a leak", arguments: 1...2)
    func newPodIsNotALeak(seed: Int) {
        var r = TestNoise(state: UInt64(seed) &* 0x2545_f491_4f6c_dd1d | 1)
        func phase(_ k: Int, from start: Int) -> Double? {
            guard k >= start else { return nil }
            let t = Double(k - start)
            return 200 * Self.mi + 200 * Self.mi * (t < 1350 ? t / 1350 : 0) + 0.5 * Self.mi * r.gauss()
        }
        let u = replay([Pod(name: "batch-a", owner: "batch", deleteAt: 1800) { k in k < 1800 ? phase(k, from: 0) : nil },
                        Pod(name: "batch-b", owner: "batch") { phase($0, from: 1810) },
                        Pod(name: "other-c", owner: "other") { phase($0, from: 1810) }],
                       limit: nil, seconds: 1810 + 1340)
        #expect(!raised(u, .memoryLeak, pod: "batch-a").isEmpty, "the first pod's climb was not called a leak: nothing to test")
        #expect(!raised(u, .memoryLeak, pod: "other-c").isEmpty, "another workload's same climb was not called a leak")
        #expect(raised(u, .memoryLeak, pod: "batch-b").isEmpty, "the new pod of the cycling workload was called a leak")
        #expect(raised(u, .unboundedMemoryGrowth, pod: "batch-b").isEmpty)
    }

    /// A policy change starts a new engine, without the old one's histories: the pod that came back down under the
    /// old one must not be a new prediction under the new one on its next climb.
    @Test("a policy change's new engine knows the cycles the old one saw", arguments: 1...2)
    func policyChange(seed: Int) {
        var noise = TestNoise(state: UInt64(seed) &* 0x9e37_79b9_7f4a_7c15 | 1)
        let first = Climb(pod: "batch-a", owner: "batch", start: 0), second = Climb(pod: "batch-a", owner: "batch", start: 600)
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0...1200 {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            if k == 620 {
                var next = CorrelationEngine()
                next.adoptActiveFindings(of: engine, now: t)
                engine = next
            }
            if let v = first.value(k, noise: &noise) ?? second.value(k, noise: &noise) {
                engine.ingest(TestEvents.memory(pod: "batch-a", ws: UInt64(max(0, v)), limit: Self.gi, owner: "batch", at: t),
                              now: t, into: &out)
            }
        }
        let raised = raised(out, .oomPrediction, pod: "batch-a").map { Double($0.observedAt - Self.t0) / 1e9 }
        #expect(raised.count == 1 && raised.allSatisfy { $0 < 600 }, "predicted at \(raised) s")
    }

    @Test("a pod that was OOM-killed did not come back down: the next pod's climb is predicted")
    func killIsNotACycle() {
        // batch-a climbs to the limit and is killed there (its memory drops with the kill), then is deleted.
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var noise = TestNoise(state: 7)
        let next = Climb(pod: "batch-b", owner: "batch", start: 700)
        for k in 0...1200 {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            if k < 560 {
                let v = 300 * Self.mi + 500 * Self.mi / 450 * Double(k) + 0.5 * Self.mi * noise.gauss()
                engine.ingest(TestEvents.memory(pod: "batch-a", ws: UInt64(min(v, Double(Self.gi))), limit: Self.gi,
                                                owner: "batch", at: t), now: t, into: &out)
            } else if k == 560 {
                engine.ingest(TestEvents.oomKill(pod: "batch-a", at: t), now: t, into: &out)
            } else if k < 640 {
                engine.ingest(TestEvents.memory(pod: "batch-a", ws: 200 << 20, limit: Self.gi, owner: "batch", at: t),
                              now: t, into: &out)
            } else if k == 640 {
                engine.ingest(.cluster(ClusterEvent(timestampNanos: t, kind: .podDeleted(TestEvents.ref("batch-a")))),
                              now: t, into: &out)
            }
            if let v = next.value(k, noise: &noise) {
                engine.ingest(TestEvents.memory(pod: "batch-b", ws: UInt64(max(0, v)), limit: Self.gi, owner: "batch",
                                                at: t), now: t, into: &out)
            }
        }
        #expect(engine.workloadCycles.count == 0, "a kill's drop was kept as a cycle")
        #expect(!raised(out, .oomPrediction, pod: "batch-b").isEmpty, "the next pod's climb was not predicted")
    }

    @Test("kept drops are bounded per workload and in number of workloads, count once, and expire")
    func bounds() throws {
        var w = WorkloadCycles()
        let pod = PodRef(namespace: "ns", name: "a", uid: "ua")
        let six = (0..<6).map { (minute: Int64($0), peak: Double($0 + 1) * 100, early: 0.0) }
        w.note("ns/Deployment/a/app", pod: pod, cycles: six, now: 1_000)
        let entry = try #require(w.entries["ns/Deployment/a/app"])
        #expect(entry.drops.map(\.minute) == [2, 3, 4, 5], "not the newest \(WorkloadCycles.dropsKept)")
        // The same drops noted again (a subject removed twice over its life) are not counted twice.
        w.note("ns/Deployment/a/app", pod: pod, cycles: six, now: 2_000)
        #expect(w.entries["ns/Deployment/a/app"]?.drops.count == WorkloadCycles.dropsKept)
        let kept = try #require(w.highest("ns/Deployment/a/app"))
        #expect(kept.peak == 600 && kept.drops == 4 && kept.pod == "a")
        #expect(w.highest("ns/Deployment/b/app") == nil)
        for k in 0..<WorkloadCycles.capacity {
            w.note("ns/Deployment/w\(k)/app", pod: PodRef(namespace: "ns", name: "w\(k)", uid: "u\(k)"),
                   cycles: [(minute: 1, peak: 1, early: 0)], now: 10_000 + UInt64(k))
        }
        #expect(w.count == WorkloadCycles.capacity)
        #expect(w.entries["ns/Deployment/a/app"] == nil, "the workload noted least recently was kept past the cap")
        w.prune(now: 10_000 + WorkloadCycles.keepForNanos + 100)
        #expect(w.count == WorkloadCycles.capacity - 100, "expiry: \(w.count) kept")
        #expect(WorkloadCycles.key(.pod(pod), owner: OwnerRef(kind: "Deployment", name: "a")) == nil)
        #expect(WorkloadCycles.key(.podContainer(pod, container: "app"), owner: nil) == nil)
    }
}
