import Foundation
import KubeClient
import KubeEmulator
import Logging
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
        struct Remediation: Codable, Sendable, Equatable {
            var mode: String?
            var allowedActions: [String]?
            var namespaces: [String]?
        }
        var probes: Probes?
        var remediation: Remediation?
    }
    struct Status: Codable, Sendable, Equatable { var observedGeneration: Int64? }
    var metadata: ObjectMeta
    var spec: Spec?
    var status: Status?
}

/// Runs `body` with a client for a fresh test cluster and a namespace of its own; removes both afterwards
/// (``TestCluster/withNamespace(tls:historyLimit:retry:_:)``).
func withCluster(tls: Bool = true, historyLimit: Int = 10_000, retry: RetryPolicy = RetryPolicy(initialBackoff: .milliseconds(20)),
                 _ body: (TestCluster, KubeClient, String) async throws -> Void) async throws {
    try await TestCluster.withNamespace(tls: tls, historyLimit: historyLimit, retry: retry) { cluster, client in
        try await body(cluster, client, cluster.namespace)
    }
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

/// A thread-safe box for collecting what concurrent code observed.
final class Box<T: Sendable>: Sendable {
    let value: Mutex<T>
    init(_ v: T) { value = Mutex(v) }
    func with<R: Sendable>(_ f: (inout T) -> R) -> R { value.withLock { f(&$0) } }
    var get: T { value.withLock { $0 } }
}

/// A log handler that keeps every line (level and message), for tests that assert what was logged and how loudly.
struct CapturingLogHandler: LogHandler {
    let lines: Box<[(level: Logger.Level, message: String)]>
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.with { $0.append((event.level, "\(event.message)")) }
    }

    /// A logger whose lines land in `lines`.
    static func logger(_ lines: Box<[(level: Logger.Level, message: String)]>) -> Logger {
        Logger(label: "test") { _ in CapturingLogHandler(lines: lines) }
    }
}

/// What a client's observer saw, per outcome.
struct Outcomes: Sendable {
    var succeeded = 0, failed = 0, streamFailed = 0
    var undecodable: [String: Int] = [:]
    var byVerb: [String: Int] = [:]
}

/// A client of `cluster` whose observer counts into `box`.
func observedClient(_ cluster: TestCluster, _ box: Box<Outcomes>, retry: RetryPolicy = RetryPolicy(initialBackoff: .milliseconds(20)),
                    requestTimeout: Duration = .seconds(30), limits: ResponseLimits = ResponseLimits(),
                    logger: Logger = Logger(label: "test")) throws -> KubeClient {
    try KubeClient(config: KubeConfig.load(path: cluster.kubeconfigPath), retryPolicy: retry, requestTimeout: requestTimeout,
                   limits: limits, logger: logger) { verb, outcome in
        box.with { o in
            switch outcome {
            case .succeeded: o.succeeded += 1
            case .failed: o.failed += 1
            case .streamFailed: o.streamFailed += 1
            case .undecodableObject(let resource): o.undecodable[resource, default: 0] += 1
            }
            o.byVerb[verb, default: 0] += 1
        }
    }
}
