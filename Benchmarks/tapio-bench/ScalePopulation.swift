import Foundation
import KubeClient
import Synchronization
import TapioKube
import TapioModel

/// The simulated cluster of the scale benchmark: N Node objects and `podsPerNode` running pods on each (created once
/// and reused by later runs against the same API server), and the kubelet's side of incidents — what a kubelet writes
/// when a container is OOM-killed or fails its readiness probe.
struct ScalePopulation: Sendable {
    let client: KubeClient
    let nodes: Int
    let podsPerNode: Int
    let namespace: String

    static func nodeName(_ i: Int) -> String { "scale-node-\(i)" }
    static func podName(node: Int, pod: Int) -> String { "app-\(node)-\(pod)" }
    static let pods = ResourceType(Pod.self)

    /// Creates what is missing, `parallel` requests at a time; returns how many objects were created.
    func create(parallel: Int = 32) async throws -> Int {
        _ = try? await client.create(Namespace(metadata: ObjectMeta(name: namespace)))
        _ = try? await client.create(Namespace(metadata: ObjectMeta(name: "tapio-system")))
        // One policy for every node, as most clusters have: the agents apply it, the operator reports on it.
        _ = try? await client.create(PolicyObject(metadata: ObjectMeta(name: "tapio-scale"), spec: TapioPolicySpec()))
        let existingNodes = Set(try await client.listAll(Node.self).items.compactMap(\.metadata.name))
        var options = ListOptions()
        options.limit = 5000
        let existingPods = Set(try await client.listAll(Pod.self, namespace: namespace, options: options).items.compactMap(\.metadata.name))
        var work: [@Sendable () async throws -> Void] = []
        for n in 0..<nodes where !existingNodes.contains(Self.nodeName(n)) {
            work.append { [client] in
                _ = try await client.create(Node(metadata: ObjectMeta(name: Self.nodeName(n), labels: ["tapio-scale": "true"])))
            }
        }
        for n in 0..<nodes {
            for p in 0..<podsPerNode where !existingPods.contains(Self.podName(node: n, pod: p)) {
                work.append { try await self.createPod(node: n, pod: p) }
            }
        }
        let count = work.count
        try await Self.run(work, parallel: parallel)
        return count
    }

    func createPod(node: Int, pod: Int) async throws {
        let name = Self.podName(node: node, pod: pod)
        let body: [String: Any] = [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": name, "namespace": namespace, "labels": ["app": "app-\(pod)"]],
            "spec": ["nodeName": Self.nodeName(node), "containers": [[
                "name": "app", "image": "example/app:1",
                "resources": ["limits": ["memory": "256Mi"], "requests": ["memory": "128Mi"]],
            ]]],
        ]
        _ = try await client.createRaw(Self.pods, namespace: namespace, body: try JSONSerialization.data(withJSONObject: body))
        try await setStatus(name, restarts: 0, ready: true, lastState: nil)
    }

    /// The container's id: stable per pod and restart, 64 hex characters like containerd's.
    static func containerID(_ pod: String, restarts: Int) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in "\(pod)/\(restarts)".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: String(repeating: "0", count: 16 - hex.count) + hex, count: 4)
    }

    func setStatus(_ pod: String, restarts: Int, ready: Bool, lastState: [String: Any]?) async throws {
        let now = Date().formatted(.iso8601)
        var container: [String: Any] = [
            "name": "app", "image": "example/app:1", "imageID": "example/app@sha256:0",
            "containerID": "containerd://" + Self.containerID(pod, restarts: restarts),
            "ready": ready, "started": true, "restartCount": restarts,
            "state": ["running": ["startedAt": now]],
        ]
        if let lastState { container["lastState"] = lastState }
        let status: [String: Any] = ["status": ["phase": "Running", "containerStatuses": [container]]]
        _ = try await client.patchRaw(Self.pods, namespace: namespace, name: pod, subresource: "status",
                                      patch: try JSONSerialization.data(withJSONObject: status), patchType: .merge)
    }

    /// What the kubelet writes after an OOM kill: the container restarted, `lastState.terminated` says OOMKilled.
    func oomKill(_ pod: String, restarts: Int) async throws {
        let now = Date().formatted(.iso8601)
        try await setStatus(pod, restarts: restarts, ready: true, lastState: ["terminated": [
            "exitCode": 137, "reason": "OOMKilled", "startedAt": now, "finishedAt": now,
            "containerID": "containerd://" + Self.containerID(pod, restarts: restarts - 1),
        ]])
    }

    /// What the kubelet writes when a readiness probe fails: the container turns not ready, and an `Unhealthy` Event.
    func readinessFailure(_ pod: String, node: Int, restarts: Int) async throws {
        try await setStatus(pod, restarts: restarts, ready: false, lastState: nil)
        let now = Date()
        let event: [String: Any] = [
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": ["name": "\(pod).\(UInt64(now.timeIntervalSince1970 * 1e6))", "namespace": namespace],
            "eventTime": now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            "reportingController": "kubelet", "reportingInstance": Self.nodeName(node),
            "action": "Probe", "reason": "Unhealthy", "type": "Warning",
            "note": "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "regarding": ["kind": "Pod", "apiVersion": "v1", "namespace": namespace, "name": pod, "fieldPath": "spec.containers{app}"],
        ]
        _ = try await client.createRaw(ResourceType(Event.self), namespace: namespace,
                                       body: try JSONSerialization.data(withJSONObject: event))
    }

    /// Runs the closures, at most `parallel` at once; the first error ends the run.
    static func run(_ work: [@Sendable () async throws -> Void], parallel: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            while next < min(parallel, work.count) {
                group.addTask(operation: work[next])
                next += 1
            }
            while try await group.next() != nil {
                if next < work.count {
                    group.addTask(operation: work[next])
                    next += 1
                }
            }
        }
    }
}
