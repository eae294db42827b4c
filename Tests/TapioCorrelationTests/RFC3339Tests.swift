import Foundation
import Testing
@testable import TapioCorrelation

/// The formatter-free reading of `YYYY-MM-DDTHH:MM:SSZ` agrees with ISO8601DateFormatter and leaves it everything else.
@Suite struct RFC3339Tests {
    static func formatter(_ s: String) -> Double? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: s)?.timeIntervalSince1970
    }

    @Test func utcTimestampsReadAsTheFormatterReadsThem() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        var rng = SystemRandomNumberGenerator()
        let samples = (0..<2000).map { _ in Double(UInt64.random(in: 0..<4_102_444_800, using: &rng)) }
            + [0, 951_782_400, 1_709_164_800, 4_102_444_799]  // 1970, 2000-02-29, 2024-02-29, 2099-12-31T23:59:59
        for t in samples {
            let text = f.string(from: Date(timeIntervalSince1970: t))
            #expect(Formatting.utcSeconds(text).map(Double.init) == t, "\(text)")
        }
    }

    @Test func whatIsNotPlainUTCIsLeftToTheFormatter() {
        for text in ["2026-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
                     "2026-01-01T00:00:00+02:00", "2026-01-01 00:00:00Z", "２026-01-01T00:00:00Z", "2026-1-01T00:00:00Z"] {
            #expect(Formatting.utcSeconds(text) == nil, "\(text)")
        }
        #expect(Formatting.rfc3339Seconds("2026-01-01T02:00:00+02:00") == Self.formatter("2026-01-01T00:00:00Z"))
        #expect(Formatting.parseRFC3339("2026-12-02T08:51:15.593Z") == 1_796_201_475_593_000_000)
    }
}
