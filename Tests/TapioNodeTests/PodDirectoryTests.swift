import Testing
import TapioModel
@testable import TapioNode

func podInfo(uid: String, name: String, containers: [(String, String?)], owner: OwnerRef? = nil) -> PodInfo {
    PodInfo(pod: PodRef(namespace: "shop", name: name, uid: uid), node: "node-1", owner: owner, labels: [:], phase: "Running",
            containers: containers.map {
                ContainerInfo(name: $0.0, containerID: $0.1, image: "img", restartCount: 0, ready: true,
                              memoryRequestBytes: nil, memoryLimitBytes: nil, lastTermination: nil,
                              currentTermination: nil, waitingReason: nil)
            })
}

@Suite(.timeLimit(.minutes(2))) struct PodDirectoryTests {
    let cid = String(repeating: "ab", count: 32)

    @Test func aContainerIDWithARuntimePrefixJoinsToItsPod() {
        let d = PodDirectory()
        d.upsert(podInfo(uid: "u1", name: "web-7d9f8c6b5-x2x4z", containers: [("app", "containerd://\(cid)")],
                         owner: OwnerRef(kind: "ReplicaSet", name: "web-7d9f8c6b5")))
        let c = try! #require(d.container(id: cid))
        #expect(c.pod.name == "web-7d9f8c6b5-x2x4z")
        #expect(c.containerName == "app")
        #expect(c.owner == OwnerRef(kind: "Deployment", name: "web"))
        #expect(c.node == "node-1")
    }

    @Test func replicaSetsWithoutATemplateHashSuffixStayReplicaSets() {
        #expect(PodDirectory.resolveOwner(OwnerRef(kind: "ReplicaSet", name: "standalone")) == OwnerRef(kind: "ReplicaSet", name: "standalone"))
        #expect(PodDirectory.resolveOwner(OwnerRef(kind: "ReplicaSet", name: "web-abcde")) == OwnerRef(kind: "ReplicaSet", name: "web-abcde"))
        #expect(PodDirectory.resolveOwner(OwnerRef(kind: "StatefulSet", name: "db")) == OwnerRef(kind: "StatefulSet", name: "db"))
        #expect(PodDirectory.resolveOwner(OwnerRef(kind: "ReplicaSet", name: "api-5b8c9d7f4")) == OwnerRef(kind: "Deployment", name: "api"))
    }

    @Test func anUpdateReplacesOldContainerIDsAndDeleteForgetsThePod() {
        let d = PodDirectory()
        let old = String(repeating: "cd", count: 32)
        d.upsert(podInfo(uid: "u1", name: "p", containers: [("app", old)]))
        let g1 = d.generation
        d.upsert(podInfo(uid: "u1", name: "p", containers: [("app", cid)]))
        #expect(d.generation > g1)
        #expect(d.container(id: old) == nil)
        #expect(d.container(id: cid)?.pod.uid == "u1")
        d.remove(PodRef(namespace: "shop", name: "p", uid: "u1"))
        #expect(d.container(id: cid) == nil)
        #expect(d.pod(uid: "u1") == nil)
    }
}
