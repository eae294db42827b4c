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

    /// The largest duration a parse returns: Go's `time.Duration` range, `2562047h47m16.854775807s`.
    public static let maximum = Duration.nanoseconds(Int64.max)

    /// Parses like Go's `time.ParseDuration` (a leading sign is allowed; `"0"` needs no unit). Every step is
    /// checked integer arithmetic: a value beyond ±`2562047h47m16.854775807s` is an error, never a trap; fraction
    /// digits past nanosecond precision are dropped, as Go does.
    public static func parse(_ text: String) throws -> Duration {
        func fail(_ r: String) -> ParseError { ParseError(input: text, reason: r) }
        let tooLarge = "too large; at most 2562047h47m16.854775807s (about 106751 days)"
        var s = Substring(text)
        var negative = false
        if s.first == "-" || s.first == "+" {
            negative = s.first == "-"
            s = s.dropFirst()
        }
        if s == "0" { return .zero }
        guard !s.isEmpty else { throw fail("empty; expected \(allowed)") }
        // The magnitude in nanoseconds; Int64.min's magnitude (2^63) is allowed for a negative value, as in Go.
        let limit = UInt64(Int64.max) + (negative ? 1 : 0)
        var total: UInt64 = 0
        while !s.isEmpty {
            let numEnd = s.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? s.endIndex
            let num = s[..<numEnd]
            guard !num.isEmpty, num != ".", num.utf8.lazy.filter({ $0 == UInt8(ascii: ".") }).count <= 1 else {
                throw fail("expected a number at \(FieldError.quoted(String(s.prefix(40)))); \(allowed)")
            }
            s = s[numEnd...]
            let unitEnd = s.firstIndex { $0.isASCII && ($0.isNumber || $0 == ".") } ?? s.endIndex
            let unit = s[..<unitEnd]
            s = s[unitEnd...]
            let scale: UInt64
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1_000
            case "ms": scale = 1_000_000
            case "s": scale = 1_000_000_000
            case "m": scale = 60_000_000_000
            case "h": scale = 3_600_000_000_000
            case "": throw fail("missing unit after \(num.prefix(40)); expected \(allowed)")
            default: throw fail("unknown unit \(FieldError.quoted(String(unit.prefix(40)))); expected \(allowed)")
            }
            let dot = num.firstIndex(of: ".")
            let wholeDigits = num[..<(dot ?? num.endIndex)]
            // Whole part: digit by digit, stopping at the first overflow of the limit.
            var whole: UInt64 = 0
            for d in wholeDigits.utf8 {
                let (w10, o1) = whole.multipliedReportingOverflow(by: 10)
                let (w, o2) = w10.addingReportingOverflow(UInt64(d - UInt8(ascii: "0")))
                guard !o1, !o2, w <= limit else { throw fail(tooLarge) }
                whole = w
            }
            let (wholeNanos, o3) = whole.multipliedReportingOverflow(by: scale)
            guard !o3, wholeNanos <= limit else { throw fail(tooLarge) }
            // Fraction: scale × 0.ddd, exact to the nanosecond (digits beyond what the scale can resolve change
            // nothing, so at most 19 are read; Go likewise drops what would overflow).
            var fracNanos: UInt64 = 0
            if let dot {
                var numerator: UInt64 = 0
                var denominator: UInt64 = 1
                for d in num[num.index(after: dot)...].utf8.prefix(18) {
                    numerator = numerator * 10 + UInt64(d - UInt8(ascii: "0"))
                    denominator *= 10
                }
                // scale ≤ 3.6e12 and numerator < 1e18: the product needs 128 bits.
                let (hi, lo) = scale.multipliedFullWidth(by: numerator)
                fracNanos = denominator.dividingFullWidth((hi, lo)).quotient
            }
            let (part, o4) = wholeNanos.addingReportingOverflow(fracNanos)
            let (sum, o5) = total.addingReportingOverflow(part)
            guard !o4, !o5, sum <= limit else { throw fail(tooLarge) }
            total = sum
        }
        if negative {
            return total == UInt64(Int64.max) + 1 ? .nanoseconds(Int64.min) : .nanoseconds(-Int64(total))
        }
        return .nanoseconds(Int64(total))
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
