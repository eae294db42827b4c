import Foundation
import KubeClient
import Logging
import TapioAgent
import TapioKube
import TapioModel
import TapioNode
import TapioTestSupport
import Testing

/// The sniffer's pod watch against an API server reached through a kubeconfig (the emulator, or
/// TAPIO_TEST_KUBECONFIG).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct KubeSnifferTests {
    static func containerID() -> String {
        (UUID().uuidString + UUID().uuidString).replacingOccurrences(of: "-", with: "").lowercased()
    }

    /// A sniffer for a Node of the test's own, and an attributor whose directory it feeds; removed, with the
    /// namespace and the Node, whatever the test did (newest first: the sniffer stops, then the namespace and the
    /// Node go, then the client).
    struct Fixture {
        let cluster: TestCluster
        let client: KubeClient
        let node: String
        let sniffer: KubeSniffer
        let attributor = NodeAttributor(limited: nil, mount: nil)
    }

    func withSniffer(capacity: Int = 16_384, _ body: (Fixture) async throws -> Void) async throws {
        try await TestCluster.with { cluster in
            let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
            let node = randomNodeName()
            let sniffer = KubeSniffer(client: client, nodeName: node, capacity: capacity, logger: Logger(label: "test"))
            cluster.atCleanup { try? await client.shutdown() }
            try await registerTestNode(at: cluster, client: client, node: node)
            cluster.atCleanup {
                try? await client.deleteRaw(ResourceType(Namespace.self), namespace: nil, name: cluster.namespace)
            }
            cluster.atCleanup { sniffer.stop() }
            try await body(Fixture(cluster: cluster, client: client, node: node, sniffer: sniffer))
        }
    }

    /// Under an event storm the sniffer's queue sheds its oldest events (counted). The pod directory that pins kernel
    /// events on pods used to learn pods from those events only, so a shed deletion kept a pod in it for the agent's
    /// life. It follows the watch itself now: here nothing drains a one-event queue, and the directory still learns
    /// every pod and forgets every deleted one.
    @Test func thePodDirectoryFollowsTheWatchWhateverTheQueueSheds() async throws {
        try await withSniffer(capacity: 1) { f in
            let (cluster, client, node, sniffer, attributor) = (f.cluster, f.client, f.node, f.sniffer, f.attributor)
            attributor.followPods(of: sniffer)
            let queue = sniffer.events()
            var pods: [(Pod, String)] = []
            for i in 0..<3 {
                let id = Self.containerID()
                pods.append((try await createPod(client, namespace: cluster.namespace, name: "storm-\(i)", node: node,
                                                 containerID: id), id))
            }
            let learned = await eventually(timeout: .seconds(60)) {
                pods.allSatisfy { attributor.directory.container(id: $0.1)?.pod.name == $0.0.metadata.name }
            }
            #expect(learned, "the directory knows \(attributor.directory.podCount) of the 3 pods")
            #expect(queue.shed > 0, "the one-event queue shed nothing: the test did not test a storm")

            for (pod, _) in pods {
                try await client.deleteRaw(ResourceType(Pod.self), namespace: cluster.namespace,
                                           name: pod.metadata.name ?? "", options: WriteOptions(gracePeriodSeconds: 0))
            }
            let forgotten = await eventually(timeout: .seconds(60)) { attributor.directory.podCount == 0 }
            #expect(forgotten, "\(attributor.directory.podCount) deleted pods are still in the directory")
            // The deletions the one-event queue shed are in the deletion log beside it, marked as perhaps shed (each
            // once its own push has shed): the pipeline may take them.
            let names = Set(pods.compactMap(\.0.metadata.name))
            var taken = Set<String>()
            let logged = await eventually(timeout: .seconds(60)) {
                taken.formUnion(sniffer.deletions.take(recordedBy: .max, now: MonotonicClock.coarseNanos()).map(\.name))
                return taken == names
            }
            #expect(logged, "taken from the deletion log: \(taken.sorted())")
            // An update still queued when its pod went away reaches the attributor after the deletion: it must not
            // bring the pod back.
            attributor.observe(ClusterEvent(timestampNanos: 1, kind: .podUpdated(PodConversion.podInfo(pods[0].0))))
            #expect(attributor.directory.podCount == 0, "a late queued update brought a deleted pod back")
        }
    }

    /// A directory fed after the watch has listed starts with what the list had: the queued copies that reach
    /// `observe` no longer write a directory fed this way.
    @Test func aDirectoryFedLateStartsWithThePodsAlreadyListed() async throws {
        try await withSniffer { f in
            let (cluster, client, node, sniffer, attributor) = (f.cluster, f.client, f.node, f.sniffer, f.attributor)
            let id = Self.containerID()
            _ = try await createPod(client, namespace: cluster.namespace, name: "early-0", node: node, containerID: id)
            _ = sniffer.events()
            let listed = await eventually(timeout: .seconds(60)) { sniffer.isSynced && sniffer.pods.list().count == 1 }
            try #require(listed, "the sniffer never listed the pod")
            attributor.followPods(of: sniffer)
            #expect(attributor.directory.container(id: id)?.pod.name == "early-0")
        }
    }

    /// A pod deleted while the sniffer could not watch, and whose deletion the server no longer remembers, is only
    /// found gone at the next list: the relist forgets it in the directory too, not only in the sniffer's own map.
    @Test func aPodFoundGoneAtARelistLeavesTheDirectory() async throws {
        try await withSniffer { f in
            guard let emu = f.cluster.requireEmulator() else { return }
            let (cluster, client, node, sniffer, attributor) = (f.cluster, f.client, f.node, f.sniffer, f.attributor)
            attributor.followPods(of: sniffer)
            _ = sniffer.events()
            let id = Self.containerID()
            _ = try await createPod(client, namespace: cluster.namespace, name: "gone-0", node: node, containerID: id)
            let known = await eventually(timeout: .seconds(60)) { attributor.directory.container(id: id) != nil }
            try #require(known, "the directory never learned the pod")
            // Watches end at once from here; the deletion happens unwatched and is then forgotten by the server.
            emu.misbehave(.closeWatchesAtOnce)
            emu.dropWatches()
            try await client.deleteRaw(ResourceType(Pod.self), namespace: cluster.namespace, name: "gone-0",
                                       options: WriteOptions(gracePeriodSeconds: 0))
            emu.compact()
            emu.behave()
            // The resumed watch is told 410 Expired; the relist does not have the pod.
            let forgotten = await eventually(timeout: .seconds(60)) { attributor.directory.podCount == 0 }
            #expect(forgotten, "a pod found gone at a relist is still in the directory")
            #expect(sniffer.deletions.waiting.map(\.name) == ["gone-0"], "found gone: logged as deleted")
        }
    }
}
