import KubeClient
import Logging
import TapioCorrelation
import TapioModel

/// The Kubernetes side of a node: the client and the sniffer of pods, the Node and kubelet events. (Kernel events
/// are joined to pods by the node side's ``NodeAttributor``, whose pod directory the sniffer's pod watch feeds:
/// ``NodeAttributor/followPods(of:)``.)
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
    /// node's pods, which is also what the agent's RBAC allows). `timeout` bounds the whole attempt, retries
    /// included, whatever the server does (refuses, never answers, redirects, fails).
    public static func connect(kubeconfig: String?, context: String?, nodeName: String,
                               timeout: Duration = .seconds(5), logger: Logger) async -> Result<ClusterSide, ClusterUnavailable> {
        let client: KubeClient
        do {
            client = try KubeClient(config: config(kubeconfig: kubeconfig, context: context), requestTimeout: max(timeout, .seconds(5)),
                                    logger: logger)
        } catch {
            return .failure(ClusterUnavailable(reason: "\(error)"))
        }
        // An exec credential plugin (a cloud login) runs first, bounded by its own timeout: `timeout` is the
        // server's to answer in.
        do { try await client.prepareCredentials() } catch {
            try? await client.shutdown()
            return .failure(ClusterUnavailable(reason: "\(error)"))
        }
        var options = ListOptions()
        options.limit = 1
        options.fieldSelector = "spec.nodeName=\(nodeName)"
        let probe = options
        let outcome: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
            group.addTask {
                do {
                    _ = try await client.list(Pod.self, options: probe)
                    return .success(())
                } catch { return .failure(error) }
            }
            group.addTask {
                // Cancelled as soon as the probe finishes; nil when it was.
                do { try await Task.sleep(for: timeout) } catch { return nil }
                return .failure(ClusterUnavailable(reason: "no answer within \(timeout)"))
            }
            defer { group.cancelAll() }
            while let next = await group.next() {
                if let next { return next }
            }
            return .failure(CancellationError())
        }
        if case .failure(let error) = outcome {
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
