import TapioModel
import Testing

@Suite("Quantities and durations", .timeLimit(.minutes(2)))
struct QuantityDurationTests {
    @Test("quantities parse to bytes, rounding fractions up", arguments: [
        ("10Mi", UInt64(10_485_760)), ("512M", 512_000_000), ("1Gi", 1_073_741_824), ("1.5Gi", 1_610_612_736),
        ("0", 0), ("1", 1), ("1k", 1000), ("1Ki", 1024), ("1e3", 1000), ("1E6", 1_000_000), ("+2Mi", 2_097_152),
        (".5Ki", 512), ("1500m", 2), ("1Ei", 1 << 60), ("0.1", 1),
    ])
    func quantities(text: String, bytes: UInt64) throws {
        #expect(try Quantity.parseBytes(text) == bytes)
    }

    @Test("bad quantities fail with the input and what is allowed", arguments: [
        ("", "empty"), ("10MB", "Ki/Mi/Gi"), ("abc", "not a number"), ("1.2.3Mi", "not a number"),
        ("-1Mi", "negative"), ("16Ei", "too large"), ("1Zi", "unknown suffix"),
        // Found by the fuzzer: an exponent of Int.min trapped in abs().
        ("1e-9223372036854775808", "out of range"), ("1e9223372036854775807", "out of range"), ("1e31", "out of range"),
        ("1e99999999999999999999999", "out of range"),
    ])
    func badQuantities(text: String, says: String) {
        do {
            _ = try Quantity.parseBytes(text)
            Issue.record("\(text) parsed")
        } catch let e as Quantity.ParseError {
            #expect(e.description.contains(FieldError.quoted(text)))
            #expect(e.description.contains(says), "\(e)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("bytes format with the largest exact binary suffix")
    func formatBytes() throws {
        #expect(Quantity.formatBytes(10_485_760) == "10Mi")
        #expect(Quantity.formatBytes(1536 * 1024) == "1536Ki")
        #expect(Quantity.formatBytes(1000) == "1000")
        #expect(try Quantity.parseBytes(Quantity.formatBytes(123_456_789)) == 123_456_789)
    }

    @Test("Go durations parse", arguments: [
        ("100ms", Duration.milliseconds(100)), ("5m", .seconds(300)), ("1h30m", .seconds(5400)), ("1.5h", .seconds(5400)),
        ("0", .zero), ("300us", .microseconds(300)), ("300µs", .microseconds(300)), ("2h45m30.5s", .milliseconds(9_930_500)),
        ("-1s", .seconds(-1)), ("10ns", .nanoseconds(10)),
        // Go's range, exactly: the largest and the smallest time.Duration.
        ("2562047h47m16.854775807s", .nanoseconds(Int64.max)), ("-2562047h47m16.854775808s", .nanoseconds(Int64.min)),
        // Fraction digits beyond nanosecond precision are dropped, not rounded and not overflowed.
        ("1.0000000009s", .seconds(1)), ("0.123456789012345678901234567890h", .nanoseconds(444_444_440_444)),
    ])
    func durations(text: String, value: Duration) throws {
        #expect(try GoDuration.parse(text) == value)
    }

    @Test("bad durations fail with the input and what is allowed", arguments: [
        ("", "empty"), ("5", "missing unit"), ("5 m", "unknown unit"), ("5d", "unknown unit"), ("m", "expected a number"),
        ("9999999999h", "too large"),
        // Issue 16: these match the CRD pattern and used to trap in the parser (every agent and the operator died).
        ("2562047.9h", "too large"), ("2562047h47m16.854775808s", "too large"), ("2562048h", "too large"),
        ("99999999999999999999999ns", "too large"), ("1h2562047h", "too large"), ("-2562047h47m16.854775809s", "too large"),
        (".", "expected a number"), ("1..2s", "expected a number"),
    ])
    func badDurations(text: String, says: String) {
        do {
            _ = try GoDuration.parse(text)
            Issue.record("\(text) parsed")
        } catch let e as GoDuration.ParseError {
            #expect(e.description.contains(says), "\(e)")
            #expect(e.description.contains(FieldError.quoted(text)))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("durations format like Go's time.Duration.String", arguments: [
        (Duration.seconds(195), "3m15s"), (.seconds(300), "5m0s"), (.seconds(5400), "1h30m0s"), (.milliseconds(100), "100ms"),
        (.milliseconds(1500), "1.5s"), (.zero, "0s"), (.nanoseconds(1500), "1.5µs"), (.seconds(-90), "-1m30s"),
    ])
    func format(value: Duration, text: String) throws {
        #expect(GoDuration.format(value) == text)
        #expect(try GoDuration.parse(text) == value)
    }

    @Test("short formatting drops trailing zero units")
    func formatShort() {
        #expect(GoDuration.formatShort(.seconds(300)) == "5m")
        #expect(GoDuration.formatShort(.seconds(5400)) == "1h30m")
        #expect(GoDuration.formatShort(.seconds(3600)) == "1h")
        #expect(GoDuration.formatShort(.seconds(195)) == "3m15s")
    }

    /// `components` rounds toward zero: −0.5 s is (0 s, −5·10¹⁷ attoseconds), which trapped as a UInt64.
    @Test func aNegativeDurationUnderASecondIsZeroNanoseconds() {
        #expect(Duration.milliseconds(-500).nanos == 0)
        #expect(Duration.nanoseconds(-1).nanos == 0)
        #expect(Duration.seconds(-3).nanos == 0)
        #expect(Duration.milliseconds(1500).nanos == 1_500_000_000)
    }
}
