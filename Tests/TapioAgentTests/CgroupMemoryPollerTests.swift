import Foundation
import TapioModel
import TapioNode
import TapioTestSupport
import Testing

@testable import TapioAgent

/// Which limited cgroups the poller samples, on real cgroups in the kubelet's layouts.
@Suite(.serialized, .enabled(if: TestCgroup.isAvailable, "\(TestCgroup.unavailableReason ?? "")"), .timeLimit(.minutes(5)))
struct CgroupMemoryPollerTests {
    static func inode(_ directory: String) -> UInt64? {
        var st = stat()
        return stat(directory, &st) == 0 ? UInt64(st.st_ino) : nil
    }

    /// The real kubelet limits `/kubepods/burstable/pod<uid>` as well as each container: sampling both predicted
    /// every OOM twice, once about an unattributed Cgroup in tapio-system (issue 17, item 4).
    @Test func aContainerIsSampledAndTheKubeletsPodLevelCgroupAboveItIsNot() throws {
        try TestCgroup.with(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20) { container in
            try TestCgroup.with(layout: .podOnly(qos: "burstable"), memoryLimit: 128 << 20) { pod in
                try TestCgroup.with(layout: .custom(["tapio-test.service"]), memoryLimit: 32 << 20) { service in
                    let poller = CgroupMemoryPoller(interval: .seconds(1))
                    poller.pollOnce()
                    let containerID = try #require(Self.inode(container.directory))
                    let podID = try #require(Self.inode(pod.directory))
                    let serviceID = try #require(Self.inode(service.directory))
                    #expect(poller.limited.lookup(containerID)?.path == container.cgroupPath)
                    #expect(poller.limited.lookup(serviceID)?.path == service.cgroupPath, "limited cgroups outside Kubernetes stay subjects")
                    #expect(poller.limited.lookup(podID) == nil, "\(pod.cgroupPath) is the kubelet's pod-level cgroup")
                    // Each sampled cgroup is one event in the poller's queue; the pod-level one is not among them.
                    let batch = poller.queue.takeBatch(max: 100_000) ?? []
                    let ids = Set(batch.compactMap { e -> UInt64? in
                        if case .node(let n) = e, case .cgroupMemory = n.kind { return n.cgroupID }
                        return nil
                    })
                    #expect(ids.contains(containerID) && ids.contains(serviceID) && !ids.contains(podID))
                }
            }
        }
    }

    /// A walk that stops at the cap with cgroups left is counted (exported as a shed stage): the limited cgroups past
    /// it go unsampled, and that must show. A walk under the cap counts nothing.
    @Test func aWalkStoppedAtTheCapIsCounted() throws {
        try TestCgroup.with(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20) { _ in
            let capped = CgroupMemoryPoller(interval: .seconds(1), rewalk: .zero, bucketNanos: 1, maxCgroups: 2)
            capped.pollOnce()
            #expect(capped.truncatedWalkCount == 1)
            let roomy = CgroupMemoryPoller(interval: .seconds(1), rewalk: .zero, bucketNanos: 1)
            roomy.pollOnce()
            #expect(roomy.truncatedWalkCount == 0)
        }
    }

    /// A walk reads a cgroup it already knows through its open files, but still sees a limit that changed or went
    /// away since the last walk (the kubelet resizes a container in place).
    @Test func aLaterWalkSeesAChangedLimitAndARemovedOne() throws {
        try TestCgroup.with(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20) { raised in
            try TestCgroup.with(layout: .cgroupfs(qos: "burstable"), memoryLimit: 32 << 20) { lifted in
                // Every pass walks, and sends every sample (a bucket of 1 ns: each sample opens a new one).
                let poller = CgroupMemoryPoller(interval: .seconds(1), rewalk: .zero, bucketNanos: 1)
                let raisedID = try #require(Self.inode(raised.directory))
                let liftedID = try #require(Self.inode(lifted.directory))
                func limits() -> [UInt64: UInt64] {
                    var out: [UInt64: UInt64] = [:]
                    for e in poller.queue.takeBatch(max: 100_000) ?? [] {
                        if case .node(let n) = e, case .cgroupMemory(let m) = n.kind { out[n.cgroupID] = m.limitBytes }
                    }
                    return out
                }
                poller.pollOnce()
                var seen = limits()
                #expect(seen[raisedID] == 64 << 20 && seen[liftedID] == 32 << 20)
                poller.pollOnce()
                seen = limits()
                #expect(seen[raisedID] == 64 << 20 && seen[liftedID] == 32 << 20, "a known cgroup is sampled again by the next walk")
                try raised.setMemoryLimit(128 << 20)
                try lifted.setMemoryLimit(nil)
                poller.pollOnce()
                seen = limits()
                #expect(seen[raisedID] == 128 << 20)
                #expect(seen[liftedID] == nil)
                #expect(poller.limited.lookup(raisedID)?.limitBytes == 128 << 20)
                #expect(poller.limited.lookup(liftedID) == nil)
            }
        }
    }

    /// Between full walks only the kubelet's subtrees are walked: a new pod's container is picked up at the next
    /// walk, a new system service only at the next full one, and the limited cgroups outside Kubernetes stay
    /// sampled in between (and are dropped once gone).
    @Test func betweenFullWalksOnlyTheKubeletsSubtreeIsWalked() throws {
        try TestCgroup.with(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20) { container in
            let service = try TestCgroup.create(layout: .custom(["tapio-test.service"]), memoryLimit: 32 << 20)
            defer { service.destroy() }
            let poller = CgroupMemoryPoller(interval: .seconds(1), rewalk: .zero, fullRewalk: .seconds(3600), bucketNanos: 1)
            poller.pollOnce()  // the first walk is a full one
            let containerID = try #require(Self.inode(container.directory))
            let serviceID = try #require(Self.inode(service.directory))
            #expect(poller.limited.lookup(containerID) != nil && poller.limited.lookup(serviceID) != nil)

            let newPod = try container.addSiblingPod(memoryLimit: 48 << 20)
            let newService = try TestCgroup.create(layout: .custom(["tapio-test-late.service"]), memoryLimit: 16 << 20)
            defer { newService.destroy() }
            let newPodID = try #require(Self.inode(newPod))
            let newServiceID = try #require(Self.inode(newService.directory))
            _ = poller.queue.takeBatch(max: 100_000)
            poller.pollOnce()  // a partial walk
            #expect(poller.limited.lookup(newPodID)?.limitBytes == 48 << 20, "a new pod's container is found by the next walk")
            #expect(poller.limited.lookup(newServiceID) == nil, "a new service waits for the next full walk")
            #expect(poller.limited.lookup(serviceID)?.limitBytes == 32 << 20, "a known service is carried over")
            let sampled = Set((poller.queue.takeBatch(max: 100_000) ?? []).compactMap { e -> UInt64? in
                if case .node(let n) = e, case .cgroupMemory = n.kind { return n.cgroupID }
                return nil
            })
            #expect(sampled.isSuperset(of: [containerID, serviceID, newPodID]))

            service.destroy()
            poller.pollOnce()
            #expect(poller.limited.lookup(serviceID) == nil, "a carried-over cgroup that went away is dropped")
            #expect(poller.limited.lookup(containerID) != nil)

            let full = CgroupMemoryPoller(interval: .seconds(1), rewalk: .zero, fullRewalk: .zero)
            full.pollOnce()
            full.pollOnce()
            #expect(full.limited.lookup(newServiceID)?.limitBytes == 16 << 20)
        }
    }
    /// Between periodic walks a pod update (``LimitedCgroups/requestWalk()``, which the attributor calls for every
    /// pod it learns of) makes the next pass walk the kubelet's subtrees — once the least gap since the last walk
    /// has passed — so a new container is sampled without waiting for the 30-s period.
    @Test func aPodUpdateBringsTheNextWalkForward() throws {
        try TestCgroup.with(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20) { container in
            let poller = CgroupMemoryPoller(interval: .seconds(1), rewalk: .seconds(3600), fullRewalk: .seconds(3600),
                                            minWalkGap: .zero)
            poller.pollOnce()  // the first pass walks
            let newPod = try container.addSiblingPod(memoryLimit: 48 << 20)
            let newPodID = try #require(Self.inode(newPod))
            poller.pollOnce()
            #expect(poller.limited.lookup(newPodID) == nil, "no walk is due, none was asked for")
            poller.limited.requestWalk()
            poller.pollOnce()
            #expect(poller.limited.lookup(newPodID)?.limitBytes == 48 << 20, "the asked-for walk found the new container")

            // Asked too soon after a walk: deferred, not dropped.
            let gapped = CgroupMemoryPoller(interval: .seconds(1), rewalk: .seconds(3600), fullRewalk: .seconds(3600),
                                            minWalkGap: .seconds(3600))
            gapped.pollOnce()
            let another = try container.addSiblingPod(memoryLimit: 40 << 20)
            let anotherID = try #require(Self.inode(another))
            gapped.limited.requestWalk()
            gapped.pollOnce()
            #expect(gapped.limited.lookup(anotherID) == nil, "within the gap the request waits")
            #expect(gapped.hasDeferredWalk, "the request is remembered for when the gap has passed")
        }
    }

    /// An idle container's unchanged samples are held back (the engine's bucket here is longer than the test, so
    /// only a change — or the start of a minute — sends one), and a change is sent at the next pass, carrying the
    /// count of samples held before it.
    @Test func anIdleContainersUnchangedSamplesAreHeldAndAChangeIsSent() throws {
        try TestCgroup.with(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20) { container in
            let sleeper = try TestProcess.sleep(seconds: 600)
            defer { sleeper.kill() }
            try container.add(pid: sleeper.pid)
            let id = try #require(Self.inode(container.directory))
            let poller = CgroupMemoryPoller(interval: .seconds(1), rewalk: .seconds(3600), fullRewalk: .seconds(3600),
                                            bucketNanos: .max)
            func sent() -> [NodeEvent.CgroupMemory] {
                (poller.queue.takeBatch(max: 100_000) ?? []).compactMap { e in
                    if case .node(let n) = e, n.cgroupID == id, case .cgroupMemory(let m) = n.kind { return m }
                    return nil
                }
            }
            poller.pollOnce()
            let first = sent()
            #expect(first.count == 1 && first.first?.unchangedBefore == 0, "the first sample is sent: \(first)")
            let before = try #require(first.first?.usageBytes)
            for _ in 0..<6 { poller.pollOnce() }
            let idle = sent()
            // Six passes a few milliseconds apart: a new minute can begin between two of them, at most once.
            #expect(idle.count <= 1, "unchanged samples of an idle container are held: \(idle.count) of 6 sent")

            let hog = try TestProcess.allocating(bytes: 16 << 20)
            defer { hog.kill() }
            try container.add(pid: hog.pid)
            try hog.release()
            let reader = CgroupMemoryReader(directory: container.directory, version: try #require(poller.mount).version)
            var grown = false
            for _ in 0..<600 where !grown {  // until the allocation shows in the cgroup's usage (at most a minute)
                grown = (try reader.sample()?.usageBytes ?? 0) >= before + (16 << 20)
                if !grown { usleep(100_000) }
            }
            try #require(grown, "the allocating process did not grow the cgroup")
            poller.pollOnce()
            let changed = sent()
            #expect(changed.contains { $0.usageBytes >= before + (16 << 20) }, "a change is sent at the next pass: \(changed)")
        }
    }
}
