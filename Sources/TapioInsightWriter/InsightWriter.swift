import Foundation
import KubeClient
import KubeRuntime
import Logging
import Synchronization
import TapioCorrelation
import TapioModel
import TapioNode
import TapioSinks
import TapioKube

/// Writes insights as `Insight` custom resources (and, for new or escalated ones, Events) — the agent's sink, and the
/// operator's for cluster-level findings.
///
/// Writes never block the engine: updates wait in a bounded map keyed by identity (the newest update of an
/// identity replaces the one waiting, so nothing but stale intermediate states is skipped). When the API server
/// is unreachable or throttling, a circuit breaker stops hammering it, the pending map keeps each identity's
/// newest state, and everything is written once it answers again; identities dropped because the map was full
/// are counted (``dropped``) — a resolution last, as only its identity and instant are kept of it — and those still
/// active are written again with their next update or once the map has drained (``status(_:)``: a resync), so a
/// dropped detection or update comes back, its Event with it; a dropped resolution is then written too, unless the
/// finding was seen again. Writes are also paced by a token bucket (`writesPerSecond`, `writeBurst`): under an
/// incident storm an agent's load on the API server stays bounded, and what waits meanwhile is coalesced per Insight.
public final class InsightWriter: InsightSink {
    /// The server-side apply field manager: `tapio-agent`, or `tapio-operator` for the operator's findings.
    let fieldManager: String
    public static let insights = ResourceType(apiVersion: "tapio.io/v1alpha1", kind: "Insight", plural: "insights", namespaced: true)

    struct State {
        var pending: [String: InsightUpdate] = [:]
        var order: [String] = []
        /// Refusals (401/403) so far per identity: retried a few times, then given up on.
        var refusals: [String: Int] = [:]
        /// 409s in a row per identity (written by another between its spec and its status): retried at once, but
        /// from the third on each counts as a failure for the breaker and the identity waits behind the others, so a
        /// writer that always interposes is not raced at the full write pace, nor holds up the rest.
        var conflicts: [String: Int] = [:]
        /// Updates lost: the oldest waiting identity, pushed out by a full map; and writes given up on (refused past
        /// ``maxRefusals``, or rejected: 400, 404, 422 — retrying the same document cannot help).
        var droppedFull: UInt64 = 0
        var droppedFailed: UInt64 = 0
        var written: UInt64 = 0
        var failures: UInt64 = 0
        /// Writes in flight (``flush()`` may run from `run` and a shutdown at once).
        var writing = 0
        /// The last instant nothing was pending or being written (``writtenThrough``), while something is.
        var idleUntil = Date()
        /// Since the first update pushed out of the full map and not yet written again: what ``writtenThrough``
        /// says until then (``status(_:)``).
        var lostSince: Date?
        /// The identities pushed out and not emitted since, with the change to write them as: `new` or `escalated`
        /// for a lost announcement (its Event goes with the rewrite), else `updated`. At most `capacity`; past that,
        /// `lostUncounted` and a resync writes every active Insight.
        var lost: [String: InsightChange] = [:]
        var lostUncounted = false
        /// Resolutions pushed out (the oldest ``pushOutScan`` waiting were all resolutions): their Insights stand
        /// Active until resolved again (``status(_:)``), unless seen again meanwhile. Only where and when, at most
        /// `capacity`; past that a resolution is lost (counted in `droppedFull` as every push-out is).
        var lostResolutions: [String: LostResolution] = [:]
        /// Handed in by a resync, resolved by ``flush()`` once nothing else waits; and those being resolved (a newer
        /// update of the identity takes its key out of either: it is seen again).
        var resolveAgain: [String: LostResolution] = [:]
        var resolving: Set<String> = []
        /// `droppedFull` when the resync in progress was handed in; nil while none is.
        var resyncMark: UInt64?
        /// A resync was skipped: more active Insights than the map holds (said once).
        var resyncTooBigSaid = false
        var breaker = CircuitBreaker(failureThreshold: 3, coolDown: .seconds(2))
        var pace: TokenBucket
    }

    let client: KubeClient
    let recorder: EventRecorder?
    /// The node whose findings these are (label `tapio.io/node`); nil for the operator's cluster-level findings.
    let nodeName: String?
    /// Namespace for insights about subjects without one (nodes, the cluster, local cgroups).
    let ownNamespace: String
    /// Every insight goes to `ownNamespace`, whatever its subject (the operator's cluster-level findings).
    let alwaysOwnNamespace: Bool
    let capacity: Int
    /// Where and when a resolution pushed out of the full map was made.
    struct LostResolution {
        let namespace: String
        let at: UInt64
    }
    /// The earliest `lastSeen` written, in nanoseconds since the epoch: the agent's start (its heartbeat Lease's
    /// `acquireTime`). The operator resolves a node's Insights last seen before its agent started; a wall clock
    /// stepped back after the start would otherwise date a re-detection before it.
    let notBefore: UInt64
    let logger: Logger
    /// For tests: runs between an update's spec write and its status write, to make a race happen there.
    let afterSpecWriteHook = Mutex<(@Sendable (String) async -> Void)?>(nil)
    private let state: Mutex<State>
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    public init(client: KubeClient, recorder: EventRecorder?, nodeName: String?, ownNamespace: String,
                alwaysOwnNamespace: Bool = false, fieldManager: String = "tapio-agent", capacity: Int = 10_000,
                writesPerSecond: Double = 10, writeBurst: Int = 50, notBefore: Date? = nil,
                logger: Logger = Logger(label: "tapio.insights")) {
        // Up to the next millisecond, the precision `lastSeen` is written in (the Lease's time has microseconds).
        let millis = ((notBefore?.timeIntervalSince1970 ?? 0) * 1000).rounded(.up)
        self.notBefore = millis > 0 && millis < 1.8e13 ? UInt64(millis) * 1_000_000 : 0
        state = Mutex(State(pace: TokenBucket(perSecond: writesPerSecond, burst: writeBurst)))
        self.client = client
        self.alwaysOwnNamespace = alwaysOwnNamespace
        self.fieldManager = fieldManager
        self.recorder = recorder
        self.nodeName = nodeName
        self.ownNamespace = ownNamespace
        self.capacity = capacity
        self.logger = logger
        (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Updates lost so far, for any reason (``drops``).
    public var dropped: UInt64 { state.withLock { $0.droppedFull &+ $0.droppedFailed } }
    /// Updates lost so far: pushed out of the full pending map, and writes given up on (`tapio_writes_dropped`).
    public var drops: (full: UInt64, failed: UInt64) { state.withLock { ($0.droppedFull, $0.droppedFailed) } }
    public var written: UInt64 { state.withLock { $0.written } }
    /// Updates waiting, and lost resolutions waiting to be written again.
    public var pendingCount: Int { state.withLock { $0.pending.count + $0.resolveAgain.count + $0.resolving.count } }
    /// Something waits: an update, or a lost resolution to write again.
    var waiting: Bool { state.withLock { !$0.pending.isEmpty || !$0.resolveAgain.isEmpty } }

    /// Every update emitted before this instant has been written or given up on: now while nothing is pending or
    /// being written, else the last instant that was so. The heartbeat carries it, for the operator to tell that a
    /// restarted agent has written again what it still holds (``TapioOperator`` `LeftBehindInsights`). An update
    /// pushed out of the full map holds it at that instant until what was lost has been written again:
    /// moving on, it would have told the operator that a re-detection whose write was lost had been written.
    public var writtenThrough: Date {
        state.withLock { s in s.lostSince ?? (s.pending.isEmpty && s.writing == 0 ? Date() : s.idleUntil) }
    }

    public func emit(_ updates: [InsightUpdate]) async {
        state.withLock { s in
            if !updates.isEmpty, s.pending.isEmpty, s.writing == 0 { s.idleUntil = Date() }
            for var u in updates {
                let key = u.identity.name
                // Seen again (or resolved again): a lost resolution of it is not to be written.
                s.lostResolutions[key] = nil
                s.resolveAgain[key] = nil
                s.resolving.remove(key)
                // A newer update of an identity pushed out: it is no longer lost, and it carries the announcement
                // that was (written as an update, the Insight would have appeared without its Event).
                if let was = s.lost.removeValue(forKey: key), was != .updated, u.change == .updated { u.change = was }
                if s.pending[key] == nil {
                    if s.pending.count >= capacity { pushOutOldest(&s) }
                    s.order.append(key)
                } else if let waiting = s.pending[key], waiting.change == .new || waiting.change == .escalated,
                          u.change == .updated {
                    // Keep the reason to announce it: an update must not hide that it was new.
                    var merged = u
                    merged.change = waiting.change
                    s.pending[key] = merged
                    continue
                }
                s.pending[key] = u
            }
        }
        wake.yield()
    }

    /// How far into the waiting order a full map looks for something other than a resolution to push out: the
    /// cost of a push-out stays bounded when resolutions crowd the head (an engine evicting thousands of subjects).
    static let pushOutScan = 256

    /// Full: the oldest waiting identity goes (counted), never the newest news — and not a resolution while anything
    /// else waits among the oldest ``pushOutScan``: a lost update is written again whole once the map drains
    /// (``status(_:)``), a lost resolution only as a status (``InsightResolution``; its spec keeps what was last
    /// written of the finding), from its identity and instant, at most `capacity` of them.
    private func pushOutOldest(_ s: inout State) {
        let scan = s.order.prefix(Self.pushOutScan)
        guard let at = scan.firstIndex(where: { s.pending[$0]?.change != .resolved }) ?? s.order.indices.first else { return }
        let oldest = s.order.remove(at: at)
        let lost = s.pending.removeValue(forKey: oldest)
        s.refusals[oldest] = nil
        s.conflicts[oldest] = nil
        s.droppedFull &+= 1
        if s.lostSince == nil { s.lostSince = s.idleUntil }
        guard let lost, lost.change != .resolved else {
            // A lost resolution: the finding is no longer active, so no resync writes it; remembered to be resolved.
            s.lost[oldest] = nil
            if let lost, s.lostResolutions.count < capacity {
                s.lostResolutions[oldest] = LostResolution(namespace: namespace(for: lost), at: lost.observedAt)
            }
            return
        }
        let change = lost.change
        let was = s.lost[oldest]
        if was == nil, s.lost.count >= capacity {
            s.lostUncounted = true
            return
        }
        // An escalation after a lost detection is still announced as detected.
        s.lost[oldest] = was == .new ? .new : (change == .updated ? (was ?? .updated) : change)
    }

    /// The resync: once a second the pipeline hands its sinks the active Insights. After updates were pushed out of
    /// the full map, the first time nothing waits, those of them still active and not emitted since are handed in
    /// again (every active one if more were lost than the map holds), lost announcements as such; once that is
    /// written with nothing pushed out meanwhile, ``writtenThrough`` moves on again (else the next resync). Lost
    /// resolutions of findings not active again are handed to ``flush()`` with it: each Insight still Active is resolved.
    public func status(_ status: PipelineStatus) async {
        let resync = state.withLock { s -> (updates: [InsightUpdate], resolutions: Int)? in
            guard s.lostSince != nil, s.pending.isEmpty, s.resolveAgain.isEmpty, s.writing == 0 else { return nil }
            if let mark = s.resyncMark {
                // The resync handed in earlier is written: done, unless more was pushed out meanwhile.
                s.resyncMark = nil
                if s.droppedFull == mark {
                    s.lostSince = nil
                    return nil
                }
            }
            if s.lost.isEmpty && !s.lostUncounted && s.lostResolutions.isEmpty {
                // Every identity pushed out was emitted again since, and is written.
                s.lostSince = nil
                return nil
            }
            // Lost resolutions of what is not active again: resolved by `flush` once this resync is written.
            let active = Set(status.activeInsights.map(\.identity.name))
            for (key, lost) in s.lostResolutions where !active.contains(key) { s.resolveAgain[key] = lost }
            s.lostResolutions = [:]
            let resolutions = s.resolveAgain.count
            let all = s.lostUncounted
            guard !all || status.activeInsights.count <= capacity else {
                if !s.resyncTooBigSaid {
                    s.resyncTooBigSaid = true
                    logger.warning("\(status.activeInsights.count) active Insights, more than the \(capacity) the writer holds: updates pushed out of its full queue are not written again")
                }
                return ([], resolutions)
            }
            s.resyncMark = s.droppedFull
            let lost = s.lost
            s.lost = [:]
            s.lostUncounted = false
            let updates = status.activeInsights.compactMap { u -> InsightUpdate? in
                guard all || lost[u.identity.name] != nil else { return nil }
                var u = u
                if let change = lost[u.identity.name], change != .updated { u.change = change }
                return u
            }
            return (updates, resolutions)
        }
        guard let resync else { return }
        if resync.resolutions > 0 {
            logger.info("resolving \(resync.resolutions) Insight\(resync.resolutions == 1 ? "" : "s") again: their resolutions were pushed out of the full write queue")
            wake.yield()
        }
        guard !resync.updates.isEmpty else { return }
        logger.info("writing \(resync.updates.count) active Insight\(resync.updates.count == 1 ? "" : "s") again: their updates were pushed out of the full write queue")
        await emit(resync.updates)
    }

    /// Writes pending insights until cancelled; then one last attempt to flush (for graceful shutdown).
    public func run() async {
        for await _ in wakes {
            await flush()
            // Something is still pending after a failure: retry after the breaker's cool-down.
            if waiting { try? await Task.sleep(for: .milliseconds(500)); wake.yield() }
            if Task.isCancelled { break }
        }
        await flush()
    }

    /// One pass over what is pending.
    public func flush() async {
        while let (key, update) = next() {
            defer { state.withLock { $0.writing -= 1 } }
            do {
                try await write(update)
                state.withLock { s in
                    s.refusals[key] = nil
                    s.conflicts[key] = nil
                    s.written &+= 1
                    s.breaker.recordSuccess(now: MonotonicClock.wallNanos())
                }
            } catch {
                var retry = isRetryable(error)
                let refused = Self.isRefusal(error)
                // Written by another meanwhile (the status's precondition): not the server failing; written again.
                let raced = if case .conflict? = error as? KubeError { true } else { false }
                state.withLock { s in
                    s.failures &+= 1
                    let inARow = raced ? (s.conflicts[key] ?? 0) + 1 : 0
                    s.conflicts[key] = raced ? inARow : nil
                    if !raced || inARow >= 3 { s.breaker.recordFailure(now: MonotonicClock.wallNanos()) }
                    // From the third 409 in a row the identity also waits behind the others: the breaker's trial
                    // write after its cool-down is then someone else's, not the one that keeps being raced.
                    if inARow >= 3, retry, s.pending[key] == nil {
                        s.pending[key] = update
                        s.order.append(key)
                        return
                    }
                    // A kube-apiserver that just started refuses ServiceAccounts for a few seconds while its
                    // authorization caches fill (seen on the real cluster: a CrashLoop update was lost to one 403).
                    // A refusal is retried up to `maxRefusals` times (the breaker spaces them); one that lasts is a
                    // missing permission, and the write is given up (counted in `drops`).
                    if refused {
                        let n = (s.refusals[key] ?? 0) + 1
                        s.refusals[key] = n
                        retry = n < Self.maxRefusals
                        if !retry { s.refusals[key] = nil }
                    }
                    // Put back, or given up on (counted) — unless something newer for the same identity arrived
                    // meanwhile: it replaces this one either way.
                    if s.pending[key] == nil {
                        if retry {
                            s.pending[key] = update
                            s.order.insert(key, at: 0)
                        } else {
                            s.droppedFailed &+= 1
                        }
                    }
                }
                if raced {
                    logger.debug("Insight \(key) was written by another between its spec and its status: writing it again")
                    continue
                }
                // Rate-limited: against a failing server the breaker retries every few seconds.
                client.logLimiter.log(logger, .warning, key: "insight write \(retry)",
                                      "writing Insight \(key) failed\(retry ? " (will retry)" : ""): \(error)")
                if retry { return }
            }
        }
        await resolveLost()
    }

    /// Lost resolutions handed in by a resync, once nothing else waits: an Insight still Active is resolved as of
    /// its resolution (``InsightResolution``, only if unchanged since it was read here), saying it was written late.
    private func resolveLost() async {
        let resolver = nodeName.map { "node \($0)'s agent" } ?? "the operator"
        while let (key, lost) = nextLostResolution() {
            defer { state.withLock { $0.writing -= 1 } }
            let at = Date(timeIntervalSince1970: Double(max(lost.at, notBefore)) / 1e9)
            do {
                let o = try await client.get(InsightObject.self, namespace: lost.namespace, name: key)
                // Not if seen again meanwhile (a newer update took it out of `resolving`).
                if (o.status?.phase ?? .active) == .active, state.withLock({ $0.resolving.contains(key) }) {
                    try await InsightResolution.resolve(o, client: client, lastSeen: at,
                                                        why: "cleared at \(at.formatted(.iso8601)); written late, its write queue was full",
                                                        by: resolver, onlyIfUnchanged: true, logger: logger)
                    state.withLock { $0.written &+= 1 }
                }
                state.withLock { s in
                    s.resolving.remove(key)
                    s.breaker.recordSuccess(now: MonotonicClock.wallNanos())
                }
            } catch KubeError.notFound {
                // Never written, or deleted since: nothing stands Active.
                _ = state.withLock { $0.resolving.remove(key) }
            } catch {
                // Not retried: an Insight this version cannot read (another version's: `KubeError.decoding`) will not
                // read on a retry either.
                let retry = isRetryable(error)
                // Written since it was read: judged again on a fresh read.
                let raced = if case .conflict? = error as? KubeError { true } else { false }
                state.withLock { s in
                    s.failures &+= 1
                    if !raced { s.breaker.recordFailure(now: MonotonicClock.wallNanos()) }
                    if s.resolving.remove(key) != nil {
                        if retry { s.resolveAgain[key] = lost } else { s.droppedFailed &+= 1 }
                    }
                }
                if raced { continue }
                client.logLimiter.log(logger, .warning, key: "insight resolve \(retry)",
                                      "resolving Insight \(key) again failed\(retry ? " (will retry)" : ""): \(error)")
                if retry { return }
            }
        }
    }

    private func nextLostResolution() -> (String, LostResolution)? {
        state.withLock { s in
            let now = MonotonicClock.wallNanos()
            guard s.order.isEmpty, let (key, lost) = s.resolveAgain.first, s.breaker.allow(now: now), s.pace.take(now: now)
            else { return nil }
            s.resolveAgain[key] = nil
            s.resolving.insert(key)
            s.writing += 1
            return (key, lost)
        }
    }

    private func next() -> (String, InsightUpdate)? {
        state.withLock { s in
            let now = MonotonicClock.wallNanos()
            guard !s.order.isEmpty, s.breaker.allow(now: now), s.pace.take(now: now) else { return nil }
            let key = s.order.removeFirst()
            guard let u = s.pending.removeValue(forKey: key) else { return nil }
            s.writing += 1
            return (key, u)
        }
    }

    /// How many refusals (401/403) of one identity's write are retried before it is given up.
    static let maxRefusals = 5

    static func isRefusal(_ error: any Error) -> Bool {
        switch error as? KubeError {
        case .forbidden?, .unauthorized?: true
        default: false
        }
    }

    private func isRetryable(_ error: any Error) -> Bool {
        guard let k = error as? KubeError else { return true }
        switch k {
        case .tooManyRequests, .timeout, .server, .transport, .conflict, .gone: return true
        default: return false
        }
    }

    /// The resourceVersion of a written object as the server answered it (nil when the answer does not say).
    static func resourceVersion(of answer: Data) -> String? {
        struct Answer: Decodable {
            struct Meta: Decodable { let resourceVersion: String? }
            let metadata: Meta
        }
        return (try? JSONDecoder().decode(Answer.self, from: answer))?.metadata.resourceVersion.flatMap { $0.isEmpty ? nil : $0 }
    }

    func namespace(for u: InsightUpdate) -> String { alwaysOwnNamespace ? ownNamespace : u.spec.subject.namespace ?? ownNamespace }

    /// Server-side apply of the spec and labels, then of the status through the status subresource.
    func write(_ update: InsightUpdate) async throws {
        let ns = namespace(for: update)
        let name = update.identity.name
        var u = await carriedOver(update, namespace: ns)
        u.observedAt = max(u.observedAt, notBefore)
        let phase = await resolvedPhase(u, namespace: ns)
        if phase == .remediated, u.spec.summary.hasPrefix("Resolved: ") {
            u.spec.summary = "Remediated: " + u.spec.summary.dropFirst("Resolved: ".count)
        }
        let object = InsightDocument.object(u, namespace: ns, nodeName: nodeName)
        let written = try await client.patchRaw(Self.insights, namespace: ns, name: name, patch: object, patchType: .apply,
                                                options: WriteOptions(fieldManager: fieldManager), force: true)
        await afterSpecWriteHook.withLock { $0 }?(name)
        // The status goes only onto the spec just written: a write in between (the operator resolving the Insight,
        // its spec then saying "Resolved: ") answers 409, and the whole update is written again — else an Active
        // status would stand under the other writer's spec.
        let status = InsightDocument.status(u, namespace: ns, phase: phase, resourceVersion: Self.resourceVersion(of: written))
        _ = try await client.patchRaw(Self.insights, namespace: ns, name: name, subresource: "status", patch: status,
                                      patchType: .apply, options: WriteOptions(fieldManager: fieldManager), force: true)
        if u.change == .new || u.change == .escalated, let recorder {
            // About the pod when there is one; a node's or the cluster's finding is told about the Insight itself.
            let s = u.spec.subject
            let regarding = s.namespace != nil && s.kind == "Pod"
                ? ObjectReference(apiVersion: "v1", kind: s.kind, name: s.name, namespace: s.namespace, uid: s.uid)
                : ObjectReference(apiVersion: InsightObject.apiVersion, kind: InsightObject.kind, name: name, namespace: ns)
            recorder.record(regarding: regarding,
                            type: u.spec.severity == .info ? .normal : .warning,
                            reason: u.spec.type.rawValue, action: u.change == .new ? "Detected" : "Escalated",
                            note: InsightDocument.note(u), annotations: InsightDocument.eventAnnotations(u))
        }
    }
}

extension TapioMetrics {
    /// `tapio_writes_dropped` for a process's Insight writer and Event recorders: what they lost so far.
    public func writesDropped(insights writer: InsightWriter, events recorders: [EventRecorder]) {
        let d = writer.drops
        writesDropped(what: "insights", full: d.full, failed: d.failed)
        writesDropped(what: "events", full: recorders.reduce(0) { $0 &+ UInt64(max(0, $1.shedCount)) },
                      failed: recorders.reduce(0) { $0 &+ UInt64(max(0, $1.failedCount)) })
    }
}

extension InsightWriter {
    /// A finding the engine calls new may already be Active in the cluster: written before this process restarted
    /// (the engine starts empty, and the kubelet still reports the last OOM kill in the pod's status), or by the
    /// agent this one replaced. Then it was announced already: it is written as an update — no second Event —, keeping
    /// the stored first sighting and never lowering the count.
    func carriedOver(_ u: InsightUpdate, namespace: String) async -> InsightUpdate {
        guard u.change == .new,
              let existing = try? await client.get(InsightObject.self, namespace: namespace, name: u.identity.name),
              let status = existing.status, status.phase == .active,
              // Written by a writer, not the CRD's defaults: an Insight whose first spec write went through and whose
              // status did not (a 409, retried) reads Active too, and was never announced.
              status.lastSeen != nil else { return u }
        var u = u
        u.change = .updated
        if let first = status.firstSeen.flatMap(Formatting.parseRFC3339), first < u.firstSeenAt { u.firstSeenAt = first }
        u.occurrences = max(u.occurrences, status.occurrences)
        return u
    }
}

extension InsightWriter {
    /// The phase a resolution is written with: `Remediated` when the operator applied the Insight's fix (its status
    /// says `Applied`) and the condition then cleared — e.g. the patched Deployment replaced the pod —, else
    /// `Resolved`. Nil for anything but a resolution (the update's own phase, `Active`).
    func resolvedPhase(_ u: InsightUpdate, namespace: String) async -> InsightPhase? {
        guard u.change == .resolved else { return nil }
        let existing = try? await client.get(InsightObject.self, namespace: namespace, name: u.identity.name)
        return existing?.status?.remediation?.state == .applied ? .remediated : .resolved
    }
}

/// The JSON documents the writer sends.
public enum InsightDocument {
    public static func object(_ u: InsightUpdate, namespace: String, nodeName: String?) -> Data {
        struct Meta: Encodable {
            let name: String
            let namespace: String
            let labels: [String: String]
        }
        struct Doc: Encodable {
            let apiVersion = "tapio.io/v1alpha1"
            let kind = "Insight"
            let metadata: Meta
            let spec: InsightSpec
        }
        var labels = [
            "tapio.io/type": u.spec.type.rawValue,
            "tapio.io/severity": u.spec.severity.rawValue,
            "tapio.io/subject-kind": labelValue(u.spec.subject.kind),
            "tapio.io/subject-name": labelValue(u.spec.subject.name),
        ]
        if let c = u.spec.subject.container { labels["tapio.io/container"] = labelValue(c) }
        if let nodeName { labels["tapio.io/node"] = labelValue(nodeName) }
        return encode(Doc(metadata: Meta(name: u.identity.name, namespace: namespace, labels: labels), spec: bounded(u.spec)))
    }

    /// With `resourceVersion`, the status applies only to that version of the object (409 otherwise).
    public static func status(_ u: InsightUpdate, namespace: String, phase: InsightPhase? = nil,
                              resourceVersion: String? = nil) -> Data {
        struct Meta: Encodable {
            let name: String
            let namespace: String
            let resourceVersion: String?
        }
        struct Doc: Encodable {
            let apiVersion = "tapio.io/v1alpha1"
            let kind = "Insight"
            let metadata: Meta
            let status: InsightStatus
        }
        let status = InsightStatus(phase: phase ?? (u.change == .resolved ? .resolved : .active),
                                   firstSeen: Formatting.rfc3339(nanos: u.firstSeenAt),
                                   lastSeen: Formatting.rfc3339(nanos: u.observedAt), occurrences: max(1, u.occurrences))
        return encode(Doc(metadata: Meta(name: u.identity.name, namespace: namespace, resourceVersion: resourceVersion),
                          status: status))
    }

    /// The spec within the CRD's bounds (title ≤ 256, summary ≤ 4096, ≤ 64 evidence entries — the newest —,
    /// ≤ 32 resources, ≤ 16 actions), so the API server never rejects a finding for its length.
    public static func bounded(_ s: InsightSpec) -> InsightSpec {
        var s = s
        s.title = String(s.title.prefix(256))
        s.summary = String(s.summary.prefix(4096))
        s.evidence = Array(s.evidence.suffix(64))
        s.resources = Array(s.resources.prefix(32))
        if var r = s.remediation {
            r.actions = Array(r.actions.prefix(16))
            s.remediation = r
        }
        return s
    }

    /// The Event note: what happened, the prediction and the first remediation in words, each said once (≤ 1024
    /// characters). The summary usually starts with the subject, like the title, and says more: then the title is
    /// left out, and a prediction the summary already gives (its probability) is not repeated.
    static func note(_ u: InsightUpdate) -> String {
        let spec = u.spec
        var parts: [String] = []
        let restated = spec.title.split(separator: " ").first.map { spec.summary.hasPrefix($0) } ?? false
        if !restated { parts.append(spec.title + ".") }
        if let p = spec.prediction, !spec.summary.contains("probability") {
            parts.append("\(p.kind)\(p.timeToEvent.map { " in \($0)" } ?? "") (probability \(Formatting.percent(p.probability)), "
                         + "confidence \(Formatting.percent(p.confidence))).")
        }
        parts.append(spec.summary)
        if let a = spec.remediation?.actions.first {
            parts.append("Suggested: \(a.title)\(a.commands.first.map { ": \($0)" } ?? "")")
        }
        return String(parts.joined(separator: " ").prefix(1024))
    }

    /// `tapio.io/prediction` and `tapio.io/remediation` as JSON, for alerting tools (Event annotations).
    static func eventAnnotations(_ u: InsightUpdate) -> [String: String] {
        var a: [String: String] = ["tapio.io/insight": u.identity.name]
        if let p = u.spec.prediction { a["tapio.io/prediction"] = String(decoding: encode(p), as: UTF8.self) }
        if let r = u.spec.remediation { a["tapio.io/remediation"] = String(decoding: encode(r), as: UTF8.self) }
        return a
    }

    /// Label values: ≤ 63 characters of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
    public static func labelValue(_ s: String) -> String {
        var v = String(s.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") ? $0 : "_" }.prefix(63))
        while let f = v.first, !(f.isLetter || f.isNumber) { v.removeFirst() }
        while let l = v.last, !(l.isLetter || l.isNumber) { v.removeLast() }
        return v
    }

    static func encode(_ v: some Encodable) -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(v)) ?? Data("{}".utf8)
    }
}
