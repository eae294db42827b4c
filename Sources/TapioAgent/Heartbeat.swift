import Foundation
import KubeClient
import KubeRuntime
import Logging
import ServiceLifecycle
import Synchronization
import TapioKube

/// The agent's per-node heartbeat Lease, renewed every `period` and at once when the applied policies change
/// (format in ``HeartbeatAnnotations``). The operator reads these to fill TapioPolicy status.
public final class Heartbeat: Service, Sendable {
    let client: KubeClient
    let namespace: String
    let node: String
    let period: Duration
    let logger: Logger
    private let applied = Mutex<(policies: [String: Int64], errors: [String: String])>(([:], [:]))
    /// What keeps this node's agent from working fully, read at each renewal (``HeartbeatAnnotations/problems``).
    let problems: @Sendable () -> [String]
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    public init(client: KubeClient, namespace: String, node: String, period: Duration = .seconds(10), logger: Logger,
                problems: @escaping @Sendable () -> [String] = { [] }) {
        self.problems = problems
        self.client = client
        self.namespace = namespace
        self.node = node
        self.period = period
        self.logger = logger
        (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Records what the node now runs with and renews at once.
    public func report(applied policies: [String: Int64], errors: [String: String]) {
        applied.withLock { $0 = (policies, errors) }
        wake.yield()
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        self.wake.yield()
                        try? await Task.sleep(for: self.period)
                    }
                }
                for await _ in self.wakes {
                    if Task.isCancelled { break }
                    await self.renew()
                }
                group.cancelAll()
            }
        }
    }

    func renew() async {
        let (policies, errors) = applied.withLock { $0 }
        typealias H = HeartbeatAnnotations
        var lease = Lease(metadata: ObjectMeta(name: H.leaseName(node: node), namespace: namespace,
                                               labels: [H.appLabel: "tapio", H.nodeLabel: node],
                                               annotations: [H.applied: H.encodeApplied(policies),
                                                             H.errors: H.encodeErrors(errors),
                                                             H.problems: H.encodeProblems(problems())]))
        var spec = Lease.Spec()
        spec.holderIdentity = node
        spec.leaseDurationSeconds = Int32(period.components.seconds * 3)
        spec.renewTime = MicroTime.string()
        lease.spec = spec
        do {
            _ = try await client.apply(lease, fieldManager: "tapio-agent", force: true)
        } catch {
            if error is CancellationError { return }
            client.logLimiter.log(logger, .warning, key: "heartbeat",
                                  "heartbeat Lease \(namespace)/\(HeartbeatAnnotations.leaseName(node: node)): \(error)")
        }
    }
}
