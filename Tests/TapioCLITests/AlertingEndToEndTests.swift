import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TapioTestSupport
import Testing

/// The shipped alert rules end to end: a real Prometheus scrapes a real `tapio sniff` watching a real leaking
/// process in a real limited cgroup, evaluates config/components/prometheus/rules.yaml and sends to a real
/// Alertmanager, whose API must list TapioOOMPredicted with the subject's labels before the kernel kills the
/// process; once the leak is gone and its Insight resolves, the alert resolves too.
@Suite(.enabled(if: TestCgroup.isAvailable, "\(TestCgroup.unavailableReason ?? "")"))
struct AlertingEndToEndTests {
    static let prometheus = "/usr/bin/prometheus"
    static let alertmanager = "/usr/bin/prometheus-alertmanager"

    /// Alertmanager's active alerts named `name` (GET /api/v2/alerts lists only unresolved ones).
    static func activeAlerts(_ port: Int, named name: String) async -> [[String: Any]]? {
        guard let url = URL(string: "http://127.0.0.1:\(port)/api/v2/alerts"),
              let (data, _) = try? await URLSession.shared.data(from: url),
              let alerts = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return nil }
        return alerts.filter { ($0["labels"] as? [String: String])?["alertname"] == name }
    }

    @Test(.timeLimit(.minutes(10))) func anOOMPredictionReachesAlertmanagerBeforeTheKillAndResolvesAfter() async throws {
        for binary in [Self.prometheus, Self.alertmanager] where !FileManager.default.isExecutableFile(atPath: binary) {
            print("skipped anOOMPredictionReachesAlertmanagerBeforeTheKillAndResolvesAfter: \(binary) is not installed (scripts/setup.sh installs prometheus and prometheus-alertmanager)")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-alerting-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        let leak = try SniffTests.Leak()
        defer { leak.stop() }
        // Findings resolve 10 s after their condition clears, so the resolution is seen within the test.
        let policy = try write("policy.yaml", """
            apiVersion: tapio.io/v1alpha1
            kind: TapioPolicy
            metadata: {name: alerting-test}
            spec:
              insights: {resolveAfter: 10s}
            """)
        let sniff = try BackgroundCommand(tapio: ["sniff", "-o", "prometheus", "--metrics-addr", "127.0.0.1:0", "--window", "3m",
                                                  "--duration", "600s", "--policy", policy],
                                          environment: SniffTests.noClusterEnvironment)
        defer { sniff.cleanUp() }
        let metricsURL = try #require(await sniff.announcedMetricsURL(), "sniff announced no /metrics: \(sniff.stderr)")

        let amPort = try Loopback.freePort()
        let amConfig = try write("alertmanager.yml", """
            route: {receiver: "null", group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
            receivers: [{name: "null"}]
            """)
        let am = try BackgroundCommand(URL(fileURLWithPath: Self.alertmanager), [
            "--config.file=\(amConfig)", "--storage.path=\(dir.appendingPathComponent("am").path)",
            "--web.listen-address=127.0.0.1:\(amPort)", "--cluster.listen-address=",
        ])
        defer { am.cleanUp() }

        let rules = CommandRunner.repositoryRoot.appendingPathComponent("config/components/prometheus/rules.yaml").path
        let promPort = try Loopback.freePort()
        let promConfig = try write("prometheus.yml", """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            rule_files: ["\(rules)"]
            alerting:
              alertmanagers: [{static_configs: [{targets: ["127.0.0.1:\(amPort)"]}]}]
            scrape_configs:
              - job_name: tapio-sniff
                metrics_path: /metrics
                static_configs: [{targets: ["\(metricsURL.host ?? "127.0.0.1"):\(metricsURL.port ?? 0)"]}]
            """)
        let prom = try BackgroundCommand(URL(fileURLWithPath: Self.prometheus), [
            "--config.file=\(promConfig)", "--storage.tsdb.path=\(dir.appendingPathComponent("tsdb").path)",
            "--web.listen-address=127.0.0.1:\(promPort)",
        ])
        defer { prom.cleanUp() }

        // Until the alert shows or the kernel kills the leak (~320 s), whichever comes first.
        var alert: [String: Any]?
        var aliveWhenAlerted = false
        let deadline = ContinuousClock.now + .seconds(420)
        while ContinuousClock.now < deadline, alert == nil, prom.isRunning, am.isRunning, sniff.isRunning {
            alert = await Self.activeAlerts(amPort, named: "TapioOOMPredicted")?.first {
                (($0["labels"] as? [String: String])?["subject_name"] ?? "").contains(leak.path)
            }
            aliveWhenAlerted = leak.process.isAlive
            if alert == nil { try await Task.sleep(for: .seconds(1)) }
        }
        let found = try #require(alert, """
            no TapioOOMPredicted alert for \(leak.path) in Alertmanager (prometheus running: \(prom.isRunning), \
            alertmanager: \(am.isRunning), sniff: \(sniff.isRunning))
            prometheus: \(prom.stderr.suffix(1500))
            alertmanager: \(am.stderr.suffix(800))
            """)
        #expect(aliveWhenAlerted, "the alert came only after the kernel killed the leak")
        let labels = found["labels"] as? [String: String] ?? [:]
        #expect(labels["severity"] == "critical" && labels["type"] == "OOMPrediction", "\(labels)")
        #expect(labels["job"] == "tapio-sniff")
        let annotations = found["annotations"] as? [String: String] ?? [:]
        #expect(annotations["description"]?.contains("kubectl get insight") == true, "\(annotations)")
        #expect(annotations["runbook_url"]?.hasSuffix("#tapiooompredicted") == true)

        // The leak ends: its Insight resolves 10 s later, the series go, Prometheus resolves the alert.
        leak.stop()
        let resolved = await eventually(timeout: .seconds(180), every: .seconds(1)) {
            guard let active = await Self.activeAlerts(amPort, named: "TapioOOMPredicted") else { return false }
            return !active.contains { (($0["labels"] as? [String: String])?["subject_name"] ?? "").contains(leak.path) }
        }
        #expect(resolved, "the alert stayed active after the leak ended")
        sniff.signal(SIGINT)
        _ = await sniff.waitForExit(timeout: .seconds(60))
    }
}
