import Foundation

/// `metav1.MicroTime` text: RFC 3339 with exactly six fractional digits, UTC (`2026-11-29T04:05:06.123456Z`).
/// The API server parses it with a fixed six-digit layout, so three digits would be rejected.
public enum MicroTime {
    public static func string(_ date: Date = Date()) -> String {
        let t = date.timeIntervalSince1970
        var secs = time_t(t.rounded(.down))
        let micros = Int((t - Double(secs)) * 1_000_000)
        var tmv = tm()
        gmtime_r(&secs, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
                      Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), micros)
    }
}
