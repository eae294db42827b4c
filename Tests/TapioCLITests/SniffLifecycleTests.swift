import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TapioTestSupport
import Testing

/// `tapio sniff -o prometheus` keeps serving /metrics until Ctrl-C, then stops cleanly with exit status 0.
@Suite struct SniffLifecycleTests {
    @Test(.timeLimit(.minutes(2))) func prometheusServesMetricsUntilInterruptedAndExitsZero() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-sniff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let errURL = dir.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let p = Process()
        p.executableURL = CommandRunner.tapioExecutable
        p.arguments = ["sniff", "-o", "prometheus", "--metrics-addr", "127.0.0.1:0"]
        var env = ProcessInfo.processInfo.environment
        env["KUBECONFIG"] = "/nonexistent/kubeconfig"
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: errURL)
        try p.run()
        defer { if p.isRunning { p.terminate() } }

        // The bound port is announced on stderr.
        var url: URL?
        for _ in 0..<150 where url == nil {
            try await Task.sleep(for: .milliseconds(100))
            let text = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            if let r = text.range(of: #"http://127\.0\.0\.1:[0-9]+/metrics"#, options: .regularExpression) {
                url = URL(string: String(text[r]))
            }
        }
        let metricsURL = try #require(url, "no 'serving /metrics on' line: \((try? String(contentsOf: errURL, encoding: .utf8)) ?? "")")
        try await Task.sleep(for: .seconds(2))
        let (data, response) = try await URLSession.shared.data(from: metricsURL)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        let body = String(decoding: data, as: UTF8.self)
        #expect(body.contains("tapio_source_up"), "scrape was:\n\(body)")

        kill(p.processIdentifier, SIGINT)
        for _ in 0..<150 where p.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!p.isRunning, "sniff did not stop within 15 s of SIGINT")
        if !p.isRunning {
            #expect(p.terminationStatus == 0, "exit status \(p.terminationStatus)")
        }
    }
}
