import Foundation

/// Seeded, reproducible fuzzing for the parsers of outside input (DESIGN §6, rung 6).
///
/// The suite runs a bounded number of cases from a fixed seed, so a failure reproduces exactly; a longer run is
/// `TAPIO_FUZZ_CASES=200000 swift test --filter Fuzz` (and `TAPIO_FUZZ_SEED=N` to explore other inputs). Every
/// failing case is reported with its seed and index so it can be replayed and then added as a regression case.
///
///     var fuzz = Fuzz(seed: 16)
///     for i in 0..<Fuzz.cases(default: 2_000) {
///         let input = fuzz.mutate(fuzz.pick(corpus))
///         _ = try? Parser.parse(input)     // must not trap, hang or allocate without bound
///     }
public struct Fuzz: RandomNumberGenerator, Sendable {
    /// SplitMix64: tiny, fast and good enough to drive mutations; identical on every platform.
    var state: UInt64

    public init(seed: UInt64) {
        state = seed ^ (ProcessInfo.processInfo.environment["TAPIO_FUZZ_SEED"].flatMap(UInt64.init) ?? 0)
    }

    /// The seed in use, for messages.
    public var seedDescription: String {
        "TAPIO_FUZZ_SEED=\(ProcessInfo.processInfo.environment["TAPIO_FUZZ_SEED"] ?? "0")"
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// How many cases a fuzz test runs: `TAPIO_FUZZ_CASES` when set, else `default` (kept small enough for the
    /// suite on a loaded 2-core machine).
    public static func cases(default n: Int) -> Int {
        ProcessInfo.processInfo.environment["TAPIO_FUZZ_CASES"].flatMap(Int.init).map { max(1, $0) } ?? n
    }

    // MARK: Choosing

    public mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    public mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
    public mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    /// Numbers people and attackers write: boundaries of every integer width, floats that do not fit,
    /// exponents, signs, NaN and infinities, long digit runs.
    public static let hostileNumbers: [String] = [
        "0", "-0", "1", "-1", "0.5", "-0.5", "1e3", "1e20", "1e300", "-1e300", "1e-300", "1E309",
        "127", "128", "255", "256", "32767", "32768", "65535", "65536", "65537", "99999",
        "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616", "99999999999999999999999999999999",
        "NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "0x10", "1_000", "٣", "１", "",
        ".", "-", "+", "1.", ".1", "1..2", "1e", "e1", String(repeating: "9", count: 400),
    ]

    /// Duration-like strings, valid and hostile (Go syntax and what the CRD pattern lets through).
    public static let hostileDurations: [String] = [
        "0", "1ns", "100ms", "5m", "1h30m", "2562047h", "2562047.9h", "2562047h47m16.854775807s",
        "2562047h47m16.854775808s", "9999999999h", "-1s", "+1s", "1.5h", "0.000000001s", ".5s", "1.s", "1h1h1h",
        "1d", "1", "s", "1e3s", "NaNs", "1µs", "1μs", String(repeating: "1s", count: 2000),
        String(repeating: "9", count: 300) + "ns", "0." + String(repeating: "9", count: 300) + "h",
    ]

    /// Quantity-like strings, valid and hostile.
    public static let hostileQuantities: [String] = [
        "0", "1", "10Mi", "1.5Gi", "16Ei", "15Ei", "20000000000Gi", "1e20", "1e-20", "1E30", "1e31", "inf", "-1",
        "+1Ki", ".5", "1.", "100m", "1n", "1Zi", "1KB", "  1Mi ", "1e", "e6", "0x10", String(repeating: "9", count: 400),
        "9" + String(repeating: "0", count: 19) + "Ei", "0." + String(repeating: "0", count: 300) + "1",
    ]

    /// Strings that break naive text handling: control characters, quotes, multi-byte and combining characters,
    /// very long runs, YAML and JSON syntax.
    public static let hostileStrings: [String] = [
        "", " ", "\t", "\n", "\r\n", "\0", "\u{7F}", "\"", "'", "\\", "{", "}", "[", "]", ":", ",", "- ", "#",
        "&a", "*a", "!!binary", "!!int", "~", "null", "true", "Off", "yes", "é", "e\u{301}", "😀", "\u{FEFF}",
        "\u{202E}", String(repeating: "a", count: 10_000), String(repeating: "[", count: 2_000),
        String(repeating: "{\"a\":", count: 2_000),
    ]

    // MARK: Mutating

    /// One random mutation of `text` at the byte level (flip, insert, delete, duplicate a span, splice a hostile
    /// token) — may produce invalid UTF-8, which is part of the point.
    public mutating func mutateBytes(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        let rounds = int(1...4)
        for _ in 0..<rounds {
            let at = b.isEmpty ? 0 : int(0...b.count)
            switch int(0...7) {
            case 0 where !b.isEmpty:
                let i = Swift.min(at, b.count - 1)
                b[i] ^= UInt8(truncatingIfNeeded: 1 << int(0...7))
            case 1:
                b.insert(UInt8(truncatingIfNeeded: next()), at: at)
            case 2 where !b.isEmpty:
                let end = Swift.min(b.count, at + int(1...16))
                b.removeSubrange(Swift.min(at, end)..<end)
            case 3 where !b.isEmpty:
                let start = Swift.min(at, b.count - 1)
                let end = Swift.min(b.count, start + int(1...64))
                let span = Array(b[start..<end])
                for _ in 0..<int(1...8) { b.insert(contentsOf: span, at: start) }
            case 4:
                b.insert(contentsOf: Array(pick(Self.hostileNumbers).utf8), at: at)
            case 5:
                b.insert(contentsOf: Array(pick(Self.hostileStrings).utf8), at: at)
            case 6:
                b.insert(contentsOf: Array(pick(Self.hostileDurations + Self.hostileQuantities).utf8), at: at)
            default:
                if !b.isEmpty { b.removeSubrange(Swift.min(at, b.count)...) }
            }
        }
        return b
    }

    /// A mutation of `text` (bytes mutated, then decoded leniently when the consumer takes a `String`).
    public mutating func mutate(_ text: String) -> String {
        String(decoding: mutateBytes(Array(text.utf8)), as: UTF8.self)
    }

    /// Replaces every number in `text` (a run of digits, sign and dot) by a hostile number with probability `p`:
    /// structure stays intact, so the parser gets past the syntax and reaches its conversions.
    public mutating func replaceNumbers(in text: String, probability p: Double = 0.3) -> String {
        var out = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if c.isASCII && c.isNumber {
                var j = i
                while j < text.endIndex, text[j].isASCII && (text[j].isNumber || text[j] == ".") { j = text.index(after: j) }
                out += chance(p) ? pick(Self.hostileNumbers.filter { !$0.isEmpty }) : String(text[i..<j])
                i = j
            } else {
                out.append(c)
                i = text.index(after: i)
            }
        }
        return out
    }
}
