import Foundation
import TapioModel

/// Typed access to one JSON object's fields, with errors that name the line and the field.
///
/// Every number is converted checked: a value outside its field's range is an error that names the range, never a
/// trap. JSON numbers arrive as `NSNumber`s holding an integer (exact) or a `Double`.
struct Fields {
    let dict: [String: Any]
    let line: Int
    var prefix = ""

    func error(_ key: String, _ message: String) -> ScenarioError {
        ScenarioError(line: line, field: prefix + key, message: message)
    }

    /// The value of `k`; nil when absent or JSON null.
    func value(_ k: String) -> Any? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        return v
    }

    // MARK: Strings and booleans

    func string(_ k: String) throws -> String {
        guard let v = try optString(k) else { throw error(k, "missing (a string)") }
        return v
    }
    func optString(_ k: String) throws -> String? {
        guard let v = value(k) else { return nil }
        guard let s = v as? String else { throw error(k, "expected a string") }
        return s
    }
    func bool(_ k: String) throws -> Bool {
        guard let v = try optBool(k) else { throw error(k, "missing (true or false)") }
        return v
    }
    func optBool(_ k: String) throws -> Bool? {
        guard let v = value(k) else { return nil }
        if Self.isBool(v), let b = v as? Bool { return b }
        throw error(k, "expected true or false")
    }

    // MARK: Integers

    func int<T: FixedWidthInteger>(_ k: String, in range: ClosedRange<T>) throws -> T {
        guard let v = try optInt(k, in: range) else { throw error(k, "missing (\(Self.integer(range)))") }
        return v
    }

    /// A whole number within `range` (a JSON number; `3.0` counts as 3).
    func optInt<T: FixedWidthInteger>(_ k: String, in range: ClosedRange<T>) throws -> T? {
        guard let v = value(k) else { return nil }
        let expected = Self.integer(range)
        switch Self.number(v) {
        case .integer(let i):
            guard let x = T(exactly: i), range.contains(x) else {
                throw error(k, "\(i) is out of range; expected \(expected)")
            }
            return x
        case .real(let d):
            guard d.isFinite, d == d.rounded() else {
                throw error(k, "\(d) is not a whole number; expected \(expected)")
            }
            throw error(k, "\(d) is out of range; expected \(expected)")
        case nil:
            throw error(k, "expected \(expected)")
        }
    }

    static func integer<T: FixedWidthInteger>(_ range: ClosedRange<T>) -> String {
        "an integer from \(range.lowerBound) to \(range.upperBound)"
    }

    // MARK: Times

    /// Nanoseconds from a number of seconds or a duration string (`"1m30s"`, `"250ms"`, or a number in quotes),
    /// from 0 to `max`; `range` describes the allowed values for the error message.
    func optNanos(_ k: String, max: UInt64, range: @autoclosure () -> String) throws -> UInt64? {
        guard let v = value(k) else { return nil }
        let expected = "expected seconds (a number) or a duration such as \"1m30s\""
        var seconds: Double
        switch Self.number(v) {
        case .integer(let i):
            guard i >= 0 else { throw error(k, "\(i) must not be negative; \(range())") }
            let (ns, overflow) = i.multipliedReportingOverflow(by: 1_000_000_000)
            guard !overflow, ns <= Int128(max) else { throw error(k, "\(i) s is out of range; \(range())") }
            return UInt64(ns)
        case .real(let d):
            seconds = d
        case nil:
            guard let s = v as? String else { throw error(k, expected) }
            if let d = Self.plainNumber(s) {
                seconds = d
            } else {
                do {
                    let d = try GoDuration.parse(s)
                    guard d >= .zero else { throw error(k, "\(FieldError.quoted(s)) must not be negative; \(range())") }
                    let ns = d.nanos
                    guard ns <= max else { throw error(k, "\(FieldError.quoted(s)) is out of range; \(range())") }
                    return ns
                } catch let e as GoDuration.ParseError {
                    throw error(k, "\(expected): \(e.reason)")
                }
            }
        }
        guard !seconds.isNaN else { throw error(k, "not a number; \(range())") }
        guard seconds >= 0 else { throw error(k, "\(seconds) must not be negative; \(range())") }
        guard let ns = UInt64.rounding(exactly: seconds * 1e9), ns <= max else {
            throw error(k, "\(seconds) s is out of range; \(range())")
        }
        return ns
    }

    /// A number written as a string (`"12.5"`): digits, one dot, an exponent — not `nan`, `inf` or hex, which
    /// `Double.init` would take.
    static func plainNumber(_ s: String) -> Double? {
        guard !s.isEmpty,
            s.utf8.allSatisfy({
                (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x65 || $0 == 0x45 || $0 == 0x2B || $0 == 0x2D
            }),
            s.utf8.first.map({ (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x2D }) == true
        else { return nil }
        return Double(s)
    }

    // MARK: Bytes

    func bytes(_ k: String) throws -> UInt64 {
        guard let v = try optBytes(k) else { throw error(k, "missing (bytes, e.g. 268435456 or \"256Mi\")") }
        return v
    }

    /// Bytes as a number (fractions round up, as Kubernetes rounds quantities) or a Kubernetes quantity
    /// (`"256Mi"`, `"1.5Gi"`, `"100M"`), from 0 to 2^64 − 1.
    func optBytes(_ k: String) throws -> UInt64? {
        guard let v = value(k) else { return nil }
        let range = "expected 0 to \(UInt64.max) bytes (just under 16Ei)"
        switch Self.number(v) {
        case .integer(let i):
            guard let b = UInt64(exactly: i) else { throw error(k, "\(i) is out of range; \(range)") }
            return b
        case .real(let d):
            guard d.isFinite, d >= 0, let b = UInt64.rounding(exactly: d.rounded(.up)) else {
                throw error(k, "\(d) is out of range; \(range)")
            }
            return b
        case nil:
            guard let s = v as? String else {
                throw error(k, "expected bytes: a number or a quantity such as \"256Mi\"")
            }
            do {
                return try Quantity.parseBytes(s)
            } catch let e as Quantity.ParseError {
                throw error(k, "expected bytes: a number or a quantity such as \"256Mi\"; \(e.description)")
            }
        }
    }

    // MARK: Addresses

    func endpoint(_ k: String, default d: (String, UInt16)?) throws -> (String, UInt16) {
        guard let s = try optString(k) else {
            if let d { return d }
            throw error(k, "missing (address:port, e.g. \"10.0.0.7:5432\" or \"[::1]:80\")")
        }
        guard let colon = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: colon)...]) else {
            throw error(k, "expected address:port with a port from 0 to 65535, e.g. \"10.0.0.7:5432\"")
        }
        var addr = String(s[..<colon])
        if addr.hasPrefix("["), addr.hasSuffix("]") { addr = String(addr.dropFirst().dropLast()) }
        return (addr, port)
    }

    // MARK: JSON values

    enum Number {
        case integer(Int128)
        case real(Double)
    }

    /// A JSON number as Foundation hands it over: an exact integer when it is one, else a `Double`; nil for
    /// anything else, booleans included.
    static func number(_ v: Any) -> Number? {
        guard !isBool(v), let n = v as? NSNumber else { return nil }
        if let i = v as? Int64 { return .integer(Int128(i)) }
        if let u = v as? UInt64 { return .integer(Int128(u)) }
        return .real(n.doubleValue)
    }

    /// JSON true/false (Foundation hands numbers and booleans over as NSNumber; only booleans have type "c").
    static func isBool(_ v: Any) -> Bool {
        if let n = v as? NSNumber { return String(cString: n.objCType) == "c" }
        return v is Bool
    }
}
