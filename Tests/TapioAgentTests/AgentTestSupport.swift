import Foundation
import KubeClient
import Synchronization
import TapioAgent
import TapioCorrelation
import TapioKube
import TapioModel
import TapioNode
import TapioSinks
import TapioTestSupport
import Testing

/// Attributes nothing: the pipeline tests drive cluster events only.
struct NoAttribution: Attributor {
    func attribute(_ event: NodeEvent) -> (subject: Subject?, context: SubjectContext?) { (nil, nil) }
    func observe(_ event: ClusterEvent) {}
}

/// Keeps every update the pipeline hands its sinks.
final class RecordingSink: InsightSink {
    let updates = Mutex<[InsightUpdate]>([])
    func emit(_ u: [InsightUpdate]) async { updates.withLock { $0 += u } }
    func changes(of pod: String) -> [InsightChange] {
        updates.withLock { $0.filter { $0.identity.subject.pod?.name == pod }.map(\.change) }
    }
}

/// A source the test drives: events pushed by the test reach the agent's pipeline like kernel events do.
final class ScriptedSource: EventSource {
    let name = "scripted"
    let queue = BoundedQueue<TapioEvent>(capacity: 1024)
    func events() -> BoundedQueue<TapioEvent> { queue }
    func health() -> SourceHealth { SourceHealth(state: .running) }
    func push(_ e: NodeEvent) { queue.push(.node(e)) }
}

func nowNanos() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1e9) }

/// A namespace and a pod bound to `node`, with one running container whose runtime id is `containerID`.
func createPod(_ client: KubeClient, namespace: String, name: String, node: String, containerID: String,
               memoryLimit: String = "64Mi", labels: [String: String] = [:]) async throws -> Pod {
    _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: namespace)))
    var pod = Pod(metadata: KubeObjectMeta(name: name, namespace: namespace, labels: labels),
                  spec: PodSpec(nodeName: node, containers: [
                      Container(name: "app", image: "example/app:1",
                                resources: ResourceRequirements(limits: ["memory": memoryLimit], requests: ["memory": "32Mi"])),
                  ]))
    pod = try await client.create(pod)
    var status = PodStatus(phase: "Running")
    var cs = ContainerStatus(name: "app", containerID: "containerd://\(containerID)", ready: true, restartCount: 0)
    cs.image = "example/app:1"
    status.containerStatuses = [cs]
    pod.status = status
    return try await client.updateStatus(pod)
}

func randomNodeName() -> String { "node-" + String(UUID().uuidString.lowercased().prefix(8)) }

/// Makes `node` a Node of the test's cluster and registers its removal, with what an agent for it leaves behind in
/// tapio-system (its heartbeat Lease, the Insights about this machine's own processes it writes there), so a shared
/// real cluster is left as it was found. The Node object matters on a real cluster: its pod garbage collector
/// deletes pods bound to a node that does not exist about 40 s after they appear, and with them what the agent
/// knows about them. `client` must still work when the cluster's clean-ups run.
func registerTestNode(at cluster: TestCluster, client: KubeClient, node: String) async throws {
    cluster.atCleanup {
        try? await client.deleteRaw(ResourceType(Node.self), namespace: nil, name: node)
        try? await client.deleteRaw(ResourceType(Lease.self), namespace: "tapio-system", name: HeartbeatAnnotations.leaseName(node: node))
        let mine = ListOptions(labelSelector: "\(HeartbeatAnnotations.nodeLabel)=\(node)")
        for insight in (try? await client.list(InsightObject.self, namespace: "tapio-system", options: mine).items) ?? [] {
            try? await client.deleteRaw(ResourceType(InsightObject.self), namespace: "tapio-system", name: insight.metadata.name ?? "")
        }
    }
    _ = try await client.create(Node(metadata: KubeObjectMeta(name: node)))
}

/// True for the first caller only (an idempotent stop of a test's fixtures).
final class Once: Sendable {
    private let done = Mutex(false)
    func first() -> Bool { done.withLock { d in defer { d = true }; return !d } }
}

/// The /metrics port an in-process agent bound (set by its `onReady`), and the wait for its `/readyz`: a test
/// starts its scenario once the agent has listed every watch, not after a fixed pause.
final class AgentPort: Sendable {
    private let port = Mutex<Int?>(nil)

    func set(_ p: Int) { port.withLock { $0 = p } }
    var value: Int? { port.withLock { $0 } }

    /// Until `/readyz` answers 200 (every watch listed, every call allowed); fails the test naming the last answer.
    func waitUntilReady(timeout: Duration = .seconds(60), sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var last = "the agent has not bound its port"
        let ok = await eventually(timeout: timeout, every: .milliseconds(100)) { () -> Bool? in
            guard let p = port.withLock({ $0 }) else { return nil }
            guard let (code, body) = try? await Loopback.get(port: p, path: "/readyz") else { return nil }
            last = "\(code) \(body.trimmingCharacters(in: .whitespacesAndNewlines))"
            return code == 200 ? true : nil
        }
        try #require(ok == true, "the agent was not ready within \(timeout): \(last)", sourceLocation: sourceLocation)
    }
}
