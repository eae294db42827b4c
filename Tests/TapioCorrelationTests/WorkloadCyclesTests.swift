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
        /// Its own limit, when not the replay's.
        var limit: UInt64?? = nil
        var value: (Int) -> Double?
    }

    func replay(_ pods: [Pod], limit: UInt64?, seconds: Int) -> [InsightUpdate] {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0...seconds {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            for p in pods {
                let limit = p.limit ?? limit
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

    /// A policy change starts a new engine: what memory did beyond the window must not go with the old one.
    @Test("a policy change's new engine keeps the pods' histories and the workloads' kept cycles", arguments: 1...2)
    func policyChange(seed: Int) {
        var noise = TestNoise(state: UInt64(seed) &* 0x9e37_79b9_7f4a_7c15 | 1)
        // batch-a cycles and is deleted before the change; batch-b (same workload) and batch-c (its own second
        // climb) climb after it.
        let a = Climb(pod: "batch-a", owner: "batch", start: 0), b = Climb(pod: "batch-b", owner: "batch", start: 700)
        let c = [Climb(pod: "batch-c", owner: "cron", start: 0), Climb(pod: "batch-c", owner: "cron", start: 600)]
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0...1300 {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            if k == 650 {
                var next = CorrelationEngine()
                next.adoptActiveFindings(of: engine, now: t)
                engine = next
            }
            if k == 610 {
                engine.ingest(.cluster(ClusterEvent(timestampNanos: t, kind: .podDeleted(TestEvents.ref("batch-a")))),
                              now: t, into: &out)
            }
            for (pod, v) in [("batch-a", a.value(k, noise: &noise)), ("batch-b", b.value(k, noise: &noise)),
                             ("batch-c", c[0].value(k, noise: &noise) ?? c[1].value(k, noise: &noise))] {
                guard let v else { continue }
                engine.ingest(TestEvents.memory(pod: pod, ws: UInt64(max(0, v)), limit: Self.gi,
                                                owner: pod == "batch-c" ? "cron" : "batch", at: t), now: t, into: &out)
            }
        }
        let seconds = { (u: [InsightUpdate]) in u.map { Double($0.observedAt - Self.t0) / 1e9 } }
        #expect(seconds(raised(out, .oomPrediction, pod: "batch-b")).isEmpty,
                "a gone pod's cycle was forgotten by the new engine: \(seconds(raised(out, .oomPrediction, pod: "batch-b"))) s")
        let own = seconds(raised(out, .oomPrediction, pod: "batch-c"))
        #expect(own.count == 1 && own.allSatisfy { $0 < 600 }, "a pod's own cycle was forgotten: predicted at \(own) s")
    }

    /// `oom-periodic-growing`'s kind of leak: every cycle peaks higher. Its own history reads the climbing peaks; a
    /// policy change, or drops kept for the workload, must not turn them into one drop "seen before".
    @Test("a leak across cycles keeps its one prediction through a policy change")
    func leakAcrossCyclesThroughAPolicyChange() throws {
        func run(changeAt: Int?) -> [InsightUpdate] {
            var noise = TestNoise(state: 11)
            var engine = CorrelationEngine()
            var out: [InsightUpdate] = []
            for k in 0...4800 {
                let t = Self.t0 + UInt64(k) * 1_000_000_000
                if k == changeAt {
                    var next = CorrelationEngine()
                    next.adoptActiveFindings(of: engine, now: t)
                    engine = next
                }
                // Every 10 minutes: 7.5 minutes climbing from 300Mi to a peak 60Mi higher each time (450Mi first).
                let cycle = Double(k / 600), phase = Double(k % 600)
                let top = 150 + 60 * cycle
                let v = 300 * Self.mi + (phase < 450 ? top * Self.mi * phase / 450 : 0) + 0.5 * Self.mi * noise.gauss()
                guard v < Double(Self.gi) else { continue }
                engine.ingest(TestEvents.memory(pod: "grow", ws: UInt64(v), limit: Self.gi, owner: "grow", at: t),
                              now: t, into: &out)
            }
            return out
        }
        let changes = { (u: [InsightUpdate]) in
            u.filter { $0.identity.type == .oomPrediction && $0.change != .updated }.map { "\($0.change) at \(Int(Double($0.observedAt - Self.t0) / 1e9)) s" }
        }
        let steady = changes(run(changeAt: nil))
        try #require(steady.first?.hasPrefix("new") == true, "the leak across cycles was not predicted: \(steady)")
        let changed = changes(run(changeAt: 3320))
        #expect(changed == steady, "with a policy change at 3320 s: \(changed); without: \(steady)")
    }

    /// How batch-a's climb to the limit ended, none of them a cycle of the workload's.
    enum Ending: String, CaseIterable, CustomTestStringConvertible {
        case kernelKill, killSeenInStatusOnly, crashed, shutDown
        var testDescription: String { rawValue }
    }

    /// batch-a climbs toward the limit, then (at 560 s) is killed — seen by the kernel probe, or only in its pod's
    /// status —, or crashes ("Error": a JVM's ExitOnOutOfMemoryError), each restarting low and running on for minutes;
    /// or it is shut down for its deletion, memory falling in its last seconds. batch-b then climbs straight to the
    /// limit: it must be predicted like another workload's same climb.
    @Test("a kill, a crash or a shutdown is not a cycle the next pod goes by", arguments: Ending.allCases)
    func endingsAreNotCycles(ending: Ending) {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var noise = TestNoise(state: 7)
        let deleteAt = ending == .shutDown ? 580 : 800
        let climb = Climb(pod: "batch-b", owner: "batch", start: 820, cycles: false)
        for k in 0...1300 {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            func memory(_ ws: Double) {
                engine.ingest(TestEvents.memory(pod: "batch-a", ws: UInt64(min(ws, Double(Self.gi))), limit: Self.gi,
                                                owner: "batch", at: t), now: t, into: &out)
            }
            if k < 560 {
                memory(300 * Self.mi + 500 * Self.mi / 450 * Double(k) + 0.5 * Self.mi * noise.gauss())
            } else if k == 560 {
                switch ending {
                case .kernelKill:
                    engine.ingest(TestEvents.oomKill(pod: "batch-a", at: t), now: t, into: &out)
                    engine.ingest(TestEvents.restart(pod: "batch-a", count: 1, reason: "OOMKilled", at: t), now: t, into: &out)
                case .killSeenInStatusOnly:
                    engine.ingest(TestEvents.restart(pod: "batch-a", count: 1, reason: "OOMKilled", at: t), now: t, into: &out)
                case .crashed:
                    engine.ingest(TestEvents.restart(pod: "batch-a", count: 1, reason: "Error", at: t), now: t, into: &out)
                case .shutDown:
                    memory(200 * Self.mi)
                }
            } else if k < deleteAt {
                memory(200 * Self.mi + 0.5 * Self.mi * noise.gauss())
            } else if k == deleteAt {
                engine.ingest(.cluster(ClusterEvent(timestampNanos: t, kind: .podDeleted(TestEvents.ref("batch-a")))),
                              now: t, into: &out)
            }
            // The same series, sample for sample, for batch-b and for another workload's pod.
            if let v = climb.value(k, noise: &noise), v < Double(Self.gi) {
                for (pod, owner) in [("batch-b", "batch"), ("other-c", "other")] {
                    engine.ingest(TestEvents.memory(pod: pod, ws: UInt64(max(0, v)), limit: Self.gi, owner: owner, at: t),
                                  now: t, into: &out)
                }
            }
        }
        #expect(engine.workloadCycles.count == 0, "the end of batch-a's climb was kept as a cycle")
        let first = { (pod: String) in raised(out, .oomPrediction, pod: pod).first.map { Double($0.observedAt - Self.t0) / 1e9 } }
        #expect(first("other-c") != nil, "another workload's climb was not predicted: nothing to compare")
        // (Within a bucket: the two are ingested one after the other, and a batch may close between them.)
        #expect(first("batch-b").flatMap { b in first("other-c").map { abs(b - $0) <= 10 } } == true,
                "batch-b predicted at \(String(describing: first("batch-b"))) s, the other workload's at \(String(describing: first("other-c"))) s")
    }

    /// Without the kernel probe (`--k8s-only`, or a node where BPF cannot load) a kill is known only from the pod's
    /// status: the container's own history must not take the kill's drop for a cycle either, or a container killed
    /// again and again would be settled as "came back down" before each kill — also when CrashLoopBackOff brings the
    /// container back minutes after the kill (`backOff`), its memory's drop showing only then.
    @Test("a kill known only from the pod's status is not a cycle of the container's own history", arguments: [0, 200])
    func statusKillInOwnHistory(backOff: Int) {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var noise = TestNoise(state: 3)
        let back = 560 + backOff
        for k in 0...(back + 640) {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            if k == back {
                // Killed at 560 s (finishedAt), seen restarted when the new container starts.
                let died = Self.t0 + 560 * 1_000_000_000
                engine.ingest(.cluster(ClusterEvent(timestampNanos: t, kind: .containerRestarted(ContainerTermination(
                    pod: TestEvents.ref("batch-a"), container: "app", restartCount: 1,
                    termination: Termination(reason: "OOMKilled", exitCode: 137, signal: 0, finishedAtNanos: died))))),
                              now: t, into: &out)
            }
            guard k < 560 || k >= back else { continue }
            let phase = Double(k < 560 ? k : k - back)
            let v = 300 * Self.mi + 500 * Self.mi / 450 * phase + 0.5 * Self.mi * noise.gauss()
            guard v < Double(Self.gi) else { continue }
            engine.ingest(TestEvents.memory(pod: "batch-a", ws: UInt64(v), limit: Self.gi, owner: "batch", at: t), now: t, into: &out)
        }
        let raised = raised(out, .oomPrediction, pod: "batch-a").map { Double($0.observedAt - Self.t0) / 1e9 }
        // The second climb is predicted as soon into it as the first was (taken for a cycle, it waits for new ground).
        #expect(raised.count == 2 && raised.last.map { $0 > Double(back) && $0 - Double(back) <= raised[0] + 30 } == true,
                "predicted at \(raised) s")
    }

    @Test("marks past their capacity leave the minutes before the oldest kept as unknown, so as marked")
    func marksBeyondCapacity() {
        var m = MinuteMarks()
        for minute in [10, 5, 20] { m.mark(Int64(minute), capacity: 3) }
        #expect(m.minutes == [5, 10, 20] && m.completeSince == 0)
        #expect(m.within(6, 9) == false && m.within(6, 10) && m.near(11) && !m.near(12))
        m.mark(30, capacity: 3)
        #expect(m.minutes == [10, 20, 30] && m.completeSince == 6)
        #expect(m.within(2, 4), "minute 5's mark was dropped: a drop there may be its restart")
        #expect(m.within(11, 19) == false)
    }

    /// A policy change adopts the old engine's pod containers with their minute history; one that had gone quiet must
    /// be forgotten when it would have been, not a quiet period after each change.
    @Test("a history taken over by a policy change is forgotten on the old schedule")
    func adoptedHistoryKeepsItsQuietClock() {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0...120 {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            engine.ingest(TestEvents.memory(pod: "quiet", ws: 100 << 20, limit: Self.gi, at: t), now: t, into: &out)
        }
        // Quiet from 120 s; the change at 500 s; the old engine would have forgotten it a window and a resolveAfter
        // (10 minutes) after 120 s.
        var next = CorrelationEngine()
        next.adoptActiveFindings(of: engine, now: Self.t0 + 500 * 1_000_000_000)
        #expect(next.trackedSubjects == 1, "the history was not taken over")
        next.tick(now: Self.t0 + 700 * 1_000_000_000, into: &out)  // (an engine's first tick starts its clock)
        next.tick(now: Self.t0 + 721 * 1_000_000_000, into: &out)
        #expect(next.trackedSubjects == 0, "kept past its quiet period: the change restarted its clock")
    }

    /// A rollout that lowers the limit: the old pods' peaks, reached under the higher one, would be past the new.
    @Test("peaks an earlier pod reached under a higher limit do not hide the new pod's climb to its lower one")
    func lowerLimit() {
        var noise = TestNoise(state: 5)
        let a = Climb(pod: "batch-a", owner: "batch", start: 0)
        let b = Climb(pod: "batch-b", owner: "batch", start: 620, cycles: false)
        let u = replay([Pod(name: "batch-a", owner: "batch", deleteAt: 600) { a.value($0, noise: &noise) },
                        Pod(name: "batch-b", owner: "batch", limit: 768 << 20) { b.value($0, noise: &noise) }],
                       limit: Self.gi, seconds: 1100)
        #expect(!raised(u, .oomPrediction, pod: "batch-b").isEmpty,
                "a climb to 768Mi was taken for the 800Mi cycle an earlier pod went through under 1Gi")
    }

    @Test("kept drops are bounded per workload and in number of workloads, count once, expire, and stay under the limit")
    func bounds() throws {
        var w = WorkloadCycles()
        func key(_ name: String) -> WorkloadCycles.Key { .init(namespace: "ns", ownerKind: "Deployment", ownerName: name, container: "app") }
        let pod = PodRef(namespace: "ns", name: "a", uid: "ua")
        let six: [MemoryHistory.Cycle] = (0..<6).map { k in
            let m = Int64(k)
            return (minute: m, peak: Double(m + 1) * 100, early: 0, drop: m + 1)
        }
        w.note(key("a"), pod: pod, cycles: six, now: 1_000)
        let entry = try #require(w.entries[key("a")])
        #expect(entry.drops.map(\.minute) == [2, 3, 4, 5], "not the newest \(WorkloadCycles.dropsKept)")
        // The same drops noted again (every sweep notes a live pod's drops) count once.
        w.note(key("a"), pod: pod, cycles: Array(six.suffix(2)), now: 2_000)
        #expect(w.entries[key("a")]?.drops.map(\.minute) == [2, 3, 4, 5], "noted twice")
        let other = try #require(w.highest(key("a"), except: "ub", from: 0, limit: 0))
        #expect(other.peak == 600 && other.drops == 4 && other.pod == "a")
        // A pod's own drops are its history's to read while it holds them (from minute 2 on, here); older ones count.
        #expect(w.highest(key("a"), except: "ua", from: 2, limit: 0) == nil, "a pod's own drops were read as another's")
        #expect(w.highest(key("a"), except: "ua", from: 4, limit: 0)?.peak == 400, "drops its history forgot were not read")
        // Under a limit, only peaks from below it by more than the slack: 600 under 600 is not, 500 is.
        #expect(w.highest(key("a"), except: "ub", from: 0, limit: 600)?.peak == 500)
        #expect(w.highest(key("a"), except: "ub", from: 0, limit: 300) == nil)
        #expect(w.highest(key("b"), except: "ub", from: 0, limit: 0) == nil)
        for k in 0..<WorkloadCycles.capacity {
            w.note(key("w\(k)"), pod: PodRef(namespace: "ns", name: "w\(k)", uid: "u\(k)"),
                   cycles: [(minute: 1, peak: 1, early: 0, drop: 2)], now: 10_000 + UInt64(k))
        }
        #expect(w.count == WorkloadCycles.capacity)
        #expect(w.entries[key("a")] == nil, "the workload noted least recently was kept past the cap")
        w.prune(now: 10_000 + WorkloadCycles.keepForNanos + 100)
        #expect(w.count == WorkloadCycles.capacity - 100, "expiry: \(w.count) kept")
        #expect(WorkloadCycles.key(.pod(pod), owner: OwnerRef(kind: "Deployment", name: "a")) == nil)
        #expect(WorkloadCycles.key(.podContainer(pod, container: "app"), owner: nil) == nil)
    }
}
