import ArgumentParser
import Foundation
import Logging
import TapioModel

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the node agent (one per node, as a DaemonSet).",
        discussion: """
            Loads the kernel probes, watches this node's pods, its Node and the TapioPolicies that select it, \
            correlates, and writes Insights and Events for this node's pods. Keeps a heartbeat Lease \
            `tapio-agent-<node>` in --namespace saying which policy generations it applied.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("This node's name (default: $NODE_NAME, set from the downward API).", valueName: "name"))
    var nodeName: String?

    @Option(help: ArgumentHelp("Namespace of Tapio's own objects (heartbeat Leases, cluster-wide Insights).", valueName: "name"))
    var namespace = "tapio-system"

    @Option(help: "Where /metrics, /healthz and /readyz are served.")
    var metricsAddr = ListenAddress(host: "0.0.0.0", port: 9464)

    @Flag(inversion: .prefixedNo, help: "Once started, give back the pages of code only start-up ran (madvise MADV_PAGEOUT, and MADV_DONTNEED on the binary's own mappings; see the README).")
    var releaseStartupPages = true

    @Option(help: ArgumentHelp("How long after start-up (watches listed, first policy applied) to release them, 0s–1h.", valueName: "duration"),
            transform: DurationArgument.parser(DurationArgument.startupReleaseRange))
    var releaseStartupPagesAfter = DurationArgument(.seconds(30))

    @Option(help: ArgumentHelp("Keep the engine's memory beyond its window (each pod container's two-hour minute history, its workload's cycles) in this file across agent restarts: written every minute and at shutdown, read back at start (the DaemonSet uses /var/lib/tapio/engine-memory). One agent per file: PATH.lock is held while the agent runs; another agent's lock is waited for up to 40 s at start. Default: kept in memory only.", valueName: "path"))
    var stateFile: String?

    var resolvedNodeName: String? {
        nodeName ?? ProcessInfo.processInfo.environment["NODE_NAME"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func validate() throws {
        guard let node = resolvedNodeName else {
            throw ValidationError("the agent needs its node's name: pass --node-name or set NODE_NAME (the DaemonSet sets it from spec.nodeName).")
        }
        // A name no Node can have would watch nothing (the agent's watches select by it) and say nothing about why.
        if let why = NameRules.dns1123SubdomainProblem(node) {
            throw ValidationError("the node name '\(String(node.prefix(80)))' (--node-name or NODE_NAME) is not a Node name: \(why).")
        }
        // The heartbeat Lease and the Insights carry the node in the label tapio.io/node, which the admission policy
        // compares with the node the agent's token is bound to: label values stop at 63 characters.
        if node.utf8.count > 63 {
            throw ValidationError("the node name '\(node)' is \(node.utf8.count) characters long: Tapio labels what its agent writes with its node (tapio.io/node), and label values are at most 63 characters; this node is not supported.")
        }
        if !DNSNames.isLabel(namespace) { throw ValidationError("--namespace '\(namespace)' is not a valid namespace name.") }
        if let stateFile, stateFile.isEmpty || stateFile.hasSuffix("/") || stateFile.utf8.count > 4000 {
            throw ValidationError("--state-file '\(stateFile)' is not a file path (a directory, empty, or too long).")
        }
    }

    func run() async throws {
        LoggingSetup.bootstrap(global)
        OpenFileLimit.raise(logger: Logger(label: "tapio.agent"))
        try await AgentRunner(command: self).run()
    }
}

struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operator",
        abstract: "Run the operator (a Deployment; leader-elected).",
        discussion: """
            Validates TapioPolicies and writes their status, runs the cluster-level detectors, resolves and \
            expires Insights, and — only where a policy allows it, behind its gates — applies remediation patches.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Namespace of Tapio's own objects (election Lease, agents' heartbeats, cluster-wide Insights).", valueName: "name"))
    var namespace = "tapio-system"

    @Flag(inversion: .prefixedNo, help: "Elect one active replica through the Lease `tapio-operator` (on in the Deployment).")
    var leaderElect = false

    @Option(help: ArgumentHelp("Leader lease duration, 1s–1h.", valueName: "duration"),
            transform: DurationArgument.parser(DurationArgument.leaseRange))
    var leaseDuration = DurationArgument(.seconds(15))

    @Option(help: ArgumentHelp("How long the leader keeps trying to renew before it gives up leadership, 1s–1h; shorter than --lease-duration.", valueName: "duration"),
            transform: DurationArgument.parser(DurationArgument.leaseRange))
    var renewDeadline = DurationArgument(.seconds(10))

    @Option(help: ArgumentHelp("Interval between attempts to acquire or renew the lease, 100ms–10m; shorter than --renew-deadline.", valueName: "duration"),
            transform: DurationArgument.parser(DurationArgument.retryRange))
    var retryPeriod = DurationArgument(.seconds(2))

    @Option(help: "Where /metrics, /healthz and /readyz are served.")
    var metricsAddr = ListenAddress(host: "0.0.0.0", port: 9464)

    @Option(help: ArgumentHelp("This replica's identity in the election (default: $POD_NAME unless empty, else the hostname).", valueName: "id"))
    var identity: String?

    @Flag(inversion: .prefixedNo, help: "Once started, give back the pages of code only start-up ran (as the agent does; see the README).")
    var releaseStartupPages = true

    @Option(help: ArgumentHelp("How long after start-up (a follower: at once; the leader: its watches listed) to release them, 0s–1h.", valueName: "duration"),
            transform: DurationArgument.parser(DurationArgument.startupReleaseRange))
    var releaseStartupPagesAfter = DurationArgument(.seconds(30))

    @Option(help: ArgumentHelp("At most this many active Insights get per-Insight series (tapio_insight_*) on the leader's /metrics, 0–1000000; the rest are counted in tapio_insight_series_omitted.", valueName: "n"))
    var insightSeriesLimit = 10_000

    func validate() throws {
        guard (0...1_000_000).contains(insightSeriesLimit) else {
            throw ValidationError("--insight-series-limit \(insightSeriesLimit) must be between 0 and 1000000.")
        }
        if !DNSNames.isLabel(namespace) { throw ValidationError("--namespace '\(namespace)' is not a valid namespace name.") }
        guard renewDeadline.duration < leaseDuration.duration else {
            throw ValidationError("--renew-deadline (\(renewDeadline)) must be shorter than --lease-duration (\(leaseDuration)).")
        }
        guard retryPeriod.duration < renewDeadline.duration else {
            throw ValidationError("--retry-period (\(retryPeriod)) must be shorter than --renew-deadline (\(renewDeadline)).")
        }
    }

    func run() async throws {
        LoggingSetup.bootstrap(global)
        try await OperatorRunner(command: self).run()
    }
}
