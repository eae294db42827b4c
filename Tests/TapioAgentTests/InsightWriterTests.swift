import Foundation
import KubeClient
import KubeRuntime
import TapioCorrelation
@testable import TapioInsightWriter
import TapioKube
import TapioModel
import TapioNode
import TapioSinks
import TapioTestSupport
import Synchronization
import Testing

/// What the writer says of itself for the heartbeat: `writtenThrough` does not move past an update still waiting to be
/// written, and catches up once it is (the operator resolves a restarted agent's old Insights only after that).
@Suite(.timeLimit(.minutes(2)))
struct InsightWriterTests {
    @Test func writtenThroughWaitsForWhatIsPending() async throws {
        try await TestCluster.with { cluster in
            guard let emulator = cluster.requireEmulator() else { return }
            let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
            let ns = cluster.namespace
            _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: ns)))
            let writer = InsightWriter(client: client, recorder: nil, nodeName: "n", ownNamespace: ns)
            let idle = writer.writtenThrough
            #expect(abs(idle.timeIntervalSinceNow) < 5, "idle: now")
            // The server fails the writes, as an overloaded one would, until the test lets them through.
            emulator.injectFaults(status: 503, count: 10_000, pathContains: "/insights")
            let subject = Subject.podContainer(PodRef(namespace: ns, name: "p", uid: "u"), container: "app")
            let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "t", summary: "s", subject: subject.resourceRef)
            await writer.emit([InsightUpdate(identity: InsightIdentity(type: .oomKilled, subject: subject), spec: spec, change: .new,
                                             observedAt: 1, firstSeenAt: 1, occurrences: 1)])
            let emitted = Date()
            await writer.flush()
            let failing = writer.writtenThrough
            #expect(writer.pendingCount == 1, "a 503 keeps the update")
            #expect(failing <= emitted, "not past the update still waiting: \(failing) vs \(emitted)")
            await writer.flush()
            #expect(writer.pendingCount == 1 && writer.writtenThrough == failing, "still failing: it stays where it was")
            emulator.clearFaults()
            let run = Task { await writer.run() }
            let written = await eventually(timeout: .seconds(60)) { writer.written == 1 ? true : nil }
            let caughtUp = writer.writtenThrough
            run.cancel()
            _ = await run.value
            try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: ns)
            try await client.shutdown()
            #expect(written == true, "never written")
            #expect(caughtUp > emitted, "written: caught up")
        }
    }

    /// The operator resolves a node's Insights last seen before its agent started (its Lease's `acquireTime`). A wall
    /// clock stepped back after the start dates what the agent sees before it: the writer's `lastSeen` is never
    /// earlier than the start, compared as the operator compares them (the Lease's microseconds, `lastSeen`'s
    /// milliseconds).
    @Test func lastSeenIsNeverBeforeTheAgentStarted() async throws {
        try await TestCluster.withNamespace { cluster, client in
            let ns = cluster.namespace
            // Started at …:00.000500 by a clock since stepped back an hour (and at a time with microseconds, which
            // `lastSeen`'s milliseconds cannot say).
            let started = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3600).rounded(.down) + 0.0005)
            let writer = InsightWriter(client: client, recorder: nil, nodeName: "n", ownNamespace: ns, notBefore: started)
            let subject = Subject.podContainer(PodRef(namespace: ns, name: "p", uid: "u"), container: "app")
            let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "t", summary: "s", subject: subject.resourceRef)
            let now = MonotonicClock.wallNanos()
            let update = InsightUpdate(identity: InsightIdentity(type: .oomKilled, subject: subject), spec: spec, change: .new,
                                       observedAt: now, firstSeenAt: now, occurrences: 1)
            await writer.emit([update])
            await writer.flush()
            #expect(writer.written == 1)
            let insight = try await client.get(InsightObject.self, namespace: ns, name: update.identity.name)
            let seen = try #require(insight.status?.lastSeen.flatMap(Formatting.parseRFC3339))
            let acquired = try #require(Formatting.parseDate(MicroTime.string(started)))
            #expect(Double(seen) / 1e9 >= acquired.timeIntervalSince1970, "lastSeen \(insight.status?.lastSeen ?? "") before the start \(MicroTime.string(started))")
            #expect(Double(seen) / 1e9 - started.timeIntervalSince1970 < 0.002, "the start, to the millisecond up")
        }
    }

    /// A full queue pushes out its oldest update — a resolution only when nothing else waits, as nothing would write
    /// it again — and holds `writtenThrough` at the last instant before. A lost detection emitted again as an update
    /// is written as a detection (with its Event); one not emitted again is handed in again by the next status with
    /// nothing waiting (a resync of what was lost, not of everything); once that is written, the status after moves
    /// `writtenThrough` on. Without the resync the lost detection never reaches the server, and `writtenThrough`
    /// moved on past it.
    @Test func updatesPushedOutOfAFullQueueAreWrittenAgainBeforeWrittenThroughMovesOn() async throws {
        try await TestCluster.withNamespace { cluster, client in
            let ns = cluster.namespace
            let recorder = EventRecorder(client: client, reportingController: "tapio.io/agent", reportingInstance: "n")
            let writer = InsightWriter(client: client, recorder: recorder, nodeName: "n", ownNamespace: ns, capacity: 2)
            func update(_ pod: String, _ change: InsightChange) -> InsightUpdate {
                let subject = Subject.podContainer(PodRef(namespace: ns, name: pod, uid: "uid-\(pod)"), container: "app")
                let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "t", summary: "s", subject: subject.resourceRef)
                return InsightUpdate(identity: InsightIdentity(type: .oomKilled, subject: subject), spec: spec, change: change,
                                     observedAt: 1, firstSeenAt: 1, occurrences: 1)
            }
            func written() async throws -> Set<String> {
                Set(try await client.list(InsightObject.self, namespace: ns).items.compactMap(\.metadata.name))
            }
            let name = { (pod: String) in update(pod, .new).identity.name }

            let before = Date()
            await writer.emit([update("gone", .resolved), update("a", .new)])
            await writer.emit([update("c", .new)])
            await writer.emit([update("b", .new)])
            let pushedOut = Date()
            #expect(writer.drops.full == 2 && writer.pendingCount == 2)
            let held = writer.writtenThrough
            #expect(held >= before && held <= pushedOut, "held at the last instant nothing waited")
            await writer.flush()
            #expect(try await written() == [name("gone"), name("b")], "the resolution stayed; the oldest others went")
            #expect(writer.writtenThrough == held, "what waited is written, but updates were lost: still held")

            // The engine updates a: written as the detection it was.
            await writer.emit([update("a", .updated)])
            await writer.flush()
            #expect(try await written() == [name("gone"), name("a"), name("b")])
            #expect(writer.writtenThrough == held, "c is still lost")

            // The pipeline's once-a-second status, with what its engine holds.
            var status = PipelineStatus()
            status.activeInsights = [update("a", .updated), update("b", .updated), update("c", .updated)]
            await writer.status(status)
            #expect(writer.pendingCount == 1, "what was lost and not emitted since: c alone")
            await writer.flush()
            #expect(try await written() == [name("gone"), name("a"), name("b"), name("c")])
            #expect(writer.writtenThrough == held, "written; the next status says so")
            await writer.status(status)
            #expect(writer.pendingCount == 0, "no second resync: nothing was lost during the first")
            #expect(writer.writtenThrough > pushedOut, "moved on")

            await recorder.drain()
            let events = try await client.list(Event.self, namespace: ns).items
            let detected = events.filter { $0.action == "Detected" }.compactMap(\.regarding?.name).sorted()
            #expect(detected == ["a", "b", "c"], "the lost detections' Events came with their rewrites: \(detected)")
        }
    }

    /// An agent writes an Insight in two requests, spec then status. The operator resolving it in between (its status
    /// Resolved, then — onto that status's version — its summary "Resolved: …") left an Active status under the
    /// operator's spec. The status now goes only onto the spec the writer wrote: answered 409, the whole update is
    /// written again, spec and status, and the Insight says what its agent sees.
    @Test func aResolutionBetweenSpecAndStatusIsWrittenOver() async throws {
        try await TestCluster.withNamespace { cluster, client in
            let ns = cluster.namespace
            let writer = InsightWriter(client: client, recorder: nil, nodeName: "n", ownNamespace: ns)
            let subject = Subject.podContainer(PodRef(namespace: ns, name: "p", uid: "uid-p"), container: "app")
            let identity = InsightIdentity(type: .oomPrediction, subject: subject)
            func update(_ summary: String, _ change: InsightChange, at seconds: UInt64) -> InsightUpdate {
                let spec = InsightSpec(type: .oomPrediction, severity: .warning, title: "t", summary: summary,
                                       subject: subject.resourceRef)
                let now = MonotonicClock.wallNanos() + seconds * 1_000_000_000
                return InsightUpdate(identity: identity, spec: spec, change: change, observedAt: now, firstSeenAt: now,
                                     occurrences: 1)
            }
            let insights = ResourceType(apiVersion: "tapio.io/v1alpha1", kind: "Insight", plural: "insights", namespaced: true)
            await writer.emit([update("OOM kill predicted in 4m", .new, at: 0)])
            await writer.flush()
            #expect(writer.written == 1)

            // As the operator resolves (ClusterWatch.resolve), once, between the next update's spec and status.
            let raced = Atomic<Int>(0)
            writer.afterSpecWriteHook.withLock {
                $0 = { name in
                    guard raced.add(1, ordering: .sequentiallyConsistent).oldValue == 0 else { return }
                    let answer = try? await client.patchRaw(insights, namespace: ns, name: name, subresource: "status",
                                                            patch: Data(#"{"status":{"phase":"Resolved"}}"#.utf8), patchType: .merge)
                    let rv = answer.flatMap(InsightWriter.resourceVersion(of:)) ?? ""
                    _ = try? await client.patchRaw(insights, namespace: ns, name: name,
                                                   patch: Data(#"{"metadata":{"resourceVersion":"\#(rv)"},"spec":{"summary":"Resolved: OOM kill predicted in 3m"}}"#.utf8),
                                                   patchType: .merge)
                }
            }
            await writer.emit([update("OOM kill predicted in 3m", .updated, at: 1)])
            await writer.flush()
            #expect(raced.load(ordering: .sequentiallyConsistent) == 2, "the race happened, and the update was written again")
            let insight = try await client.get(InsightObject.self, namespace: ns, name: identity.name)
            #expect(insight.status?.phase == .active, "the agent still sees it")
            #expect(insight.spec.summary == "OOM kill predicted in 3m", "its own summary, not the operator's \"\(insight.spec.summary)\"")
            #expect(writer.written == 2 && writer.dropped == 0 && writer.pendingCount == 0)
        }
    }

    /// A new Insight whose spec went in and whose status was refused (409: written by another in between) reads
    /// Active on the retry — the CRD defaults the phase — and was taken for one announced already: written as an
    /// update, without its Event. Only a status a writer wrote (with `lastSeen`) counts now.
    @Test func aNewInsightWrittenAgainAfterA409IsStillAnnounced() async throws {
        try await TestCluster.withNamespace { cluster, client in
            let ns = cluster.namespace
            let recorder = EventRecorder(client: client, reportingController: "tapio.io/agent", reportingInstance: "n")
            let writer = InsightWriter(client: client, recorder: recorder, nodeName: "n", ownNamespace: ns)
            let subject = Subject.podContainer(PodRef(namespace: ns, name: "p", uid: "uid-p"), container: "app")
            let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "t", summary: "s", subject: subject.resourceRef)
            let now = MonotonicClock.wallNanos()
            let update = InsightUpdate(identity: InsightIdentity(type: .oomKilled, subject: subject), spec: spec, change: .new,
                                       observedAt: now, firstSeenAt: now, occurrences: 1)
            let insights = ResourceType(apiVersion: "tapio.io/v1alpha1", kind: "Insight", plural: "insights", namespaced: true)
            let raced = Atomic<Int>(0)
            writer.afterSpecWriteHook.withLock {
                $0 = { name in
                    guard raced.add(1, ordering: .sequentiallyConsistent).oldValue == 0 else { return }
                    // Someone labels it between the spec and the status write.
                    _ = try? await client.patchRaw(insights, namespace: ns, name: name,
                                                   patch: Data(#"{"metadata":{"labels":{"team":"shop"}}}"#.utf8), patchType: .merge)
                }
            }
            await writer.emit([update])
            await writer.flush()
            await recorder.drain()
            #expect(raced.load(ordering: .sequentiallyConsistent) == 2, "raced once, then written again")
            let insight = try await client.get(InsightObject.self, namespace: ns, name: update.identity.name)
            #expect(insight.status?.phase == .active && insight.status?.lastSeen != nil)
            let detected = try await client.list(Event.self, namespace: ns).items.filter { $0.action == "Detected" }
            #expect(detected.count == 1, "announced once: \(detected.count) Detected Events")
        }
    }

    /// A writer that lands between every spec and status write of one Insight: each 409 puts the update back, and
    /// from the third in a row it waits behind the others (and counts against the breaker). At the head it took every
    /// write the breaker allowed until the breaker opened, and the Insight behind it waited.
    @Test func anInsightRacedAgainAndAgainDoesNotHoldUpTheOthers() async throws {
        try await TestCluster.withNamespace { cluster, client in
            let ns = cluster.namespace
            let writer = InsightWriter(client: client, recorder: nil, nodeName: "n", ownNamespace: ns)
            func update(_ pod: String) -> InsightUpdate {
                let subject = Subject.podContainer(PodRef(namespace: ns, name: pod, uid: "uid-\(pod)"), container: "app")
                let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "t", summary: "s", subject: subject.resourceRef)
                let now = MonotonicClock.wallNanos()
                return InsightUpdate(identity: InsightIdentity(type: .oomKilled, subject: subject), spec: spec, change: .new,
                                     observedAt: now, firstSeenAt: now, occurrences: 1)
            }
            let raced = update("raced").identity.name
            let insights = ResourceType(apiVersion: "tapio.io/v1alpha1", kind: "Insight", plural: "insights", namespaced: true)
            let interposed = Atomic<Int>(0)
            writer.afterSpecWriteHook.withLock {
                $0 = { name in
                    guard name == raced else { return }
                    let n = interposed.add(1, ordering: .sequentiallyConsistent).newValue
                    _ = try? await client.patchRaw(insights, namespace: ns, name: name,
                                                   patch: Data(#"{"metadata":{"labels":{"touched":"\#(n)"}}}"#.utf8), patchType: .merge)
                }
            }
            await writer.emit([update("raced"), update("other")])
            await writer.flush()
            #expect(interposed.load(ordering: .sequentiallyConsistent) >= 3, "raced at least three times")
            let other = try? await client.get(InsightObject.self, namespace: ns, name: update("other").identity.name)
            #expect(other?.status?.lastSeen != nil, "the other Insight was written while the raced one kept failing")
            #expect(writer.pendingCount == 1, "the raced one still waits")
            writer.afterSpecWriteHook.withLock { $0 = nil }
        }
    }

    /// A full map pushes out a resolution only when the oldest waiting are all resolutions. Its Insight then stood
    /// Active for good (nothing resolves a finding its agent no longer holds, while that agent runs). The writer keeps
    /// its identity and instant and, once the map has drained, resolves the Insight if it is still Active — not if the
    /// finding was seen again meanwhile; `writtenThrough` waits for that.
    @Test func aResolutionPushedOutOfAFullQueueIsWrittenOnceItDrains() async throws {
        try await TestCluster.withNamespace { cluster, client in
            let ns = cluster.namespace
            let writer = InsightWriter(client: client, recorder: nil, nodeName: "n1", ownNamespace: ns, capacity: 3)
            let start = MonotonicClock.wallNanos()
            func update(_ pod: String, _ change: InsightChange, at second: UInt64 = 0) -> InsightUpdate {
                let subject = Subject.podContainer(PodRef(namespace: ns, name: pod, uid: "uid-\(pod)"), container: "app")
                let summary = change == .resolved ? "Resolved: OOM kill of \(pod)" : "OOM kill of \(pod)"
                let spec = InsightSpec(type: .oomKilled, severity: .critical, title: "t", summary: summary, subject: subject.resourceRef)
                return InsightUpdate(identity: InsightIdentity(type: .oomKilled, subject: subject), spec: spec, change: change,
                                     observedAt: start + second * 1_000_000_000, firstSeenAt: start, occurrences: 1)
            }
            func insight(_ pod: String) async throws -> InsightObject {
                try await client.get(InsightObject.self, namespace: ns, name: update(pod, .new).identity.name)
            }
            for pods in [["a", "b", "c"], ["d", "e", "f"]] {
                await writer.emit(pods.map { update($0, .new) })
                await writer.flush()
            }
            #expect(writer.drops.full == 0 && writer.written == 6)

            // Resolutions only: each arriving at a full queue pushes out the oldest — a's, d's, e's.
            await writer.emit([update("a", .resolved, at: 60), update("d", .resolved, at: 61), update("e", .resolved, at: 62)])
            await writer.emit([update("b", .resolved, at: 63)])
            await writer.emit([update("f", .resolved, at: 64)])
            await writer.emit([update("c", .resolved, at: 65)])
            #expect(writer.drops.full == 3 && writer.pendingCount == 3)
            // d is seen again before the queue drains (b's resolution goes for it).
            await writer.emit([update("d", .new, at: 66)])
            #expect(writer.drops.full == 4)
            await writer.flush()
            let held = writer.writtenThrough
            #expect(try await insight("a").status?.phase == .active, "a's resolution is still unwritten")
            #expect(try await insight("c").status?.phase == .resolved)

            var status = PipelineStatus()
            status.activeInsights = [update("d", .updated, at: 66)]
            await writer.status(status)
            #expect(writer.pendingCount == 3, "a's, b's and e's resolutions to write again")
            // e is seen again after the resync handed its resolution in, before it was written.
            await writer.emit([update("e", .new, at: 67)])
            await writer.flush()
            #expect(writer.writtenThrough == held, "written, but the next status says so")
            let a = try await insight("a")
            #expect(a.status?.phase == .resolved, "the lost resolution is written once the queue drained")
            #expect(a.status?.lastSeen?.hasPrefix(Formatting.rfc3339(nanos: start + 60 * 1_000_000_000).prefix(19)) == true,
                    "last seen when it was resolved, not when written: \(a.status?.lastSeen ?? "")")
            #expect(a.spec.summary == "Resolved: OOM kill of a", "\(a.spec.summary)")
            #expect(a.spec.evidence.last?.description.hasPrefix("Resolved by node n1's agent: cleared at ") == true,
                    "\(a.spec.evidence.last?.description ?? "")")
            #expect(try await insight("b").status?.phase == .resolved, "b's lost resolution too")
            #expect(try await insight("f").status?.phase == .resolved)
            #expect(try await insight("d").status?.phase == .active, "seen again before the resync: not resolved")
            #expect(try await insight("e").status?.phase == .active, "seen again after it: not resolved")
            status.activeInsights = [update("d", .updated, at: 66), update("e", .updated, at: 67)]
            await writer.status(status)
            #expect(writer.writtenThrough > held, "everything lost is written: it moves on")
            #expect(writer.pendingCount == 0)
        }
    }
}
