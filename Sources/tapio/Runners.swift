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
        let client: KubeClient
        do {
            client = try KubeClient(config: ClusterSide.config(kubeconfig: c.global.kubeconfig, context: c.global.context))
        } catch {
            throw ExitMessage("no usable Kubernetes configuration: \(error)")
        }
        let options = Agent.Options(nodeName: c.resolvedNodeName ?? "", namespace: c.namespace,
                                    metricsHost: c.metricsAddr.host, metricsPort: c.metricsAddr.port)
        do {
            try await Agent(options: options, client: client).run()
        } catch {
            try? await client.shutdown()
            throw ExitMessage("\(error)")
        }
        try? await client.shutdown()
    }
}

/// `tapio operator`.
struct OperatorRunner {
    let command: OperatorCommand

    func run() async throws {
        let c = command
        let client: KubeClient
        do {
            client = try KubeClient(config: ClusterSide.config(kubeconfig: c.global.kubeconfig, context: c.global.context))
        } catch {
            throw ExitMessage("no usable Kubernetes configuration: \(error)")
        }
        let env = ProcessInfo.processInfo.environment
        let options = Operator.Options(
            namespace: c.namespace, leaderElect: c.leaderElect,
            identity: c.identity ?? env["POD_NAME"] ?? ProcessInfo.processInfo.hostName,
            leaseDuration: c.leaseDuration.duration, renewDeadline: c.renewDeadline.duration,
            retryPeriod: c.retryPeriod.duration, metricsHost: c.metricsAddr.host, metricsPort: c.metricsAddr.port)
        do {
            try await Operator(options: options, client: client).run()
        } catch {
            try? await client.shutdown()
            throw ExitMessage("\(error)")
        }
        try? await client.shutdown()
    }
}
