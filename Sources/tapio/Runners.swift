import ArgumentParser
import Foundation
import KubeClient
import Logging
import TapioAgent
import TapioOperator
import TapioSinks

/// `tapio agent`: the client from --kubeconfig (else $KUBECONFIG, ~/.kube/config, in-cluster), then the agent.
struct AgentRunner {
    let command: AgentCommand

    func run() async throws {
        let c = command
        let metrics = TapioMetrics()
        let client = try makeClient(c.global, metrics: metrics)
        var options = Agent.Options(nodeName: c.resolvedNodeName ?? "", namespace: c.namespace,
                                    metricsHost: c.metricsAddr.host, metricsPort: c.metricsAddr.port)
        options.releaseStartupPagesAfter = c.releaseStartupPages ? c.releaseStartupPagesAfter.duration : nil
        options.stateFile = c.stateFile
        try await runThenShutDown(client) { try await Agent(options: options, client: client, metrics: metrics).run() }
    }
}

/// `tapio operator`.
struct OperatorRunner {
    let command: OperatorCommand

    func run() async throws {
        let c = command
        let metrics = TapioMetrics()
        let client = try makeClient(c.global, metrics: metrics)
        let env = ProcessInfo.processInfo.environment
        var options = Operator.Options(
            namespace: c.namespace, leaderElect: c.leaderElect,
            // An empty POD_NAME (a manifest without the downward API value) counts as unset, as NODE_NAME does.
            identity: c.identity ?? env["POD_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? ProcessInfo.processInfo.hostName,
            leaseDuration: c.leaseDuration.duration, renewDeadline: c.renewDeadline.duration,
            retryPeriod: c.retryPeriod.duration, metricsHost: c.metricsAddr.host, metricsPort: c.metricsAddr.port)
        options.insightSeriesLimit = c.insightSeriesLimit
        options.releaseStartupPagesAfter = c.releaseStartupPages ? c.releaseStartupPagesAfter.duration : nil
        try await runThenShutDown(client) { try await Operator(options: options, client: client, metrics: metrics).run() }
    }
}

/// The client from --kubeconfig/--context (else $KUBECONFIG, ~/.kube/config, in-cluster), or a one-line reason.
func makeClient(_ global: GlobalOptions, metrics: TapioMetrics? = nil) throws -> KubeClient {
    var observer: KubeClient.RequestObserver?
    if let metrics {
        observer = { verb, outcome in
            switch outcome {
            case .succeeded: metrics.apiRequest(verb: verb, failed: false)
            case .failed: metrics.apiRequest(verb: verb, failed: true)
            case .streamFailed: metrics.apiError(verb: verb)
            case .undecodableObject(let resource): metrics.undecodableObject(resource: resource)
            }
        }
    }
    do {
        return try KubeClient(config: ClusterSide.config(kubeconfig: global.kubeconfig, context: global.context),
                              observer: observer)
    } catch {
        throw ExitMessage("no usable Kubernetes configuration: \(error)")
    }
}

/// Runs `body`, then closes the client's connections whatever happened; a failure becomes a one-line exit reason.
func runThenShutDown(_ client: KubeClient, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        try? await client.shutdown()
        throw ExitMessage("\(error)")
    }
    try? await client.shutdown()
}
