import ArgumentParser
import Foundation
import Logging
import TapioModel

struct SniffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sniff",
        abstract: "Watch this machine (and the cluster, when reachable) and print insights live.",
        discussion: """
            Starts the kernel probes (eBPF, or /proc and cgroup polling where BPF is not allowed) and, when a \
            kubeconfig or in-cluster configuration is usable, the Kubernetes side. With no cluster it says so \
            in one line and watches the local processes, containers and cgroups as subjects of their own.
            Ctrl-C stops cleanly, prints a summary and exits 0.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .shortAndLong, help: "Output: text (live view), json (one JSON object per line) or prometheus (/metrics).")
    var output: SniffOutput = .text

    @Flag(help: "Run only the Kubernetes side (no kernel probes).")
    var k8sOnly = false

    @Flag(help: "Run only the kernel side, even when a cluster is reachable.")
    var ebpfOnly = false

    @Option(help: ArgumentHelp("Events per correlation batch, 1–100000 (default: the policy's, else 100).", valueName: "n"))
    var batchSize: Int?

    @Option(help: ArgumentHelp("Longest wait before a partial batch is correlated, 1ms–1m (default: the policy's, else 100ms).", valueName: "duration"),
            transform: DurationArgument.parser(CorrelationSettings.batchTimeoutRange))
    var batchTimeout: DurationArgument?

    @Option(help: ArgumentHelp("Memory sampling rate per CPU in Hz, 1–1000 (default: the policy's, else 19).", valueName: "hz"))
    var samplingRate: Int?

    @Option(help: ArgumentHelp("Sliding window each subject's history covers, 1m–24h (default: the policy's, else 5m).", valueName: "duration"),
            transform: DurationArgument.parser(CorrelationSettings.windowRange))
    var window: DurationArgument?

    @Option(help: ArgumentHelp("Only show insights about pods in this namespace.", valueName: "name"))
    var namespace: String?

    @Option(help: "Hide insights below this severity: info, warning or critical.")
    var minSeverity: Severity = .info

    @Option(help: ArgumentHelp("Stop after this long (for scripts), e.g. 30s, at most 8760h. Default: run until Ctrl-C.", valueName: "duration"),
            transform: DurationArgument.parser(DurationArgument.runRange))
    var duration: DurationArgument?

    @Option(help: ArgumentHelp("A TapioPolicy manifest (YAML or JSON) applied locally.", valueName: "file"))
    var policy: String?

    @Option(help: "With -o prometheus: where /metrics and /healthz are served.")
    var metricsAddr = ListenAddress(host: "127.0.0.1", port: 9464)

    @Flag(help: "With -o prometheus: serve nothing; print one scrape to stdout 10 s after the sources started (or when --duration ends) and exit.")
    var once = false

    @Flag(help: "Plain text without colour or symbols (also when stdout is not a terminal, NO_COLOR is set or TERM is dumb).")
    var noColor = false

    @Option(help: ArgumentHelp("Node name for the cluster side (default: this machine's hostname).", valueName: "name"))
    var nodeName: String?

    func validate() throws {
        if k8sOnly && ebpfOnly {
            throw ValidationError("--k8s-only and --ebpf-only exclude each other: pick one, or neither for both sides.")
        }
        if let b = batchSize, !(1...100_000).contains(b) {
            throw ValidationError("--batch-size must be between 1 and 100000, got \(b).")
        }
        if let r = samplingRate, !(1...1000).contains(r) {
            throw ValidationError("--sampling-rate must be between 1 and 1000 Hz, got \(r).")
        }
        if once && output != .prometheus {
            throw ValidationError("--once only applies to -o prometheus.")
        }
        if let ns = namespace, !DNSNames.isLabel(ns) {
            throw ValidationError("--namespace '\(ns)' is not a valid namespace name (lowercase letters, digits and '-', at most 63).")
        }
        if let p = policy, !FileManager.default.isReadableFile(atPath: p) {
            throw ValidationError("--policy \(p): no readable file there.")
        }
    }

    func run() async throws {
        LoggingSetup.bootstrap(global)
        OpenFileLimit.raise(logger: Logger(label: "tapio.sniff"))
        try await SniffRunner(command: self).run()
    }
}

enum SniffOutput: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json, prometheus
}

/// DNS-1123 name checks used by flag validation.
enum DNSNames {
    static func isLabel(_ s: String) -> Bool {
        guard (1...63).contains(s.utf8.count), let f = s.utf8.first, let l = s.utf8.last else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) }
        return alnum(f) && alnum(l) && s.utf8.allSatisfy { alnum($0) || $0 == 0x2D }
    }
}
