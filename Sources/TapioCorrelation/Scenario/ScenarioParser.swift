import Foundation
import TapioModel

/// Line-by-line reader of the scenario format (Tests/Scenarios/FORMAT.md). JSON is decoded into a local
/// dictionary only here, at the edge; what comes out is typed events.
struct ScenarioParser {
    private var header: Scenario?
    private var events: [(at: UInt64, event: AttributedEvent)] = []
    private var pods: [String: PodInfo] = [:]
    private var lastT: UInt64 = 0

    mutating func consume(_ line: String, number: Int) throws {
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
            return
        }
        try readEvent(&f)
    }

    func finish(lastLine: Int) throws -> Scenario {
        guard var s = header else { throw ScenarioError(line: max(1, lastLine), field: "tapioScenario", message: "no header line") }
        s.events = events
        s.endNanos = max(s.endNanos, events.last?.at ?? s.startNanos)
        return s
    }

    // MARK: Header

    private mutating func readHeader(_ f: inout Fields) throws {
        guard let v = try f.optInt("tapioScenario") else {
            throw ScenarioError(line: f.line, field: "tapioScenario", message: "the first line must be the header {\"tapioScenario\": 1, …}")
        }
        guard v == Scenario.formatVersion else {
            throw ScenarioError(line: f.line, field: "tapioScenario", message: "version \(v) is not supported (this Tapio reads version \(Scenario.formatVersion))")
        }
        var start: UInt64 = 1_795_000_000 * 1_000_000_000  // a fixed default instant, so replays are reproducible
        if let s = try f.optString("start") {
            guard let n = Formatting.parseRFC3339(s) else { throw f.error("start", "expected an RFC 3339 time such as 2026-11-29T10:00:00Z") }
            start = n
        }
        var config = CorrelationConfig()
        if let c = f.dict["config"] {
            guard let cd = c as? [String: Any] else { throw f.error("config", "expected an object") }
            let cf = Fields(dict: cd, line: f.line, prefix: "config.")
            if let x = try cf.optInt("batchSize") { config.batchSize = x }
            if let x = try cf.optDuration("batchTimeout") { config.batchTimeout = x }
            if let x = try cf.optDuration("window") { config.window = x }
            if let x = try cf.optDuration("resolveAfter") { config.resolveAfter = x }
            if let x = try cf.optDuration("updateInterval") { config.updateInterval = x }
            if let x = try cf.optDuration("predictionHorizon") { config.predictionHorizon = x }
            if let x = try cf.optBytes("leakThresholdPerHour") { config.leakThresholdBytesPerHour = Double(x) }
            if let x = try cf.optBytes("memoryCeiling") { config.memoryCeilingBytes = x }
            if let x = try cf.optInt("maxSubjects") { config.maxSubjects = x }
            if let x = try cf.optInt("clusterHealthMinPods") { config.clusterHealthMinPods = x }
            if let x = try cf.optInt("crashLoopRestarts") { config.crashLoopRestarts = x }
            if let x = try cf.optInt("networkFailureThreshold") { config.networkFailureThreshold = x }
            if let x = try cf.optString("minSeverity") {
                guard let s = Severity(rawValue: x) else { throw cf.error("minSeverity", "expected Info, Warning or Critical") }
                config.minSeverity = s
            }
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
        let duration = try f.optSeconds("duration") ?? 0
        header = Scenario(name: try f.optString("name") ?? "", description: try f.optString("description") ?? "",
                          startNanos: start, endNanos: start + UInt64(duration * 1e9), config: config,
                          expectedTypes: expected, events: [])
        lastT = start
    }

    // MARK: Events

    private mutating func readEvent(_ f: inout Fields) throws {
        let start = header!.startNanos
        let t = try f.seconds("t")
        guard t >= 0 else { throw f.error("t", "must not be negative") }
        let at = start + UInt64((t * 1e9).rounded())
        guard at >= lastT else { throw f.error("t", "time goes backwards (\(t)s is before the previous event)") }
        lastT = at
        let type = try f.string("type")
        func add(_ e: AttributedEvent) { events.append((at, e)) }
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
                                kind: .processExit(.init(exitCode: Int32(try f.optInt("exitCode") ?? 0),
                                                         signal: Int32(try f.optInt("signal") ?? 0),
                                                         peakRSSBytes: try f.optBytes("peakRSS") ?? 0))),
                      subject: subject, context: ctx))
        case "exec", "fork":
            let (subject, ctx, pid, comm, cg) = try nodeSubject(&f)
            let kind: NodeEvent.Kind = type == "exec" ? .processExec : .processFork(childPID: Int32(try f.optInt("child") ?? 0))
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
                                                 destinationPort: dp, errno: Int32(try f.optInt("errno") ?? 0)))),
                      subject: subject, context: ctx))
        case "pod":
            let info = try podInfo(&f, at: at)
            pods["\(info.pod.namespace)/\(info.pod.name)"] = info
            cluster(.podUpdated(info))
        case "podDeleted":
            let ref = try podRef(&f)
            pods["\(ref.namespace)/\(ref.name)"] = nil
            cluster(.podDeleted(ref))
        case "restart", "crashLoop":
            let ref = try podRef(&f)
            let container = try f.string("container")
            var term: Termination?
            if let reason = try f.optString("reason") {
                term = Termination(reason: reason, exitCode: Int32(try f.optInt("exitCode") ?? 0),
                                   signal: Int32(try f.optInt("signal") ?? 0),
                                   finishedAtNanos: try f.optSeconds("finishedAt").map { start + UInt64($0 * 1e9) } ?? at)
            }
            let ct = ContainerTermination(pod: ref, container: container, restartCount: try f.int("restarts"), termination: term)
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
        let pid = Int32(try f.optInt("pid") ?? 0)
        let comm = try f.optString("comm") ?? "app"
        let cg = UInt64(try f.optInt("cgroupId") ?? 0)
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
                return Termination(reason: try tf.string("reason"), exitCode: Int32(try tf.optInt("exitCode") ?? 0),
                                   signal: Int32(try tf.optInt("signal") ?? 0),
                                   finishedAtNanos: try tf.optSeconds("at").map { header!.startNanos + UInt64($0 * 1e9) } ?? at)
            }
            containers.append(ContainerInfo(
                name: try cf.string("name"), containerID: try cf.optString("containerId"),
                image: try cf.optString("image") ?? "unknown", restartCount: try cf.optInt("restarts") ?? 0,
                ready: try cf.optBool("ready") ?? true, memoryRequestBytes: try cf.optBytes("request"),
                memoryLimitBytes: try cf.optBytes("limit"), lastTermination: try term("lastTermination"),
                currentTermination: try term("terminated"), waitingReason: try cf.optString("waiting")))
        }
        return PodInfo(pod: ref, node: try f.optString("node") ?? "node-1", owner: owner,
                       labels: (f.dict["labels"] as? [String: String]) ?? [:], phase: try f.optString("phase") ?? "Running",
                       containers: containers)
    }
}

/// Typed access to one JSON object's fields, with errors that name the line and the field.
struct Fields {
    let dict: [String: Any]
    let line: Int
    var prefix = ""

    func error(_ key: String, _ message: String) -> ScenarioError {
        ScenarioError(line: line, field: prefix + key, message: message)
    }

    func string(_ k: String) throws -> String {
        guard let v = try optString(k) else { throw error(k, "missing (a string)") }
        return v
    }
    func optString(_ k: String) throws -> String? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw error(k, "expected a string") }
        return s
    }
    func int(_ k: String) throws -> Int {
        guard let v = try optInt(k) else { throw error(k, "missing (an integer)") }
        return v
    }
    func optInt(_ k: String) throws -> Int? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        if let d = v as? Double, !Self.isBool(v), d == d.rounded(), abs(d) < 9e15 { return Int(d) }
        if let i = v as? Int, !Self.isBool(v) { return i }
        throw error(k, "expected an integer")
    }
    func bool(_ k: String) throws -> Bool {
        guard let v = try optBool(k) else { throw error(k, "missing (true or false)") }
        return v
    }
    func optBool(_ k: String) throws -> Bool? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        if Self.isBool(v), let b = v as? Bool { return b }
        throw error(k, "expected true or false")
    }
    func seconds(_ k: String) throws -> Double {
        guard let v = try optSeconds(k) else { throw error(k, "missing (seconds, e.g. 12.5 or \"1m30s\")") }
        return v
    }
    /// A number of seconds, or a duration string ("1m30s", "250ms").
    func optSeconds(_ k: String) throws -> Double? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        if let d = v as? Double, !Self.isBool(v) { return d }
        if let s = v as? String, let d = Self.parseDuration(s) { return d }
        throw error(k, "expected seconds (a number) or a duration such as \"1m30s\"")
    }
    func optDuration(_ k: String) throws -> Duration? {
        try optSeconds(k).map { .nanoseconds(Int64(($0 * 1e9).rounded())) }
    }
    func bytes(_ k: String) throws -> UInt64 {
        guard let v = try optBytes(k) else { throw error(k, "missing (bytes, e.g. 268435456 or \"256Mi\")") }
        return v
    }
    /// Bytes as a number or a Kubernetes quantity ("256Mi", "1.5Gi", "100M", "64Ki").
    func optBytes(_ k: String) throws -> UInt64? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        if let d = v as? Double, !Self.isBool(v), d >= 0 { return UInt64(d) }
        if let s = v as? String, let b = Self.parseBytes(s) { return b }
        throw error(k, "expected bytes: a number or a quantity such as \"256Mi\"")
    }
    func endpoint(_ k: String, default d: (String, UInt16)?) throws -> (String, UInt16) {
        guard let s = try optString(k) else {
            if let d { return d }
            throw error(k, "missing (address:port, e.g. \"10.0.0.7:5432\" or \"[::1]:80\")")
        }
        guard let colon = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: colon)...]) else {
            throw error(k, "expected address:port, e.g. \"10.0.0.7:5432\"")
        }
        var addr = String(s[..<colon])
        if addr.hasPrefix("["), addr.hasSuffix("]") { addr = String(addr.dropFirst().dropLast()) }
        return (addr, port)
    }

    /// JSON true/false (Foundation hands numbers and booleans over as NSNumber; only booleans have type "c").
    static func isBool(_ v: Any) -> Bool {
        if let n = v as? NSNumber { return String(cString: n.objCType) == "c" }
        return v is Bool
    }

    static func parseBytes(_ s: String) -> UInt64? {
        let units: [(String, Double)] = [("Ki", 1024), ("Mi", 1_048_576), ("Gi", 1_073_741_824), ("Ti", 1_099_511_627_776),
                                         ("k", 1e3), ("K", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)]
        for (u, m) in units where s.hasSuffix(u) {
            guard let x = Double(s.dropLast(u.count)), x >= 0 else { return nil }
            return UInt64((x * m).rounded())
        }
        guard let x = Double(s), x >= 0 else { return nil }
        return UInt64(x)
    }

    /// Go-style durations: "1h2m3.5s", "250ms", "90s"; a bare number is seconds.
    static func parseDuration(_ s: String) -> Double? {
        if let x = Double(s) { return x }
        var total = 0.0
        var rest = Substring(s)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let num = rest.prefix { $0.isNumber || $0 == "." }
            guard let x = Double(num) else { return nil }
            rest = rest.dropFirst(num.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "h": total += x * 3600
            case "m": total += x * 60
            case "s": total += x
            case "ms": total += x / 1000
            default: return nil
            }
        }
        return total
    }
}
