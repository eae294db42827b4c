import Foundation
import TapioModel
import TapioOperator
import TapioTestSupport
import Testing
import Yams

/// The Argo CD health checks shipped in config/argocd, run with a real Lua interpreter against status objects the
/// operator's own code computes; and the ConfigMap carries exactly the .lua files.
struct ArgoHealthTests {
    static let dir = CommandRunner.repositoryRoot.appendingPathComponent("config/argocd")
    static let lua = ["/usr/bin/lua5.4", "/usr/bin/lua5.3", "/usr/bin/lua"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A JSON value as a Lua table constructor (what Argo CD hands the script as `obj`).
    static func luaLiteral(_ v: Any) -> String {
        switch v {
        case let d as [String: Any]:
            return "{" + d.keys.sorted().map { "[\(luaLiteral($0))]=\(luaLiteral(d[$0]!))" }.joined(separator: ",") + "}"
        case let a as [Any]:
            return "{" + a.map(luaLiteral).joined(separator: ",") + "}"
        case let s as String:
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\\": out += "\\\\"
                case "\"": out += "\\\""
                case "\n": out += "\\n"
                default: out += u.value < 0x20 ? String(format: "\\%03d", u.value) : String(u)
                }
            }
            return out + "\""
        case let n as NSNumber:
            // JSON booleans come back as NSNumbers of Objective-C type char or bool.
            let isBool = ["c", "B"].contains(String(cString: n.objCType))
            return isBool ? (n.boolValue ? "true" : "false") : n.stringValue
        default:
            return "nil"
        }
    }

    /// Runs `script` on `object` as Argo CD does: (status, message).
    static func health(_ script: String, _ object: some Encodable) async throws -> (String, String) {
        let lua = try #require(Self.lua)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(object))
        let program = "obj = \(luaLiteral(json))\nlocal hs = (function()\n\(script)\nend)()\nio.write(hs.status, \"\\t\", hs.message or \"\")\n"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-argo-\(UUID().uuidString).lua").path
        try program.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try await CommandRunner.run(URL(fileURLWithPath: lua), [path])
        #expect(r.status == 0, "\(r.stderr)")
        let parts = r.stdout.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : "")
    }

    static func script(_ file: String) throws -> String {
        try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
    }

    @Test func theConfigMapCarriesExactlyTheScripts() throws {
        let cm = try #require(try Yams.load(yaml: Self.script("argocd-cm-health.yaml")) as? [String: Any])
        let data = try #require(cm["data"] as? [String: String])
        #expect(data["resource.customizations.health.tapio.io_TapioPolicy"] == (try Self.script("tapiopolicy-health.lua")))
        #expect(data["resource.customizations.health.tapio.io_Insight"] == (try Self.script("insight-health.lua")))
    }

    @Test func aPolicysHealthFollowsTheStatusTheOperatorWrites() async throws {
        guard Self.lua != nil else {
            print("skipped aPolicysHealthFollowsTheStatusTheOperatorWrites: no Lua interpreter (scripts/setup.sh installs lua5.4)")
            return
        }
        let script = try Self.script("tapiopolicy-health.lua")
        let now = Date()
        func policy(_ spec: TapioPolicySpec = TapioPolicySpec(), generation: Int64 = 2) -> TapioPolicy {
            var p = TapioPolicy(name: "p", spec: spec)
            p.metadata.generation = generation
            return p
        }
        let nodes = [PolicyStatusComputer.NodeView(name: "n1", labels: [:]), .init(name: "n2", labels: [:])]
        func beat(_ node: String, _ generation: Int64, problems: [String] = []) -> PolicyStatusComputer.HeartbeatView {
            .init(node: node, applied: ["p": generation], errors: [:], renewed: now, problems: problems)
        }
        func judged(_ p: TapioPolicy, _ beats: [PolicyStatusComputer.HeartbeatView], nodes: [PolicyStatusComputer.NodeView] = nodes) -> TapioPolicy {
            var out = p
            out.status = PolicyStatusComputer.status(for: p, previous: nil, nodes: nodes, heartbeats: beats, now: now)
            return out
        }

        #expect(try await Self.health(script, policy()).0 == "Progressing", "no status yet")
        #expect(try await Self.health(script, judged(policy(), [beat("n1", 2), beat("n2", 2)])).0 == "Healthy")
        let progressing = try await Self.health(script, judged(policy(), [beat("n1", 2), beat("n2", 1)]))
        #expect(progressing.0 == "Progressing", "\(progressing)")
        var stale = judged(policy(), [beat("n1", 2), beat("n2", 2)])
        stale.metadata.generation = 3
        #expect(try await Self.health(script, stale).0 == "Progressing", "a generation the operator has not judged")
        var bad = TapioPolicySpec()
        bad.selector.podSelector = PolicyLabelSelector(matchExpressions: [.init(key: "app", operator: "In", values: [])])
        let invalid = try await Self.health(script, judged(policy(bad), []))
        #expect(invalid.0 == "Degraded" && invalid.1.contains("spec."), "\(invalid)")
        let degraded = try await Self.health(script, judged(policy(), [beat("n1", 2), beat("n2", 2, problems: ["ebpf: probes did not load"])]))
        #expect(degraded.0 == "Degraded" && degraded.1.contains("probes"), "\(degraded)")
        #expect(try await Self.health(script, judged(policy(), [], nodes: [])).0 == "Healthy", "no node targeted is not a failure")
    }

    @Test func anInsightsHealthFollowsItsPhaseAndSeverity() async throws {
        guard Self.lua != nil else {
            print("skipped anInsightsHealthFollowsItsPhaseAndSeverity: no Lua interpreter (scripts/setup.sh installs lua5.4)")
            return
        }
        let script = try Self.script("insight-health.lua")
        func insight(_ severity: Severity, _ phase: InsightPhase?) -> InsightResource {
            var r = InsightResource(metadata: ResourceMeta(name: "i", namespace: "shop"),
                                    spec: InsightSpec(type: .oomPrediction, severity: severity, title: "api-0 \"will\" be OOM-killed",
                                                      summary: "s", subject: ResourceRef(kind: "Pod", namespace: "shop", name: "api-0")))
            r.status = phase.map { InsightStatus(phase: $0, occurrences: 1) }
            return r
        }
        #expect(try await Self.health(script, insight(.critical, nil)).0 == "Progressing")
        let critical = try await Self.health(script, insight(.critical, .active))
        #expect(critical == ("Degraded", "Critical: api-0 \"will\" be OOM-killed"), "\(critical)")
        #expect(try await Self.health(script, insight(.warning, .active)).0 == "Degraded")
        #expect(try await Self.health(script, insight(.info, .active)).0 == "Healthy")
        #expect(try await Self.health(script, insight(.critical, .resolved)).0 == "Healthy")
    }
}
