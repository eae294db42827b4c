import Foundation
import TapioTestSupport
import Testing
import Yams

/// The shipped alert rules (config/components/prometheus): valid for Prometheus, unit-tested with promtool over
/// series that must fire and series that must not, the same in both forms, about metrics Tapio exports, and each
/// pointing at a runbook section that exists.
struct AlertRulesTests {
    static let dir = CommandRunner.repositoryRoot.appendingPathComponent("config/components/prometheus")
    static let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test func promtoolAcceptsTheRulesAndTheirUnitTestsPass() async throws {
        guard let promtool = Self.promtool else {
            print("skipped promtoolAcceptsTheRulesAndTheirUnitTestsPass: promtool is not installed (scripts/setup.sh installs the prometheus package)")
            return
        }
        let check = try await CommandRunner.run(URL(fileURLWithPath: promtool), ["check", "rules", Self.dir.appendingPathComponent("rules.yaml").path])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        // promtool resolves rule_files relative to the test file.
        let test = try await CommandRunner.run(URL(fileURLWithPath: promtool), ["test", "rules", Self.dir.appendingPathComponent("tests/rules_test.yaml").path],
                                               timeout: .seconds(120))
        #expect(test.status == 0, "\(test.stdout)\(test.stderr)")
        #expect(test.stdout.contains("SUCCESS"), "\(test.stdout)")
    }

    static func load(_ file: String) throws -> [String: Any] {
        let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any], "\(file) is not a YAML mapping")
    }

    @Test func thePrometheusRuleCarriesExactlyTheRulesOfThePlainFile() throws {
        let plain = try Self.load("rules.yaml")["groups"] as? [Any]
        let rule = try Self.load("prometheusrule.yaml")
        #expect(rule["kind"] as? String == "PrometheusRule")
        let groups = (rule["spec"] as? [String: Any])?["groups"] as? [Any]
        let a = try #require(plain.map { $0 as NSArray }), b = try #require(groups.map { $0 as NSArray })
        #expect(a.isEqual(b), "prometheusrule.yaml's spec.groups differ from rules.yaml's groups")
    }

    @Test func everyRuleHasItsAnnotationsAndARunbookSectionAndUsesOnlyExportedMetrics() throws {
        let groups = try #require(try Self.load("rules.yaml")["groups"] as? [[String: Any]])
        let readme = try String(contentsOf: CommandRunner.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let headings = Set(readme.split(separator: "\n").filter { $0.hasPrefix("#") }.map {
            $0.drop { $0 == "#" || $0 == " " }.replacingOccurrences(of: "`", with: "")
        })
        var sources = ""
        for dir in ["Sources/TapioSinks", "Sources/TapioOperator"] {
            let url = CommandRunner.repositoryRoot.appendingPathComponent(dir)
            for file in try FileManager.default.contentsOfDirectory(atPath: url.path) where file.hasSuffix(".swift") {
                sources += try String(contentsOf: url.appendingPathComponent(file), encoding: .utf8)
            }
        }
        var alerts = 0
        for group in groups {
            for rule in group["rules"] as? [[String: Any]] ?? [] {
                let name = try #require(rule["alert"] as? String)
                alerts += 1
                let annotations = rule["annotations"] as? [String: String] ?? [:]
                for key in ["summary", "description", "runbook_url"] { #expect(annotations[key] != nil, "\(name) has no \(key)") }
                #expect(annotations["runbook_url"]?.hasSuffix("#" + name.lowercased()) == true, "\(name): \(annotations["runbook_url"] ?? "")")
                #expect(headings.contains(name), "README has no section \(name) for the runbook_url")
                let expr = rule["expr"] as? String ?? ""
                for match in expr.matches(of: /tapio_[a-z_]+/) {
                    #expect(sources.contains("\"\(match.output)\""), "\(name) uses \(match.output), which Tapio does not export")
                }
            }
        }
        #expect(alerts >= 10)
    }
}
