import Foundation
import TapioModel

/// Line-by-line reader of the scenario format (Tests/Scenarios/FORMAT.md): one line in, at most one event out, so
/// a replay can stream. JSON is decoded into a local dictionary only here, at the edge; what comes out is typed
/// events.
struct ScenarioParser {
    /// The header (with no events), once its line has been read.
    private(set) var header: Scenario?
    /// The latest event's instant.
    private(set) var lastT: UInt64 = 0
    private var pods = ScenarioPods(capacity: CorrelationConfig().maxSubjects)

    // The ranges of integer fields (FORMAT.md lists them).
    /// Process ids: Linux's are positive 32-bit numbers (0: unknown).
    static let pids: ClosedRange<Int32> = 0...Int32.max
    /// A process's exit status as the kernel reports it.
    static let kernelExitCodes: ClosedRange<Int32> = 0...255
    /// A container's exit code as pod status reports it (an int32 there).
    static let exitCodes: ClosedRange<Int32> = Int32.min...Int32.max
    /// Linux signal numbers, real-time ones included (0: none).
    static let signals: ClosedRange<Int32> = 0...64
    /// Linux errno values (the kernel's MAX_ERRNO).
    static let errnos: ClosedRange<Int32> = 0...4095
    /// A container's restart count (an int32 in pod status).
    static let restartCounts: ClosedRange<Int> = 0...Int(Int32.max)

    /// At most this many pods' latest `pod` lines are remembered (the replay sets the engine's `maxSubjects`).
    var podCapacity: Int {
        get { pods.capacity }
        set { pods.capacity = newValue }
    }

    /// Reads one line that is neither blank nor a comment: the header first, then one event per line.
    mutating func consume(_ line: some StringProtocol, number: Int) throws -> (at: UInt64, event: AttributedEvent)? {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        } catch {
            throw ScenarioError(line: number, field: nil, message: "not a JSON object: \(line.prefix(60))")
        }
        guard let dict = object as? [String: Any] else {
            throw ScenarioError(line: number, field: nil, message: "expected a JSON object")
        }
        var f = Fields(dict: dict, line: number)
        if header == nil {
            try readHeader(&f)
            return nil
        }
        return try readEvent(&f)
    }

    /// The header, or the error for a scenario without one (`lastLine`: the number of lines read).
    func finish(lastLine: Int) throws -> Scenario {
        guard var s = header else {
            throw ScenarioError(line: max(1, lastLine), field: "tapioScenario", message: "no header line")
        }
        s.endNanos = max(s.endNanos, lastT)
        return s
    }

    /// What `t` (and other times) may be: from `start` to the end of the engine's clock.
    private func timeRange(_ start: UInt64) -> String {
        "expected 0 to \((UInt64.max - start) / 1_000_000_000) seconds after the start "
            + "(the clock ends at \(Formatting.lastInstant))"
    }

    /// An instant given as seconds after the scenario's start.
    private func instant(_ f: Fields, _ key: String) throws -> UInt64? {
        let start = header?.startNanos ?? 0
        return try f.optNanos(key, max: UInt64.max - start, range: timeRange(start)).map { start + $0 }
    }

    // MARK: Header

    private mutating func readHeader(_ f: inout Fields) throws {
        guard let v = try f.optInt("tapioScenario", in: Int64.min...Int64.max) else {
            throw ScenarioError(line: f.line, field: "tapioScenario", message: "the first line must be the header {\"tapioScenario\": 1, …}")
        }
        guard v == Scenario.formatVersion else {
            throw ScenarioError(line: f.line, field: "tapioScenario", message: "version \(v) is not supported (this Tapio reads version \(Scenario.formatVersion))")
        }
        var start: UInt64 = 1_795_000_000 * 1_000_000_000  // a fixed default instant, so replays are reproducible
        if let s = try f.optString("start") {
            let range = "an RFC 3339 time from 1970-01-01T00:00:00Z to \(Formatting.lastInstant)"
            guard let seconds = Formatting.rfc3339Seconds(s) else {
                throw f.error("start", "expected \(range), such as 2026-11-29T10:00:00Z")
            }
            guard seconds >= 0, let n = Formatting.parseRFC3339(s) else {
                throw f.error("start", "\(s) is out of range; expected \(range)")
            }
            start = n
        }
        var config = CorrelationConfig()
        if let c = f.dict["config"] {
            guard let cd = c as? [String: Any] else { throw f.error("config", "expected an object") }
            config = try ScenarioConfig.read(Fields(dict: cd, line: f.line, prefix: "config."))
        }
        var expected: [InsightType] = []
        if let e = f.dict["expect"] {
            guard let list = e as? [String] else { throw f.error("expect", "expected a list of insight types") }
            for x in list {
                guard let t = InsightType(rawValue: x) else {
                    throw f.error("expect", "unknown insight type \(x) (one of \(InsightType.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                expected.append(t)
            }
        }
        let duration = try f.optNanos("duration", max: UInt64.max - start, range: timeRange(start)) ?? 0
        var truth: Scenario.Truth?
        if let t = f.dict["truth"] {
            guard let td = t as? [String: Any] else { throw f.error("truth", "expected an object {\"oomAt\": …, \"shape\": …}") }
            let tf = Fields(dict: td, line: f.line, prefix: "truth.")
            let oom = try tf.optNanos("oomAt", max: UInt64.max - start, range: timeRange(start))
            truth = Scenario.Truth(oomAt: oom.map { start + $0 }, shape: try tf.optString("shape") ?? "")
            // The scorer takes a forecast every 10 s up to the kill or the end: a span of years would hold it for
            // hours and its forecasts in gigabytes.
            let scored = oom ?? duration
            if scored > Scenario.Truth.maxScoredNanos {
                throw f.error(oom != nil ? "truth.oomAt" : "duration",
                              "a labelled scenario is scored up to its kill or, without one, its end: at most "
                                  + "\(GoDuration.format(.nanoseconds(Int64(Scenario.Truth.maxScoredNanos)))) after start")
            }
        }
        header = Scenario(name: try f.optString("name") ?? "", description: try f.optString("description") ?? "",
                          startNanos: start, endNanos: start + duration, config: config,
                          expectedTypes: expected, truth: truth, events: [])
        pods.capacity = config.maxSubjects
        lastT = start
    }

    // MARK: Events

    private mutating func readEvent(_ f: inout Fields) throws -> (at: UInt64, event: AttributedEvent) {
        guard let at = try instant(f, "t") else { throw f.error("t", "missing (seconds, e.g. 12.5 or \"1m30s\")") }
        guard at >= lastT else {
            let t = Self.seconds(at - (header?.startNanos ?? 0))
            throw f.error("t", "time goes backwards (\(t) s is before the previous event)")
        }
        // A labelled scenario without a kill is scored up to its end, which its last event may push back: bounded
        // as the header's `duration` is (the scorer takes a forecast every 10 s).
        if let h = header, let truth = h.truth, truth.oomAt == nil, at - h.startNanos > Scenario.Truth.maxScoredNanos {
            throw f.error("t", "a labelled scenario without a kill is scored up to its last event: at most "
                              + "\(GoDuration.format(.nanoseconds(Int64(Scenario.Truth.maxScoredNanos)))) after start")
        }
        let type = try f.string("type")
        var event: AttributedEvent?
        func add(_ e: AttributedEvent) { event = e }
        func cluster(_ k: ClusterEvent.Kind) { add(.cluster(ClusterEvent(timestampNanos: at, kind: k))) }

        switch type {
        case "memory":
            let ws = try f.bytes("workingSet")
            let usage = try f.optBytes("usage") ?? ws
            let (subject, ctx, pid, comm, cg) = try nodeSubject(&f)
            var limit = ctx?.memoryLimitBytes
            if f.dict["limit"] is NSNull { limit = nil } else if let l = try f.optBytes("limit") { limit = l }
            add(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: cg, comm: comm,
                                kind: .cgroupMemory(.init(usageBytes: usage, workingSetBytes: ws, limitBytes: limit))),
                      subject: subject, context: ctx))
        case "rss":
            let (subject, ctx, pid, comm, cg) = try nodeSubject(&f)
            let anon = try f.optBytes("anon") ?? f.bytes("rss")
            add(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: cg, comm: comm,
                                kind: .memorySample(.init(rssAnonBytes: anon, rssFileBytes: try f.optBytes("file") ?? 0,
                                                          rssShmemBytes: try f.optBytes("shmem") ?? 0))),
                      subject: subject, context: ctx))
        case "oomKill":
            let (subject, ctx, pid, comm, cg) = try nodeSubject(&f)
            let anon = try f.optBytes("anon") ?? f.optBytes("rss") ?? 0
            add(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: cg, comm: comm,
                                kind: .oomKill(.init(victimPID: pid, totalVMBytes: try f.optBytes("totalVM") ?? anon,
                                                     anonRSSBytes: anon, fileRSSBytes: try f.optBytes("file") ?? 0,
                                                     shmemRSSBytes: try f.optBytes("shmem") ?? 0))),
                      subject: subject, context: ctx))
        case "exit":
            let (subject, ctx, pid, comm, cg) = try nodeSubject(&f)
            add(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: cg, comm: comm,
                                kind: .processExit(.init(exitCode: try f.optInt("exitCode", in: Self.kernelExitCodes) ?? 0,
                                                         signal: try f.optInt("signal", in: Self.signals) ?? 0,
                                                         peakRSSBytes: try f.optBytes("peakRSS") ?? 0))),
                      subject: subject, context: ctx))
        case "exec", "fork":
            let (subject, ctx, pid, comm, cg) = try nodeSubject(&f)
            let kind: NodeEvent.Kind = type == "exec"
                ? .processExec : .processFork(childPID: try f.optInt("child", in: Self.pids) ?? 0)
            add(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: cg, comm: comm, kind: kind), subject: subject, context: ctx))
        case "tcp":
            let (subject, ctx, pid, comm, cg) = try nodeSubject(&f)
            let kindText = try f.string("kind")
            guard let kind = NodeEvent.TCPEvent.Kind(rawValue: kindText) else {
                throw f.error("kind", "expected retransmit, resetSent, resetReceived, connectFailed or socketError")
            }
            let (sa, sp) = try f.endpoint("src", default: ("0.0.0.0", 0))
            let (da, dp) = try f.endpoint("dst", default: nil)
            add(.node(NodeEvent(timestampNanos: at, pid: pid, cgroupID: cg, comm: comm,
                                kind: .tcp(.init(kind: kind, sourceAddress: sa, sourcePort: sp, destinationAddress: da,
                                                 destinationPort: dp, errno: try f.optInt("errno", in: Self.errnos) ?? 0))),
                      subject: subject, context: ctx))
        case "pod":
            let info = try podInfo(&f, at: at)
            pods.set("\(info.pod.namespace)/\(info.pod.name)", info)
            cluster(.podUpdated(info))
        case "podDeleted":
            let ref = try podRef(&f)
            pods.remove("\(ref.namespace)/\(ref.name)")
            cluster(.podDeleted(ref))
        case "restart", "crashLoop":
            let ref = try podRef(&f)
            let container = try f.string("container")
            var term: Termination?
            if let reason = try f.optString("reason") {
                term = Termination(reason: reason, exitCode: try f.optInt("exitCode", in: Self.exitCodes) ?? 0,
                                   signal: try f.optInt("signal", in: Self.signals) ?? 0,
                                   finishedAtNanos: try instant(f, "finishedAt") ?? at)
            }
            let ct = ContainerTermination(pod: ref, container: container,
                                          restartCount: try f.int("restarts", in: Self.restartCounts), termination: term)
            cluster(type == "restart" ? .containerRestarted(ct) : .crashLoopBackOff(ct))
        case "probeFailed":
            cluster(.probeFailed(pod: try podRef(&f), container: try f.optString("container"),
                                 probe: try f.optString("probe") ?? "Readiness", message: try f.optString("message") ?? ""))
        case "evicted":
            cluster(.evicted(pod: try podRef(&f), message: try f.optString("message") ?? ""))
        case "nodeCondition":
            cluster(.nodeCondition(node: try f.string("node"), condition: try f.string("condition"), status: try f.bool("status"),
                                   reason: try f.optString("reason") ?? "", message: try f.optString("message") ?? ""))
        default:
            throw f.error("type", "unknown event type \(type) (memory, rss, oomKill, exit, exec, fork, tcp, pod, podDeleted, restart, crashLoop, probeFailed, evicted, nodeCondition)")
        }
        lastT = at
        return (at, event!)
    }

    /// Whole and fractional seconds of a nanosecond count, exactly ("12.5").
    static func seconds(_ ns: UInt64) -> String {
        let frac = ns % 1_000_000_000
        guard frac > 0 else { return "\(ns / 1_000_000_000)" }
        var f = String(frac)
        f = String(repeating: "0", count: 9 - f.count) + f
        while f.hasSuffix("0") { f.removeLast() }
        return "\(ns / 1_000_000_000).\(f)"
    }

    private func podRef(_ f: inout Fields) throws -> PodRef {
        let text = try f.string("pod")
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw f.error("pod", "expected namespace/name") }
        let known = pods[text]?.pod.uid
        let uid = try f.optString("uid") ?? known ?? "uid-\(parts[0])-\(parts[1])"
        return PodRef(namespace: parts[0], name: parts[1], uid: uid)
    }

    /// The subject of a node event, as the attributor would give it, plus pid, comm and cgroup id.
    private func nodeSubject(_ f: inout Fields) throws -> (Subject?, SubjectContext?, Int32, String, UInt64) {
        let pid = try f.optInt("pid", in: Self.pids) ?? 0
        let comm = try f.optString("comm") ?? "app"
        let cg = try f.optInt("cgroupId", in: UInt64.min...UInt64.max) ?? 0
        if f.dict["pod"] != nil {
            let ref = try podRef(&f)
            let container = try f.string("container")
            var ctx: SubjectContext?
            if let info = pods["\(ref.namespace)/\(ref.name)"] {
                let c = info.containers.first { $0.name == container }
                ctx = SubjectContext(owner: info.owner, node: info.node, image: c?.image,
                                     memoryRequestBytes: c?.memoryRequestBytes, memoryLimitBytes: c?.memoryLimitBytes)
            }
            return (.podContainer(ref, container: container), ctx, pid, comm, cg)
        }
        if let path = try f.optString("cgroup") { return (.localCgroup(id: cg, path: path), nil, pid, comm, cg) }
        if let id = try f.optString("containerId") { return (.localContainer(id: id), nil, pid, comm, cg) }
        if f.dict["pid"] != nil { return (.localProcess(pid: pid, comm: comm), nil, pid, comm, cg) }
        throw f.error("pod", "a node event needs a subject: pod + container, cgroup, containerId or pid")
    }

    private func podInfo(_ f: inout Fields, at: UInt64) throws -> PodInfo {
        let ref = try podRef(&f)
        var owner: OwnerRef?
        if let o = try f.optString("owner") {
            let p = o.split(separator: "/", maxSplits: 1).map(String.init)
            guard p.count == 2 else { throw f.error("owner", "expected Kind/name, e.g. Deployment/web") }
            owner = OwnerRef(kind: p[0], name: p[1])
        }
        guard let list = f.dict["containers"] as? [[String: Any]], !list.isEmpty else {
            throw f.error("containers", "expected a non-empty list of container objects")
        }
        var containers: [ContainerInfo] = []
        for (k, c) in list.enumerated() {
            let cf = Fields(dict: c, line: f.line, prefix: "containers[\(k)].")
            func term(_ key: String) throws -> Termination? {
                guard let d = c[key] else { return nil }
                guard let td = d as? [String: Any] else { throw cf.error(key, "expected an object") }
                let tf = Fields(dict: td, line: f.line, prefix: "containers[\(k)].\(key).")
                return Termination(reason: try tf.string("reason"),
                                   exitCode: try tf.optInt("exitCode", in: Self.exitCodes) ?? 0,
                                   signal: try tf.optInt("signal", in: Self.signals) ?? 0,
                                   finishedAtNanos: try instant(tf, "at") ?? at)
            }
            containers.append(ContainerInfo(
                name: try cf.string("name"), containerID: try cf.optString("containerId"),
                image: try cf.optString("image") ?? "unknown",
                restartCount: try cf.optInt("restarts", in: Self.restartCounts) ?? 0,
                ready: try cf.optBool("ready") ?? true, memoryRequestBytes: try cf.optBytes("request"),
                memoryLimitBytes: try cf.optBytes("limit"), lastTermination: try term("lastTermination"),
                currentTermination: try term("terminated"), waitingReason: try cf.optString("waiting")))
        }
        return PodInfo(pod: ref, node: try f.optString("node") ?? "node-1", owner: owner,
                       labels: (f.dict["labels"] as? [String: String]) ?? [:], phase: try f.optString("phase") ?? "Running",
                       containers: containers)
    }
}
