import Foundation
import Synchronization

/// Converts the objects of one watch's events into the negotiated form. As with kube-apiserver, a Table watch sends
/// column definitions with its first event only; later events carry `columnDefinitions: null`.
final class WatchTransform: Sendable {
    let target: OutputTarget
    let kind: EmulatedKind
    let include: String
    let headersSent = Mutex(false)

    /// Nil when the target needs no per-event conversion. A `PartialObjectMetadataList` watch cannot convert single
    /// objects; the real server then sends them unconverted, and so does the emulator.
    init?(target: OutputTarget, kind: EmulatedKind, include: String) {
        switch target {
        case .object, .partialObjectMetadataList: return nil
        case .table, .partialObjectMetadata: break
        }
        self.target = target; self.kind = kind; self.include = include
    }

    func apply(_ object: JSONValue) -> JSONValue {
        switch target {
        case .table(let version):
            let noHeaders = headersSent.withLock { sent in defer { sent = true }; return sent }
            return TablePrinter.table(kind, objects: [object], listMeta: nil, version: version, include: include, noHeaders: noHeaders)
        case .partialObjectMetadata(let version):
            return TablePrinter.partial(object, version: version)
        default:
            return object
        }
    }
}

/// Server-side printing: the `meta.k8s.io` `Table` (and `PartialObjectMetadata`) forms kube-apiserver returns when
/// a client asks for them in `Accept` (`kubectl get` does). Custom resources get `Name` plus their CRD version's
/// `additionalPrinterColumns` (or `Age` when it has none); built-in kinds get the columns of kube-apiserver's printers
/// for the kinds the emulator serves. Rows carry the object as `includeObject` says (`Metadata` by default).
enum TablePrinter {
    struct Column {
        var name: String
        var type: String
        var format: String = ""
        var description: String
        var priority: Int64 = 0
        var json: JSONValue {
            .object(["name": .string(name), "type": .string(type), "format": .string(format),
                     "description": .string(description), "priority": .int(priority)])
        }
    }

    static let nameDescription = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
    static let creationTimestampDescription = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"

    static let nameColumn = Column(name: "Name", type: "string", format: "name", description: nameDescription)
    static let ageColumn = Column(name: "Age", type: "string", description: creationTimestampDescription)

    /// The `includeObject` values the server accepts ("" means the default, Metadata).
    static func validateIncludeObject(_ value: String?) -> EmulatorResponse? {
        guard let value, !["", "Object", "Metadata", "None"].contains(value) else { return nil }
        return EmulatorStore.status(400, reason: "BadRequest",
                                    message: "Unable to convert to Table as requested: includeObject: Invalid value: \"\(value)\": must be 'Metadata', 'Object', 'None', or empty")
    }

    // MARK: Columns

    /// A CRD version's printer columns as the API server serves them (defaulted to Age when there are none).
    static func crdColumns(_ k: EmulatedKind) -> [CustomResourceDefinition.PrinterColumn] {
        let cols = k.crd?.version(k.version)?.printerColumns ?? []
        if !cols.isEmpty { return cols }
        return [CustomResourceDefinition.PrinterColumn(name: "Age", type: "date", format: nil, jsonPath: ".metadata.creationTimestamp",
                                                       description: creationTimestampDescription, priority: 0)]
    }

    static func columns(_ k: EmulatedKind) -> [Column] {
        if k.crd != nil {
            return [nameColumn] + crdColumns(k).map { c in
                Column(name: c.name, type: c.type, format: c.format ?? "",
                       description: c.description.flatMap { $0.isEmpty ? nil : $0 }
                           ?? "Custom resource definition column (in JSONPath format): \(c.jsonPath)",
                       priority: c.priority)
            }
        }
        let containers = Column(name: "Containers", type: "string", description: "Names of each container in the template.", priority: 1)
        let images = Column(name: "Images", type: "string", description: "Images referenced by each container in the template.", priority: 1)
        switch (k.group, k.kind) {
        case ("", "Pod"):
            return [nameColumn,
                    Column(name: "Ready", type: "string", description: "The aggregate readiness state of this pod for accepting traffic."),
                    Column(name: "Status", type: "string", description: "The aggregate status of the containers in this pod."),
                    Column(name: "Restarts", type: "string", description: "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
                    ageColumn,
                    Column(name: "IP", type: "string", description: "podIP address allocated to the pod.", priority: 1),
                    Column(name: "Node", type: "string", description: "NodeName indicates in which node this pod is scheduled.", priority: 1),
                    Column(name: "Nominated Node", type: "string", description: "nominatedNodeName is set only when this pod preempts other pods on the node.", priority: 1),
                    Column(name: "Readiness Gates", type: "string", description: "If specified, all readiness gates will be evaluated for pod readiness.", priority: 1)]
        case ("", "Namespace"):
            return [nameColumn, Column(name: "Status", type: "string", description: "The status of the namespace"), ageColumn]
        case ("", "Node"):
            return [nameColumn,
                    Column(name: "Status", type: "string", description: "The status of the node"),
                    Column(name: "Roles", type: "string", description: "The roles of the node"),
                    ageColumn,
                    Column(name: "Version", type: "string", description: "Kubelet Version reported by the node."),
                    Column(name: "Internal-IP", type: "string", description: "List of addresses reachable to the node.", priority: 1),
                    Column(name: "External-IP", type: "string", description: "List of addresses reachable to the node.", priority: 1),
                    Column(name: "OS-Image", type: "string", description: "OS Image reported by the node.", priority: 1),
                    Column(name: "Kernel-Version", type: "string", description: "Kernel Version reported by the node.", priority: 1),
                    Column(name: "Container-Runtime", type: "string", description: "ContainerRuntime Version reported by the node.", priority: 1)]
        case (_, "Event"):
            return [Column(name: "Last Seen", type: "string", description: "The time at which the most recent occurrence of this event was recorded."),
                    Column(name: "Type", type: "string", description: "Type of this event (Normal, Warning), new types could be added in the future"),
                    Column(name: "Reason", type: "string", description: "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
                    Column(name: "Object", type: "string", description: "The object that this event is about."),
                    Column(name: "Subobject", type: "string", description: "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.", priority: 1),
                    Column(name: "Source", type: "string", description: "The component reporting this event.", priority: 1),
                    Column(name: "Message", type: "string", description: "A human-readable description of the status of this operation."),
                    Column(name: "First Seen", type: "string", description: "The time at which the event was first recorded.", priority: 1),
                    Column(name: "Count", type: "string", description: "The number of times this event has occurred.", priority: 1),
                    Column(name: "Name", type: "string", format: "name", description: nameDescription, priority: 1)]
        case ("coordination.k8s.io", "Lease"):
            return [nameColumn, Column(name: "Holder", type: "string", description: "holderIdentity contains the identity of the holder of a current lease."), ageColumn]
        case ("apps", "Deployment"):
            return [nameColumn,
                    Column(name: "Ready", type: "string", description: "Number of the pod with ready state"),
                    Column(name: "Up-to-date", type: "string", description: "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
                    Column(name: "Available", type: "string", description: "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
                    ageColumn, containers, images,
                    Column(name: "Selector", type: "string", description: "Label selector for pods.", priority: 1)]
        case ("apps", "StatefulSet"):
            return [nameColumn, Column(name: "Ready", type: "string", description: "Number of the pod with ready state"), ageColumn,
                    containers, images]
        default:
            // kube-apiserver's default table convertor.
            return [nameColumn, Column(name: "Created At", type: "date", description: creationTimestampDescription)]
        }
    }

    // MARK: Cells

    static func cells(_ k: EmulatedKind, _ o: JSONValue, now: Date) -> [JSONValue] {
        let name = JSONValue.string(o["metadata"]?["name"]?.stringValue ?? "")
        let age = JSONValue.string(since(o["metadata"]?["creationTimestamp"]?.stringValue, now: now))
        if k.crd != nil {
            return [name] + crdColumns(k).map { crdCell($0, o, now: now) }
        }
        switch (k.group, k.kind) {
        case ("", "Pod"): return podCells(o, name: name, age: age, now: now)
        case ("", "Namespace"): return [name, .string(o["status"]?["phase"]?.stringValue ?? ""), age]
        case ("", "Node"): return nodeCells(o, name: name, age: age)
        case ("", "Event"), ("events.k8s.io", "Event"): return eventCells(o, core: k.group.isEmpty, now: now)
        case ("coordination.k8s.io", "Lease"): return [name, .string(o["spec"]?["holderIdentity"]?.stringValue ?? ""), age]
        case ("apps", "Deployment"):
            let spec = o["spec"], status = o["status"]
            let desired = spec?["replicas"]?.intValue ?? 1
            let (names, images) = containerCells(spec?["template"]?["spec"]?["containers"])
            return [name, .string("\(status?["readyReplicas"]?.intValue ?? 0)/\(desired)"),
                    .int(status?["updatedReplicas"]?.intValue ?? 0), .int(status?["availableReplicas"]?.intValue ?? 0), age,
                    .string(names), .string(images), .string(formatSelector(spec?["selector"]))]
        case ("apps", "StatefulSet"):
            let spec = o["spec"]
            let (names, images) = containerCells(spec?["template"]?["spec"]?["containers"])
            return [name, .string("\(o["status"]?["readyReplicas"]?.intValue ?? 0)/\(spec?["replicas"]?.intValue ?? 1)"), age,
                    .string(names), .string(images)]
        default:
            return [name, .string(o["metadata"]?["creationTimestamp"]?.stringValue ?? "")]
        }
    }

    /// One CRD printer column's cell, typed as the API server types it.
    static func crdCell(_ c: CustomResourceDefinition.PrinterColumn, _ o: JSONValue, now: Date) -> JSONValue {
        guard let path = JSONPath(c.jsonPath), let value = path.results(in: o).first, value != .null else { return .null }
        switch c.type {
        case "string": return .string(printed(value))
        case "integer":
            switch value {
            case .int(let i): return .int(i)
            case .double(let d) where d.isFinite && abs(d) < 9.2e18: return .int(Int64(d))
            default: return .null
            }
        case "number":
            switch value {
            case .int(let i): return .double(Double(i))
            case .double(let d): return .double(d)
            default: return .null
            }
        case "boolean":
            if case .bool = value { return value }
            return .null
        case "date":
            guard let s = value.stringValue else { return .null }
            guard let d = parseTime(s) else { return "<invalid>" }
            return .string(humanDuration(now.timeIntervalSince(d)))
        default: return .null
        }
    }

    /// How client-go's JSONPath prints a value: strings as they are, numbers the Go way, maps and arrays as JSON.
    static func printed(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return goFloat(d)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "<nil>"
        case .array, .object: return String(decoding: v.jsonData(), as: UTF8.self)
        }
    }

    static func goFloat(_ d: Double) -> String {
        // Go prints whole floats below 1e21 in full; Int64 holds only up to ~9.2e18 (a CR's 1e19 trapped here).
        if d == d.rounded(), abs(d) < 9e18 { return String(Int64(d)) }
        if d == d.rounded(), abs(d) < 1e21 { return String(format: "%.0f", d) }
        return "\(d)"
    }

    static func podCells(_ o: JSONValue, name: JSONValue, age: JSONValue, now: Date) -> [JSONValue] {
        let spec = o["spec"], status = o["status"]
        let total = spec?["containers"]?.arrayValue?.count ?? 0
        var ready = 0, restarts: Int64 = 0
        var lastRestart: Date?
        var reason = status?["phase"]?.stringValue ?? ""
        if let r = status?["reason"]?.stringValue, !r.isEmpty { reason = r }
        var hasRunning = false
        for cs in (status?["containerStatuses"]?.arrayValue ?? []).reversed() {
            restarts += cs["restartCount"]?.intValue ?? 0
            if let f = cs["lastState"]?["terminated"]?["finishedAt"]?.stringValue, let d = parseTime(f),
               lastRestart.map({ $0 < d }) ?? true {
                lastRestart = d
            }
            let state = cs["state"]
            if let w = state?["waiting"]?["reason"]?.stringValue, !w.isEmpty {
                reason = w
            } else if let t = state?["terminated"], t != .null {
                if let r = t["reason"]?.stringValue, !r.isEmpty {
                    reason = r
                } else if let sig = t["signal"]?.intValue, sig != 0 {
                    reason = "Signal:\(sig)"
                } else {
                    reason = "ExitCode:\(t["exitCode"]?.intValue ?? 0)"
                }
            } else if cs["ready"]?.boolValue == true, let r = state?["running"], r != .null {
                hasRunning = true
                ready += 1
            }
        }
        if reason == "Completed" && hasRunning {
            let podReady = (status?["conditions"]?.arrayValue ?? []).contains {
                $0["type"]?.stringValue == "Ready" && $0["status"]?.stringValue == "True"
            }
            reason = podReady ? "Running" : "NotReady"
        }
        let phase = status?["phase"]?.stringValue ?? ""
        if o["metadata"]?["deletionTimestamp"]?.stringValue != nil {
            if status?["reason"]?.stringValue == "NodeLost" { reason = "Unknown" }
            else if phase != "Succeeded" && phase != "Failed" { reason = "Terminating" }
        }
        var restartText = String(restarts)
        if restarts != 0, let lastRestart { restartText = "\(restarts) (\(humanDuration(now.timeIntervalSince(lastRestart))) ago)" }
        let ip = status?["podIPs"]?.arrayValue?.first?["ip"]?.stringValue ?? status?["podIP"]?.stringValue ?? ""
        let node = spec?["nodeName"]?.stringValue ?? ""
        let nominated = status?["nominatedNodeName"]?.stringValue ?? ""
        var gates = "<none>"
        if let rg = spec?["readinessGates"]?.arrayValue, !rg.isEmpty {
            let conds = status?["conditions"]?.arrayValue ?? []
            let trueCount = rg.filter { g in
                conds.first { $0["type"] == g["conditionType"] }?["status"]?.stringValue == "True"
            }.count
            gates = "\(trueCount)/\(rg.count)"
        }
        return [name, .string("\(ready)/\(total)"), .string(reason), .string(restartText), age,
                .string(ip.isEmpty ? "<none>" : ip), .string(node.isEmpty ? "<none>" : node),
                .string(nominated.isEmpty ? "<none>" : nominated), .string(gates)]
    }

    /// Pods that ran to completion are marked as such in their row, as the API server does.
    static func rowConditions(_ k: EmulatedKind, _ o: JSONValue) -> JSONValue? {
        guard k.group.isEmpty, k.kind == "Pod" else { return nil }
        switch o["status"]?["phase"]?.stringValue {
        case "Succeeded":
            return .array([.object(["type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."])])
        case "Failed":
            return .array([.object(["type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."])])
        default: return nil
        }
    }

    static func nodeCells(_ o: JSONValue, name: JSONValue, age: JSONValue) -> [JSONValue] {
        let status = o["status"]
        var states: [String] = []
        if let ready = status?["conditions"]?.arrayValue?.first(where: { $0["type"]?.stringValue == "Ready" }) {
            states.append(ready["status"]?.stringValue == "True" ? "Ready" : "NotReady")
        } else {
            states.append("Unknown")
        }
        if o["spec"]?["unschedulable"]?.boolValue == true { states.append("SchedulingDisabled") }
        var roles = Set<String>()
        for (k, v) in o["metadata"]?["labels"]?.objectValue ?? [:] {
            if k.hasPrefix("node-role.kubernetes.io/") { roles.insert(String(k.dropFirst("node-role.kubernetes.io/".count))) }
            if k == "kubernetes.io/role", let s = v.stringValue { roles.insert(s) }
        }
        let info = status?["nodeInfo"]
        let addresses = status?["addresses"]?.arrayValue ?? []
        func address(_ type: String) -> String {
            addresses.first { $0["type"]?.stringValue == type }?["address"]?.stringValue ?? "<none>"
        }
        let os = info?["osImage"]?.stringValue ?? ""
        return [name, .string(states.joined(separator: ",")), .string(roles.isEmpty ? "<none>" : roles.sorted().joined(separator: ",")),
                age, .string(info?["kubeletVersion"]?.stringValue ?? ""), .string(address("InternalIP")), .string(address("ExternalIP")),
                .string(os.isEmpty ? "<unknown>" : os), .string(info?["kernelVersion"]?.stringValue ?? ""),
                .string(info?["containerRuntimeVersion"]?.stringValue ?? "")]
    }

    /// Core/v1 and events.k8s.io/v1 Events print alike (the server prints both from one internal type).
    static func eventCells(_ o: JSONValue, core: Bool, now: Date) -> [JSONValue] {
        let involved = core ? o["involvedObject"] : o["regarding"]
        let first = o[core ? "firstTimestamp" : "deprecatedFirstTimestamp"]?.stringValue
        let last = o[core ? "lastTimestamp" : "deprecatedLastTimestamp"]?.stringValue
        let eventTime = o["eventTime"]?.stringValue
        let firstText = first.flatMap(parseTime) != nil ? since(first, now: now) : since(eventTime, now: now)
        var lastText = last.flatMap(parseTime) != nil ? since(last, now: now) : firstText
        var count = o[core ? "count" : "deprecatedCount"]?.intValue ?? 0
        if let series = o["series"], series != .null {
            lastText = since(series["lastObservedTime"]?.stringValue, now: now)
            count = series["count"]?.intValue ?? count
        } else if count == 0 {
            count = 1
        }
        let kind = (involved?["kind"]?.stringValue ?? "").lowercased()
        let iname = involved?["name"]?.stringValue ?? ""
        let source = o[core ? "source" : "deprecatedSource"]
        var sourceText = source?["component"]?.stringValue ?? ""
        if let host = source?["host"]?.stringValue, !host.isEmpty { sourceText += ", " + host }
        if sourceText.isEmpty {
            sourceText = o["reportingController"]?.stringValue ?? o["reportingComponent"]?.stringValue ?? ""
            if let inst = o["reportingInstance"]?.stringValue, !inst.isEmpty { sourceText += ", " + inst }
        }
        let message = (o[core ? "message" : "note"]?.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return [.string(lastText), .string(o["type"]?.stringValue ?? ""), .string(o["reason"]?.stringValue ?? ""),
                .string(iname.isEmpty ? kind : "\(kind)/\(iname)"), .string(involved?["fieldPath"]?.stringValue ?? ""),
                .string(sourceText), .string(message), .string(firstText), .int(count),
                .string(o["metadata"]?["name"]?.stringValue ?? "")]
    }

    static func containerCells(_ containers: JSONValue?) -> (String, String) {
        let cs = containers?.arrayValue ?? []
        return (cs.compactMap { $0["name"]?.stringValue }.joined(separator: ","),
                cs.compactMap { $0["image"]?.stringValue }.joined(separator: ","))
    }

    static func formatSelector(_ s: JSONValue?) -> String {
        guard let s, s != .null else { return "<none>" }
        var parts = (s["matchLabels"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.stringValue ?? "")" }
        for e in s["matchExpressions"]?.arrayValue ?? [] {
            let key = e["key"]?.stringValue ?? ""
            let values = (e["values"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")
            switch e["operator"]?.stringValue {
            case "In": parts.append("\(key) in (\(values))")
            case "NotIn": parts.append("\(key) notin (\(values))")
            case "Exists": parts.append(key)
            case "DoesNotExist": parts.append("!\(key)")
            default: break
            }
        }
        return parts.isEmpty ? "<none>" : parts.joined(separator: ",")
    }

    // MARK: Whole responses

    /// `PartialObjectMetadata` of one object.
    static func partial(_ o: JSONValue, version: String) -> JSONValue {
        .object(["kind": "PartialObjectMetadata", "apiVersion": .string("meta.k8s.io/\(version)"),
                 "metadata": o["metadata"] ?? .object([:])])
    }

    /// The object a row carries, as `includeObject` says.
    static func rowObject(_ k: EmulatedKind, _ o: JSONValue, include: String, version: String) -> JSONValue {
        switch include {
        case "Object":
            var full = o
            full["kind"] = .string(k.kind)
            full["apiVersion"] = .string(k.apiVersion)
            return full
        case "None": return .null
        default: return partial(o, version: version)
        }
    }

    /// A Table of `objects`; `listMeta` is the list's metadata (nil for a single object, whose resourceVersion is used).
    static func table(_ k: EmulatedKind, objects: [JSONValue], listMeta: JSONValue?, version: String, include: String,
                      noHeaders: Bool = false, now: Date = Date()) -> JSONValue {
        var meta: [String: JSONValue] = [:]
        if let listMeta {
            for key in ["resourceVersion", "continue", "remainingItemCount"] { if let v = listMeta[key] { meta[key] = v } }
        } else if let rv = objects.first?["metadata"]?["resourceVersion"] {
            meta["resourceVersion"] = rv
        }
        let rows = objects.map { o -> JSONValue in
            var row: [String: JSONValue] = ["cells": .array(cells(k, o, now: now)),
                                            "object": rowObject(k, o, include: include, version: version)]
            if let c = rowConditions(k, o) { row["conditions"] = c }
            return .object(row)
        }
        return .object(["kind": "Table", "apiVersion": .string("meta.k8s.io/\(version)"), "metadata": .object(meta),
                        "columnDefinitions": noHeaders ? .null : .array(columns(k).map(\.json)), "rows": .array(rows)])
    }

    // MARK: Time

    static func parseTime(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: s)
    }

    static func since(_ timestamp: String?, now: Date) -> String {
        guard let timestamp, let d = parseTime(timestamp) else { return "<unknown>" }
        return humanDuration(now.timeIntervalSince(d))
    }

    /// apimachinery's `duration.HumanDuration`: `45s`, `3m20s`, `25m`, `5h12m`, `3d4h`, `2y100d`.
    static func humanDuration(_ interval: TimeInterval) -> String {
        let seconds = Int(interval.rounded(.towardZero))
        if seconds < -1 { return "<invalid>" }
        if seconds < 0 { return "0s" }
        if seconds < 60 * 2 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 10 {
            let s = seconds % 60
            return s == 0 ? "\(minutes)m" : "\(minutes)m\(s)s"
        }
        if minutes < 60 * 3 { return "\(minutes)m" }
        let hours = seconds / 3600
        if hours < 8 {
            let m = minutes % 60
            return m == 0 ? "\(hours)h" : "\(hours)h\(m)m"
        }
        if hours < 48 { return "\(hours)h" }
        if hours < 24 * 8 {
            let h = hours % 24
            return h == 0 ? "\(hours / 24)d" : "\(hours / 24)d\(h)h"
        }
        if hours < 24 * 365 * 2 { return "\(hours / 24)d" }
        if hours < 24 * 365 * 8 {
            let dy = (hours / 24) % 365
            return dy == 0 ? "\(hours / 24 / 365)y" : "\(hours / 24 / 365)y\(dy)d"
        }
        return "\(hours / 24 / 365)y"
    }
}
