import Foundation
import TapioModel
import Testing

@Suite("TapioPolicy and Insight types", .timeLimit(.minutes(2)))
struct TapioPolicyTests {
    @Test("decoding a policy with an empty spec fills every default")
    func emptySpecGetsDefaults() throws {
        let p = try JSONDecoder().decode(TapioPolicy.self, from: Data(#"{"metadata":{"name":"a"},"spec":{}}"#.utf8))
        #expect(p.apiVersion == "tapio.io/v1alpha1")
        #expect(p.kind == "TapioPolicy")
        #expect(p.spec.probes.memory.enabled)
        #expect(p.spec.probes.memory.samplingHz == 19)
        #expect(p.spec.probes.memory.leakThreshold == "10Mi")
        #expect(try p.spec.probes.memory.leakThresholdBytesPerHour() == 10 * 1024 * 1024)
        #expect(p.spec.probes.oom.enabled && p.spec.probes.process.enabled && p.spec.probes.network.enabled)
        #expect(p.spec.correlation.batchSize == 100)
        #expect(try p.spec.correlation.batchTimeoutDuration() == .milliseconds(100))
        #expect(try p.spec.correlation.windowDuration() == .seconds(300))
        #expect(p.spec.correlation.minSeverity == .info)
        #expect(p.spec.insights.emitEvents)
        #expect(p.spec.remediation.mode == .suggest)
        #expect(p.spec.remediation.requireApproval)
        #expect(p.spec.remediation.allowedActions.isEmpty)
        #expect(p.spec.remediation.memoryCeiling == nil)
        #expect(p.status == nil)
        #expect(p == TapioPolicy(name: "a"))
    }

    @Test("a partly written nested object keeps its values and defaults the rest")
    func partialNestedDefaults() throws {
        let json = #"{"metadata":{"name":"a"},"spec":{"probes":{"memory":{"samplingHz":7}},"remediation":{"mode":"Apply","memoryCeiling":1073741824}}}"#
        let p = try JSONDecoder().decode(TapioPolicy.self, from: Data(json.utf8))
        #expect(p.spec.probes.memory.samplingHz == 7)
        #expect(p.spec.probes.memory.leakThreshold == "10Mi")
        #expect(p.spec.remediation.mode == .apply)
        #expect(p.spec.remediation.maxActionsPerHour == 10)
        #expect(try p.spec.remediation.memoryCeilingBytes() == 1 << 30)
    }

    @Test("fully populated policies and insights survive an encode/decode round trip")
    func roundTrip() throws {
        let p = try JSONDecoder().decode(TapioPolicy.self, from: JSONEncoder().encode(Fixtures.fullPolicy))
        #expect(p == Fixtures.fullPolicy)
        let i = try JSONDecoder().decode(InsightResource.self, from: JSONEncoder().encode(Fixtures.fullInsight))
        #expect(i == Fixtures.fullInsight)
        #expect(i.isApproved)
    }

    @Test("Insight status defaults phase Active and one occurrence; history keeps the newest entries")
    func insightStatusDefaults() throws {
        let s = try JSONDecoder().decode(InsightStatus.self, from: Data("{}".utf8))
        #expect(s.phase == .active)
        #expect(s.occurrences == 1)
        var r = RemediationStatus()
        for n in 0..<(RemediationStatus.maxHistory + 5) {
            r.record(RemediationHistoryEntry(time: "t\(n)", action: "RestartPod", outcome: .blocked, message: "m"))
        }
        #expect(r.history.count == RemediationStatus.maxHistory)
        #expect(r.history.first?.time == "t5")
    }

    @Test("label selectors match as Kubernetes does", arguments: [
        (PolicyLabelSelector(), ["a": "1"], true),
        (PolicyLabelSelector(matchLabels: ["a": "1"]), ["a": "1", "b": "2"], true),
        (PolicyLabelSelector(matchLabels: ["a": "1"]), ["a": "2"], false),
        (PolicyLabelSelector(matchExpressions: [.init(key: "a", operator: "In", values: ["1", "2"])]), ["a": "2"], true),
        (PolicyLabelSelector(matchExpressions: [.init(key: "a", operator: "NotIn", values: ["1"])]), [:], true),
        (PolicyLabelSelector(matchExpressions: [.init(key: "a", operator: "Exists")]), [:], false),
        (PolicyLabelSelector(matchExpressions: [.init(key: "a", operator: "DoesNotExist")]), [:], true),
    ])
    func selectorMatching(selector: PolicyLabelSelector, labels: [String: String], matches: Bool) {
        #expect(selector.matches(labels) == matches)
    }
}

@Suite("Insight naming", .timeLimit(.minutes(2)))
struct InsightNamingTests {
    @Test("the hash behind names is the same in every process: fixed FNV-1a values, not a seeded hash")
    func hashIsStable() {
        // FNV-1a 64 reference values (from the algorithm's published test vectors).
        #expect(InsightNaming.fnv1a64("") == 0xcbf2_9ce4_8422_2325)
        #expect(InsightNaming.fnv1a64("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(InsightNaming.fnv1a64("foobar") == 0x8594_4171_f739_67e8)
    }
}
