import Foundation
import KubeClient
import KubeEmulator
import KubeRuntime
import Logging
import TapioTestSupport
import Testing

/// The client and the watcher against an API server that misbehaves persistently. Rates are asserted as lower
/// bounds from the backoff's minimum waits (load only makes a run slower), and every wait is for a condition.
@Suite("KubeClient under a hostile server", .timeLimit(.minutes(3)))
struct HostileServerTests {
    /// Starts an emulator, a namespace and an observed client; stops them afterwards.
    func withHostile(retry: RetryPolicy = RetryPolicy(initialBackoff: .milliseconds(20)), requestTimeout: Duration = .seconds(30),
                     limits: ResponseLimits = ResponseLimits(),
                     _ body: (KubeEmulator, KubeClient, String, Box<Outcomes>, Box<[(level: Logger.Level, message: String)]>) async throws -> Void)
        async throws {
        let cluster = try await TestCluster.start()
        guard let emu = cluster.requireEmulator() else { await cluster.stop(); return }
        let outcomes = Box(Outcomes())
        let lines = Box<[(level: Logger.Level, message: String)]>([])
        let client = try observedClient(cluster, outcomes, retry: retry, requestTimeout: requestTimeout, limits: limits,
                                        logger: CapturingLogHandler.logger(lines))
        let ns = cluster.namespace
        do {
            // Set up with a client of ordinary patience: a test's short request timeout is for the misbehaviour it
            // provokes, and a loaded machine can take longer than that for the first TLS handshake.
            let setup = try KubeClient(config: KubeConfig.load(path: cluster.kubeconfigPath))
            do { _ = try await setup.create(Namespace(metadata: ObjectMeta(name: ns))) } catch {
                try? await setup.shutdown()
                throw error
            }
            try await setup.shutdown()
            try await body(emu, client, ns, outcomes, lines)
        } catch {
            emu.behave()
            try? await client.shutdown()
            await cluster.stop()
            throw error
        }
        emu.behave()
        try await client.shutdown()
        await cluster.stop()
    }

    /// Runs a Lease watcher in `ns` with `config` while `body` runs; counts its relists.
    func whileWatching(_ client: KubeClient, _ ns: String, config: WatcherConfig, logger: Logger,
                       _ body: (Box<Seen>) async throws -> Void) async throws {
        let seen = Box(Seen())
        try await withThrowingTaskGroup(of: Void.self) { g in
            g.addTask {
                for try await e in Watcher(client: client, Lease.self, namespace: ns, config: config, logger: logger) {
                    seen.with { s in
                        switch e {
                        case .initStart: s.initStarts += 1; s.initFrame = 0
                        case .initApply: s.initFrame += 1; s.largestInitFrame = max(s.largestInitFrame, s.initFrame)
                        case .initDone: s.initDones += 1
                        case .apply(let o): s.applies.append((o.metadata.name ?? "", o.metadata.resourceVersion ?? ""))
                        case .delete: break
                        }
                    }
                }
            }
            try await body(seen)
            g.cancelAll()
        }
    }

    static let fast = WatcherConfig(initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(400))

    @Test func aWatchAnswering410InStreamEveryTimeRelistsWithGrowingWaitsCountedAndLogged() async throws {
        try await withHostile { emu, client, ns, outcomes, lines in
            let watches = "/namespaces/\(ns)/leases?watch=true"
            emu.misbehave(.expireWatchesInStream, pathContains: watches)
            try await whileWatching(client, ns, config: Self.fast, logger: CapturingLogHandler.logger(lines)) { seen in
                #expect(await eventually(timeout: .seconds(60)) { emu.requestTimes(containing: watches).count >= 7 })
                let times = emu.requestTimes(containing: watches)
                // Watch 1 fails → relist at once; watch 2 fails → ≥ 50 ms; … the 7th watch comes after six failures.
                let least = Self.fast.backoff.minimumTotal(failures: 6)
                #expect(times[6] - times[0] >= least, "7 watches in \(times[6] - times[0]); the backoff allows no less than \(least)")
                #expect(seen.get.initStarts >= 7, "each 410 relists")
            }
            #expect(outcomes.get.streamFailed >= 6, "each ERROR event counts as an API error")
            let relists = lines.get.filter { $0.message.contains("relisting") }
            #expect(relists.contains { $0.level == .info && $0.message.contains("at once") }, "the first relist is said at info")
            #expect(relists.contains { $0.level == .warning }, "repeated relists are warnings")
            #expect(relists.count <= 2, "one line per 30 s and kind: \(relists.map(\.message))")
        }
    }

    /// A server whose list pages answer a continue token with the same token: `listAll` fails saying so after two
    /// requests, and a watcher starts its list over after a backoff instead of asking for the same page forever.
    @Test func pagingThatRepeatsItsTokenEndsInsteadOfLooping() async throws {
        try await withHostile { emu, client, ns, outcomes, lines in
            let lists = "/namespaces/\(ns)/leases"
            emu.misbehave(.repeatContinueToken, pathContains: lists)
            do {
                _ = try await client.listAll(Lease.self, namespace: ns)
                Issue.record("listAll followed a repeating continue token to an end")
            } catch let e as KubeError {
                guard case .pagingLoop = e else { Issue.record("\(e)"); return }
                #expect(e.description == "paging loop: listing leases: the server answered a continue token with the same token")
            }
            #expect(emu.requestTimes(containing: lists).count == 2, "the first page and the repeat")
            let before = emu.requestTimes(containing: lists).count
            try await whileWatching(client, ns, config: Self.fast, logger: CapturingLogHandler.logger(lines)) { _ in
                #expect(await eventually(timeout: .seconds(60)) { emu.requestTimes(containing: lists).count >= before + 8 })
                let times = Array(emu.requestTimes(containing: lists).dropFirst(before))
                // Two requests a round (a page, its repeat); each round after the first waits the backoff.
                let least = Self.fast.backoff.minimumTotal(failures: 3)
                #expect(times[7] - times[0] >= least, "4 rounds in \(times[7] - times[0]); the backoff allows no less than \(least)")
            }
            #expect(lines.get.contains { $0.message.contains("paging loop") }, "\(lines.get.map(\.message))")
        }
    }

    /// A server whose list pages hand out new continue tokens for ever: `listAll` stops at the client's list limits
    /// — by objects, or by pages when the pages are empty — instead of following them (and holding every page) for
    /// good; a watcher abandons the list there and starts over after its backoff, in a new init frame, so what its
    /// consumers hold of an unfinished list stays bounded, and it never reports the list complete.
    @Test func pagingThatNeverEndsIsAbandonedAtTheListLimits() async throws {
        try await withHostile(limits: ResponseLimits(maxListObjects: 40, maxListPages: 25)) { emu, client, ns, _, lines in
            let lists = "/namespaces/\(ns)/leases"
            func listAllFails(saying expected: String) async {
                do {
                    let r = try await client.listAll(Lease.self, namespace: ns)
                    Issue.record("listAll followed endless continue tokens to an end (\(r.items.count) objects)")
                } catch let e as KubeError {
                    guard case .pagingLoop = e else { Issue.record("\(e)"); return }
                    #expect(e.description.contains(expected), "\(e)")
                } catch { Issue.record("\(error)") }
            }
            emu.misbehave(.endlessContinueTokens(itemsPerPage: 3), pathContains: lists)
            await listAllFails(saying: "listing leases: more than 40 objects over 14 pages and still a continue token")
            #expect(emu.requestTimes(containing: lists).count == 14, "three objects a page: the 14th page passes 40")
            emu.misbehave(.endlessContinueTokens(itemsPerPage: 0), pathContains: lists)
            await listAllFails(saying: "listing leases: 25 pages (0 objects) and still a continue token")
            #expect(emu.requestTimes(containing: lists).count == 14 + 25)

            emu.misbehave(.endlessContinueTokens(itemsPerPage: 3), pathContains: lists)
            let before = emu.requestTimes(containing: lists).count
            try await whileWatching(client, ns, config: Self.fast, logger: CapturingLogHandler.logger(lines)) { seen in
                #expect(await eventually(timeout: .seconds(60)) { seen.get.initStarts >= 4 })
                #expect(seen.get.initDones == 0, "a list that never ends is never complete")
                // Each round delivers the 13 pages below the limit (39 objects) and drops the 14th.
                #expect(seen.get.largestInitFrame == 39, "\(seen.get.largestInitFrame)")
                let rounds = emu.requestTimes(containing: lists).count - before
                #expect(rounds <= 14 * seen.get.initStarts, "\(rounds) list requests for \(seen.get.initStarts) lists")
            }
            #expect(lines.get.contains { $0.message.contains("the list was abandoned") }, "\(lines.get.map(\.message))")
        }
    }

    /// A list whose resourceVersion is present but empty: taken as no version ("0", as client-go), the list is
    /// complete. Taken as one, the list never was: the watcher asked for it again at once, for ever, without a
    /// backoff or an `initDone` (a store never ready, a controller's pending keys growing).
    @Test func aListWithAnEmptyResourceVersionCompletesInsteadOfBeingAskedForForever() async throws {
        try await withHostile { emu, client, ns, _, lines in
            for name in ["a", "b"] { _ = try await client.create(lease(name, ns)) }
            let lists = "/namespaces/\(ns)/leases?limit="
            emu.misbehave(.blankResourceVersions, pathContains: lists)
            try await whileWatching(client, ns, config: Self.fast, logger: CapturingLogHandler.logger(lines)) { seen in
                #expect(await eventually { seen.get.initDones == 1 }, "list frames started \(seen.get.initStarts), none complete")
                #expect(seen.get.largestInitFrame == 2)
                #expect(emu.requestTimes(containing: lists).count == 1, "the list was asked for again")
                // The watch from "0" (any version) that follows starts with the objects as they are.
                #expect(await eventually { seen.get.applies.count >= 2 })
            }
        }
    }

    /// A watch event whose object's resourceVersion is present but empty leaves the resume point where it was: taken
    /// as the version, the next watch asked for none ("now"), and what changed while it was down was never seen.
    @Test func aWatchEventWithAnEmptyResourceVersionDoesNotMoveTheResumePoint() async throws {
        try await withHostile { emu, client, ns, _, lines in
            let watches = "/namespaces/\(ns)/leases?watch=true"
            // Bookmarks too: the resume point must be the list's, not a later bookmark's that would hide the fault.
            emu.misbehave(.blankResourceVersions, pathContains: watches)
            try await whileWatching(client, ns, config: Self.fast, logger: CapturingLogHandler.logger(lines)) { seen in
                #expect(await eventually { seen.get.initDones == 1 && !emu.requestTimes(containing: watches).isEmpty })
                _ = try await client.create(lease("blank", ns))
                #expect(await eventually { seen.get.applies.contains { $0.name == "blank" && $0.rv.isEmpty } })
                emu.dropWatches()
                #expect(await eventually { emu.requestTimes(containing: watches).count >= 2 })
            }
            let uris = emu.requestURIs(containing: watches)
            #expect(uris.count >= 2)
            for uri in uris {
                let version = URLComponents(string: uri)?.queryItems?.first { $0.name == "resourceVersion" }?.value
                #expect(version.map { !$0.isEmpty && $0 != "0" } == true, "a watch resumed from \(version.map { "\"\($0)\"" } ?? "no version"): \(uri)")
            }
        }
    }

    @Test func persistent500sAreRetriedWithBackoffLoggedAtInfoAndCounted() async throws {
        let retry = RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(40), maxBackoff: .seconds(1))
        try await withHostile(retry: retry) { emu, client, ns, outcomes, lines in
            let path = "/namespaces/\(ns)/leases"
            emu.misbehave(.status(500), pathContains: path)
            let start = ContinuousClock.now
            await #expect {
                _ = try await client.list(Lease.self, namespace: ns)
            } throws: { e in
                guard case KubeError.server(500, _, _) = e else { return false }
                return true
            }
            let times = emu.requestTimes(containing: path)
            #expect(times.count == 4, "maxAttempts requests, no more")
            // Full jitter waits at least half of 40, 80, 160 ms.
            #expect(ContinuousClock.now - start >= .milliseconds(140))
            #expect(outcomes.get.failed == 4)
            let retries = lines.get.filter { $0.message.contains("retrying GET") }
            #expect(retries.count == 1 && retries[0].level == .info, "one info line per path per 30 s: \(retries.map(\.message))")

            // A watcher over the same path lists without the client's retries (its own backoff decides), so the
            // server sees one request per watcher failure, ever slower.
            emu.misbehave(.status(500), pathContains: path)
            try await whileWatching(client, ns, config: Self.fast, logger: CapturingLogHandler.logger(lines)) { _ in
                #expect(await eventually(timeout: .seconds(60)) { emu.requestTimes(containing: path).count >= 4 + 6 })
                let lists = Array(emu.requestTimes(containing: path).dropFirst(4))
                #expect(lists[5] - lists[0] >= Self.fast.backoff.minimumTotal(failures: 5))
            }
            let watcherLines = lines.get.filter { $0.message.contains("watch leases") && $0.message.contains("list failed") }
            #expect(watcherLines.contains { $0.level == .warning }, "repeated list failures are warnings")
        }
    }

    @Test func aRedirectLoopStopsAfterTenRedirectsWithAClearErrorAndIsNotRetried() async throws {
        try await withHostile { emu, client, ns, outcomes, _ in
            let path = "/namespaces/\(ns)/leases/loop"
            emu.misbehave(.redirectLoop, pathContains: path)
            await #expect {
                _ = try await client.get(Lease.self, namespace: ns, name: "loop")
            } throws: { e in
                guard case KubeError.tooManyRedirects(let m) = e else { return false }
                return m.contains("more than 10 redirects")
            }
            #expect(emu.requestTimes(containing: path).count == 11, "the request and 10 redirects, once")
            #expect(outcomes.get.failed == 1)
        }
    }

    @Test func aWatchLineThatNeverEndsIsCutAtTheLimitCountedAndResumedWithBackoff() async throws {
        let limits = ResponseLimits(maxWatchLineBytes: 1 << 20)
        try await withHostile(limits: limits) { emu, client, ns, outcomes, lines in
            let watches = "/namespaces/\(ns)/leases?watch=true"
            emu.misbehave(.endlessWatchLine, pathContains: watches)
            // One raw watch: the stream fails with the limit in its message once 1 MiB is held.
            let stream = try await client.watch(Lease.self, namespace: ns, options: WatchOptions(timeoutSeconds: 60))
            await #expect {
                for try await _ in stream {}
            } throws: { e in
                guard case KubeError.responseTooLarge(let limit, let m) = e else { return false }
                return limit == 1 << 20 && m.contains("1 MiB")
            }
            #expect(outcomes.get.streamFailed == 1)
            // The watcher resumes after each cut, waiting longer each time.
            let before = emu.requestTimes(containing: watches).count
            try await whileWatching(client, ns, config: Self.fast, logger: CapturingLogHandler.logger(lines)) { _ in
                #expect(await eventually(timeout: .seconds(60)) { emu.requestTimes(containing: watches).count >= before + 5 })
                let times = Array(emu.requestTimes(containing: watches).dropFirst(before))
                #expect(times[4] - times[0] >= Self.fast.backoff.minimumTotal(failures: 4))
            }
            #expect(lines.get.contains { $0.level >= .info && $0.message.contains("exceeded 1 MiB") })
        }
    }

    @Test func cancellationEndsEveryReadAgainstAServerThatNeverAnswers() async throws {
        try await withHostile { emu, client, ns, _, _ in
            emu.misbehave(.neverAnswer, pathContains: "/namespaces/\(ns)/leases")
            // A list, a watch being opened, and a watcher: each is cancelled while waiting for an answer.
            let reads: [@Sendable () async throws -> Void] = [
                { _ = try await client.list(Lease.self, namespace: ns) },
                { _ = try await client.watch(Lease.self, namespace: ns) },
                { for try await _ in Watcher(client: client, Lease.self, namespace: ns) {} },
            ]
            for read in reads {
                let asked = emu.requestTimes(containing: "/namespaces/\(ns)/leases").count
                let task = Task { try await read() }
                #expect(await eventually { emu.requestTimes(containing: "/namespaces/\(ns)/leases").count > asked })
                let cancelled = ContinuousClock.now
                task.cancel()
                _ = await task.result
                #expect(ContinuousClock.now - cancelled < .seconds(5), "a cancelled read returned \(ContinuousClock.now - cancelled) later")
            }
            // And a read in a stream that never ends: cancelled mid-line.
            emu.behave()
            emu.misbehave(.endlessWatchLine, pathContains: "/namespaces/\(ns)/leases?watch=true")
            let received = Box(0)
            let task = Task {
                for try await _ in try await client.watch(Lease.self, namespace: ns) { received.with { $0 += 1 } }
            }
            #expect(await eventually { emu.requestTimes(containing: "leases?watch=true").count >= 1 })
            let cancelled = ContinuousClock.now
            task.cancel()
            let result = await task.result
            #expect(ContinuousClock.now - cancelled < .seconds(5))
            #expect(received.get == 0)
            if case .failure(let e) = result { #expect(e is CancellationError, "ended by the cancellation, not by \(e)") }
        }
    }

    @Test func aServerThatNeverAnswersTimesOutEachRequestWithinItsDeadline() async throws {
        try await withHostile(retry: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(10)),
                              requestTimeout: .milliseconds(300)) { emu, client, ns, outcomes, _ in
            emu.misbehave(.neverAnswer, pathContains: "/namespaces/\(ns)/leases")
            let start = ContinuousClock.now
            await #expect {
                _ = try await client.get(Lease.self, namespace: ns, name: "x")
            } throws: { e in
                guard case KubeError.timeout = e else { return false }
                return true
            }
            #expect(ContinuousClock.now - start < .seconds(10))
            #expect(outcomes.get.failed == 2)
        }
    }

    @Test func aWatchTheServerEndsAtOnceIsAFailureNotATightLoop() async throws {
        try await withHostile { emu, client, ns, outcomes, lines in
            // 200 and an empty body: the watch ends cleanly before it delivered anything.
            let watches = "/namespaces/\(ns)/leases?watch=true"
            emu.misbehave(.closeWatchesAtOnce, pathContains: watches)
            try await whileWatching(client, ns, config: Self.fast, logger: CapturingLogHandler.logger(lines)) { _ in
                #expect(await eventually(timeout: .seconds(60)) { emu.requestTimes(containing: watches).count >= 6 })
                let times = emu.requestTimes(containing: watches)
                #expect(times[5] - times[0] >= Self.fast.backoff.minimumTotal(failures: 5))
            }
            #expect(outcomes.get.streamFailed >= 5)
        }
    }
}

/// Numbers a client sends the emulator are checked too (issue 16): it serves kubectl and the tests.
@Suite("Emulator input numbers")
struct EmulatorInputNumberTests {
    @Test(.timeLimit(.minutes(2))) func anEventWithASeriesCountBeyondInt64IsRejectedWithTheNumberNotATrap() async throws {
        try await withCluster { cluster, client, ns in
            guard cluster.requireEmulator() != nil else { return }
            for count in ["1e19", "1e20", "-9.5e18", "1e300"] {
                let body = """
                    {"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"huge","namespace":"\(ns)"},
                     "eventTime":"2025-01-01T00:00:00.000000Z","reportingController":"t","reportingInstance":"t","action":"A",
                     "reason":"R","type":"Normal","regarding":{"kind":"Pod","name":"p","namespace":"\(ns)"},
                     "series":{"count":\(count),"lastObservedTime":"2025-01-01T00:00:00.000000Z"}}
                    """
                await #expect(throws: KubeError.self, "count \(count)") {
                    _ = try await client.createRaw(ResourceType(Event.self), namespace: ns, body: Data(body.utf8))
                }
            }
            let events = try await client.list(Event.self, namespace: ns)
            #expect(events.items.isEmpty, "the emulator is still up and stored none of them")
        }
    }
}

/// Lease numbers from flags and from the server saturate instead of trapping (issue 16).
@Suite("Lease numbers")
struct LeaseNumberTests {
    @Test(.timeLimit(.minutes(2))) func aHugeLeaseDurationAndAServersMaximalTransitionCountDoNotTrapTheElector() async throws {
        try await withCluster { _, client, ns in
            // Someone else's lease, expired long ago, whose transition count is already Int32.max.
            var spec = Lease.Spec()
            spec.holderIdentity = "ghost"
            spec.leaseDurationSeconds = 1
            spec.leaseTransitions = Int32.max
            spec.renewTime = "2000-01-01T00:00:00.000000Z"
            _ = try await client.create(Lease(metadata: ObjectMeta(name: "lock", namespace: ns), spec: spec))
            // 2562047h is the longest Go duration the flags take: more seconds than an Int32 holds. The elector
            // waits a lease duration from when it first sees the lease, so give it a short one to take over.
            let heir = LeaderElector(client: client, namespace: ns, name: "lock", identity: "heir",
                                     config: LeaderElectionConfig(leaseDuration: .milliseconds(300), renewDeadline: .milliseconds(200),
                                                                  retryPeriod: .milliseconds(50)))
            let gained = Box(false)
            let t = Task { await heir.run { if $0 == .gained { gained.with { $0 = true } } } }
            #expect(await eventually { gained.get })
            let taken = try await client.get(Lease.self, namespace: ns, name: "lock")
            #expect(taken.spec?.leaseTransitions == Int32.max, "saturated, not overflowed")
            t.cancel()
            await t.value
            // A fresh lease written by an elector whose duration does not fit the field.
            let long = LeaderElector(client: client, namespace: ns, name: "long", identity: "a",
                                     config: LeaderElectionConfig(leaseDuration: .seconds(2_562_047 * 3600)))
            let gainedLong = Box(false)
            let t2 = Task { await long.run { if $0 == .gained { gainedLong.with { $0 = true } } } }
            #expect(await eventually { gainedLong.get })
            let written = try await client.get(Lease.self, namespace: ns, name: "long")
            #expect(written.spec?.leaseDurationSeconds == Int32.max)
            t2.cancel()
            await t2.value
        }
    }
}
