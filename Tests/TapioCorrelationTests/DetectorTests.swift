import Foundation
import Testing
import TapioModel
@testable import TapioCorrelation

/// Seconds from a Go-style duration ("3m15s").
func seconds(_ s: String?) -> Double? {
    guard let s, let d = try? GoDuration.parse(s) else { return nil }
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

@Suite("Detectors on their scenarios", .timeLimit(.minutes(2)))
struct DetectorTests {
    @Test("steady leak: first warning at least 60 s before the limit, time-to-OOM within 20 % of the truth")
    func steadyLeakPrediction() throws {
        let (scenario, updates) = try Scenarios.replay("oom-prediction-steady-leak")
        let predictions = updates.filter { $0.identity.type == .oomPrediction && $0.change != .resolved }
        let first = try #require(predictions.first)
        // The scenario's truth: 200Mi + 1Mi/s hits the 512Mi limit at t = 312 s.
        let trueOOM = 312.0
        let firstAt = Double(first.observedAt - scenario.startNanos) / 1e9
        #expect(trueOOM - firstAt >= 60, "first warning only \(trueOOM - firstAt)s before the OOM")
        for p in predictions {
            let at = Double(p.observedAt - scenario.startNanos) / 1e9
            let truth = trueOOM - at
            guard truth >= 30 else { continue }  // the last seconds round to whole seconds
            let predicted = try #require(seconds(p.spec.prediction?.timeToEvent))
            #expect(abs(predicted - truth) <= 0.2 * truth, "at \(at)s predicted \(predicted)s, truth \(truth)s")
            let prediction = try #require(p.spec.prediction)
            #expect(prediction.kind == "OOMKill")
            #expect(prediction.probability > 0.5 && prediction.probability <= 1)
            #expect(prediction.confidence > 0 && prediction.confidence <= 1)
        }
        // Confidence grows as the fit sees more of the leak.
        #expect((predictions.last?.spec.prediction?.confidence ?? 0) > (first.spec.prediction?.confidence ?? 1))
    }

    @Test("the prediction's remediation patches the owning Deployment with the VPA bump")
    func remediationPatch() throws {
        let (_, updates) = try Scenarios.replay("oom-prediction-steady-leak")
        let p = try #require(updates.first { $0.identity.type == .oomPrediction })
        let action = try #require(p.spec.remediation?.actions.first { $0.name == "IncreaseMemoryLimit" })
        let patch = try #require(action.patch)
        #expect(patch.target == PatchTarget(apiVersion: "apps/v1", kind: "Deployment", namespace: "default", name: "leaky-api"))
        #expect(patch.type == .strategicMerge)
        #expect(action.commands == ["kubectl patch deployment leaky-api -n default --type=strategic -p '\(patch.body)'"])
        let body = try #require(try JSONSerialization.jsonObject(with: Data(patch.body.utf8)) as? [String: Any])
        let containers = ((body["spec"] as? [String: Any])?["template"] as? [String: Any])
            .flatMap { ($0["spec"] as? [String: Any])?["containers"] as? [[String: Any]] }
        let c = try #require(containers?.first)
        #expect(c["name"] as? String == "app")
        let limit = try #require(((c["resources"] as? [String: Any])?["limits"] as? [String: Any])?["memory"] as? String)
        let mi = try #require(Int(limit.dropLast(2)))
        // Heading for its 512Mi limit: used = max(request, limit) = 512Mi, bump = max(612Mi, 614.4Mi) → 615Mi.
        #expect(limit == "615Mi" && mi == 615, "\(limit)")
        let diag = try #require(p.spec.remediation?.actions.first { $0.name == "InspectMemory" })
        #expect(diag.commands.contains("kubectl top pod leaky-api-7d9f -n default --containers"))
        #expect(diag.commands.contains("kubectl exec -n default leaky-api-7d9f -c app -- cat /sys/fs/cgroup/memory.stat"))
    }

    @Test("the VPA bump is max(used + 100Mi, used × 1.2) of max(request, peak), capped by the ceiling")
    func vpaBump() {
        let mi: UInt64 = 1 << 20
        #expect(RemediationAdvice.bumpedLimit(request: 256 * mi, peak: 300 * mi, ceiling: nil) == 400 * mi)
        #expect(RemediationAdvice.bumpedLimit(request: nil, peak: 1000 * mi, ceiling: nil) == 1200 * mi)
        #expect(RemediationAdvice.bumpedLimit(request: 2000 * mi, peak: 100 * mi, ceiling: nil) == 2400 * mi)
        #expect(RemediationAdvice.bumpedLimit(request: nil, peak: 1000 * mi, ceiling: 1100 * mi) == 1100 * mi)
    }

    @Test("a memory ceiling caps the suggested limit, and no patch is offered when there is no room")
    func ceiling() throws {
        let text = try String(contentsOf: Scenarios.directory.appendingPathComponent("oom-prediction-steady-leak.jsonl"), encoding: .utf8)
        var config = CorrelationConfig()
        config.memoryCeilingBytes = 600 << 20
        var updates = try ScenarioReplay.run(text: text, config: config)
        let late = try #require(updates.last { $0.identity.type == .oomPrediction && $0.change != .resolved })
        let body = try #require(late.spec.remediation?.actions.first { $0.name == "IncreaseMemoryLimit" }?.patch?.body)
        #expect(body.contains("\"600Mi\""), "\(body)")
        config.memoryCeilingBytes = 512 << 20
        updates = try ScenarioReplay.run(text: text, config: config)
        #expect(updates.filter { $0.identity.type == .oomPrediction }.allSatisfy {
            $0.spec.remediation?.actions.contains { $0.name == "IncreaseMemoryLimit" } == false
        })
    }

    @Test("a leak under a GC sawtooth is predicted from its cycle peaks within 20 %")
    func gcLeak() throws {
        let (scenario, updates) = try Scenarios.replay("oom-prediction-gc-leak")
        // Peaks are 360Mi + 0.5Mi/s: they reach the 1Gi limit at t = 1328 s.
        let predictions = updates.filter { $0.identity.type == .oomPrediction && $0.change != .resolved }
        #expect(!predictions.isEmpty)
        for p in predictions {
            let at = Double(p.observedAt - scenario.startNanos) / 1e9
            let predicted = try #require(seconds(p.spec.prediction?.timeToEvent))
            #expect(abs(predicted - (1328 - at)) <= 0.2 * (1328 - at), "at \(at)s predicted \(predicted)s")
            // Read on the cycles' peaks to the end: the 40Mi teeth still count as reclaim once the floor has
            // outgrown ten of them (past 400Mi); read as bucket maxima from there, the kill came 44 s later.
            #expect(p.spec.evidence.contains { $0.description.contains("GC-cycle peaks") }, "at \(at)s: \(p.spec.evidence.map(\.description))")
        }
    }

    @Test("a local cgroup with a limit gets an OOM prediction with a cgroup command")
    func localCgroup() throws {
        let (_, updates) = try Scenarios.replay("oom-prediction-local-cgroup")
        let p = try #require(updates.first { $0.identity.type == .oomPrediction })
        #expect(p.spec.subject.kind == "Cgroup")
        #expect(p.spec.subject.name == "/tapio-demo/leaker")
        let cmds = p.spec.remediation?.actions.flatMap(\.commands) ?? []
        #expect(cmds.contains { $0.contains("/sys/fs/cgroup/memory/tapio-demo/leaker/memory.limit_in_bytes") })
    }

    @Test("a slow leak is reported near its true rate once it has lasted a quarter of an hour, without an OOM prediction beyond the horizon")
    func slowLeak() throws {
        let (scenario, updates) = try Scenarios.replay("memory-leak-slow")
        let leak = try #require(updates.first { $0.identity.type == .memoryLeak })
        let at = Double(leak.observedAt - scenario.startNanos) / 1e9
        #expect(at >= 840, "called a leak \(at) s in")
        let perHour = try #require(leak.spec.evidence.first?.value)
        #expect(abs(perHour - 60e6) <= 0.2 * 60e6, "\(perHour) bytes/h")
        let lasted = try #require(leak.spec.evidence.first { $0.description.hasPrefix("Has grown for") }?.value)
        #expect(abs(lasted - 60e6) <= 0.2 * 60e6, "\(lasted) bytes/h over the quarter of an hour")
        #expect(!updates.contains { $0.identity.type == .oomPrediction })
    }

    @Test("an OOM seen by the kernel, in pod status and again after a relist counts once")
    func oomCountedOnce() throws {
        let (_, updates) = try Scenarios.replay("oom-killed-status")
        let oom = updates.filter { $0.identity.type == .oomKilled && $0.change != .resolved }
        #expect(oom.filter { $0.change == .new }.count == 1)
        let last = try #require(oom.last)
        #expect(last.spec.severity == .critical)
        #expect(!last.spec.title.contains("times"), "\(last.spec.title)")
        let sources = Set(last.spec.evidence.map(\.source))
        #expect(sources.isSuperset(of: ["ebpf", "kubernetes"]))
    }

    @Test("a kernel OOM kill of a child is reported although the container survives")
    func oomChild() throws {
        let (_, updates) = try Scenarios.replay("oom-killed-child")
        let oom = try #require(updates.first { $0.identity.type == .oomKilled })
        #expect(oom.spec.severity == .warning)
        #expect(oom.spec.evidence.contains { $0.source == "ebpf" && $0.description.contains("chromium") })
    }

    @Test("a crash loop after a rollout names the signal, the restarts and offers rollout undo")
    func crashLoop() throws {
        let (_, updates) = try Scenarios.replay("crash-loop-after-rollout")
        let c = try #require(updates.first { $0.identity.type == .crashLoop })
        #expect(c.spec.summary.contains("signal 11 (SIGSEGV)"))
        #expect(c.spec.summary.contains("3 restarts"))
        #expect(c.spec.summary.contains("exit code 139"))
        let cmds = c.spec.remediation?.actions.flatMap(\.commands) ?? []
        #expect(cmds.contains("kubectl logs -n default api-7c4 -c app --previous"))
        #expect(cmds.contains("kubectl describe pod api-7c4 -n default"))
        #expect(cmds.contains("kubectl rollout undo deployment/api -n default"))
    }

    @Test("TCP failures with probe failures and a restart make a network issue naming the remote")
    func network() throws {
        let (_, updates) = try Scenarios.replay("network-issue")
        let n = try #require(updates.last { $0.identity.type == .networkIssue && $0.change != .resolved })
        #expect(n.spec.summary.contains("10.96.14.2:5432"))
        #expect(n.spec.severity == .critical, "a restart is involved")
        #expect(updates.contains { $0.identity.type == .networkIssue && $0.change == .escalated },
                "the restart raised the severity: escalated, not a second insight")
        #expect(Set(updates.map(\.identity.name)).count == 1)
        let cmds = n.spec.remediation?.actions.flatMap(\.commands) ?? []
        #expect(cmds.contains("kubectl get networkpolicy -n default"))
        #expect(cmds.contains { $0.contains("nc -vz -w 3 10.96.14.2 5432") })
    }

    @Test("TCP failures alone, without restarts or probe failures, stay silent")
    func networkAloneSilent() throws {
        var lines = try String(contentsOf: Scenarios.directory.appendingPathComponent("network-issue.jsonl"), encoding: .utf8)
            .components(separatedBy: "\n")
        lines.removeAll { $0.contains("probeFailed") || $0.contains("\"restart\"") }
        #expect(try ScenarioReplay.run(lines: lines).isEmpty)
    }

    @Test("node pressure lists evictions and the top memory consumers, largest first, with cordon and drain")
    func nodePressure() throws {
        let (_, updates) = try Scenarios.replay("node-pressure")
        let n = try #require(updates.last { $0.identity.type == .nodePressure && $0.change != .resolved })
        #expect(n.spec.subject == ResourceRef(kind: "Node", name: "node-2"))
        #expect(n.spec.severity == .critical)
        let top = try #require(n.spec.evidence.first { $0.description.hasPrefix("Top memory") })
        #expect(top.description.hasPrefix("Top memory: default/svc-3/app 900Mi"))
        let cmds = n.spec.remediation?.actions.flatMap(\.commands) ?? []
        #expect(cmds.contains("kubectl cordon node-2"))
        #expect(cmds.contains { $0.hasPrefix("kubectl drain node-2 ") })
    }

    @Test("the same failure across many pods of one image is called out once and folds later pods in")
    func clusterHealth() throws {
        let (_, updates) = try Scenarios.replay("cluster-health")
        let ch = updates.filter { $0.identity.type == .clusterHealth && $0.change == .new }
        #expect(ch.count == 1)
        #expect(ch.first?.spec.subject == ResourceRef(kind: "Image", name: "registry.example/pay:3.1"))
        let perPod = Set(updates.filter { $0.identity.type == .crashLoop && $0.change == .new }.map(\.identity.subject))
        #expect(perPod.count < 7, "pods after the systemic insight are folded into it")
    }

    @Test("grouped by node only (the agent), pods of one image spread over nodes are no node's systemic problem")
    func clusterHealthByNodeOnly() throws {
        let (scenario, _) = try Scenarios.replay("cluster-health")
        var config = scenario.config
        config.clusterHealthByNodeOnly = true
        let updates = ScenarioReplay.run(scenario, config: config)
        // Seven pods over three nodes: at most three on one node, below the five a group needs.
        #expect(!updates.contains { $0.identity.type == .clusterHealth }, "\(updates.filter { $0.identity.type == .clusterHealth }.map(\.spec.title))")
        #expect(Set(updates.filter { $0.identity.type == .crashLoop && $0.change == .new }.map(\.identity.subject)).count == 7,
                "nothing folds the per-pod insights away")
    }

    @Test("a deleted pod's insights resolve immediately")
    func podDeletionResolves() throws {
        var lines = try String(contentsOf: Scenarios.directory.appendingPathComponent("oom-killed-child.jsonl"), encoding: .utf8)
            .components(separatedBy: "\n").filter { !$0.isEmpty }
        lines.append(#"{"t": 56, "type": "podDeleted", "pod": "default/renderer-0"}"#)
        let updates = try ScenarioReplay.run(lines: lines)
        let first = try #require(updates.first)
        let resolved = try #require(updates.first { $0.change == .resolved })
        #expect(resolved.identity == first.identity)
        // Detected at 33.1 s (the kill), resolved at 56 s (the deletion), not resolveAfter later.
        #expect(abs(Double(resolved.observedAt) - Double(first.observedAt) - 22.9e9) < 1e6)
    }
}
