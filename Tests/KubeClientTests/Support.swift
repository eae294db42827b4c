import Foundation
import KubeClient
import KubeEmulator
import Synchronization
import TapioTestSupport
import Testing

/// The cluster-scoped TapioPolicy CR, with just the fields these tests touch.
struct TestPolicy: KubeResource {
    static let apiVersion = "tapio.io/v1alpha1", kind = "TapioPolicy", plural = "tapiopolicies"
    static let namespaced = false
    struct Spec: Codable, Sendable, Equatable {
        struct Probes: Codable, Sendable, Equatable {
            struct Memory: Codable, Sendable, Equatable { var enabled: Bool?; var samplingHz: Int? }
            var memory: Memory?
        }
        struct Remediation: Codable, Sendable, Equatable { var mode: String? }
        var probes: Probes?
        var remediation: Remediation?
    }
    struct Status: Codable, Sendable, Equatable { var observedGeneration: Int64? }
    var metadata: ObjectMeta
    var spec: Spec?
    var status: Status?
}

/// Runs `body` with a client for a fresh test cluster and a namespace of its own; removes both afterwards.
func withCluster(tls: Bool = true, historyLimit: Int = 10_000, retry: RetryPolicy = RetryPolicy(initialBackoff: .milliseconds(20)),
                 _ body: (TestCluster, KubeClient, String) async throws -> Void) async throws {
    let cluster = try await TestCluster.start(tls: tls, historyLimit: historyLimit)
    let client = try KubeClient(config: KubeConfig.load(path: cluster.kubeconfigPath), retryPolicy: retry)
    let ns = cluster.namespace
    do {
        _ = try await client.create(Namespace(metadata: ObjectMeta(name: ns)))
        try await body(cluster, client, ns)
    } catch {
        try? await client.delete(Namespace.self, name: ns)
        try? await client.shutdown()
        await cluster.stop()
        throw error
    }
    try? await client.delete(Namespace.self, name: ns)
    try await client.shutdown()
    await cluster.stop()
}

func lease(_ name: String, _ ns: String, labels: [String: String]? = nil, holder: String? = nil) -> Lease {
    var spec = Lease.Spec()
    spec.holderIdentity = holder
    return Lease(metadata: ObjectMeta(name: name, namespace: ns, labels: labels), spec: spec)
}

func pod(_ name: String, _ ns: String, node: String, labels: [String: String]? = nil) -> Pod {
    Pod(metadata: ObjectMeta(name: name, namespace: ns, labels: labels),
        spec: PodSpec(nodeName: node, containers: [Container(name: "app", image: "registry.k8s.io/pause:3.9")]))
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// A thread-safe box for collecting what concurrent code observed.
final class Box<T: Sendable>: Sendable {
    let value: Mutex<T>
    init(_ v: T) { value = Mutex(v) }
    func with<R: Sendable>(_ f: (inout T) -> R) -> R { value.withLock { f(&$0) } }
    var get: T { value.withLock { $0 } }
}
