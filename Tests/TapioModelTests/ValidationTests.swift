import Foundation
import TapioModel
import Testing

@Suite("TapioPolicy validation", .timeLimit(.minutes(2)))
struct ValidationTests {
    @Test("a default policy and the full fixture have no errors")
    func validPolicies() {
        #expect(TapioPolicyValidation.validate(TapioPolicy(name: "ok")) == [])
        #expect(TapioPolicyValidation.validate(Fixtures.fullPolicy).errors == [])
    }

    @Test("every problem is reported at once, each with its path and the offending value")
    func allProblemsAtOnce() {
        var p = TapioPolicy(name: "Bad_Name")
        p.metadata.namespace = "default"
        p.spec.probes.memory.samplingHz = 0
        p.spec.probes.memory.leakThreshold = "10MB"
        p.spec.correlation.batchSize = 0
        p.spec.correlation.batchTimeout = "10x"
        p.spec.correlation.window = "-5m"
        p.spec.insights.ttl = "forever"
        p.spec.remediation.allowedActions = ["IncreaseMemoryLimit", "DeleteNamespace", "IncreaseMemoryLimit"]
        p.spec.remediation.namespaces = ["shop", "Not_A_Namespace"]
        p.spec.remediation.maxActionsPerHour = 5000
        p.spec.remediation.memoryCeiling = "lots"
        p.spec.selector.podSelector = PolicyLabelSelector(matchExpressions: [
            .init(key: "a", operator: "In"),
            .init(key: "b", operator: "Exists", values: ["x"]),
            .init(key: "c", operator: "Like", values: ["x"]),
        ])
        let errs = TapioPolicyValidation.validate(p)
        let byPath = Dictionary(grouping: errs, by: \.path)
        let expectedPaths = [
            "metadata.name", "metadata.namespace", "spec.probes.memory.samplingHz", "spec.probes.memory.leakThreshold",
            "spec.correlation.batchSize", "spec.correlation.batchTimeout", "spec.correlation.window", "spec.insights.ttl",
            "spec.remediation.allowedActions[1]", "spec.remediation.allowedActions[2]", "spec.remediation.namespaces[1]",
            "spec.remediation.maxActionsPerHour", "spec.remediation.memoryCeiling",
            "spec.selector.podSelector.matchExpressions[0].values", "spec.selector.podSelector.matchExpressions[1].values",
            "spec.selector.podSelector.matchExpressions[2].operator",
        ]
        #expect(Set(byPath.keys) == Set(expectedPaths), "\(errs.map(\.description))")
        #expect(errs.allSatisfy { $0.level == .error })

        let hz = byPath["spec.probes.memory.samplingHz"]?.first?.description ?? ""
        #expect(hz.contains("Invalid value: 0") && hz.contains("between 1 and 1000"), "\(hz)")
        let action = byPath["spec.remediation.allowedActions[1]"]?.first
        #expect(action?.type == .unsupported)
        #expect(action?.description == #"spec.remediation.allowedActions[1]: Unsupported value: "DeleteNamespace": supported values: "IncreaseMemoryLimit", "RolloutUndo", "RestartPod""#)
        #expect(byPath["spec.remediation.allowedActions[2]"]?.first?.type == .duplicate)
        #expect(byPath["spec.remediation.memoryCeiling"]?.first?.description.contains(#""lots""#) == true)
        #expect(byPath["spec.probes.memory.leakThreshold"]?.first?.description.contains("Ki/Mi/Gi") == true)
        #expect(byPath["spec.selector.podSelector.matchExpressions[0].values"]?.first?.type == .required)
        #expect(byPath["spec.selector.podSelector.matchExpressions[1].values"]?.first?.type == .forbidden)
        #expect(byPath["spec.selector.podSelector.matchExpressions[2].operator"]?.first?.description.contains(#""Like""#) == true)
    }

    @Test("Apply mode with nothing allowed, a zero cap, or no memory ceiling is accepted with warnings")
    func applyWarnings() {
        var p = TapioPolicy(name: "w")
        p.spec.remediation.mode = .apply
        p.spec.remediation.maxActionsPerHour = 0
        var errs = TapioPolicyValidation.validate(p)
        #expect(errs.errors == [])
        #expect(Set(errs.warnings.map(\.path)) == ["spec.remediation.allowedActions", "spec.remediation.maxActionsPerHour"])
        p.spec.remediation.allowedActions = ["IncreaseMemoryLimit"]
        p.spec.remediation.maxActionsPerHour = 3
        errs = TapioPolicyValidation.validate(p)
        #expect(errs.warnings.map(\.path) == ["spec.remediation.memoryCeiling"])
        p.spec.remediation.memoryCeiling = "8Gi"
        #expect(TapioPolicyValidation.validate(p) == [])
    }

    @Test("a batch timeout beyond a minute is an error stating the range (so no batch outlives the shortest window)")
    func batchTimeoutRange() {
        var p = TapioPolicy(name: "x")
        p.spec.correlation.batchTimeout = "10m"
        let errs = TapioPolicyValidation.validate(p)
        #expect(errs.map(\.path) == ["spec.correlation.batchTimeout"])
        #expect(errs.first?.detail == "must be between 1ms and 1m", "\(errs)")
        #expect(CorrelationSettings.batchTimeoutRange.upperBound <= CorrelationSettings.windowRange.lowerBound)
    }

    @Test("label keys and values in selectors are checked")
    func labelSyntax() {
        var p = TapioPolicy(name: "x")
        p.spec.nodeSelector = PolicyLabelSelector(matchLabels: ["bad key!": "ok", "good/key": "bad value!"])
        let paths = TapioPolicyValidation.validate(p).map(\.path)
        #expect(paths == ["spec.nodeSelector.matchLabels", "spec.nodeSelector.matchLabels.good/key"])
    }

    @Test("a selector whose requirements contradict each other is an error naming the label", arguments: [
        PolicyLabelSelector(matchLabels: ["app": "web"], matchExpressions: [.init(key: "app", operator: "NotIn", values: ["web"])]),
        PolicyLabelSelector(matchLabels: ["app": "web"], matchExpressions: [.init(key: "app", operator: "In", values: ["api", "db"])]),
        PolicyLabelSelector(matchExpressions: [.init(key: "app", operator: "Exists"), .init(key: "app", operator: "DoesNotExist")]),
        PolicyLabelSelector(matchExpressions: [.init(key: "app", operator: "In", values: ["a"]),
                                               .init(key: "app", operator: "In", values: ["b"])]),
        PolicyLabelSelector(matchExpressions: [.init(key: "app", operator: "In", values: ["a", "b"]),
                                               .init(key: "app", operator: "NotIn", values: ["a", "b"])]),
    ])
    func contradictorySelector(_ selector: PolicyLabelSelector) {
        var p = TapioPolicy(name: "x")
        p.spec.selector.podSelector = selector
        let errs = TapioPolicyValidation.validate(p).filter { $0.level == .error }
        #expect(errs.map(\.path) == ["spec.selector.podSelector"])
        #expect(errs.first?.detail.contains("\"app\"") == true, "\(errs)")
        #expect(errs.first?.detail.contains("matches nothing") == true)
        // What the API server would be asked for matches nothing either, and no label set satisfies it.
        for labels in [["app": "web"], ["app": "a"], ["app": "b"], ["app": "api"], [:]] {
            #expect(!selector.matches(labels), "\(labels) matched")
        }
    }

    @Test("satisfiable selectors that look alike are not flagged", arguments: [
        PolicyLabelSelector(matchLabels: ["app": "web"], matchExpressions: [.init(key: "app", operator: "In", values: ["web", "api"])]),
        PolicyLabelSelector(matchLabels: ["app": "web"], matchExpressions: [.init(key: "tier", operator: "DoesNotExist")]),
        PolicyLabelSelector(matchExpressions: [.init(key: "app", operator: "In", values: ["a", "b"]),
                                               .init(key: "app", operator: "NotIn", values: ["a"])]),
        PolicyLabelSelector(matchExpressions: [.init(key: "app", operator: "NotIn", values: ["a"]),
                                               .init(key: "app", operator: "DoesNotExist")]),
    ])
    func satisfiableSelector(_ selector: PolicyLabelSelector) {
        #expect(selector.contradiction == nil)
    }

    @Test("a selector's query string is what the API server parses")
    func selectorQuery() {
        let s = PolicyLabelSelector(matchLabels: ["b": "2", "a": "1"], matchExpressions: [
            .init(key: "tier", operator: "In", values: ["web", "api"]), .init(key: "env", operator: "NotIn", values: ["dev"]),
            .init(key: "team", operator: "Exists"), .init(key: "legacy", operator: "DoesNotExist"),
        ])
        #expect(s.query == "a=1,b=2,tier in (web,api),env notin (dev),team,!legacy")
    }

    @Test("a malformed manifest becomes a field error at the failing path", arguments: [
        (#"{"metadata":{"name":"a"},"spec":{"probes":{"memory":{"samplingHz":"fast"}}}}"#,
         "spec.probes.memory.samplingHz", FieldError.ErrorType.invalid, "must be of type integer"),
        (#"{"metadata":{"name":"a"},"spec":{"remediation":{"mode":"Sometimes"}}}"#,
         "spec.remediation.mode", .unsupported, #""Off", "Suggest", "Propose", "DryRun", "Apply""#),
        (#"{"metadata":{"name":"a"},"spec":{"selector":{"podSelector":{"matchExpressions":[{"operator":"In"}]}}}}"#,
         "spec.selector.podSelector.matchExpressions[0].key", .required, "Required value"),
        (#"{"metadata":{"name":"a"},"spec":{"remediation":{"allowedActions":"RestartPod"}}}"#,
         "spec.remediation.allowedActions", .invalid, "must be of type array"),
    ])
    func decodingErrors(json: String, path: String, type: FieldError.ErrorType, says: String) {
        let (policy, problems) = TapioPolicyValidation.decodeAndValidate(json: Data(json.utf8))
        // Decoding never fails on the spec: the policy comes back with the problem, so validation refuses it by name.
        #expect(policy?.spec.decodingProblems.count == 1)
        #expect(problems.count == 1)
        #expect(problems.first?.path == path, "\(problems)")
        #expect(problems.first?.type == type, "\(problems)")
        #expect(problems.first?.description.contains(says) == true, "\(problems)")
    }
}
