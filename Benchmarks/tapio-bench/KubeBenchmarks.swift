import Foundation
import KubeClient
import KubeEmulator
import KubeRuntime

/// Benchmarks for the Kubernetes client and runtime, against the in-process emulator over HTTPS.
let kubeBenchmarks: [Benchmark] = [
    Benchmark(name: "kube.reflector-10k-pods",
              summary: "initial list+sync of 10,000 realistic pods into a ReflectorStore: time and resident memory per object") {
        try await KubeBench.reflector(pods: 10_000)
    },
    Benchmark(name: "kube.watcher-throughput",
              summary: "watch events per second delivered through Watcher (lease updates written into the emulator)") {
        try await KubeBench.watcherThroughput(events: 20_000)
    },
]

enum KubeBench {
    /// A pod shaped like a real Deployment's pod: labels, owner, two containers with resources, env and mounts,
    /// conditions and container statuses (~3.5 KB of JSON).
    static func realisticPod(_ i: Int, namespace: String) -> JSONValue {
        let hash = String(format: "%08x", i &* 2_654_435_761 & 0xffff_ffff)
        let cid = String(repeating: hash, count: 8)
        func container(_ name: String, _ image: String) -> JSONValue {
            .object([
                "name": .string(name), "image": .string(image), "imagePullPolicy": "IfNotPresent",
                "ports": .array([.object(["containerPort": 8080, "protocol": "TCP", "name": "http"])]),
                "env": .array((0..<4).map { .object(["name": .string("ENV_\($0)"), "value": .string("value-\($0)-\(hash)")]) }),
                "resources": .object(["limits": .object(["cpu": "500m", "memory": "256Mi"]),
                                      "requests": .object(["cpu": "100m", "memory": "128Mi"])]),
                "volumeMounts": .array([.object(["name": .string("kube-api-access-\(hash.prefix(5))"), "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true])]),
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            ])
        }
        func status(_ name: String) -> JSONValue {
            .object(["name": .string(name), "ready": true, "restartCount": .int(Int64(i % 3)), "started": true,
                     "image": "registry.example.com/app:1.2.3", "imageID": .string("registry.example.com/app@sha256:\(cid)"),
                     "containerID": .string("containerd://\(cid)"),
                     "state": .object(["running": .object(["startedAt": "2026-11-28T10:00:00Z"])]),
                     "lastState": i % 7 == 0 ? .object(["terminated": .object(["exitCode": 137, "reason": "OOMKilled",
                                                                               "startedAt": "2026-11-28T09:00:00Z",
                                                                               "finishedAt": "2026-11-28T09:59:00Z"])]) : .object([:])])
        }
        return .object([
            "apiVersion": "v1", "kind": "Pod",
            "metadata": .object([
                "name": .string("web-\(hash)-\(i)"), "namespace": .string(namespace),
                "labels": .object(["app": "web", "pod-template-hash": .string(hash), "tier": "frontend", "team": .string("team-\(i % 20)")]),
                "annotations": .object(["kubectl.kubernetes.io/restartedAt": "2026-11-28T09:00:00Z",
                                        "prometheus.io/scrape": "true", "prometheus.io/port": "9090"]),
                "ownerReferences": .array([.object(["apiVersion": "apps/v1", "kind": "ReplicaSet", "name": .string("web-\(hash)"),
                                                    "uid": .string(UUID().uuidString.lowercased()), "controller": true,
                                                    "blockOwnerDeletion": true])]),
            ]),
            "spec": .object([
                "nodeName": .string("node-\(i % 200)"), "restartPolicy": "Always", "serviceAccountName": "web",
                "schedulerName": "default-scheduler", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30,
                "containers": .array([container("app", "registry.example.com/app:1.2.3"), container("sidecar", "registry.example.com/proxy:0.9")]),
                "tolerations": .array([.object(["key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                                                 "tolerationSeconds": 300])]),
            ]),
            "status": .object([
                "phase": "Running", "podIP": .string("10.\(i / 65536 % 256).\(i / 256 % 256).\(i % 256)"), "hostIP": "192.168.1.10",
                "qosClass": "Burstable", "startTime": "2026-11-28T10:00:00Z",
                "conditions": .array(["Initialized", "Ready", "ContainersReady", "PodScheduled"].map {
                    .object(["type": .string($0), "status": "True", "lastTransitionTime": "2026-11-28T10:00:05Z"])
                }),
                "containerStatuses": .array([status("app"), status("sidecar")]),
            ]),
        ])
    }

    static func reflector(pods: Int) async throws -> [Measurement] {
        let emu = try await KubeEmulator.start(tls: true)
        let client = try KubeClient(kubeconfigPath: emu.kubeconfigPath)
        var result: [Measurement] = []
        do {
            try emu.seed([.object(["apiVersion": "v1", "kind": "Namespace", "metadata": .object(["name": "bench"])])])
            try emu.seed((0..<pods).map { realisticPod($0, namespace: "bench") })
            // Warm up the connection pool and code paths on a small list.
            _ = try await client.list(Pod.self, namespace: "bench", options: ListOptions(limit: 10))
            let rssBefore = currentRSSBytes()
            let store = ReflectorStore<Pod>(indexers: ["node": { [$0.spec?.nodeName ?? ""] }])
            let start = nowNanos()
            await withThrowingTaskGroup(of: Void.self) { g in
                g.addTask { try await store.run(Watcher(client: client, Pod.self, namespace: "bench")) }
                await store.waitUntilReady()
                g.cancelAll()
            }
            let elapsed = Double(nowNanos() - start) / 1e9
            let rssAfter = currentRSSBytes()
            precondition(store.count == pods, "store holds \(store.count) pods, expected \(pods)")
            result = [
                Measurement(metric: "initial_sync_seconds", value: elapsed, unit: "s"),
                Measurement(metric: "pods_per_second", value: Double(pods) / elapsed, unit: "pods/s"),
                Measurement(metric: "rss_per_object", value: Double(Int64(rssAfter) - Int64(rssBefore)) / Double(pods), unit: "bytes"),
                Measurement(metric: "pod_json_bytes", value: Double(realisticPod(1, namespace: "bench").jsonData().count), unit: "bytes"),
            ]
            blackHole(store)
        } catch {
            try? await client.shutdown()
            await emu.stop()
            throw error
        }
        try await client.shutdown()
        await emu.stop()
        return result
    }

    static func watcherThroughput(events: Int) async throws -> [Measurement] {
        let emu = try await KubeEmulator.start(tls: true)
        let client = try KubeClient(kubeconfigPath: emu.kubeconfigPath)
        var result: [Measurement] = []
        do {
            let seen = ReflectorStore<Lease>()
            let counter = Counter()
            try await withThrowingTaskGroup(of: Void.self) { g in
                g.addTask {
                    try await seen.run(Watcher(client: client, Lease.self, namespace: "default")) { e in
                        if case .apply = e { counter.increment() }
                    }
                }
                await seen.waitUntilReady()
                let start = nowNanos()
                // Writes go straight into the store so the watch path, not the write path, is measured.
                let batch = 1000
                for b in stride(from: 0, to: events, by: batch) {
                    try emu.seed((b..<min(events, b + batch)).map { i in
                        .object(["apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                 "metadata": .object(["name": .string("l\(i)"), "namespace": "default"]),
                                 "spec": .object(["holderIdentity": .string("holder-\(i)")])])
                    })
                }
                while counter.value < events { try await Task.sleep(for: .milliseconds(1)) }
                let elapsed = Double(nowNanos() - start) / 1e9
                result = [Measurement(metric: "events_per_second", value: Double(events) / elapsed, unit: "events/s"),
                          Measurement(metric: "events", value: Double(events), unit: "count")]
                g.cancelAll()
            }
        } catch {
            try? await client.shutdown()
            await emu.stop()
            throw error
        }
        try await client.shutdown()
        await emu.stop()
        return result
    }
}

import Synchronization

final class Counter: Sendable {
    let v = Atomic<Int>(0)
    func increment() { v.add(1, ordering: .relaxed) }
    var value: Int { v.load(ordering: .relaxed) }
}
