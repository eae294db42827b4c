/// Go-style durations as Kubernetes manifests write them (`100ms`, `5m`, `1h30m`, `1.5h`, `300us`).
///
///     try GoDuration.parse("1h30m")          // .seconds(5400)
///     GoDuration.format(.seconds(195))       // "3m15s"
///     GoDuration.format(.seconds(300))       // "5m0s"  (Go's time.Duration.String)
///     GoDuration.formatShort(.seconds(300))  // "5m"
public enum GoDuration {
    /// Why a string is not a duration; `description` says what was given and what is allowed.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var input: String
        public var reason: String
        public var description: String { "duration \(FieldError.quoted(input)): \(reason)" }
    }

    /// The CRD pattern for a non-negative duration (shared with `crds/`; a test checks they agree).
    public static let pattern = #"^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+)$"#

    static let allowed = "a sequence of numbers with units ns, us, ms, s, m, h, e.g. \"100ms\", \"5m\", \"1h30m\""

    /// Parses like Go's `time.ParseDuration` (a leading sign is allowed; `"0"` needs no unit).
    public static func parse(_ text: String) throws -> Duration {
        func fail(_ r: String) -> ParseError { ParseError(input: text, reason: r) }
        var s = Substring(text)
        var negative = false
        if s.first == "-" || s.first == "+" {
            negative = s.first == "-"
            s = s.dropFirst()
        }
        if s == "0" { return .zero }
        guard !s.isEmpty else { throw fail("empty; expected \(allowed)") }
        var totalNanos: Double = 0
        var exact: Int64 = 0
        while !s.isEmpty {
            let numEnd = s.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? s.endIndex
            let num = s[..<numEnd]
            guard !num.isEmpty, num != ".", num.filter({ $0 == "." }).count <= 1 else {
                throw fail("expected a number at \(FieldError.quoted(String(s))); \(allowed)")
            }
            s = s[numEnd...]
            let unitEnd = s.firstIndex { $0.isASCII && ($0.isNumber || $0 == ".") } ?? s.endIndex
            let unit = String(s[..<unitEnd])
            s = s[unitEnd...]
            let scale: Int64
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1_000
            case "ms": scale = 1_000_000
            case "s": scale = 1_000_000_000
            case "m": scale = 60_000_000_000
            case "h": scale = 3_600_000_000_000
            case "": throw fail("missing unit after \(num); expected \(allowed)")
            default: throw fail("unknown unit \(FieldError.quoted(unit)); expected \(allowed)")
            }
            let parts = num.split(separator: ".", omittingEmptySubsequences: false)
            let whole = parts[0].isEmpty ? 0 : Int64(parts[0])
            guard let whole else { throw fail("number too large") }
            let (m, o1) = whole.multipliedReportingOverflow(by: scale)
            let (sum, o2) = exact.addingReportingOverflow(m)
            if o1 || o2 { throw fail("too large; at most about 2562047h") }
            exact = sum
            if parts.count == 2, !parts[1].isEmpty {
                // Fractions accumulate separately so 1.5h + 0.5h sums exactly before truncation to whole nanoseconds.
                let fracDigits = parts[1].prefix(18)
                guard let f = Int64(fracDigits) else { throw fail("bad fraction") }
                var denom: Int64 = 1
                for _ in 0..<fracDigits.count { denom *= 10 }
                let part = Double(f) / Double(denom) * Double(scale)
                exact += Int64(part.rounded(.down))
                totalNanos += part - part.rounded(.down)
            }
        }
        let nanos = exact + Int64(totalNanos.rounded(.down))
        return .nanoseconds(negative ? -nanos : nanos)
    }

    /// True if `text` parses and is not negative.
    public static func isValid(_ text: String) -> Bool { ((try? parse(text)).map { $0 >= .zero }) ?? false }

    /// Formats like Go's `time.Duration.String`: `"1h30m0s"`, `"3m15s"`, `"1.5s"`, `"100ms"`, `"0s"`.
    public static func format(_ d: Duration) -> String {
        let (secs, atto) = d.components
        let total = Int64(clamping: Int128(secs) * 1_000_000_000 + Int128(atto / 1_000_000_000))
        let neg = total < 0
        let u = total.magnitude
        var out: String
        if u < 1_000_000_000 {
            if u == 0 { return "0s" }
            if u < 1_000 {
                out = "\(u)ns"
            } else if u < 1_000_000 {
                out = fraction(u, 1_000) + "µs"
            } else {
                out = fraction(u, 1_000_000) + "ms"
            }
        } else {
            let h = u / 3_600_000_000_000
            let m = (u / 60_000_000_000) % 60
            let sNanos = u % 60_000_000_000
            out = ""
            if h > 0 { out += "\(h)h" }
            if h > 0 || m > 0 { out += "\(m)m" }
            out += fraction(sNanos, 1_000_000_000) + "s"
        }
        return neg ? "-" + out : out
    }

    /// Like `format` but without trailing zero units: `"5m"`, `"1h30m"`, `"3m15s"`.
    public static func formatShort(_ d: Duration) -> String {
        var s = format(d)
        if s.hasSuffix("m0s") { s.removeLast(2) }
        if s.hasSuffix("h0m") { s.removeLast(2) }
        return s
    }

    /// `v / unit` with up to 9 fractional digits, trailing zeros dropped (Go's fmtFrac).
    static func fraction(_ v: UInt64, _ unit: UInt64) -> String {
        let whole = v / unit
        let frac = v % unit
        guard frac > 0 else { return String(whole) }
        var digits = 0
        var u = unit
        while u > 1 { u /= 10; digits += 1 }
        var f = String(frac)
        f = String(repeating: "0", count: digits - f.count) + f
        while f.hasSuffix("0") { f.removeLast() }
        return "\(whole).\(f)"
    }
}
