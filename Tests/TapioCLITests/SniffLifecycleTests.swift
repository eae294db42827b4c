import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TapioTestSupport
import Testing

/// `tapio sniff -o prometheus` keeps serving /metrics until Ctrl-C, then stops cleanly with exit status 0.
@Suite struct SniffLifecycleTests {
    @Test(.timeLimit(.minutes(2))) func prometheusServesMetricsUntilInterruptedAndExitsZero() async throws {
        var env = ProcessInfo.processInfo.environment
        env["KUBECONFIG"] = "/nonexistent/kubeconfig"
        let sniff = try BackgroundCommand(tapio: ["sniff", "-o", "prometheus", "--metrics-addr", "127.0.0.1:0"], environment: env)
        defer { sniff.cleanUp() }

        let url = await sniff.announcedMetricsURL()
        let metricsURL = try #require(url, "no 'serving /metrics on' line: \(sniff.stderr)")
        // The sources report their health with the pipeline's first status (within a second or so of start).
        var httpStatus: Int?, body = ""
        let deadline = ContinuousClock.now + .seconds(60)
        repeat {
            if let (data, response) = try? await URLSession.shared.data(from: metricsURL) {
                httpStatus = (response as? HTTPURLResponse)?.statusCode
                body = String(decoding: data, as: UTF8.self)
            }
            if body.contains("tapio_source_up") { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < deadline
        #expect(httpStatus == 200)
        #expect(body.contains("tapio_source_up"), "scrape was:\n\(body)")

        sniff.signal(SIGINT)
        let status = await sniff.waitForExit(timeout: .seconds(15))
        #expect(status == 0, "sniff did not exit 0 within 15 s of SIGINT: \(String(describing: status))")
    }
}
