import Testing
@testable import TapioCorrelation

@Suite("Scenario format", .timeLimit(.minutes(2)))
struct ScenarioParserTests {
    let header = #"{"tapioScenario": 1, "name": "t"}"#

    @Test("errors name the line and the field", arguments: [
        (#"{"t": 1, "type": "memory", "pod": "default/a", "container": "app", "workingSet": "lots"}"#, "workingSet"),
        (#"{"t": 1, "type": "memory", "pod": "default/a", "container": "app"}"#, "workingSet"),
        (#"{"type": "podDeleted", "pod": "default/a"}"#, "t"),
        (#"{"t": 1, "type": "teleport"}"#, "type"),
        (#"{"t": 1, "type": "tcp", "pid": 3, "kind": "connectFailed", "dst": "nowhere"}"#, "dst"),
        (#"{"t": 1, "type": "pod", "pod": "a", "containers": [{"name": "x"}]}"#, "pod"),
        (#"{"t": 1, "type": "pod", "pod": "d/a", "containers": [{"name": "x", "limit": true}]}"#, "containers[0].limit"),
    ])
    func errorsNameLineAndField(line: String, field: String) {
        do {
            _ = try ScenarioReplay.parse(lines: [header, "", line])
            Issue.record("accepted \(line)")
        } catch let e as ScenarioError {
            #expect(e.line == 3)
            #expect(e.field == field, "\(e)")
            #expect(e.description.hasPrefix("line 3: field \"\(field)\": "))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("the header must come first and carry a supported version")
    func headerFirst() {
        #expect(throws: ScenarioError.self) { try ScenarioReplay.parse(lines: [#"{"t": 1, "type": "exec", "pid": 1}"#]) }
        #expect(throws: ScenarioError.self) { try ScenarioReplay.parse(lines: [#"{"tapioScenario": 2}"#]) }
        #expect(throws: ScenarioError.self) { try ScenarioReplay.parse(lines: []) }
    }

    @Test("time must not go backwards")
    func monotonic() {
        #expect(throws: ScenarioError.self) {
            try ScenarioReplay.parse(lines: [header, #"{"t": 5, "type": "exec", "pid": 1}"#, #"{"t": 4, "type": "exec", "pid": 1}"#])
        }
    }

    @Test("quantities, durations and subjects parse as written by hand")
    func values() throws {
        let s = try ScenarioReplay.parse(lines: [
            #"{"tapioScenario": 1, "start": "2026-11-29T10:00:00Z", "duration": "2m", "config": {"window": "10m", "leakThresholdPerHour": "20Mi"}}"#,
            #"{"t": "1m30s", "type": "memory", "cgroup": "/x", "workingSet": "1.5Gi", "limit": null}"#,
        ])
        #expect(s.config.window == .seconds(600))
        #expect(s.config.leakThresholdBytesPerHour == Double(20 << 20))
        #expect(s.endNanos - s.startNanos == 120_000_000_000)
        let (at, e) = try #require(s.events.first)
        #expect(at - s.startNanos == 90_000_000_000)
        #expect(e.subject == .localCgroup(id: 0, path: "/x"))
        guard case .node(let n) = e.event, case .cgroupMemory(let m) = n.kind else {
            Issue.record("not a cgroup memory event")
            return
        }
        #expect(m.workingSetBytes == 1_610_612_736)
        #expect(m.limitBytes == nil)
    }

    @Test("durations format the Kubernetes way")
    func durations() {
        #expect(Formatting.duration(seconds: 195) == "3m15s")
        #expect(Formatting.duration(seconds: 45) == "45s")
        #expect(Formatting.duration(seconds: 3720) == "1h2m")
        #expect(Formatting.duration(seconds: 120) == "2m")
        #expect(Formatting.duration(seconds: 0.2) == "0s")
    }
}
