import Foundation
import TapioModel

/// Events as kube-apiserver keeps them: stored once, served by two APIs. `v1` Events and `events.k8s.io/v1` Events
/// are views of the same objects (same name, uid and resourceVersion; a write through one is seen, and watched,
/// through the other), converted field by field as `pkg/apis/events/v1/conversion.go` does:
///
/// | events.k8s.io/v1            | v1 (core)             |
/// |-----------------------------|-----------------------|
/// | `regarding`                 | `involvedObject`      |
/// | `note`                      | `message`             |
/// | `reportingController`       | `reportingComponent`  |
/// | `deprecatedSource`          | `source`              |
/// | `deprecatedFirstTimestamp`  | `firstTimestamp`      |
/// | `deprecatedLastTimestamp`   | `lastTimestamp`       |
/// | `deprecatedCount`           | `count`               |
///
/// and `eventTime`, `series`, `action`, `reason`, `type`, `related`, `reportingInstance`, `metadata` unchanged.
/// Nothing is filled in: an Event created through events.k8s.io has an empty core `source` and no `count` or
/// timestamps besides `eventTime` (the `source` field selector falls back to the reporting controller).
///
/// Objects are stored in the core form, normalised the way the server's Go types serialise (`source: {}`,
/// `firstTimestamp: null`, `reportingComponent: ""`, times in UTC, `metav1.Time` to the second and
/// `metav1.MicroTime` to the microsecond), so both views round-trip exactly. Bodies are decoded strictly: wrong
/// JSON types and unparsable times are 400s, unknown fields are dropped with a warning (400 with
/// `fieldValidation=Strict`).
enum EventStorage {
    static let storageKey = "/v1/events"

    /// The fields of one Event, in the server's internal (core) terms.
    struct Fields: Equatable {
        var metadata: JSONValue = .object([:])
        var involvedObject: [String: String] = [:]
        var reason = ""
        var message = ""
        var source: [String: String] = [:]
        var firstTimestamp: String?
        var lastTimestamp: String?
        var count: Int64 = 0
        var type = ""
        var eventTime: String?
        var series: Series?
        var action = ""
        var related: [String: String]?
        var reportingController = ""
        var reportingInstance = ""

        struct Series: Equatable {
            var count: Int64 = 0
            var lastObservedTime: String?
        }
    }

    /// A body the server cannot decode into an Event (400 BadRequest).
    struct DecodeError: Error { var message: String }

    static let objectReferenceKeys = ["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"]

    // MARK: Views

    /// The stored (core) object as `kind`'s API shows it.
    static func view(_ stored: JSONValue, as kind: EmulatedKind) -> JSONValue {
        if kind.group.isEmpty { return stored }
        guard let fields = try? decode(stored, core: true).fields else { return stored }
        return eventsJSON(fields)
    }

    /// Decodes a body sent to `kind`'s API into the stored form; unknown fields are reported (dotted paths).
    static func toStorage(_ body: JSONValue, as kind: EmulatedKind) throws(DecodeError) -> (stored: JSONValue, fields: Fields, unknown: [String]) {
        let (fields, unknown) = try decode(body, core: kind.group.isEmpty)
        return (coreJSON(fields), fields, unknown)
    }

    // MARK: Encoding (as the Go types marshal: omitempty strings and ints left out, structs and times always there)

    static func coreJSON(_ f: Fields) -> JSONValue {
        var o: [String: JSONValue] = [
            "apiVersion": "v1", "kind": "Event", "metadata": f.metadata,
            "involvedObject": reference(f.involvedObject), "source": reference(f.source),
            "firstTimestamp": time(f.firstTimestamp), "lastTimestamp": time(f.lastTimestamp), "eventTime": time(f.eventTime),
            "reportingComponent": .string(f.reportingController), "reportingInstance": .string(f.reportingInstance),
        ]
        put(&o, "reason", f.reason); put(&o, "message", f.message); put(&o, "type", f.type); put(&o, "action", f.action)
        if f.count != 0 { o["count"] = .int(f.count) }
        if let s = f.series {
            var so: [String: JSONValue] = ["lastObservedTime": time(s.lastObservedTime)]
            if s.count != 0 { so["count"] = .int(s.count) }
            o["series"] = .object(so)
        }
        if let r = f.related { o["related"] = reference(r) }
        return .object(o)
    }

    static func eventsJSON(_ f: Fields) -> JSONValue {
        var o: [String: JSONValue] = [
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": f.metadata,
            "eventTime": time(f.eventTime), "regarding": reference(f.involvedObject), "deprecatedSource": reference(f.source),
            "deprecatedFirstTimestamp": time(f.firstTimestamp), "deprecatedLastTimestamp": time(f.lastTimestamp),
        ]
        put(&o, "reportingController", f.reportingController); put(&o, "reportingInstance", f.reportingInstance)
        put(&o, "action", f.action); put(&o, "reason", f.reason); put(&o, "note", f.message); put(&o, "type", f.type)
        if f.count != 0 { o["deprecatedCount"] = .int(f.count) }
        if let s = f.series { o["series"] = .object(["count": .int(s.count), "lastObservedTime": time(s.lastObservedTime)]) }
        if let r = f.related { o["related"] = reference(r) }
        return .object(o)
    }

    static func put(_ o: inout [String: JSONValue], _ key: String, _ value: String) {
        if !value.isEmpty { o[key] = .string(value) }
    }
    static func reference(_ r: [String: String]) -> JSONValue { .object(r.filter { !$0.value.isEmpty }.mapValues { .string($0) }) }
    static func time(_ t: String?) -> JSONValue { t.map { .string($0) } ?? .null }

    // MARK: Decoding

    static func decode(_ body: JSONValue, core: Bool) throws(DecodeError) -> (fields: Fields, unknown: [String]) {
        var r = try Reader(body, path: "", type: "Event")
        var f = Fields()
        _ = r.take("apiVersion"); _ = r.take("kind")
        if let m = r.take("metadata"), m != .null { f.metadata = m }
        f.reason = try r.string("reason")
        f.type = try r.string("type")
        f.action = try r.string("action")
        f.reportingInstance = try r.string("reportingInstance")
        f.eventTime = try r.time("eventTime", micro: true)
        if let s = try r.object("series", type: "v1.EventSeries") {
            var sr = s
            f.series = Fields.Series(count: try sr.int32("count"), lastObservedTime: try sr.time("lastObservedTime", micro: true))
            r.unknown += sr.leftover()
        }
        f.related = try r.reference("related")
        if core {
            f.involvedObject = try r.reference("involvedObject") ?? [:]
            f.message = try r.string("message")
            f.source = try r.source("source")
            f.firstTimestamp = try r.time("firstTimestamp", micro: false)
            f.lastTimestamp = try r.time("lastTimestamp", micro: false)
            f.count = try r.int32("count")
            f.reportingController = try r.string("reportingComponent")
        } else {
            f.involvedObject = try r.reference("regarding") ?? [:]
            f.message = try r.string("note")
            f.source = try r.source("deprecatedSource")
            f.firstTimestamp = try r.time("deprecatedFirstTimestamp", micro: false)
            f.lastTimestamp = try r.time("deprecatedLastTimestamp", micro: false)
            f.count = try r.int32("deprecatedCount")
            f.reportingController = try r.string("reportingController")
        }
        return (f, r.unknown + r.leftover())
    }

    /// Reads the fields of one JSON object the way encoding/json fills a Go struct: `null` is the zero value, a wrong
    /// JSON type is an error naming the field, and whatever the struct has no field for is collected as unknown.
    struct Reader {
        var dict: [String: JSONValue]
        var path: String
        var type: String
        var taken: Set<String> = []
        var unknown: [String] = []

        init(_ v: JSONValue, path: String, type: String) throws(DecodeError) {
            guard case .object(let d) = v else {
                throw DecodeError(message: "json: cannot unmarshal \(Self.jsonType(v)) into Go value of type \(type)")
            }
            dict = d; self.path = path; self.type = type
        }

        static func jsonType(_ v: JSONValue) -> String {
            switch v {
            case .string: "string"
            case .int, .double: "number"
            case .bool: "bool"
            case .array: "array"
            case .object: "object"
            case .null: "null"
            }
        }

        func field(_ key: String) -> String { path + key }

        func mismatch(_ key: String, _ v: JSONValue, _ goType: String) -> DecodeError {
            DecodeError(message: "json: cannot unmarshal \(Self.jsonType(v)) into Go struct field Event.\(field(key)) of type \(goType)")
        }

        /// The value under `key`, nil when absent or null.
        mutating func take(_ key: String) -> JSONValue? {
            taken.insert(key)
            guard let v = dict[key], v != .null else { return nil }
            return v
        }

        mutating func string(_ key: String) throws(DecodeError) -> String {
            guard let v = take(key) else { return "" }
            guard case .string(let s) = v else { throw mismatch(key, v, "string") }
            return s
        }

        mutating func int32(_ key: String) throws(DecodeError) -> Int64 {
            guard let v = take(key) else { return 0 }
            switch v {
            case .int(let i) where i >= Int64(Int32.min) && i <= Int64(Int32.max): return i
            case .double(let d) where d == d.rounded() && d >= Double(Int32.min) && d <= Double(Int32.max): return Int64(d)
            case .int, .double:
                throw DecodeError(message: "json: cannot unmarshal number \(TablePrinter.printed(v)) into Go struct field Event.\(field(key)) of type int32")
            default: throw mismatch(key, v, "int32")
            }
        }

        /// A `metav1.Time` (RFC 3339, stored to the second) or `metav1.MicroTime` (exactly six fractional digits).
        mutating func time(_ key: String, micro: Bool) throws(DecodeError) -> String? {
            guard let v = take(key) else { return nil }
            guard case .string(let s) = v else { throw mismatch(key, v, micro ? "v1.MicroTime" : "v1.Time") }
            guard let t = KubeTime.parse(s, exactMicroseconds: micro) else {
                throw DecodeError(message: KubeTime.parseError(s, micro: micro))
            }
            return micro ? KubeTime.formatMicro(t) : KubeTime.formatSeconds(t)
        }

        mutating func object(_ key: String, type goType: String) throws(DecodeError) -> Reader? {
            guard let v = take(key) else { return nil }
            guard case .object = v else { throw mismatch(key, v, goType) }
            return try Reader(v, path: field(key) + ".", type: goType)
        }

        mutating func reference(_ key: String) throws(DecodeError) -> [String: String]? {
            guard var r = try object(key, type: "v1.ObjectReference") else { return nil }
            var out: [String: String] = [:]
            for k in EventStorage.objectReferenceKeys {
                let s = try r.string(k)
                if !s.isEmpty { out[k] = s }
            }
            unknown += r.leftover()
            return out
        }

        mutating func source(_ key: String) throws(DecodeError) -> [String: String] {
            guard var r = try object(key, type: "v1.EventSource") else { return [:] }
            var out: [String: String] = [:]
            for k in ["component", "host"] {
                let s = try r.string(k)
                if !s.isEmpty { out[k] = s }
            }
            unknown += r.leftover()
            return out
        }

        func leftover() -> [String] { dict.keys.filter { !taken.contains($0) }.sorted().map(field) }
    }
}

// MARK: - Validation

/// kube-apiserver's Event validation (`pkg/apis/core/validation/events.go`): the legacy rules for every write, and
/// the strict ones for creates and updates through events.k8s.io/v1 (not through core v1, for compatibility).
/// Field paths use the internal (core) names, as the real server's messages do.
enum EventValidation {
    static func validate(_ e: EventStorage.Fields, old: EventStorage.Fields?, namespace: String, viaEventsAPI: Bool) -> [FieldError] {
        var errs = legacy(e, namespace: namespace, viaEventsAPI: viaEventsAPI)
        guard viaEventsAPI else { return errs }
        if let old {
            if e.series != old.series { errs += series(e) }
            func immutable<T: Equatable>(_ path: String, _ new: T, _ old: T, _ rendered: String) {
                if new != old { errs.append(.invalid(path, rendered, "field is immutable")) }
            }
            immutable("involvedObject", e.involvedObject, old.involvedObject, render(e.involvedObject))
            immutable("reason", e.reason, old.reason, FieldError.quoted(e.reason))
            immutable("message", e.message, old.message, FieldError.quoted(e.message))
            immutable("source", e.source, old.source, render(e.source))
            immutable("firstTimestamp", e.firstTimestamp, old.firstTimestamp, e.firstTimestamp ?? "null")
            immutable("lastTimestamp", e.lastTimestamp, old.lastTimestamp, e.lastTimestamp ?? "null")
            immutable("count", e.count, old.count, String(e.count))
            immutable("type", e.type, old.type, FieldError.quoted(e.type))
            immutable("eventTime", e.eventTime, old.eventTime, e.eventTime ?? "null")
            immutable("action", e.action, old.action, FieldError.quoted(e.action))
            immutable("related", e.related, old.related, e.related.map(render) ?? "nil")
            immutable("reportingController", e.reportingController, old.reportingController, FieldError.quoted(e.reportingController))
            immutable("reportingInstance", e.reportingInstance, old.reportingInstance, FieldError.quoted(e.reportingInstance))
            return errs
        }
        errs += series(e)
        if e.eventTime == nil { errs.append(.required("eventTime")) }
        if e.type != "Normal" && e.type != "Warning" { errs.append(.invalid("type", "\"\"", "has invalid value: \(e.type)")) }
        if e.firstTimestamp != nil { errs.append(.invalid("firstTimestamp", "\"\"", "needs to be unset")) }
        if e.lastTimestamp != nil { errs.append(.invalid("lastTimestamp", "\"\"", "needs to be unset")) }
        if e.count != 0 { errs.append(.invalid("count", "\"\"", "needs to be unset")) }
        if !e.source.isEmpty { errs.append(.invalid("source", "\"\"", "needs to be unset")) }
        return errs
    }

    static func series(_ e: EventStorage.Fields) -> [FieldError] {
        guard let s = e.series else { return [] }
        var errs: [FieldError] = []
        if s.count < 2 { errs.append(.invalid("series.count", "\"\"", "should be at least 2")) }
        if s.lastObservedTime == nil { errs.append(.required("series.lastObservedTime")) }
        return errs
    }

    /// What every Event must satisfy, whichever API wrote it.
    static func legacy(_ e: EventStorage.Fields, namespace: String, viaEventsAPI: Bool) -> [FieldError] {
        var errs: [FieldError] = []
        // One field, named as the API that was used names it (core v1 says reportingComponent, as kube-apiserver does).
        let controller = viaEventsAPI ? "reportingController" : "reportingComponent"
        let involvedNS = e.involvedObject["namespace"] ?? ""
        if e.eventTime == nil {
            // Old-style events: the event's namespace follows the object's (empty or "default" for cluster objects).
            if involvedNS.isEmpty ? (namespace != "" && namespace != "default") : namespace != involvedNS {
                errs.append(.invalid("involvedObject.namespace", FieldError.quoted(involvedNS), "does not match event.namespace"))
            }
        } else {
            if involvedNS.isEmpty && namespace != "default" && namespace != "kube-system" {
                errs.append(.invalid("involvedObject.namespace", FieldError.quoted(involvedNS), "does not match event.namespace"))
            }
            if e.reportingController.isEmpty { errs.append(.required(controller)) }
            for msg in qualifiedNameErrors(e.reportingController) {
                errs.append(.invalid(controller, FieldError.quoted(e.reportingController), msg))
            }
            if e.reportingInstance.isEmpty { errs.append(.required("reportingInstance")) }
            if e.reportingInstance.utf8.count > 128 { errs.append(.invalid("reportingInstance", "\"\"", "can have at most 128 characters")) }
            if e.action.isEmpty { errs.append(.required("action")) }
            if e.action.utf8.count > 128 { errs.append(.invalid("action", "\"\"", "can have at most 128 characters")) }
            if e.reason.isEmpty { errs.append(.required("reason")) }
            if e.reason.utf8.count > 128 { errs.append(.invalid("reason", "\"\"", "can have at most 128 characters")) }
            if e.message.utf8.count > 1024 { errs.append(.invalid("message", "\"\"", "can have at most 1024 characters")) }
        }
        if !Names.isDNS1123Subdomain(namespace) {
            errs.append(.invalid("namespace", FieldError.quoted(namespace), Names.dns1123SubdomainMessage))
        }
        return errs
    }

    static let qualifiedNameMessage = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"

    /// apimachinery's `IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name of at most 63
    /// alphanumerics, '-', '_' or '.', starting and ending alphanumeric.
    static func qualifiedNameErrors(_ value: String) -> [String] {
        var errs: [String] = []
        let parts = value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let name: String
        switch parts.count {
        case 1: name = parts[0]
        case 2:
            name = parts[1]
            if parts[0].isEmpty { errs.append("prefix part must be non-empty") }
            else if !Names.isDNS1123Subdomain(parts[0]) { errs.append("prefix part " + Names.dns1123SubdomainMessage) }
        default:
            return ["a qualified name " + qualifiedNameMessage + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
        }
        if name.isEmpty { errs.append("name part must be non-empty") }
        else if name.utf8.count > 63 { errs.append("name part must be no more than 63 characters") }
        let alnum: (Unicode.Scalar) -> Bool = { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
        let scalars = Array(name.unicodeScalars)
        let ok = !scalars.isEmpty && alnum(scalars.first!) && alnum(scalars.last!)
            && scalars.allSatisfy { alnum($0) || $0 == "-" || $0 == "_" || $0 == "." }
        if !ok { errs.append("name part " + qualifiedNameMessage) }
        return errs
    }

    static func render(_ r: [String: String]) -> String {
        String(decoding: EventStorage.reference(r).jsonData(), as: UTF8.self)
    }
}

// MARK: - Times

/// `metav1.Time` and `metav1.MicroTime` as the API server parses and prints them: RFC 3339 in, UTC out; Time to the
/// second, MicroTime with exactly six fractional digits (its parse layout is fixed-width, so other widths fail).
enum KubeTime {
    static let secondLayout = "2006-01-02T15:04:05Z07:00"
    static let microLayout = "2006-01-02T15:04:05.000000Z07:00"

    struct Instant { var seconds: Int64; var nanos: Int64 }

    static func parse(_ s: String, exactMicroseconds: Bool) -> Instant? {
        let c = Array(s.utf8)
        func digits(_ at: Int, _ n: Int) -> Int64? {
            guard at + n <= c.count else { return nil }
            var v: Int64 = 0
            for i in at..<(at + n) {
                guard c[i] >= 0x30 && c[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(c[i] - 0x30)
            }
            return v
        }
        func char(_ at: Int, _ ch: Character) -> Bool { at < c.count && c[at] == ch.asciiValue! }
        guard let year = digits(0, 4), char(4, "-"), let month = digits(5, 2), char(7, "-"), let day = digits(8, 2),
              char(10, "T"), let hour = digits(11, 2), char(13, ":"), let minute = digits(14, 2), char(16, ":"),
              let second = digits(17, 2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60, second < 60
        else { return nil }
        var i = 19
        var nanos: Int64 = 0
        if char(i, ".") {
            var n = 0
            i += 1
            while i < c.count, c[i] >= 0x30, c[i] <= 0x39 {
                if n < 9 { nanos = nanos * 10 + Int64(c[i] - 0x30) }
                n += 1; i += 1
            }
            guard n > 0, !exactMicroseconds || n == 6 else { return nil }
            for _ in min(n, 9)..<9 { nanos *= 10 }
        } else if exactMicroseconds {
            return nil
        }
        var offset: Int64 = 0
        if char(i, "Z") {
            i += 1
        } else if char(i, "+") || char(i, "-") {
            guard let oh = digits(i + 1, 2), char(i + 3, ":"), let om = digits(i + 4, 2), oh < 24, om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (char(i, "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == c.count else { return nil }
        let days = daysFromCivil(year, month, day)
        return Instant(seconds: days * 86400 + hour * 3600 + minute * 60 + second - offset, nanos: nanos)
    }

    /// Go's `time.Parse` error for `s`, for the usual mistakes: a MicroTime without exactly six fractional digits
    /// (`cannot parse "Z" as ".000000"`, `cannot parse "7Z" as "Z07:00"`); anything else is reported as a whole.
    static func parseError(_ s: String, micro: Bool) -> String {
        let layout = micro ? microLayout : secondLayout
        var detail = "cannot parse \(FieldError.quoted(s)) as \"2006\""
        if micro, parse(s, exactMicroseconds: false) != nil {
            let rest = String(s.dropFirst(19))
            if !rest.hasPrefix(".") || rest.prefix(7).dropFirst().contains(where: { !$0.isNumber }) || rest.count < 7 {
                detail = "cannot parse \(FieldError.quoted(rest)) as \".000000\""
            } else {
                detail = "cannot parse \(FieldError.quoted(String(rest.dropFirst(7)))) as \"Z07:00\""
            }
        }
        return "parsing time \(FieldError.quoted(s)) as \(FieldError.quoted(layout)): \(detail)"
    }

    static func formatSeconds(_ t: Instant) -> String { civil(t.seconds) + "Z" }
    static func formatMicro(_ t: Instant) -> String {
        let micros = String(t.nanos / 1000)
        return civil(t.seconds) + "." + String(repeating: "0", count: 6 - micros.count) + micros + "Z"
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// `YYYY-MM-DDTHH:MM:SS` in UTC for seconds since the epoch.
    static func civil(_ seconds: Int64) -> String {
        var days = seconds / 86400
        var rem = seconds % 86400
        if rem < 0 { rem += 86400; days -= 1 }
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ n: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, n - s.count)) + s }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(rem / 3600, 2)):\(pad(rem % 3600 / 60, 2)):\(pad(rem % 60, 2))"
    }
}
