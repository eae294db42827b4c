import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TapioAgent
import TapioCorrelation
import TapioModel
import TapioSinks

/// `tapio sniff`: the agent's pipeline in the foreground.
struct SniffRunner {
    let command: SniffCommand

    func run() async throws {
        // --duration counts from the start, connecting included: sniff must end on time whatever the server does.
        let clock = ContinuousClock()
        let deadline = command.duration.map { clock.now + $0.duration }
        let logger = Logger(label: "tapio.sniff")
        var config = try effectiveConfig()
        let c = command
        let color = TextRenderer.shouldUseColor(noColorFlag: c.noColor)
        let renderer = TextRenderer(color: color)
        let terminal = c.output == .text ? TerminalSink(renderer: renderer, inPlace: color, minSeverity: c.minSeverity) : nil
        func say(_ line: String) {
            // Progress goes to the terminal view; in the machine-readable modes it must not pollute stdout.
            if let terminal { terminal.line(line) } else { StandardStream.error.write(line + "\n") }
        }
        if c.output == .text { say(color ? "\u{1B}[1mtapio sniff\u{1B}[0m \(TapioVersion.string)" : "tapio sniff \(TapioVersion.string)") }

        // Kernel side.
        var node: NodeSide?
        if !c.k8sOnly {
            node = NodeSide.start(config, logger: logger)
        }
        // Cluster side.
        var cluster: ClusterSide?
        if !c.ebpfOnly {
            let connectTimeout = deadline.map { min(.seconds(5), max(.milliseconds(100), $0 - clock.now)) } ?? .seconds(5)
            switch await ClusterSide.connect(kubeconfig: c.global.kubeconfig, context: c.global.context,
                                             nodeName: c.nodeName ?? ProcessInfo.processInfo.hostName,
                                             timeout: connectTimeout, logger: logger) {
            case .success(let side): cluster = side
            case .failure(let why):
                if c.k8sOnly { throw ExitMessage("--k8s-only, but no cluster is reachable: \(why)") }
                say("no cluster reachable (\(why)); watching this machine alone")
            }
        }
        var checklist = node?.checklist ?? [("kernel probes", .stopped)]
        if let cluster { checklist.append(contentsOf: cluster.checklist) }
        if c.output == .text { for item in checklist { say(renderer.checklist(item.name, item.state)) } }
        else { for item in checklist { say("\(item.name): \(item.state)") } }

        let sources = (node?.sources ?? []) + (cluster?.sources ?? [])
        guard !sources.isEmpty else { throw ExitMessage("nothing to watch: no kernel source and no cluster") }
        config.correlation.minSeverity = min(config.correlation.minSeverity, c.minSeverity)

        let metrics = TapioMetrics()
        var sinks: [any InsightSink] = [MetricsSink(metrics: metrics, perInsightSeries: true)]
        let json = c.output == .json ? JSONLinesSink(minSeverity: c.minSeverity) : nil
        if let terminal { sinks.append(terminal) }
        if let json { sinks.append(json) }
        let namespace = c.namespace
        let attributor = node?.attributor ?? NodeAttributor(limited: nil, mount: nil)
        if let cluster { attributor.followPods(of: cluster.sniffer) }
        let pipeline = Pipeline(config: config.correlation, sources: sources,
                                attributor: attributor, sinks: sinks, deletions: cluster?.sniffer.deletions, logger: logger,
                                filter: { u in namespace == nil || u.spec.subject.namespace == namespace })

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: PipelineService(pipeline), successTerminationBehavior: .gracefullyShutdownGroup),
        ]
        var endpoint: HTTPEndpoint?
        if c.output == .prometheus && !c.once {
            let e = HTTPEndpoint(host: c.metricsAddr.host, port: c.metricsAddr.port, routes: [
                "/metrics": { .init(contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render()) },
                "/healthz": { .init(body: Array("ok\n".utf8)) },
            ], metrics: metrics)
            let port: Int
            do { port = try await e.start() } catch { throw ExitMessage("\(error)") }
            say("serving /metrics on http://\(ListenAddress(host: c.metricsAddr.host, port: port))/metrics")
            endpoint = e
        }
        let remaining = deadline.map { max(.zero, $0 - clock.now) }
        if c.once {
            // One scrape, 10 s after the sources started (a first batch of samples and the cluster's first lists),
            // or when --duration ends.
            services.append(.init(service: StopAfter(remaining ?? .seconds(10)),
                                  successTerminationBehavior: .gracefullyShutdownGroup))
        } else if let remaining {
            services.append(.init(service: StopAfter(remaining), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger))
        try await group.run()

        node?.close()
        await cluster?.close()
        await endpoint?.shutdown()
        let status = pipeline.status
        await MetricsSink(metrics: metrics, perInsightSeries: true).status(status)
        switch c.output {
        case .text: terminal?.finish(summary: summary(status, renderer: renderer))
        case .json: json?.writeStatus(status)
        case .prometheus: if c.once { StandardStream.output.write(metrics.render()) }
        }
    }

    func summary(_ s: PipelineStatus, renderer: TextRenderer) -> String {
        var out = "\nsummary: \(s.events) events, \(s.correlations) correlations, \(s.subjects) subjects, "
        out += "\(s.activeInsights.count) active insights"
        if s.shed > 0 { out += ", \(s.shed) events shed" }
        out += "\n"
        for u in s.activeInsights.sorted(by: { $0.spec.severity > $1.spec.severity }) {
            out += "  [\(u.spec.severity.rawValue)] \(u.spec.title) — \(renderer.describe(u.spec.subject))\n"
        }
        return out
    }

    /// Defaults, then the --policy file, then the flags.
    func effectiveConfig() throws -> EffectiveConfig {
        var policies: [TapioPolicy] = []
        if let path = command.policy { policies = [try PolicyFile.load(path)] }
        var config = EffectiveConfig.merge(policies)
        let c = command
        if let b = c.batchSize { config.correlation.batchSize = b }
        if let t = c.batchTimeout { config.correlation.batchTimeout = t.duration }
        if let w = c.window { config.correlation.window = w.duration }
        if let r = c.samplingRate { config.samplingHz = r }
        return config
    }
}

/// A fatal problem: printed as one line, exit status 1.
struct ExitMessage: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
