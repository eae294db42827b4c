import Foundation

/// Kubernetes resource quantities (`10Mi`, `512M`, `1Gi`, `1.5Gi`, `1e6`, `100m`) as byte counts.
///
///     try Quantity.parseBytes("1.5Gi")   // 1_610_612_736
///     Quantity.formatBytes(10_485_760)   // "10Mi"
///
/// The grammar is apimachinery's: `[+-]? (digits[.digits] | .digits) (binarySI | decimalSI | [eE][+-]?digits)?`
/// with binary suffixes Ki Mi Gi Ti Pi Ei and decimal ones n u m k M G T P E. Fractional bytes round up,
/// as the API server does.
public enum Quantity {
    /// Why a quantity string is not a byte count; `description` says what was given and what is allowed.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var input: String
        public var reason: String
        public var description: String { "quantity \(FieldError.quoted(input)): \(reason)" }
    }

    /// The CRD pattern for a non-negative quantity (shared with `crds/`; a test checks they agree).
    public static let pattern = #"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"#

    static let allowed = "a number with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024), k, M, G, T, P, E (powers of 1000), m, u, n, or an exponent (1e6), e.g. \"10Mi\", \"512M\", \"1.5Gi\""

    /// Parses a non-negative quantity into bytes (rounding fractions up). Throws `ParseError` for syntax errors,
    /// negative values and values above `UInt64.max`.
    public static func parseBytes(_ text: String) throws -> UInt64 {
        func fail(_ r: String) -> ParseError { ParseError(input: text, reason: r) }
        let s = text.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { throw fail("empty; expected \(allowed)") }
        var scalars = Substring(s)
        var negative = false
        if scalars.first == "+" || scalars.first == "-" {
            negative = scalars.first == "-"
            scalars = scalars.dropFirst()
        }
        let numberEnd = scalars.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? scalars.endIndex
        let number = String(scalars[..<numberEnd])
        let suffix = String(scalars[numberEnd...])
        guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1 else {
            throw fail("not a number; expected \(allowed)")
        }
        // No locale: `.` is the separator either way, and building a Locale loads ICU (~5 MiB of an idle agent).
        guard var value = Decimal(string: number.hasPrefix(".") ? "0" + number : number, locale: nil) else {
            throw fail("not a number; expected \(allowed)")
        }
        let multiplier: Decimal
        switch suffix {
        case "": multiplier = 1
        case "Ki": multiplier = pow(Decimal(1024), 1)
        case "Mi": multiplier = pow(Decimal(1024), 2)
        case "Gi": multiplier = pow(Decimal(1024), 3)
        case "Ti": multiplier = pow(Decimal(1024), 4)
        case "Pi": multiplier = pow(Decimal(1024), 5)
        case "Ei": multiplier = pow(Decimal(1024), 6)
        case "n": multiplier = Decimal(sign: .plus, exponent: -9, significand: 1)
        case "u": multiplier = Decimal(sign: .plus, exponent: -6, significand: 1)
        case "m": multiplier = Decimal(sign: .plus, exponent: -3, significand: 1)
        case "k": multiplier = Decimal(sign: .plus, exponent: 3, significand: 1)
        case "M": multiplier = Decimal(sign: .plus, exponent: 6, significand: 1)
        case "G": multiplier = Decimal(sign: .plus, exponent: 9, significand: 1)
        case "T": multiplier = Decimal(sign: .plus, exponent: 12, significand: 1)
        case "P": multiplier = Decimal(sign: .plus, exponent: 15, significand: 1)
        case "E": multiplier = Decimal(sign: .plus, exponent: 18, significand: 1)
        default:
            // A range check rather than abs(): abs(Int.min) traps (found by PolicyFuzzTests).
            if let first = suffix.first, first == "e" || first == "E", let exp = Int(suffix.dropFirst()),
               (-30...30).contains(exp) {
                multiplier = Decimal(sign: .plus, exponent: exp, significand: 1)
            } else if let first = suffix.first, first == "e" || first == "E", suffix.count > 1,
                      suffix.dropFirst().drop(while: { $0 == "+" || $0 == "-" }).allSatisfy({ $0.isASCII && $0.isNumber }) {
                throw fail("exponent \(FieldError.quoted(String(suffix.prefix(24)))) out of range; at most e30")
            } else if ["KB", "MB", "GB", "K", "kb", "mb", "gb", "ki", "mi", "gi", "KiB", "MiB", "GiB"].contains(suffix) {
                throw fail("unknown suffix \(FieldError.quoted(suffix)); Kubernetes spells it Ki/Mi/Gi (1024) or k/M/G (1000)")
            } else {
                throw fail("unknown suffix \(FieldError.quoted(suffix)); expected \(allowed)")
            }
        }
        value *= multiplier
        if negative && value > 0 { throw fail("must not be negative") }
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 0, .up)
        guard rounded <= Decimal(UInt64.max), let bytes = UInt64(rounded.description) else {
            throw fail("too large; at most \(UInt64.max) bytes (just under 16Ei)")
        }
        return bytes
    }

    /// True if `text` parses as a byte quantity.
    public static func isValidBytes(_ text: String) -> Bool { (try? parseBytes(text)) != nil }

    /// The shortest exact binary-suffixed rendering (`10Mi`, `1536Ki`), or the plain number.
    public static func formatBytes(_ bytes: UInt64) -> String {
        guard bytes > 0 else { return "0" }
        let suffixes: [(String, UInt64)] = [("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30),
                                            ("Mi", 1 << 20), ("Ki", 1 << 10)]
        for (s, m) in suffixes where bytes % m == 0 {
            return "\(bytes / m)\(s)"
        }
        return String(bytes)
    }
}
