import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TapioTestSupport
import Testing

/// `tapio sniff` as people run it: the real binary, on this machine, with no cluster, watching a real process
/// that leaks steadily inside a real memory cgroup with a limit. Each output mode must show the OOM prediction.
/// The tests wait for the prediction and then press Ctrl-C, as a person would: on a starved machine it comes
/// later, and a fixed run length once missed it.
@Suite(.enabled(if: TestCgroup.isAvailable, "\(TestCgroup.unavailableReason ?? "")"))
struct SniffTests {
    /// A leak of 2 MiB/s in a cgroup limited to 640 MiB: the kill is ~320 s away. Tapio reports growth only once
    /// it has been sustained for 90 s (a GC sawtooth's first ramp looks like a leak).
    final class Leak: Sendable {
        let cgroup: TestCgroup
        let process: TestProcess
        init() throws {
            // 2 MiB/s into 640 MiB: killed after about 320 s, while a prediction needs 90 s of growth and the
            // cgroup poller's next walk (10 s) — ample room on a loaded machine.
            cgroup = try TestCgroup.create(layout: .custom(["leaky.service"]), memoryLimit: 640 << 20)
            let script = CommandRunner.repositoryRoot.appendingPathComponent("Tests/Fixtures/leak.py").path
            process = try TestProcess.gated(shell: "exec python3 \(script) 2")
            do {
                try cgroup.add(pid: process.pid)
                try process.release()
            } catch {
                process.kill()
                cgroup.destroy()
                throw error
            }
        }
        func stop() {
            process.kill()
            cgroup.destroy()
        }
        /// The cgroup's name as Tapio shows it: its path below the hierarchy's mount.
        var path: String { cgroup.cgroupPath }
    }

    /// No kubeconfig anywhere: sniff must say so and watch the machine alone.
    static var noClusterEnvironment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["KUBECONFIG"] = "/nonexistent/tapio-test-kubeconfig"
        env["KUBERNETES_SERVICE_HOST"] = nil
        return env
    }

    /// Sniff with no cluster, left running until the test has seen what it waits for.
    func startSniff(_ args: [String]) throws -> BackgroundCommand {
        // --duration only as a backstop: the tests interrupt sniff once the prediction is out.
        try BackgroundCommand(tapio: ["sniff", "--window", "3m", "--duration", "600s"] + args, environment: Self.noClusterEnvironment)
    }

    /// How long a test waits for the prediction: past the leak's kill (~320 s), so a missing prediction fails on
    /// what sniff printed, not on a timeout.
    static let predictionWait: Duration = .seconds(400)

    /// SIGINT (Ctrl-C), then the exit status: sniff must stop cleanly and print its final record.
    func interrupt(_ sniff: BackgroundCommand) async -> Int32? {
        sniff.signal(SIGINT)
        return await sniff.waitForExit(timeout: .seconds(60))
    }

    /// The complete JSON lines printed so far (a line still being written is left for the next look).
    static func completeLines(_ text: String) -> [Substring] {
        guard let end = text.lastIndex(of: "\n") else { return [] }
        return text[..<end].split(separator: "\n")
    }

    @Test(.timeLimit(.minutes(9))) func jsonLinesCarryTheOOMPredictionAndParseAgainstTheSchema() async throws {
        let leak = try Leak()
        defer { leak.stop() }
        let sniff = try startSniff(["-o", "json"])
        defer { sniff.cleanUp() }
        let predicted = await sniff.waitFor(timeout: Self.predictionWait) { s in
            Self.completeLines(s.stdout).contains { $0.contains("\"OOMPrediction\"") && $0.contains(leak.path) }
        }
        let status = await interrupt(sniff)
        #expect(predicted, "no OOMPrediction line for \(leak.path); output:\n\(sniff.stdout.prefix(3000))\nstderr:\n\(sniff.stderr)")
        #expect(status == 0, "exit status \(String(describing: status)); stderr: \(sniff.stderr)")
        #expect(sniff.stderr.contains("no cluster reachable"), "the fallback must be said in one line: \(sniff.stderr)")
        var predictions: [[String: Any]] = []
        var statuses = 0
        for line in Self.completeLines(sniff.stdout) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                                      "not a JSON object: \(line)")
            #expect(object["schema"] as? String == "tapio.io/sniff/v1")
            switch object["record"] as? String {
            case "insight":
                for key in ["name", "change", "phase", "firstSeen", "lastSeen", "occurrences", "spec"] {
                    #expect(object[key] != nil, "insight record without \(key)")
                }
                let spec = try #require(object["spec"] as? [String: Any])
                for key in ["type", "severity", "title", "summary", "subject"] { #expect(spec[key] != nil, "spec without \(key)") }
                let subject = spec["subject"] as? [String: Any]
                if spec["type"] as? String == "OOMPrediction", (subject?["name"] as? String)?.contains(leak.path) == true {
                    predictions.append(spec)
                }
            case "status":
                statuses += 1
                #expect(object["events"] is NSNumber && object["sources"] is [Any])
            default:
                Issue.record("unknown record: \(line)")
            }
        }
        #expect(statuses >= 1, "a final status record is always written")
        let p = try #require(predictions.first, "no OOMPrediction for \(leak.path); output:\n\(sniff.stdout.prefix(3000))")
        let prediction = try #require(p["prediction"] as? [String: Any])
        let probability = try #require(prediction["probability"] as? Double)
        #expect(probability > 0 && probability <= 1)
        #expect(prediction["timeToEvent"] is String)
        #expect((p["remediation"] as? [String: Any])?["actions"] is [Any])
    }

    @Test(.timeLimit(.minutes(9))) func servedMetricsAreAValidScrapeWithTheTimeToOOM() async throws {
        let leak = try Leak()
        defer { leak.stop() }
        let sniff = try startSniff(["-o", "prometheus", "--metrics-addr", "127.0.0.1:0"])
        defer { sniff.cleanUp() }
        let url = await sniff.announcedMetricsURL()
        let metricsURL = try #require(url, "no 'serving /metrics on' line: \(sniff.stderr)")
        var scrape = ""
        let deadline = ContinuousClock.now + Self.predictionWait
        func series(_ text: String) -> [PrometheusText.Sample] {
            ((try? PrometheusText.parse(text)) ?? []).filter {
                $0.name == "tapio_predicted_time_to_oom_seconds" && ($0.labels["subject"] ?? "").contains(leak.path)
            }
        }
        while ContinuousClock.now < deadline && sniff.isRunning {
            if let (data, _) = try? await URLSession.shared.data(from: metricsURL) { scrape = String(decoding: data, as: UTF8.self) }
            if !series(scrape).isEmpty { break }
            try await Task.sleep(for: .seconds(1))
        }
        let status = await interrupt(sniff)
        #expect(status == 0, "exit status \(String(describing: status)); stderr: \(sniff.stderr)")
        let samples = try PrometheusText.parse(scrape)
        let ttl = series(scrape)
        #expect(!ttl.isEmpty, "no time-to-OOM series for \(leak.path) in:\n\(scrape)")
        #expect(ttl.allSatisfy { $0.value > 0 && $0.value < 600 })
        #expect(samples.contains { $0.name == "tapio_insights" && $0.labels["type"] == "OOMPrediction" && $0.value >= 1 })
        #expect(samples.contains { $0.name == "tapio_source_up" })
    }

    /// `--once`: one scrape on stdout after the first correlation window (10 s), then exit 0.
    @Test(.timeLimit(.minutes(3))) func prometheusOncePrintsOneValidScrapeAndExits() async throws {
        let r = try await CommandRunner.run(CommandRunner.tapioExecutable, ["sniff", "-o", "prometheus", "--once"],
                                            environment: Self.noClusterEnvironment, timeout: .seconds(120))
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let samples = try PrometheusText.parse(r.stdout)
        #expect(samples.contains { $0.name == "tapio_source_up" }, "scrape was:\n\(r.stdout)")
    }

    @Test(.timeLimit(.minutes(10))) func theTerminalViewShowsThePredictionAsAPersonSeesIt() async throws {
        guard let tmux = ["/usr/bin/tmux", "/bin/tmux"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("skipped theTerminalViewShowsThePredictionAsAPersonSeesIt: tmux is not installed (scripts/setup.sh installs it)")
            return
        }
        let leak = try Leak()
        defer { leak.stop() }
        let session = "tapio-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        let command = "KUBECONFIG=/nonexistent \(CommandRunner.tapioExecutable.path) sniff --window 3m --duration 600s; sleep 60"
        // One shell drives tmux (a server of its own, -L, so nobody else's tmux is touched): start the session,
        // capture the pane every 2 s; once this leak's prediction is on screen press Ctrl-C, as a person would;
        // stop when the final summary is on screen (or 460 s pass, past the leak's kill), print the last capture.
        let script = """
            tmux -L \(session) new-session -d -s \(session) -x 200 -y 100 '\(command)' || exit 3
            i=0; interrupted=0
            while [ $i -lt 230 ]; do
              sleep 2; i=$((i+1))
              tmux -L \(session) capture-pane -p -S -3000 -t \(session) > "$0.screen" 2>&1
              grep -q 'summary:' "$0.screen" && break
              if [ $interrupted = 0 ] && grep 'OOM kill predicted' "$0.screen" | grep -qF "$1"; then
                tmux -L \(session) send-keys -t \(session) C-c; interrupted=1
              fi
            done
            cat "$0.screen"; tmux -L \(session) kill-server
            """
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(session).path
        var env = ProcessInfo.processInfo.environment
        env["TERM"] = "xterm-256color"
        env["TMUX"] = nil
        env["PATH"] = (env["PATH"] ?? "") + ":" + URL(fileURLWithPath: tmux).deletingLastPathComponent().path
        let run = try await CommandRunner.run(URL(fileURLWithPath: "/bin/sh"), ["-c", script, scratch, leak.path], environment: env,
                                        timeout: .seconds(520))
        defer { try? FileManager.default.removeItem(atPath: scratch + ".screen") }
        #expect(run.status == 0, "tmux failed: \(run.stderr)")
        let screen = run.stdout
        #expect(screen.contains("tapio sniff"), "start-up banner missing:\n\(screen)")
        #expect(screen.contains("eBPF probes") || screen.contains("/proc"), "start-up checklist missing:\n\(screen)")
        #expect(screen.contains("OOM kill predicted") && screen.contains(leak.path), "no prediction on screen:\n\(screen)")
        #expect(screen.contains("$ "), "remediation commands missing:\n\(screen)")
        #expect(screen.contains("summary:"), "no final summary:\n\(screen)")
        // A repeated insight updates, never reprints: this leak's prediction has one block (more only when it
        // escalated, which the block says) and one line in the final summary. Other tests' leaks may show too.
        let lines = screen.split(separator: "\n").filter { $0.contains("OOM kill predicted") && $0.contains(leak.path) }
        let blocks = lines.filter { !$0.contains("(escalated)") }
        #expect(blocks.count <= 2, "the prediction was reprinted:\n\(screen)")
    }
}

/// A strict reader of the Prometheus text exposition format (0.0.4): comments, then `name{labels} value` lines.
enum PrometheusText {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }
    struct ParseError: Error, CustomStringConvertible {
        var line: String
        var description: String { "not Prometheus text: \(line)" }
    }

    static func parse(_ text: String) throws -> [Sample] {
        var out: [Sample] = []
        for raw in text.split(separator: "\n") {
            let line = String(raw)
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
            guard !line.hasPrefix("#") else { throw ParseError(line: line) }
            var rest = Substring(line)
            let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
            let name = String(rest[..<nameEnd])
            guard name.range(of: "^[a-zA-Z_:][a-zA-Z0-9_:]*$", options: .regularExpression) != nil else { throw ParseError(line: line) }
            rest = rest[nameEnd...]
            var labels: [String: String] = [:]
            if rest.first == "{" {
                guard let close = rest.firstIndex(of: "}") else { throw ParseError(line: line) }
                let body = rest[rest.index(after: rest.startIndex)..<close]
                for pair in body.split(separator: ",") where !pair.isEmpty {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2, kv[1].hasPrefix("\""), kv[1].hasSuffix("\"") else { throw ParseError(line: line) }
                    labels[String(kv[0])] = String(kv[1].dropFirst().dropLast())
                }
                rest = rest[rest.index(after: close)...]
            }
            let fields = rest.split(separator: " ")
            guard let v = fields.first, let value = Double(v) ?? (v == "+Inf" ? .infinity : v == "NaN" ? .nan : nil) else {
                throw ParseError(line: line)
            }
            out.append(Sample(name: name, labels: labels, value: value))
        }
        return out
    }
}
