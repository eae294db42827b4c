import ArgumentParser
import Foundation
import KubeClient
import Logging
import TapioAgent
import TapioOperator

/// `tapio agent`: the client from --kubeconfig (else $KUBECONFIG, ~/.kube/config, in-cluster), then the agent.
struct AgentRunner {
    let command: AgentCommand

    func run() async throws {
        let c = command
        let client = try makeClient(c.global)
        let options = Agent.Options(nodeName: c.resolvedNodeName ?? "", namespace: c.namespace,
                                    metricsHost: c.metricsAddr.host, metricsPort: c.metricsAddr.port)
        try await runThenShutDown(client) { try await Agent(options: options, client: client).run() }
    }
}

/// `tapio operator`.
struct OperatorRunner {
    let command: OperatorCommand

    func run() async throws {
        let c = command
        let client = try makeClient(c.global)
        let env = ProcessInfo.processInfo.environment
        let options = Operator.Options(
            namespace: c.namespace, leaderElect: c.leaderElect,
            identity: c.identity ?? env["POD_NAME"] ?? ProcessInfo.processInfo.hostName,
            leaseDuration: c.leaseDuration.duration, renewDeadline: c.renewDeadline.duration,
            retryPeriod: c.retryPeriod.duration, metricsHost: c.metricsAddr.host, metricsPort: c.metricsAddr.port)
        try await runThenShutDown(client) { try await Operator(options: options, client: client).run() }
    }
}

/// The client from --kubeconfig/--context (else $KUBECONFIG, ~/.kube/config, in-cluster), or a one-line reason.
func makeClient(_ global: GlobalOptions) throws -> KubeClient {
    do {
        return try KubeClient(config: ClusterSide.config(kubeconfig: global.kubeconfig, context: global.context))
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
