import Testing
import TapioTestTraits
import TapioModel
@testable import TapioCorrelation

/// The engine's memory beyond its window survives an agent restart (``EngineMemory`` through its bytes,
/// ``EngineMemoryCodec``): an upgrade of Tapio must not forget what every periodic workload on the node does and
/// raise a fresh "OOM kill predicted" on each one's next climb — nor take a restart that happened while no agent
/// watched for a cycle of the workload's.
@Suite("Engine memory across agent restarts", .cpuBound, .timeLimit(.minutes(5)))
struct EngineMemoryTests {
    static let mi = Double(1 << 20)
    static let gi: UInt64 = 1 << 30
    static let t0 = TestEvents.memoryStart
    static func at(_ k: Int) -> UInt64 { t0 + UInt64(k) * 1_000_000_000 }

    /// A new engine given `engine`'s memory the way an agent restart gives it: written to bytes and read back.
    static func restarted(from engine: CorrelationEngine, at t: UInt64, keep: Bool) throws -> CorrelationEngine {
        var next = CorrelationEngine()
        if keep { next.restore(try EngineMemoryCodec.decode(EngineMemoryCodec.encode(engine.memory(now: t))), now: t) }
        return next
    }

    func raised(_ u: [InsightUpdate], pod: String) -> [Double] {
        u.filter { $0.identity.type == .oomPrediction && $0.change == .new && $0.identity.subject.pod?.name == pod }
            .map { Double($0.observedAt - Self.t0) / 1e9 }
    }

    /// batch-a (Deployment batch) climbs 300Mi → 800Mi of 1Gi over 450 s, drops back and is deleted (a rollout);
    /// cron-c climbs the same way every 10 minutes. The agent stops at 650 s and starts again at 710 s (no samples in
    /// between); then batch-b, batch-a's successor, climbs the same way, and cron-c is on its second climb.
    func run(keepMemory: Bool, seed: Int) throws -> [InsightUpdate] {
        var noise = TestNoise(state: UInt64(seed) &* 0x9e37_79b9_7f4a_7c15 | 1)
        func climb(_ k: Int, from start: Int) -> Double? {
            guard k >= start, k < start + 600 else { return nil }
            let t = Double(k - start)
            return (t < 450 ? 300 * Self.mi + 500 * Self.mi * t / 450 : 300 * Self.mi) + 0.5 * Self.mi * noise.gauss()
        }
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0...1320 {
            let t = Self.at(k)
            if k == 710 { engine = try Self.restarted(from: engine, at: t, keep: keepMemory) }
            if k > 650 && k < 710 { continue }
            if k == 610 {
                engine.ingest(.cluster(ClusterEvent(timestampNanos: t, kind: .podDeleted(TestEvents.ref("batch-a")))), now: t, into: &out)
            }
            for (pod, owner, v) in [("batch-a", "batch", climb(k, from: 0)), ("batch-b", "batch", climb(k, from: 720)),
                                    ("cron-c", "cron", climb(k, from: 0) ?? climb(k, from: 600))] {
                guard let v else { continue }
                engine.ingest(TestEvents.memory(pod: pod, ws: UInt64(max(0, v)), limit: Self.gi, owner: owner, at: t), now: t, into: &out)
            }
        }
        return out
    }

    @Test("after an agent restart, a workload that came back down before is still a cycle, not a new prediction", arguments: 1...2)
    func agentRestartKeepsCycles(seed: Int) throws {
        // Without the memory, the restart forgets: both climbs after it are predicted (what the test guards against).
        let forgot = try run(keepMemory: false, seed: seed)
        #expect(raised(forgot, pod: "batch-a").count == 1, "the first climb was not predicted: nothing to test")
        #expect(!raised(forgot, pod: "batch-b").isEmpty && raised(forgot, pod: "cron-c").contains { $0 > 710 },
                "without the memory the climbs after the restart were not predicted either: \(raised(forgot, pod: "batch-b")), \(raised(forgot, pod: "cron-c"))")
        let kept = try run(keepMemory: true, seed: seed)
        #expect(raised(kept, pod: "batch-b").isEmpty, "the gone pod's cycle was forgotten by the restart: \(raised(kept, pod: "batch-b")) s")
        #expect(raised(kept, pod: "cron-c").allSatisfy { $0 < 600 }, "the pod's own cycle was forgotten by the restart: \(raised(kept, pod: "cron-c")) s")
    }

    /// How the container's first climb ended at 500 s.
    enum Ending: String, CaseIterable, CustomTestStringConvertible {
        /// Crashed ("Error": a JVM's ExitOnOutOfMemoryError) and restarted low.
        case crashed
        /// Killed by the kernel; only the pod's status tells of it.
        case killed
        /// Not restarted: the workload gave its memory back itself (a cycle).
        case cameBackDown
        var testDescription: String { rawValue }
    }

    /// The pod's status as an agent lists it, after `ending` at 500 s.
    static func status(_ pod: String, _ ending: Ending, at t: UInt64) -> AttributedEvent {
        let restarted = ending != .cameBackDown
        let reason = ending == .crashed ? "Error" : "OOMKilled"
        let c = ContainerInfo(name: "app", containerID: "c2", image: "app:1", restartCount: restarted ? 1 : 0, ready: true,
                              memoryRequestBytes: gi / 2, memoryLimitBytes: gi,
                              lastTermination: restarted ? Termination(reason: reason, exitCode: reason == "Error" ? 1 : 137, signal: 0,
                                                                       finishedAtNanos: at(500)) : nil,
                              currentTermination: nil, waitingReason: nil)
        return .cluster(ClusterEvent(timestampNanos: t, kind: .podUpdated(PodInfo(
            pod: TestEvents.ref(pod), node: "node-1", owner: OwnerRef(kind: "Deployment", name: "api"), labels: [:], phase: "Running",
            containers: [c]))))
    }

    /// api-0 climbs from 300Mi toward 1Gi at ~1.1Mi/s; at 500 s its climb ends (`ending`), memory back at 300Mi, and
    /// it climbs again the same way; with `deleteAt`, it is deleted then and api-1 of the same Deployment climbs the
    /// same way from 20 s later, beside other-c of another workload. With `downtime`, no agent watches from 400 s to
    /// 560 s: the restarted one reads the engine memory, then the pod's status, first.
    func run(_ ending: Ending, downtime: Bool, deleteAt: Int? = nil, seconds: Int = 1000) throws -> [InsightUpdate] {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var noise = TestNoise(state: 5)
        for k in 0...seconds {
            let t = Self.at(k)
            // The agent lists the pod as it starts watching (its restart count, 0).
            if k == 0 { engine.ingest(Self.status("api-0", .cameBackDown, at: t), now: t, into: &out) }
            if downtime && k == 560 {
                engine = try Self.restarted(from: engine, at: t, keep: true)
                engine.ingest(Self.status("api-0", ending, at: t), now: t, into: &out)
            } else if !downtime && k == 500 {
                engine.ingest(Self.status("api-0", ending, at: t), now: t, into: &out)
            }
            if k == deleteAt {
                engine.ingest(.cluster(ClusterEvent(timestampNanos: t, kind: .podDeleted(TestEvents.ref("api-0")))), now: t, into: &out)
            }
            func climb(from start: Int) -> Double { 300 * Self.mi + 500 * Self.mi / 450 * Double(k - start) + 0.5 * Self.mi * noise.gauss() }
            if let d = deleteAt, k > d {
                guard k >= d + 20 else { continue }
                let v = climb(from: d + 20)
                guard v < Double(Self.gi) else { continue }
                for (pod, owner) in [("api-1", "api"), ("other-c", "other")] {
                    engine.ingest(TestEvents.memory(pod: pod, ws: UInt64(v), limit: Self.gi, owner: owner, at: t), now: t, into: &out)
                }
                continue
            }
            if downtime && k >= 400 && k < 560 { continue }
            let v = deleteAt != nil && k >= 500 ? 300 * Self.mi + 0.5 * Self.mi * noise.gauss() : climb(from: k < 500 ? 0 : 500)
            guard v < Double(Self.gi) else { continue }
            engine.ingest(TestEvents.memory(pod: "api-0", ws: UInt64(v), limit: Self.gi, owner: "api", at: t), now: t, into: &out)
        }
        return out
    }

    /// What happened while no agent watched is read as an agent watching would have read it: a kill's drop is not a
    /// cycle (the second climb is predicted as soon into what the restarted agent sees of it as the first was), a
    /// drop the workload made itself is, and so is a crash's for the container's own reading (a container restarted
    /// before it climbs higher than last time) — no prediction until past the peak seen before (the restarted agent
    /// saw it climb to ~744Mi at 400 s; one watching throughout saw ~855Mi at 500 s). Without the memory, the
    /// restarted agent predicts every second climb ~100 s into it.
    @Test("a restart or a drop while no agent watched is read as if one had", arguments: Ending.allCases)
    func downtimeReadAsWatched(_ ending: Ending) throws {
        let watched = raised(try run(ending, downtime: false), pod: "api-0")
        let restarted = raised(try run(ending, downtime: true), pod: "api-0")
        try #require(watched.first.map { $0 < 400 } == true, "the first climb was not predicted before 400 s: \(watched)")
        #expect(restarted.first == watched.first)
        let a = watched.first { $0 > 500 }, b = restarted.first { $0 > 560 }
        switch ending {
        case .killed:
            #expect(a.map { $0 - 500 <= watched[0] + 30 } == true, "a kill's drop read as a cycle, watched: \(watched)")
            #expect(b.map { $0 - 560 <= watched[0] + 30 } == true, "a kill's drop read as a cycle after the restart: \(restarted)")
        case .crashed, .cameBackDown:
            #expect(a.map { $0 >= 1000 } ?? true, "the drop was not a cycle, watched: \(watched)")
            #expect(b.map { $0 >= 900 } ?? true, "the drop was not a cycle after the restart: \(restarted)")
        }
    }

    /// A crash while no agent watched, then a rollout: the crash's drop is not a cycle api-0's workload goes through,
    /// so api-1's climb is predicted like another workload's same climb. (Only the restart count kept across the
    /// restart tells: on first sight a count of 1 would be history from before any agent watched.)
    @Test("a crash while no agent watched is not a cycle the next pod goes by")
    func crashInDowntimeIsNotAWorkloadCycle() throws {
        let out = try run(.crashed, downtime: true, deleteAt: 700, seconds: 1300)
        let first = { (pod: String) in self.raised(out, pod: pod).first }
        #expect(first("other-c") != nil, "another workload's climb was not predicted: nothing to compare")
        #expect(first("api-1").flatMap { b in first("other-c").map { abs(b - $0) <= 10 } } == true,
                "api-1 predicted at \(String(describing: first("api-1"))) s, the other workload's at \(String(describing: first("other-c"))) s")
    }

    @Test("a restored engine takes what fits under maxSubjects, most recently seen first, nothing too old or dated ahead")
    func restoreBounds() throws {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        let restartAt = Self.at(4 * 3600)
        func sample(_ pod: String, at t: UInt64) {
            engine.ingest(TestEvents.memory(pod: pod, ws: 300 << 20, limit: Self.gi, owner: "w-\(pod)", at: t), now: t, into: &out)
        }
        // "old" last seen three hours before the restart, with a cycle (300Mi → 600Mi → back) for its workload;
        // p0…p4 last seen 5…1 minutes before it; "ahead" written by a clock 10 minutes fast.
        // (In an engine of its own: the other's housekeeping would forget it, quiet for hours, before the snapshot.)
        var oldEngine = CorrelationEngine()
        for k in stride(from: 0, through: 900, by: 10) {
            let t = Self.at(k)
            let ws: UInt64 = k < 300 ? 300 << 20 : k < 600 ? (300 + UInt64(k - 300)) << 20 : 300 << 20
            oldEngine.ingest(TestEvents.memory(pod: "old", ws: ws, limit: Self.gi, owner: "w-old", at: t), now: t, into: &out)
        }
        for i in 0..<5 { sample("p\(i)", at: restartAt - UInt64(5 - i) * 60_000_000_000) }
        var aheadEngine = CorrelationEngine()
        let ahead = restartAt + 600_000_000_000
        aheadEngine.ingest(TestEvents.memory(pod: "ahead", ws: 300 << 20, limit: Self.gi, owner: "w-ahead", at: ahead), now: ahead, into: &out)
        var taken = engine.memory(now: restartAt)
        taken.containers += oldEngine.memory(now: Self.at(900)).containers + aheadEngine.memory(now: ahead).containers
        #expect(taken.workloadCycles.count == 0)
        let memory = try EngineMemoryCodec.decode(EngineMemoryCodec.encode(taken))
        #expect(memory.containerCount == 7)
        var config = CorrelationConfig()
        config.maxSubjects = 3
        var small = CorrelationEngine(config: config)
        #expect(small.restore(memory, now: restartAt) == 3)
        let names = Set(small.states.compactMap { $0.subject.pod?.name })
        #expect(names == ["p4", "p3", "p2"], "\(names)")
        // Seen now: an agent restart is not a quiet spell, so none is forgotten at the next housekeeping.
        #expect(small.states.allSatisfy { $0.lastSeen == restartAt })
        // What was not taken still leaves its cycles to its workload.
        #expect(small.workloadCycles.entries.keys.map(\.ownerName) == ["w-old"], "\(small.workloadCycles.entries.keys)")
        // Ten minutes later the clock has caught up with "ahead".
        var later = CorrelationEngine()
        #expect(later.restore(memory, now: restartAt + 700_000_000_000) == 6)
    }

    /// A container the old engine knew only from its memory samples (its pod's status never reached it: a full queue
    /// shed it) has no restart count to go by: the first status the restarted agent reads, count 3, is history from
    /// before any engine watched, as on any first sight — not three restarts in the downtime.
    @Test("a restart count never read from a status is not taken as known after a restart")
    func restartCountNeverSeen() throws {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in stride(from: 0, through: 120, by: 10) {
            engine.ingest(TestEvents.memory(pod: "api", ws: 300 << 20, limit: Self.gi, owner: "api", at: Self.at(k)), now: Self.at(k), into: &out)
        }
        var next = try Self.restarted(from: engine, at: Self.at(200), keep: true)
        let c = ContainerInfo(name: "app", containerID: "c3", image: "app:1", restartCount: 3, ready: true,
                              memoryRequestBytes: nil, memoryLimitBytes: Self.gi,
                              lastTermination: Termination(reason: "Error", exitCode: 1, signal: 0, finishedAtNanos: Self.at(60)),
                              currentTermination: nil, waitingReason: nil)
        next.ingest(.cluster(ClusterEvent(timestampNanos: Self.at(201), kind: .podUpdated(PodInfo(
            pod: TestEvents.ref("api"), node: "node-1", owner: OwnerRef(kind: "Deployment", name: "api"), labels: [:], phase: "Running",
            containers: [c])))), now: Self.at(201), into: &out)
        let i = try #require(next.index[.podContainer(TestEvents.ref("api"), container: "app")])
        #expect(next.states[i].restartCount == 3)
        #expect(next.states[i].restartTimes.isEmpty && next.states[i].history.restartMarks.minutes.isEmpty)
    }

    /// A policy change right after a kernel event stamped a little ahead of the wall clock (the BPF clock's offset is
    /// taken once per run): the container is taken over, its instants no later than the change's.
    @Test("a container last seen a little after now is taken over, seen now")
    func lastSeenAheadIsTakenAsNow() throws {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in stride(from: 0, through: 120, by: 10) {
            engine.ingest(TestEvents.memory(pod: "api", ws: 300 << 20, limit: Self.gi, owner: "api", at: Self.at(k)), now: Self.at(k), into: &out)
        }
        var m = engine.memory(now: Self.at(121))
        m.containers[0].lastSeen = Self.at(150)
        var next = CorrelationEngine()
        #expect(next.restore(m, now: Self.at(121), keepLastSeen: true) == 1)
        #expect(next.states.first?.lastSeen == Self.at(121))
    }

    /// A policy change's new engine takes the restart count over with the history: a restart after the change is
    /// news (before, a count seen first by the new engine was history from before Tapio, and the restart was missed).
    @Test("a restart after a policy change is news to the new engine")
    func restartAfterAPolicyChange() throws {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        let pod = TestEvents.ref("api")
        func status(_ count: Int, at t: UInt64) -> AttributedEvent {
            let c = ContainerInfo(name: "app", containerID: "c\(count)", image: "app:1", restartCount: count, ready: true,
                                  memoryRequestBytes: nil, memoryLimitBytes: Self.gi,
                                  lastTermination: count > 0 ? Termination(reason: "Error", exitCode: 1, signal: 0, finishedAtNanos: t) : nil,
                                  currentTermination: nil, waitingReason: nil)
            return .cluster(ClusterEvent(timestampNanos: t, kind: .podUpdated(PodInfo(
                pod: pod, node: "node-1", owner: OwnerRef(kind: "Deployment", name: "api"), labels: [:], phase: "Running", containers: [c]))))
        }
        for k in stride(from: 0, through: 120, by: 10) {
            engine.ingest(TestEvents.memory(pod: "api", ws: 300 << 20, limit: Self.gi, owner: "api", at: Self.at(k)), now: Self.at(k), into: &out)
        }
        engine.ingest(status(0, at: Self.at(125)), now: Self.at(125), into: &out)
        var next = CorrelationEngine()
        next.adoptActiveFindings(of: engine, now: Self.at(130))
        next.ingest(status(1, at: Self.at(140)), now: Self.at(140), into: &out)
        let i = try #require(next.index[.podContainer(pod, container: "app")])
        #expect(next.states[i].restartTimes.count == 1 && next.states[i].restartCount == 1)
        #expect(next.states[i].history.restartMarks.minutes == [Int64(Self.at(140) / 60_000_000_000)])
    }
}

/// The checkpoint file's bytes: what is written is read back, and what cannot be read back is an error naming where,
/// never a crash, a hang or an allocation a corrupted count asks for.
@Suite("Engine memory file format", .cpuBound, .timeLimit(.minutes(5)))
struct EngineMemoryCodecTests {
    /// An engine with three pods' histories: climbs, a drop, a kill and a restart marked, owners, limits.
    static func memory() -> EngineMemory {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        let t0 = TestEvents.memoryStart
        for k in stride(from: 0, through: 1500, by: 5) {
            let t = t0 + UInt64(k) * 1_000_000_000
            let cycle = Double(k % 600) < 450 ? Double(k % 600) : 0
            engine.ingest(TestEvents.memory(pod: "batch-ä", ws: UInt64(300 << 20) + UInt64(cycle) << 20, limit: 1 << 30, owner: "batch",
                                            at: t), now: t, into: &out)
            engine.ingest(TestEvents.memory(pod: "flat", ws: 100 << 20, limit: nil, at: t), now: t, into: &out)
            if k == 900 {
                engine.ingest(TestEvents.oomKill(pod: "batch-ä", at: t), now: t, into: &out)
                engine.ingest(TestEvents.restart(pod: "batch-ä", count: 1, reason: "OOMKilled", at: t), now: t, into: &out)
            }
        }
        let t = t0 + 1500 * 1_000_000_000
        engine.ingest(.cluster(ClusterEvent(timestampNanos: t, kind: .podDeleted(TestEvents.ref("flat")))), now: t, into: &out)
        var m = engine.memory(now: t)
        // A gone pod's cycles, kept for its workload.
        m.workloadCycles.note(WorkloadCycles.Key(namespace: "default", ownerKind: "Deployment", ownerName: "cron", container: "app"),
                              pod: TestEvents.ref("cron-1"), cycles: [(minute: 29_916_000, peak: 700 * 1_048_576, early: 0, drop: 29_916_001)],
                              now: t)
        return m
    }

    @Test func whatIsWrittenIsReadBack() throws {
        let m = Self.memory()
        let bytes = EngineMemoryCodec.encode(m)
        let back = try EngineMemoryCodec.decode(bytes)
        #expect(back.takenAt == m.takenAt)
        #expect(back.containerCount == 1 && back.workloadCount == 2, "\(back.containerCount) containers, \(back.workloadCount) workloads")
        #expect(EngineMemoryCodec.encode(back) == bytes, "read back and written again, the bytes differ")
        let a = try #require(m.containers.first), b = try #require(back.containers.first)
        #expect(b.pod == a.pod && b.container == a.container && b.owner == a.owner && b.memoryLimit == a.memoryLimit)
        #expect(b.restartCount == 1 && b.lastSeen == a.lastSeen && b.hasCgroupSeries)
        #expect(Array(b.history.minutes) == Array(a.history.minutes) && b.history.lastMinute == a.history.lastMinute)
        #expect(b.history.oomMarks == a.history.oomMarks && !a.history.oomMarks.minutes.isEmpty)
        #expect(b.history.restartMarks == a.history.restartMarks && !a.history.restartMarks.minutes.isEmpty)
        #expect(b.history.firstAt == a.history.firstAt)
        #expect(back.workloadCycles.entries.mapValues(\.drops) == m.workloadCycles.entries.mapValues(\.drops))
    }

    @Test func aFileCutShortAnywhereIsAnError() throws {
        let bytes = EngineMemoryCodec.encode(Self.memory())
        for n in 0..<bytes.count {
            #expect(throws: EngineMemoryCodec.DecodeError.self, "cut at \(n) of \(bytes.count)") {
                try EngineMemoryCodec.decode(Array(bytes.prefix(n)))
            }
        }
    }

    @Test func anyFlippedBitIsAnError() throws {
        let bytes = EngineMemoryCodec.encode(Self.memory())
        for i in bytes.indices {
            var b = bytes
            b[i] ^= 1 << UInt8(i % 8)
            #expect(throws: EngineMemoryCodec.DecodeError.self, "bit \(i % 8) of byte \(i)") { try EngineMemoryCodec.decode(b) }
        }
    }

    /// With the checksum made right again, the fields themselves are what is checked: random corruptions either read
    /// as an error or as something within every bound, and none crashes.
    @Test func corruptedFieldsBehindAGoodChecksumAreCheckedOneByOne() throws {
        let bytes = EngineMemoryCodec.encode(Self.memory())
        var r = TestNoise(state: 0x5eed)
        var errors = 0
        for _ in 0..<3000 {
            var b = bytes
            for _ in 0..<(1 + Int(r.next() * 3)) {
                let i = Int(r.next() * Double(b.count - 8))
                b[i] = UInt8(r.next() * 256)
            }
            Self.seal(&b)
            do {
                let m = try EngineMemoryCodec.decode(b)
                #expect(m.containers.allSatisfy { $0.history.minutes.count <= MemoryHistory.capacity && $0.restartCount >= 0 })
                #expect(m.workloadCycles.entries.values.allSatisfy { $0.drops.count <= WorkloadCycles.dropsKept && $0.drops.allSatisfy { $0.peak.isFinite } })
                Self.restoreAndRun(m)
            } catch {
                errors += 1
                #expect(!error.field.isEmpty && !error.problem.isEmpty && error.offset <= b.count)
            }
        }
        #expect(errors > 0)
    }

    /// Restores `m` at its time and at times around it, and feeds each restored container a climb for a few minutes:
    /// what the decoder lets through must not trap later in the engine's arithmetic.
    static func restoreAndRun(_ m: EngineMemory) {
        for now in [m.takenAt, m.takenAt &+ 3_600_000_000_000, m.takenAt / 2, 1_000_000_000] {
            var engine = CorrelationEngine()
            engine.restore(m, now: now)
            var out: [InsightUpdate] = []
            let pods = engine.states.compactMap { $0.subject.pod }
            for k in 0..<30 {
                let t = now &+ UInt64(k) * 10_000_000_000
                for p in pods {
                    engine.ingest(.node(NodeEvent(timestampNanos: t, pid: 1, cgroupID: 7, comm: "app",
                                                  kind: .cgroupMemory(.init(usageBytes: UInt64(300 + 5 * k) << 20, workingSetBytes: UInt64(300 + 5 * k) << 20,
                                                                            limitBytes: 1 << 30))),
                                        subject: .podContainer(p, container: "app"),
                                        context: SubjectContext(owner: OwnerRef(kind: "Deployment", name: "batch"), node: "node-1")),
                                  now: t, into: &out)
                }
            }
            _ = engine.memory(now: now &+ 300_000_000_000)
        }
    }

    /// Minute numbers no instant can give, behind a good checksum: refused by name, never restored (a history whose
    /// last minute is near Int64's ends overflowed the engine's arithmetic, a crash at every start).
    @Test(arguments: [Int64.min, -1, Int64(UInt64.max / 60_000_000_000) + 1, Int64.max])
    func minutesOutOfRangeAreRefused(_ minute: Int64) throws {
        let m = Self.memory()
        let c = try #require(m.containers.first)
        let strings = [c.pod.namespace, c.pod.name, c.pod.uid, c.container, c.owner?.kind ?? "", c.owner?.name ?? ""]
        let at = 28 + strings.reduce(0) { $0 + 2 + $1.utf8.count } + 1 + (c.memoryLimit != nil ? 8 : 0)
            + (c.memoryRequest != nil ? 8 : 0) + 4 + 8 + 8 + 8
        var b = EngineMemoryCodec.encode(m)
        #expect(b[at..<(at + 8)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } == UInt64(bitPattern: c.history.lastMinute))
        for k in 0..<8 { b[at + k] = UInt8(truncatingIfNeeded: UInt64(bitPattern: minute) >> (8 * UInt64(k))) }
        Self.seal(&b)
        let e = #expect(throws: EngineMemoryCodec.DecodeError.self) { try EngineMemoryCodec.decode(b) }
        #expect(e?.field == "container 0 last minute", "\(String(describing: e))")
    }

    /// The largest file this version writes — the most containers it writes, with names of the longest Kubernetes
    /// allows, full histories and marks, and the most workloads, each with four drops — is read back (not refused
    /// as too large): the read limit is above it, with room.
    @Test func theLargestFileFitsTheReadLimit() throws {
        let long = String(repeating: "a", count: 253), label = String(repeating: "b", count: 63)
        var history = MemoryHistory()
        for k in 0..<MemoryHistory.capacity { history.add(at: UInt64(k) * 60_000_000_000 + 1_795_000_000_000_000_000, value: UInt64(k) << 20) }
        for k in 0..<MemoryHistory.oomMarksKept { history.markOOM(at: UInt64(k) * 120_000_000_000 + 1_795_000_000_000_000_000) }
        for k in 0..<MemoryHistory.restartMarksKept { history.markRestart(at: UInt64(k) * 60_000_000_000 + 1_795_000_000_000_000_000) }
        #expect(history.minutes.count == MemoryHistory.capacity)
        let containers = (0..<EngineMemoryCodec.maxContainers).map { k in
            EngineMemory.Container(pod: PodRef(namespace: label, name: long, uid: "3f1c9a2e-5b7d-4e8f-9a0b-\(k)"), container: label,
                                   owner: OwnerRef(kind: "StatefulSet", name: long), memoryLimit: 1 << 30, memoryRequest: 1 << 29,
                                   hasCgroupSeries: true, restartCount: Int(Int32.max), restartsKnown: true,
                                   lastCountedOOMFinishedAt: .max, lastSeen: .max, history: history)
        }
        var cycles = WorkloadCycles()
        for k in 0..<WorkloadCycles.capacity {
            let key = WorkloadCycles.Key(namespace: label, ownerKind: "StatefulSet", ownerName: long + "\(k)", container: label)
            for d in 0..<WorkloadCycles.dropsKept {
                cycles.note(key, pod: PodRef(namespace: label, name: long, uid: "3f1c9a2e-5b7d-4e8f-9a0b-\(d)"),
                            cycles: [(minute: Int64(29_916_000 + d), peak: 1e9, early: 0, drop: Int64(29_916_001 + d))], now: 1)
            }
        }
        let bytes = EngineMemoryCodec.encode(EngineMemory(containers: containers, workloadCycles: cycles, takenAt: 1))
        #expect(bytes.count <= EngineMemoryCodec.maxFileBytes * 15 / 16, "\(bytes.count) bytes against a limit of \(EngineMemoryCodec.maxFileBytes)")
        let back = try EngineMemoryCodec.decode(bytes)
        #expect(back.containerCount == EngineMemoryCodec.maxContainers && back.workloadCount == WorkloadCycles.capacity)
    }

    /// Rewrites the checksum of a file changed on purpose.
    static func seal(_ b: inout [UInt8]) {
        let h = EngineMemoryCodec.fnv1a(b[..<(b.count - 8)])
        for k in 0..<8 { b[b.count - 8 + k] = UInt8(truncatingIfNeeded: h >> (8 * UInt64(k))) }
    }

    @Test func theErrorNamesTheFieldAndTheBound() throws {
        let m = Self.memory()
        var b = EngineMemoryCodec.encode(m)
        // The first container's minute count: after the header (28 bytes), its four strings, flags, owner, limit,
        // request, restart count, last kill, last seen, first sample and last minute.
        let c = try #require(m.containers.first)
        let strings = [c.pod.namespace, c.pod.name, c.pod.uid, c.container, c.owner?.kind ?? "", c.owner?.name ?? ""]
        let at = 28 + strings.reduce(0) { $0 + 2 + $1.utf8.count } + 1 + (c.memoryLimit != nil ? 8 : 0)
            + (c.memoryRequest != nil ? 8 : 0) + 4 + 8 + 8 + 8 + 8
        #expect(Int(b[at]) | Int(b[at + 1]) << 8 == c.history.minutes.count)
        b[at] = 200; b[at + 1] = 0
        Self.seal(&b)
        let e = #expect(throws: EngineMemoryCodec.DecodeError.self) { try EngineMemoryCodec.decode(b) }
        #expect(e?.offset == at && e?.field == "container 0 minutes" && e?.problem.contains("at most 128") == true, "\(String(describing: e))")
        var v = EngineMemoryCodec.encode(m)
        v[8] = 9
        Self.seal(&v)
        let ve = #expect(throws: EngineMemoryCodec.DecodeError.self) { try EngineMemoryCodec.decode(v) }
        #expect(ve?.description == "at byte 8 (version): version 9, this build reads 1")
        #expect(throws: EngineMemoryCodec.DecodeError.self) { try EngineMemoryCodec.decode(Array("{\"json\": true}".utf8)) }
    }
}
