import KubeClient
import Logging
import TapioCorrelation
import TapioModel

/// The Kubernetes side of a node: the client and the sniffer of pods, the Node and kubelet events. (Kernel events
/// are joined to pods by the node side's ``NodeAttributor``, which learns the pods from the sniffer's events.)
public final class ClusterSide: Sendable {
    public let client: KubeClient
    public let sniffer: KubeSniffer
    public let checklist: [(name: String, state: SourceHealth.State)]
    public var sources: [any EventSource] { [sniffer] }

    init(client: KubeClient, sniffer: KubeSniffer, checklist: [(name: String, state: SourceHealth.State)]) {
        self.client = client
        self.sniffer = sniffer
        self.checklist = checklist
    }

    /// The client configuration: `--kubeconfig`, else `$KUBECONFIG`, `~/.kube/config`, then in-cluster.
    public static func config(kubeconfig: String?, context: String?) throws -> KubeConfig {
        if let path = kubeconfig { return try KubeConfig.load(path: path, context: context) }
        return try KubeConfig.fromEnvironment(context: context)
    }

    /// Connects when a configuration is usable and the API server answers within `timeout` (a list of this
    /// node's pods, which is also what the agent's RBAC allows).
    public static func connect(kubeconfig: String?, context: String?, nodeName: String,
                               timeout: Duration = .seconds(5), logger: Logger) async -> Result<ClusterSide, ClusterUnavailable> {
        let client: KubeClient
        do {
            client = try KubeClient(config: config(kubeconfig: kubeconfig, context: context), requestTimeout: timeout)
        } catch {
            return .failure(ClusterUnavailable(reason: "\(error)"))
        }
        do {
            var options = ListOptions()
            options.limit = 1
            options.fieldSelector = "spec.nodeName=\(nodeName)"
            _ = try await client.list(Pod.self, options: options)
        } catch {
            try? await client.shutdown()
            return .failure(ClusterUnavailable(reason: "\(client.config.server.absoluteString): \(error)"))
        }
        let sniffer = KubeSniffer(client: client, nodeName: nodeName, logger: logger)
        return .success(ClusterSide(client: client, sniffer: sniffer, checklist: [
            ("Kubernetes \(client.config.server.absoluteString) (pods on node \(nodeName))", .running),
        ]))
    }

    public func close() async {
        sniffer.stop()
        try? await client.shutdown()
    }
}

public struct ClusterUnavailable: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
