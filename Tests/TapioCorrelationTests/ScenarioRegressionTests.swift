import Testing

@testable import TapioCorrelation

/// Every input that trapped, hung or was silently accepted before issue 16, with the error it gives now. Each
/// error names the line, the field and what is allowed.
@Suite("Scenario regressions (issue 16)", .timeLimit(.minutes(2)))
struct ScenarioRegressionTests {
    static let header = #"{"tapioScenario": 1}"#
    static let pod = #""pod": "d/a", "container": "app""#
    static let time = "expected 0 to 16651744073 seconds after the start (the clock ends at 2554-07-21T23:34:33Z)"
    static let bytes = "expected 0 to 18446744073709551615 bytes (just under 16Ei)"
    static let goMax = "2562047h47m16.854775807s"

    /// (header, event line, the whole error)
    static let cases: [(String, String?, String)] = [
        // Byte quantities that overflow.
        (
            header, #"{"t": 1, "type": "memory", \#(pod), "workingSet": 1e20}"#,
            #"line 2: field "workingSet": 1e+20 is out of range; \#(bytes)"#
        ),
        (
            header, #"{"t": 1, "type": "memory", \#(pod), "workingSet": "inf"}"#,
            #"line 2: field "workingSet": expected bytes: a number or a quantity such as "256Mi"; quantity "inf": not a number; expected a number with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024), k, M, G, T, P, E (powers of 1000), m, u, n, or an exponent (1e6), e.g. "10Mi", "512M", "1.5Gi""#
        ),
        (
            header, #"{"t": 1, "type": "memory", \#(pod), "workingSet": "20000000000Gi"}"#,
            #"line 2: field "workingSet": expected bytes: a number or a quantity such as "256Mi"; quantity "20000000000Gi": too large; at most 18446744073709551615 bytes (just under 16Ei)"#
        ),
        (
            header, #"{"t": 1, "type": "memory", \#(pod), "workingSet": -1}"#,
            #"line 2: field "workingSet": -1 is out of range; \#(bytes)"#
        ),
        (
            header, #"{"t": 1, "type": "oomKill", \#(pod), "anon": 18446744073709551616}"#,
            #"line 2: field "anon": 1.8446744073709552e+19 is out of range; \#(bytes)"#
        ),
        // Times and durations that overflow.
        (header, #"{"t": 1e300, "type": "exec", "pid": 1}"#, #"line 2: field "t": 1e+300 s is out of range; \#(time)"#),
        (
            header, #"{"t": "999999999h", "type": "exec", "pid": 1}"#,
            #"line 2: field "t": expected seconds (a number) or a duration such as "1m30s": too large; at most \#(goMax) (about 106751 days)"#
        ),
        (
            header, #"{"t": 16651744074, "type": "exec", "pid": 1}"#,
            #"line 2: field "t": 16651744074 s is out of range; \#(time)"#
        ),
        (header, #"{"t": -1, "type": "exec", "pid": 1}"#, #"line 2: field "t": -1 must not be negative; \#(time)"#),
        (
            header, #"{"t": "-1s", "type": "exec", "pid": 1}"#,
            #"line 2: field "t": "-1s" must not be negative; \#(time)"#
        ),
        (
            #"{"tapioScenario": 1, "duration": -1}"#, nil,
            #"line 1: field "duration": -1 must not be negative; \#(time)"#
        ),
        (
            #"{"tapioScenario": 1, "duration": "nan"}"#, nil,
            #"line 1: field "duration": expected seconds (a number) or a duration such as "1m30s": expected a number at "nan"; a sequence of numbers with units ns, us, ms, s, m, h, e.g. "100ms", "5m", "1h30m""#
        ),
        (
            #"{"tapioScenario": 1, "duration": 1e300}"#, nil,
            #"line 1: field "duration": 1e+300 s is out of range; \#(time)"#
        ),
        (
            header,
            #"{"t": 1, "type": "restart", "pod": "d/a", "container": "app", "restarts": 1, "reason": "Error", "finishedAt": 1e300}"#,
            #"line 2: field "finishedAt": 1e+300 s is out of range; \#(time)"#
        ),
        (
            header,
            #"{"t": 1, "type": "pod", "pod": "d/a", "containers": [{"name": "app", "lastTermination": {"reason": "OOMKilled", "at": -5}}]}"#,
            #"line 2: field "containers[0].lastTermination.at": -5 must not be negative; \#(time)"#
        ),
        (
            #"{"tapioScenario": 1, "start": "2600-01-01T00:00:00Z"}"#, nil,
            #"line 1: field "start": 2600-01-01T00:00:00Z is out of range; expected an RFC 3339 time from 1970-01-01T00:00:00Z to 2554-07-21T23:34:33Z"#
        ),
        (
            #"{"tapioScenario": 1, "start": "1969-12-31T23:59:59Z"}"#, nil,
            #"line 1: field "start": 1969-12-31T23:59:59Z is out of range; expected an RFC 3339 time from 1970-01-01T00:00:00Z to 2554-07-21T23:34:33Z"#
        ),
        // pids, exit codes, signals, errno at and beyond 2^31.
        (
            header, #"{"t": 1, "type": "exec", "pid": 2147483648}"#,
            #"line 2: field "pid": 2147483648 is out of range; expected an integer from 0 to 2147483647"#
        ),
        (
            header, #"{"t": 1, "type": "fork", "pid": 1, "child": -1}"#,
            #"line 2: field "child": -1 is out of range; expected an integer from 0 to 2147483647"#
        ),
        (
            header, #"{"t": 1, "type": "exit", "pid": 1, "exitCode": 2147483648}"#,
            #"line 2: field "exitCode": 2147483648 is out of range; expected an integer from 0 to 255"#
        ),
        (
            header, #"{"t": 1, "type": "exit", "pid": 1, "signal": 2147483648}"#,
            #"line 2: field "signal": 2147483648 is out of range; expected an integer from 0 to 64"#
        ),
        (
            header,
            #"{"t": 1, "type": "tcp", "pid": 1, "kind": "connectFailed", "dst": "10.0.0.1:80", "errno": 4294967296}"#,
            #"line 2: field "errno": 4294967296 is out of range; expected an integer from 0 to 4095"#
        ),
        (
            header,
            #"{"t": 1, "type": "restart", "pod": "d/a", "container": "app", "restarts": 1, "reason": "Error", "exitCode": 2147483648}"#,
            #"line 2: field "exitCode": 2147483648 is out of range; expected an integer from -2147483648 to 2147483647"#
        ),
        (
            header, #"{"t": 1, "type": "restart", "pod": "d/a", "container": "app", "restarts": 2147483648}"#,
            #"line 2: field "restarts": 2147483648 is out of range; expected an integer from 0 to 2147483647"#
        ),
        (
            header, #"{"t": 1, "type": "exec", "pid": 1.5}"#,
            #"line 2: field "pid": 1.5 is not a whole number; expected an integer from 0 to 2147483647"#
        ),
        // A negative cgroup id.
        (
            header, #"{"t": 1, "type": "memory", "cgroup": "/x", "cgroupId": -1, "workingSet": 1}"#,
            #"line 2: field "cgroupId": -1 is out of range; expected an integer from 0 to 18446744073709551615"#
        ),
        // A labelled scenario the scorer would step through for years (a forecast every 10 s, each kept).
        (
            #"{"tapioScenario": 1, "duration": "2000000h", "truth": {"oomAt": "2000000h", "shape": "x"}}"#, nil,
            #"line 1: field "truth.oomAt": a labelled scenario is scored up to its kill or, without one, its end: at most 720h0m0s after start"#
        ),
        (
            #"{"tapioScenario": 1, "duration": "721h", "truth": {"oomAt": null, "shape": "x"}}"#, nil,
            #"line 1: field "duration": a labelled scenario is scored up to its kill or, without one, its end: at most 720h0m0s after start"#
        ),
        // Its last event would push the end, and so the scoring, past that bound.
        (
            #"{"tapioScenario": 1, "duration": "1h", "truth": {"oomAt": null, "shape": "x"}}"#,
            #"{"t": "721h", "type": "podDeleted", "pod": "d/a"}"#,
            #"line 2: field "t": a labelled scenario without a kill is scored up to its last event: at most 720h0m0s after start"#
        ),
        // Config: durations beyond Go's range, out-of-range numbers, unknown names.
        (
            #"{"tapioScenario": 1, "config": {"batchSize": -1}}"#, nil,
            #"line 1: field "config.batchSize": -1 is out of range; expected an integer from 1 to 100000"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"batchSize": 100001}}"#, nil,
            #"line 1: field "config.batchSize": 100001 is out of range; expected an integer from 1 to 100000"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"window": "2562047.9h"}}"#, nil,
            #"line 1: field "config.window": expected seconds (a number) or a duration such as "1m30s": too large; at most \#(goMax) (about 106751 days)"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"resolveAfter": 1e300}}"#, nil,
            #"line 1: field "config.resolveAfter": 1e+300 s is out of range; expected a duration from 1ns to \#(goMax)"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"batchTimeout": "0s"}}"#, nil,
            #"line 1: field "config.batchTimeout": must be positive; expected a duration from 1ns to \#(goMax)"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"batchTimeout": "10m"}}"#, nil,
            #"line 1: field "config.batchTimeout": 10m0s must not exceed window (5m0s): a batch would outlive the window it feeds"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"maxSubjects": 0}}"#, nil,
            #"line 1: field "config.maxSubjects": 0 is out of range; expected an integer from 1 to 1000000"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"clusterHealthMinPods": 513}}"#, nil,
            #"line 1: field "config.clusterHealthMinPods": 513 is out of range; expected an integer from 1 to 512"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"crashLoopRestarts": 65}}"#, nil,
            #"line 1: field "config.crashLoopRestarts": 65 is out of range; expected an integer from 1 to 64"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"leakThresholdPerHour": 0}}"#, nil,
            #"line 1: field "config.leakThresholdPerHour": must be greater than zero; expected 1 to 18446744073709551615 bytes"#
        ),
        (
            #"{"tapioScenario": 1, "config": {"batchsize": 10}}"#, nil,
            #"line 1: field "config.batchsize": unknown setting; expected one of batchSize, batchTimeout, window, resolveAfter, updateInterval, predictionHorizon, leakThresholdPerHour, memoryCeiling, maxSubjects, clusterHealthMinPods, crashLoopRestarts, networkFailureThreshold, minSeverity"#
        ),
    ]

    @Test("each input that trapped or was accepted gives its error", arguments: cases.indices)
    func regression(index: Int) {
        let (header, event, expected) = Self.cases[index]
        let lines = [header] + (event.map { [$0] } ?? [])
        do {
            _ = try ScenarioReplay.run(lines: lines)
            Issue.record("accepted: \(lines)")
        } catch let e as ScenarioError {
            #expect(e.description == expected)
        } catch {
            Issue.record("not a ScenarioError: \(error)")
        }
    }

    @Test("the largest values in range are accepted and replayed")
    func extremesInRange() throws {
        let updates = try ScenarioReplay.run(lines: [
            #"{"tapioScenario": 1, "config": {"batchSize": 100000, "window": "2562047h47m16.854775807s", "resolveAfter": "2562047h", "updateInterval": 1e-9, "predictionHorizon": "2562047h", "memoryCeiling": 18446744073709551615}}"#,
            #"{"t": 0, "type": "pod", "pod": "d/a", "containers": [{"name": "app", "limit": 18446744073709551615, "restarts": 2147483647}]}"#,
            #"{"t": 1, "type": "oomKill", "pod": "d/a", "container": "app", "pid": 2147483647, "anon": 18446744073709551615, "file": "15Ei", "cgroupId": 18446744073709551615}"#,
            #"{"t": 2, "type": "exit", "pod": "d/a", "container": "app", "pid": 2147483647, "exitCode": 255, "signal": 64}"#,
            #"{"t": 16651744073, "type": "restart", "pod": "d/a", "container": "app", "restarts": 2147483647, "reason": "OOMKilled", "exitCode": -2147483648}"#,
        ])
        #expect(updates.contains { $0.identity.type == .oomKilled && $0.change == .new })
    }
}
