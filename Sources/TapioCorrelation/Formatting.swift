import Foundation

/// Human formats used in insight text: Go-style durations ("3m15s"), binary byte sizes ("512Mi"), RFC 3339 times.
public enum Formatting {
    /// "3m15s", "45s", "1h2m", "2h" — Go/Kubernetes style, rounded to whole seconds (sub-second: "0s").
    public static func duration(seconds: Double) -> String {
        guard seconds.isFinite, seconds > 0 else { return "0s" }
        var s = Int.rounding(clamping: seconds)
        let h = s / 3600
        s %= 3600
        let m = s / 60
        s %= 60
        if h > 0 { return m > 0 ? "\(h)h\(m)m" : "\(h)h" }  // above an hour, seconds are noise
        if m > 0 { return s > 0 ? "\(m)m\(s)s" : "\(m)m" }
        return "\(s)s"
    }

    /// Binary units as Kubernetes writes them: "512Mi", "1.5Gi", "300Ki", "12B".
    public static func bytes(_ v: Double) -> String {
        let units: [(Double, String)] = [(1_099_511_627_776, "Ti"), (1_073_741_824, "Gi"), (1_048_576, "Mi"), (1024, "Ki")]
        guard v.isFinite else { return "\(v)B" }
        for (size, unit) in units where abs(v) >= size {
            let x = v / size
            let rounded = (x * 10).rounded() / 10
            return rounded == rounded.rounded() ? "\(Int.rounding(clamping: rounded))\(unit)" : "\(rounded)\(unit)"
        }
        return "\(Int.rounding(clamping: v))B"
    }

    public static func bytes(_ v: UInt64) -> String { bytes(Double(v)) }

    /// A limit as a Kubernetes quantity with no fraction: whole Mi (rounded up), e.g. "614Mi".
    public static func quantityMi(_ v: UInt64) -> String {
        let mi = (v >> 20) + (v & ((1 << 20) - 1) == 0 ? 0 : 1)
        return "\(mi)Mi"
    }

    /// "45%" from 0.45.
    public static func percent(_ p: Double) -> String { "\(Int.rounding(clamping: p * 100))%" }

    /// RFC 3339 UTC with second precision (milliseconds when not whole).
    public static func rfc3339(nanos: UInt64) -> String {
        let secs = nanos / 1_000_000_000
        let ms = (nanos % 1_000_000_000) / 1_000_000
        var t = time_t(secs)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        let base = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
                          Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
        return ms == 0 ? base + "Z" : base + String(format: ".%03dZ", Int(ms))
    }

    /// The last instant the engine's clock can name: `UInt64.max` nanoseconds after the Unix epoch.
    public static let lastInstant = "2554-07-21T23:34:33Z"

    /// ``parseRFC3339(_:)`` as a `Date` (nil for nil or unreadable text): the operator's reading of Lease and Insight
    /// times.
    public static func parseDate(_ s: String?) -> Date? {
        s.flatMap(parseRFC3339).map { Date(timeIntervalSince1970: Double($0) / 1e9) }
    }

    /// Parses RFC 3339 (`2026-11-29T10:00:00Z`, optional fraction, `Z` or `±hh:mm`) to nanoseconds since the Unix
    /// epoch. Times before 1970 read as 0; nil for text that is not RFC 3339 and for times after ``lastInstant``.
    public static func parseRFC3339(_ s: String) -> UInt64? {
        // Whole seconds through the formatter, the fraction by its digits: through a Double, .593 came back as
        // .592999999 and was written as .592 (a stored firstSeen moved back a millisecond on every round trip).
        var whole = s
        var fractionNanos: UInt64 = 0
        if let dot = s.firstIndex(of: ".") {
            let digits = s[s.index(after: dot)...].prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else { return nil }
            for (i, d) in digits.prefix(9).enumerated() {
                fractionNanos += UInt64(d.asciiValue! - 48) * [100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1][i]
            }
            whole = String(s[..<dot]) + String(s[digits.endIndex...])
        }
        guard let seconds = rfc3339Seconds(whole) else { return nil }
        guard seconds >= 0 else { return 0 }
        guard let secs = UInt64(exactly: seconds.rounded(.down)) else { return nil }
        let (n, overflow) = secs.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflow2) = n.addingReportingOverflow(fractionNanos)
        return overflow || overflow2 ? nil : total
    }

    /// Seconds since the Unix epoch (negative before 1970), or nil when `s` is not RFC 3339.
    static func rfc3339Seconds(_ s: String) -> Double? {
        if let utc = utcSeconds(s) { return Double(utc) }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return d.timeIntervalSince1970 }
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: s) { return d.timeIntervalSince1970 }
        return nil
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` — what Kubernetes and Tapio write — read without a formatter: creating an
    /// `ISO8601DateFormatter` costs about a millisecond on Linux, and the operator reads every Insight's `lastSeen` at
    /// every pass of its detectors (measured: 6–17 s a pass at 5,000–9,000 Insights). Nil for anything else (an offset,
    /// a date that does not exist), which the formatter then judges.
    static func utcSeconds(_ s: String) -> Int64? {
        let u = Array(s.utf8)
        guard u.count == 20, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-"), u[10] | 0x20 == UInt8(ascii: "t"),
              u[13] == UInt8(ascii: ":"), u[16] == UInt8(ascii: ":"), u[19] | 0x20 == UInt8(ascii: "z") else { return nil }
        func number(_ r: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in r {
                let d = u[i] &- 48
                guard d < 10 else { return nil }
                v = v * 10 + Int64(d)
            }
            return v
        }
        guard let y = number(0..<4), let mo = number(5..<7), let d = number(8..<10), let h = number(11..<13),
              let mi = number(14..<16), let sec = number(17..<19), (1...12).contains(mo), h < 24, mi < 60, sec < 60 else { return nil }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let monthDays: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard d >= 1, d <= monthDays[Int(mo) - 1] else { return nil }
        // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil; y is 0...9999 here).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
        return days * 86_400 + h * 3_600 + mi * 60 + sec
    }
}
