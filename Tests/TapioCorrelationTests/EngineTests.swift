import Foundation
import Testing
import TapioTestTraits
import TapioModel
@testable import TapioCorrelation

@Suite("Engine: identity, resolution, bounded memory", .cpuBound, .timeLimit(.minutes(5)))
struct EngineTests {
    let s: UInt64 = 1_000_000_000
    let t0: UInt64 = 1_795_000_000 * 1_000_000_000

    @Test("repeated detections update one identity, and it resolves once clear for resolveAfter")
    func identityAndResolve() {
        var config = CorrelationConfig()
        config.resolveAfter = .seconds(60)
        config.updateInterval = .seconds(10)
        var engine = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        engine.ingest(TestEvents.oomKill(pod: "a", at: t0), now: t0, into: &out)
        for k in 1...30 { engine.tick(now: t0 + UInt64(k) * s, into: &out) }
        let oom = out.filter { $0.identity.type == .oomKilled }
        #expect(oom.first?.change == .new)
        #expect(Set(oom.map(\.identity.name)).count == 1, "one identity, one name")
        #expect(oom.filter { $0.change == .new }.count == 1)
        // Kills stay in the window (5 m); after the window plus resolveAfter it must have resolved.
        for k in 31...420 { engine.tick(now: t0 + UInt64(k) * s, into: &out) }
        let resolved = out.filter { $0.identity.type == .oomKilled && $0.change == .resolved }
        #expect(resolved.count == 1)
        if let r = resolved.first {
            let at = Double(r.observedAt - t0) / 1e9
            // Detected until the kill leaves the 5 m window (re-checked every 10 s), resolved 60 s after.
            #expect(at >= 300 - 10 + 60 && at <= 300 + 60 + 2, "resolved at \(at)s")
        }
        #expect(engine.activeInsights.isEmpty)
    }

    @Test("a new engine (a policy changed) takes over the old one's active findings: updated if seen again, else resolved")
    func reconfigurationKeepsActiveFindings() {
        var config = CorrelationConfig()
        config.resolveAfter = .seconds(60)
        config.updateInterval = .seconds(10)
        var old = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        old.ingest(TestEvents.oomKill(pod: "a", at: t0), now: t0, into: &out)
        old.ingest(TestEvents.oomKill(pod: "b", at: t0), now: t0, into: &out)
        old.tick(now: t0 + s, into: &out)
        #expect(out.filter { $0.identity.type == .oomKilled && $0.change == .new }.count == 2)
        // The new configuration's window is too short to hold the kills: only adoption can still resolve them.
        config.window = .seconds(60)
        config.resolveAfter = .seconds(30)
        let at = t0 + 10 * s
        var engine = CorrelationEngine(config: config)
        engine.adoptActiveFindings(of: old, now: at)
        #expect(Set(engine.activeInsights.map(\.identity)) == Set(old.activeInsights.map(\.identity)))
        out = []
        engine.ingest(TestEvents.oomKill(pod: "a", at: at + s), now: at + s, into: &out)
        for k in 2...120 { engine.tick(now: at + UInt64(k) * s, into: &out) }
        let a = out.filter { $0.identity.subject.pod?.name == "a" }, b = out.filter { $0.identity.subject.pod?.name == "b" }
        #expect(!a.isEmpty && !a.contains { $0.change == .new }, "seen again: an update of the finding it had, not a new one: \(a.map(\.change))")
        #expect(b.map(\.change) == [.resolved], "not seen again: resolved")
        if let r = b.first {
            // Held for the new engine's window (60 s from the adoption, 10 s after the kill), then resolveAfter (30 s).
            let after = Double(r.observedAt - t0) / 1e9
            #expect(after >= 100 && after <= 102, "resolved \(after) s after the kill")
        }
        #expect(a.last?.change == .resolved, "the kill seen again leaves the new, one-minute window and resolves too")
    }

    @Test("policy changes more often than window + resolveAfter do not hold an adopted finding for ever")
    func repeatedAdoptionKeepsTheFirstHold() {
        var config = CorrelationConfig()
        config.window = .seconds(60)
        config.resolveAfter = .seconds(30)
        config.updateInterval = .seconds(10)
        var engine = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        engine.ingest(TestEvents.oomKill(pod: "b", at: t0), now: t0, into: &out)
        engine.tick(now: t0 + s, into: &out)
        #expect(out.contains { $0.identity.type == .oomKilled && $0.change == .new })
        out = []
        // A policy change every 20 s from 10 s on, each starting a new engine that takes over the last one's findings
        // and never sees the kill again (it is in none of their windows).
        for change in 0..<20 {
            let at = t0 + UInt64(10 + 20 * change) * s
            var next = CorrelationEngine(config: config)
            next.adoptActiveFindings(of: engine, now: at)
            engine = next
            for k in 1..<20 { engine.tick(now: at + UInt64(k) * s, into: &out) }
        }
        let resolved = out.filter { $0.identity.subject.pod?.name == "b" && $0.change == .resolved }
        #expect(resolved.count == 1, "\(out.map(\.change))")
        if let r = resolved.first {
            // Held for the first new engine's window (60 s from 10 s), then resolveAfter (30 s).
            let after = Double(r.observedAt - t0) / 1e9
            #expect(after >= 100 && after <= 102, "resolved \(after) s after the kill")
        }
    }

    @Test("a finding detected again while held gets a whole window from the next policy change")
    func adoptionAfterADetectionHoldsAgain() {
        var config = CorrelationConfig()
        config.window = .seconds(60)
        config.resolveAfter = .seconds(30)
        config.updateInterval = .seconds(10)
        var old = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        old.ingest(TestEvents.oomKill(pod: "b", at: t0), now: t0, into: &out)
        old.tick(now: t0 + s, into: &out)
        // Adopted at 10 s (held until 70 s), killed again at 30 s, adopted again at 40 s.
        var engine = CorrelationEngine(config: config)
        engine.adoptActiveFindings(of: old, now: t0 + 10 * s)
        out = []
        engine.ingest(TestEvents.oomKill(pod: "b", at: t0 + 30 * s), now: t0 + 30 * s, into: &out)
        for k in 31..<40 { engine.tick(now: t0 + UInt64(k) * s, into: &out) }
        var next = CorrelationEngine(config: config)
        next.adoptActiveFindings(of: engine, now: t0 + 40 * s)
        for k in 41...200 { next.tick(now: t0 + UInt64(k) * s, into: &out) }
        let resolved = out.filter { $0.identity.subject.pod?.name == "b" && $0.change == .resolved }
        #expect(resolved.count == 1 && !out.contains { $0.change == .new }, "\(out.map(\.change))")
        if let r = resolved.first {
            // Held for the second engine's window (60 s from 40 s), then resolveAfter: not at 100 s by the first hold.
            let after = Double(r.observedAt - t0) / 1e9
            #expect(after >= 130 && after <= 132, "resolved \(after) s after the first kill")
        }
    }

    @Test("an adopted finding the policies' selectors held back is announced when the new engine sees it, and never resolved unannounced")
    func adoptionKeepsWhatWasNotLetOut() {
        var config = CorrelationConfig()
        config.resolveAfter = .seconds(30)
        var old = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        old.ingest(TestEvents.oomKill(pod: "a", at: t0), now: t0, into: &out)
        old.ingest(TestEvents.oomKill(pod: "b", at: t0), now: t0, into: &out)
        old.ingest(TestEvents.oomKill(pod: "c", at: t0), now: t0, into: &out)
        old.tick(now: t0 + s, into: &out)
        let heldBack = Set(out.filter { ["a", "c"].contains($0.identity.subject.pod?.name) }.map(\.identity))
        #expect(heldBack.count == 2)
        var engine = CorrelationEngine(config: config)
        engine.adoptActiveFindings(of: old, now: t0 + 2 * s, published: { !heldBack.contains($0) })
        out = []
        engine.ingest(TestEvents.oomKill(pod: "a", at: t0 + 3 * s), now: t0 + 3 * s, into: &out)
        for k in 4...900 { engine.tick(now: t0 + UInt64(k) * s, into: &out) }
        let a = out.filter { $0.identity.subject.pod?.name == "a" }.map(\.change)
        let b = out.filter { $0.identity.subject.pod?.name == "b" }.map(\.change)
        #expect(a.first == .new, "held back before: announced now \(a)")
        #expect(a.last == .resolved)
        #expect(b == [.resolved], "\(b)")
        #expect(!out.contains { $0.identity.subject.pod?.name == "c" }, "held back and not seen again: nothing to resolve")
    }

    @Test("an OOM kill does not wait for its batch: flushIfUrgent reports it at once, ordinary events wait")
    func urgentFlush() {
        var config = CorrelationConfig()
        config.batchSize = 100
        config.batchTimeout = .seconds(1)
        var engine = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        // A memory sample is an ordinary event: nothing is evaluated until the batch fills or times out.
        engine.ingest(TestEvents.memory(pod: "other", ws: 100 << 20, at: t0), now: t0, into: &out)
        let batches = engine.stats.batches
        engine.flushIfUrgent(now: t0, into: &out)
        #expect(engine.stats.batches == batches, "a batch without an OOM kill was flushed early")
        engine.ingest(TestEvents.oomKill(pod: "a", at: t0), now: t0, into: &out)
        #expect(!out.contains { $0.identity.type == .oomKilled }, "ingest alone runs no detector")
        engine.flushIfUrgent(now: t0, into: &out)
        #expect(out.contains { $0.identity.type == .oomKilled && $0.change == .new }, "\(out.map(\.identity.name))")
    }

    @Test("insight names are deterministic, valid Kubernetes names, and differ by subject and type")
    func names() {
        let a = InsightIdentity(type: .oomPrediction, subject: .podContainer(TestEvents.ref("web-1"), container: "app"))
        let b = InsightIdentity(type: .oomPrediction, subject: .podContainer(TestEvents.ref("web-2"), container: "app"))
        let c = InsightIdentity(type: .memoryLeak, subject: .podContainer(TestEvents.ref("web-1"), container: "app"))
        let long = InsightIdentity(type: .clusterHealth, subject: .cluster, detail: String(repeating: "x", count: 300))
        #expect(a.name == InsightIdentity(type: .oomPrediction, subject: .podContainer(TestEvents.ref("web-1"), container: "app")).name)
        #expect(Set([a.name, b.name, c.name]).count == 3)
        for n in [a.name, b.name, c.name, long.name] {
            #expect(n.count <= 63)
            #expect(n.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }, "\(n)")
            #expect(n.first != "-" && n.last != "-")
        }
        #expect(a.name.hasPrefix("oomprediction-web-1-app-"))
    }

    @Test("memory stays bounded under 100,000 distinct subjects: capped, evictions counted")
    func boundedUnderManySubjects() {
        var config = CorrelationConfig()
        config.maxSubjects = 10_000
        var engine = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        for k in 0..<100_000 {
            let at = t0 + UInt64(k) * 1_000_000
            engine.ingest(TestEvents.memory(pod: "p\(k)", ws: 100 << 20, at: at), now: at, into: &out)
        }
        #expect(engine.trackedSubjects == 10_000)
        #expect(engine.stats.evictedSubjects == 90_000)
        #expect(engine.index.count == engine.trackedSubjects)
        #expect(engine.podSubjects.count == engine.trackedSubjects)
        #expect(engine.arrival.count <= 100_000)
        // Every surviving subject holds at most one window of buckets.
        #expect(engine.states.allSatisfy { $0.memory.buckets.count <= 31 })
        // The most recent subjects are the ones kept.
        #expect(engine.index[.podContainer(TestEvents.ref("p99999"), container: "app")] != nil)
        #expect(engine.index[.podContainer(TestEvents.ref("p0"), container: "app")] == nil)
    }

    @Test("a subject evicted from a full engine has its announced findings resolved, saying why, not left Active")
    func evictionResolvesWhatWasAnnounced() {
        var config = CorrelationConfig()
        config.maxSubjects = 2
        var engine = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        engine.ingest(TestEvents.oomKill(pod: "a", at: t0), now: t0, into: &out)
        for k in 1...5 { engine.tick(now: t0 + UInt64(k) * s, into: &out) }
        let announced = try? #require(out.first { $0.identity.type == .oomKilled && $0.change == .new })
        out.removeAll()
        for (k, pod) in ["b", "c"].enumerated() {
            let at = t0 + UInt64(10 + k) * s
            engine.ingest(TestEvents.memory(pod: pod, ws: 100 << 20, at: at), now: at, into: &out)
        }
        #expect(engine.stats.evictedSubjects >= 1)
        let resolved = out.filter { $0.identity == announced?.identity && $0.change == .resolved }
        #expect(resolved.count == 1, "the evicted subject's OOMKilled finding was not resolved: \(out.map(\.change))")
        #expect(resolved.first?.spec.evidence.last?.description.contains("stopped tracking") == true)
        #expect(!engine.activeInsights.contains { $0.identity == announced?.identity })
    }

    @Test("findings adopted into a smaller engine and evicted there are resolved by its next flush, not held back")
    func adoptionIntoASmallerEngineHandsOutWhatItEvicts() {
        var out: [InsightUpdate] = []
        var old = CorrelationEngine()
        for pod in ["a", "b", "c"] { old.ingest(TestEvents.oomKill(pod: pod, at: t0), now: t0, into: &out) }
        for k in 1...5 { old.tick(now: t0 + UInt64(k) * s, into: &out) }
        let announced = Set(out.filter { $0.identity.type == .oomKilled && $0.change == .new }.map(\.identity))
        #expect(announced.count == 3)
        var config = CorrelationConfig()
        config.maxSubjects = 2
        var engine = CorrelationEngine(config: config)
        engine.adoptActiveFindings(of: old, now: t0 + 6 * s)
        // The last flush of an engine hands out everything it holds (the pipeline flushes before it drops one).
        let flushed = engine.flush(now: t0 + 6 * s)
        let resolved = flushed.filter { $0.change == .resolved && announced.contains($0.identity) }
        #expect(resolved.count >= 1, "an adopted finding was evicted and its resolution held back: \(flushed.map(\.change))")
        #expect(resolved.count + engine.activeInsights.filter { announced.contains($0.identity) }.count == 3,
                "each adopted finding is either still active or resolved")
    }

    @Test("a subject's memory series keeps one window of buckets however many samples arrive")
    func seriesBounded() {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0..<20_000 {
            let at = t0 + UInt64(k) * 50_000_000  // 20 Hz for 1000 s
            engine.ingest(TestEvents.memory(pod: "busy", ws: 100 << 20, at: at), now: at, into: &out)
        }
        #expect(engine.trackedSubjects == 1)
        #expect(engine.states[0].memory.buckets.count <= 31)
    }

    /// Issue 17, item 7: on a busy host every short-lived process became a subject kept for the quiet period.
    @Test("exec and fork make no subject, and an exited bare process is forgotten after one re-check period")
    func shortLivedProcessesAreNotKept() {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for pid in Int32(100)..<Int32(1100) {
            let at = t0 + UInt64(pid) * 1_000_000
            engine.ingest(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: 0, comm: "sh", kind: .processFork(childPID: pid + 1)), subject: nil),
                          now: at, into: &out)
            engine.ingest(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: 0, comm: "sh", kind: .processExec), subject: nil), now: at, into: &out)
        }
        #expect(engine.trackedSubjects == 0)
        let exited = t0 + 2 * s
        engine.ingest(.node(NodeEvent(timestampNanos: exited, pid: 42, cgroupID: 0, comm: "job",
                                      kind: .processExit(.init(exitCode: 0, signal: 0, peakRSSBytes: 1 << 20))), subject: nil),
                      now: exited, into: &out)
        #expect(engine.trackedSubjects == 1)
        let recheck = engine.recheckNanos / s
        for k in 1...(recheck + 2) { engine.tick(now: exited + k * s, into: &out) }
        #expect(engine.trackedSubjects == 0, "kept \(engine.trackedSubjects) after \(recheck + 2) s")
        #expect(recheck < 600, "well before the window and resolveAfter")
    }

    /// A forked child touches memory under its parent's name before it execs, then under its own; the exit names
    /// only the second. On a real node, every such pre-exec subject was kept for the whole quiet period (10 min):
    /// ~300 after a burst of 25 pod starts, and one more for every short command run on the host.
    @Test("a process's subjects under the names it had before an exec end with the exec or its exit")
    func preExecSubjectsEnd() {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        func sample(_ pid: Int32, _ comm: String, at: UInt64) {
            engine.ingest(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: 0, comm: comm,
                                          kind: .memorySample(.init(rssAnonBytes: 1 << 20, rssFileBytes: 0, rssShmemBytes: 0))),
                                subject: nil), now: at, into: &out)
        }
        func node(_ pid: Int32, _ comm: String, _ kind: NodeEvent.Kind, at: UInt64) {
            engine.ingest(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: 0, comm: comm, kind: kind), subject: nil),
                          now: at, into: &out)
        }
        // 200: fork → sample as `bash` → exec `curl` → sample → exit. 300: fork → sample as `bash` → exec `java`,
        // which lives on. 400: a long-lived `sleep` that never execs.
        sample(200, "bash", at: t0)
        sample(300, "bash", at: t0)
        sample(400, "sleep", at: t0)
        node(200, "curl", .processExec, at: t0 + s)
        node(300, "java", .processExec, at: t0 + s)
        sample(200, "curl", at: t0 + 2 * s)
        sample(300, "java", at: t0 + 2 * s)
        #expect(engine.trackedSubjects == 5)
        node(200, "curl", .processExit(.init(exitCode: 0, signal: 0, peakRSSBytes: 1 << 20)), at: t0 + 3 * s)
        let ended = Dictionary(uniqueKeysWithValues: engine.states.map { ($0.subject.displayName, $0.hasEnded) })
        #expect(ended == ["process bash[200]": true, "process curl[200]": true, "process bash[300]": true,
                          "process java[300]": false, "process sleep[400]": false])
        #expect(engine.sizes.first { $0.structure == "engine_subjects_exited_process" }?.entries == 3)
        #expect(engine.sizes.first { $0.structure == "engine_subjects_local_process" }?.entries == 2)
        // Both live processes keep sampling; everything ended is forgotten after one re-check period.
        let recheck = engine.recheckNanos / s
        for k in 4...(recheck + 6) {
            sample(300, "java", at: t0 + k * s)
            sample(400, "sleep", at: t0 + k * s)
            engine.tick(now: t0 + k * s, into: &out)
        }
        #expect(Set(engine.states.map(\.subject.displayName)) == ["process java[300]", "process sleep[400]"])
        #expect(engine.processSubjects.count == 2)
        // A reused pid: a new `bash` 200 after the old one's end is a live subject again.
        let later = t0 + (recheck + 7) * s
        sample(200, "bash", at: later)
        #expect(engine.states.first { $0.subject == .localProcess(pid: 200, comm: "bash") }?.hasEnded == false)
    }

    /// A container's first samples come before the kubelet reports its id: they make a runtime-container subject,
    /// and once the pod's status names the id, later samples go to the pod's container.
    @Test("a runtime-container subject ends when its pod's status names the container")
    func runtimeContainerEndsWhenNamed() {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        let id = String(repeating: "ab", count: 32)
        engine.ingest(.node(NodeEvent(timestampNanos: t0, pid: 9, cgroupID: 77, comm: "app",
                                      kind: .cgroupMemory(.init(usageBytes: 1 << 20, workingSetBytes: 1 << 20, limitBytes: 64 << 20))),
                            subject: .localContainer(id: id)), now: t0, into: &out)
        let other = String(repeating: "cd", count: 32)
        engine.ingest(.node(NodeEvent(timestampNanos: t0, pid: 10, cgroupID: 78, comm: "pause",
                                      kind: .memorySample(.init(rssAnonBytes: 1 << 16, rssFileBytes: 0, rssShmemBytes: 0))),
                            subject: .localContainer(id: other)), now: t0, into: &out)
        func container(_ containerID: String?) -> ContainerInfo {
            ContainerInfo(name: "app", containerID: containerID, image: "app:1", restartCount: 0, ready: true,
                          memoryRequestBytes: nil, memoryLimitBytes: 64 << 20, lastTermination: nil,
                          currentTermination: nil, waitingReason: nil)
        }
        let pod = TestEvents.ref("web")
        func update(_ containerID: String?, at: UInt64) {
            engine.ingest(.cluster(ClusterEvent(timestampNanos: at, kind: .podUpdated(PodInfo(
                pod: pod, node: "node-1", owner: nil, labels: [:], phase: "Running", containers: [container(containerID)])))),
                now: at, into: &out)
        }
        update(nil, at: t0 + s)
        #expect(engine.states.filter(\.hasEnded).isEmpty, "no id reported yet")
        update("containerd://" + id.uppercased(), at: t0 + 2 * s)
        #expect(engine.states.filter(\.hasEnded).map(\.subject) == [.localContainer(id: id)])
        let recheck = engine.recheckNanos / s
        for k in 3...(recheck + 4) { engine.tick(now: t0 + k * s, into: &out) }
        #expect(engine.index[.localContainer(id: id)] == nil)
        #expect(engine.index[.localContainer(id: other)] != nil, "a pod's sandbox is never named: kept the quiet period")
        #expect(engine.index[.podContainer(pod, container: "app")] != nil)
    }

    @Test("subjects that go quiet are forgotten after the window and resolveAfter")
    func quietSubjectsForgotten() {
        var config = CorrelationConfig()
        config.resolveAfter = .seconds(60)
        var engine = CorrelationEngine(config: config)
        var out: [InsightUpdate] = []
        engine.ingest(TestEvents.memory(pod: "gone", ws: 1 << 20, at: t0), now: t0, into: &out)
        for k in 1...400 { engine.tick(now: t0 + UInt64(k) * s, into: &out) }
        #expect(engine.trackedSubjects == 0)
        #expect(engine.stats.forgottenSubjects == 1)
    }

    @Test("updates below minSeverity are not emitted")
    func minSeverity() throws {
        var config = CorrelationConfig()
        config.minSeverity = .warning
        let text = try String(contentsOf: Scenarios.directory.appendingPathComponent("unbounded-growth-local-process.jsonl"), encoding: .utf8)
        let updates = try ScenarioReplay.run(text: text, config: config)
        #expect(updates.isEmpty, "UnboundedMemoryGrowth is Info")
        #expect(try !ScenarioReplay.run(text: text).isEmpty)
    }
}
