import Foundation
import KubeClient
import TapioKube
import TapioModel
import TapioTestSupport
import Testing
import TapioTestTraits

/// Issue 16, item 2: the parsers of policy input under generated and mutated input — durations, quantities, policies
/// as the API server hands them over (JSON) and as files (YAML). Fixed seeds and a bounded number of cases in the
/// suite; `TAPIO_FUZZ_CASES=200000 swift test --filter PolicyFuzzTests` runs longer (`TAPIO_FUZZ_SEED` varies the
/// inputs). A trap here kills the test process, which fails the run: "does not crash" is asserted by finishing.
@Suite("Fuzzing policy input", .cpuBound, .timeLimit(.minutes(5)))
struct PolicyFuzzTests {
    @Test("durations: any text parses or fails with a ParseError, and every Int64 of nanoseconds round-trips")
    func durations() throws {
        var fuzz = Fuzz(seed: 0xD0_0A)
        for _ in 0..<Fuzz.cases(default: 5_000) {
            let text = fuzz.chance(0.5) ? fuzz.mutate(fuzz.pick(Fuzz.hostileDurations)) : fuzz.pick(Fuzz.hostileDurations)
            if let d = try? GoDuration.parse(text) {
                // Whatever parses is a Duration Go could hold, and formats back to the same value.
                #expect(d >= .nanoseconds(Int64.min) && d <= GoDuration.maximum)
                #expect(try GoDuration.parse(GoDuration.format(d)) == d, "\(text) → \(d) (\(fuzz.seedDescription))")
            }
            let n = Int64(bitPattern: fuzz.next()) >> fuzz.int(0...63)
            let d = Duration.nanoseconds(n)
            #expect(try GoDuration.parse(GoDuration.format(d)) == d, "\(n) ns did not round-trip (\(fuzz.seedDescription))")
        }
    }

    @Test("quantities: any text parses or fails with a ParseError, and every byte count round-trips")
    func quantities() throws {
        var fuzz = Fuzz(seed: 0x0B_17E5)
        for _ in 0..<Fuzz.cases(default: 5_000) {
            let text = fuzz.chance(0.5) ? fuzz.mutate(fuzz.pick(Fuzz.hostileQuantities)) : fuzz.pick(Fuzz.hostileQuantities)
            do {
                _ = try Quantity.parseBytes(text)
            } catch is Quantity.ParseError {
            } catch {
                Issue.record("\(text): \(error) is not a Quantity.ParseError")
            }
            let b = fuzz.next() >> fuzz.int(0...63)
            #expect(try Quantity.parseBytes(Quantity.formatBytes(b)) == b)
        }
    }

    /// The sample policy with its fields given hostile values, or mutated bytes.
    static func mutatedPolicyJSON(_ fuzz: inout Fuzz) throws -> Data {
        var json = String(decoding: try JSONEncoder().encode(Fixtures.fullPolicy), as: UTF8.self)
        if fuzz.chance(0.3) {
            // Durations and quantities swapped for hostile ones, structure intact.
            for field in ["50ms", "10m", "15m", "48h"] where fuzz.chance(0.5) {
                json = json.replacingOccurrences(of: "\"\(field)\"", with: "\"\(fuzz.pick(Fuzz.hostileDurations))\"")
            }
            for field in ["20Mi", "4Gi"] where fuzz.chance(0.5) {
                json = json.replacingOccurrences(of: "\"\(field)\"", with: "\"\(fuzz.pick(Fuzz.hostileQuantities))\"")
            }
        }
        if fuzz.chance(0.5) { json = fuzz.replaceNumbers(in: json) }
        return fuzz.chance(0.5) ? Data(fuzz.mutateBytes(Array(json.utf8))) : Data(json.utf8)
    }

    /// What an accepted policy promises its readers: every accessor the agent uses succeeds and lies in range.
    static func checkAccepted(_ p: TapioPolicy, _ input: String) {
        let c = p.spec.correlation, i = p.spec.insights, m = p.spec.probes.memory
        #expect((try? c.batchTimeoutDuration()).map(CorrelationSettings.batchTimeoutRange.contains) == true, "\(input)")
        #expect((try? c.windowDuration()).map(CorrelationSettings.windowRange.contains) == true, "\(input)")
        #expect((try? i.resolveAfterDuration()).map(InsightSettings.resolveAfterRange.contains) == true, "\(input)")
        #expect((try? i.ttlDuration()).map(InsightSettings.ttlRange.contains) == true, "\(input)")
        #expect((try? m.leakThresholdBytesPerHour()).map(MemoryProbe.leakThresholdRange.contains) == true, "\(input)")
        #expect(MemoryProbe.samplingHzRange.contains(m.samplingHz), "\(input)")
        #expect(CorrelationSettings.batchSizeRange.contains(c.batchSize), "\(input)")
        if let ceiling = try? p.spec.remediation.memoryCeilingBytes() {
            #expect(RemediationSettings.memoryCeilingRange.contains(ceiling), "\(input)")
        }
    }

    @Test("policies as the API server sends them: decoding never throws on the spec, and accepted means in range")
    func policyJSON() throws {
        var fuzz = Fuzz(seed: 0x9011C1)
        var accepted = 0, refused = 0
        for _ in 0..<Fuzz.cases(default: 3_000) {
            let data = try Self.mutatedPolicyJSON(&fuzz)
            let (policy, problems) = TapioPolicyValidation.decodeAndValidate(json: data)
            let errors = problems.filter { $0.level == .error }
            if let policy, errors.isEmpty {
                accepted += 1
                Self.checkAccepted(policy, String(decoding: data, as: UTF8.self))
            } else {
                refused += 1
                #expect(!errors.isEmpty, "refused without an error")
            }
        }
        // Both outcomes must be exercised, or the mutations are too weak or too strong to mean anything.
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }

    @Test("policy files: any YAML loads or is refused with messages naming the file; accepted means in range")
    func policyYAML() throws {
        let sample = try RepoFiles.text("config/samples/tapio.io_v1alpha1_tapiopolicy.yaml")
        var fuzz = Fuzz(seed: 0x7A_3100)
        var accepted = 0, refused = 0
        for _ in 0..<Fuzz.cases(default: 1_500) {
            var text = fuzz.chance(0.5) ? fuzz.replaceNumbers(in: sample, probability: 0.2) : sample
            if fuzz.chance(0.7) { text = fuzz.mutate(text) }
            do {
                let loaded = try PolicyManifest.load(text: text, file: "f.yaml")
                accepted += 1
                Self.checkAccepted(loaded.policy, text)
                #expect(loaded.warnings.allSatisfy { $0.hasPrefix("f.yaml") })
            } catch {
                refused += 1
                #expect(!error.problems.isEmpty && error.problems.allSatisfy { $0.hasPrefix("f.yaml") }, "\(error.problems)")
            }
        }
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }

    /// Every input issue 16 named for policies and durations, as a regression case (the CLI's flags have theirs in
    /// TapioCLITests).
    @Test("the issue's poison inputs are refused with the field and range, never trapped on", arguments: [
        ("batchTimeout", "2562047.9h"), ("window", "2562047.9h"), ("resolveAfter", "2562047.9h"), ("ttl", "2562047.9h"),
        ("batchTimeout", "2562047h47m16.854775808s"), ("window", "2562047h47m16.854775808s"),
        ("resolveAfter", "2562047h47m16.854775808s"), ("ttl", "2562047h47m16.854775808s"),
    ])
    func issueInputs(field: String, value: String) {
        var p = TapioPolicy(name: "poison")
        switch field {
        case "batchTimeout": p.spec.correlation.batchTimeout = value
        case "window": p.spec.correlation.window = value
        case "resolveAfter": p.spec.insights.resolveAfter = value
        default: p.spec.insights.ttl = value
        }
        let errs = TapioPolicyValidation.validate(p)
        #expect(errs.count == 1 && errs[0].path.hasSuffix(".\(field)") && errs[0].detail.contains("too large"), "\(errs)")
    }
}
