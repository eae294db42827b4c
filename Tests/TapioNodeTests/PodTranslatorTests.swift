import Foundation
import Testing
import TapioModel
@testable import TapioNode
import TapioTestSupport

@Suite(.timeLimit(.minutes(2))) struct PodTranslatorTests {
    let clock = ManualClock()

    @Test func aPidResolvesThroughProcToItsCgroupPodAndContainerAndTheSecondLookupIsAHit() throws {
        let host = try FakeHost()
        let path = "/kubepods/burstable/pod\(sampleUID)/\(sampleContainerID(1))"
        let inode = try host.makeCgroup(path)
        try host.setProcess(42, cgroup: path)
        let t = host.translator(clock: clock)
        let a = try #require(t.attribution(pid: 42))
        #expect(a.cgroupPath == path)
        #expect(a.cgroupID == inode)
        #expect(a.podUID == sampleUID)
        #expect(a.qos == .burstable)
        #expect(a.containerID == sampleContainerID(1))
        #expect(a.pod == nil)
        let again = try #require(t.attribution(pid: 42))
        #expect(again === a)
        #expect(t.stats.hits == 1)
        #expect(t.stats.misses == 1)
        // The cgroup id was cached by the pid lookup and shares the instance.
        #expect(t.attribution(cgroupID: inode) === a)
    }

    @Test func entriesExpireAfterTheTTLSoAReusedPidIsReRead() throws {
        let host = try FakeHost()
        try host.setProcess(7, cgroup: "/system.slice/a.service")
        let t = host.translator(clock: clock, withMount: false) { $0.ttl = .seconds(30) }
        #expect(t.attribution(pid: 7)?.cgroupPath == "/system.slice/a.service")
        try host.setProcess(7, cgroup: "/system.slice/b.service")
        clock.advance(.seconds(29))
        #expect(t.attribution(pid: 7)?.cgroupPath == "/system.slice/a.service")
        clock.advance(.seconds(2))
        #expect(t.attribution(pid: 7)?.cgroupPath == "/system.slice/b.service")
        #expect(t.stats.expirations == 1)
    }

    /// Issue 17, item 7: entries of pids nobody looks up again (the process ended, its exit missed or never
    /// probed) stayed until the 100,000-entry bound pushed them out: the agent's memory grew with a host's churn.
    @Test func entriesNobodyLooksUpAgainAreSweptOnceTheyOutliveTheTTL() throws {
        let host = try FakeHost()
        for pid in Int32(100)..<Int32(150) { try host.setProcess(pid, cgroup: "/system.slice/job\(pid).service") }
        let t = host.translator(clock: clock, withMount: false) { $0.ttl = .seconds(30) }
        for pid in Int32(100)..<Int32(150) { #expect(t.attribution(pid: pid) != nil) }
        #expect(t.stats.entries == 50)
        clock.advance(.seconds(31))
        try host.setProcess(7, cgroup: "/system.slice/new.service")
        #expect(t.attribution(pid: 7) != nil)  // a store: the sweep runs once per TTL
        #expect(t.stats.entries == 1, "stale entries left: \(t.stats.entries)")
        #expect(t.stats.swept == 50)
    }

    @Test func invalidatingAnExitedPidForcesAFreshRead() throws {
        let host = try FakeHost()
        try host.setProcess(9, cgroup: "/a")
        let t = host.translator(clock: clock, withMount: false)
        #expect(t.attribution(pid: 9)?.cgroupPath == "/a")
        try host.setProcess(9, cgroup: "/b")
        t.observe(NodeEvent(timestampNanos: 0, pid: 9, cgroupID: 0, comm: "x",
                            kind: .processExit(.init(exitCode: 0, signal: 0, peakRSSBytes: 0))))
        #expect(t.stats.invalidations == 1)
        #expect(t.attribution(pid: 9)?.cgroupPath == "/b")
    }

    @Test func failedLookupsAreRememberedForTheNegativeTTLOnly() throws {
        let host = try FakeHost()
        let t = host.translator(clock: clock, withMount: false) { $0.negativeTTL = .seconds(2) }
        #expect(t.attribution(pid: 11) == nil)
        try host.setProcess(11, cgroup: "/late")
        #expect(t.attribution(pid: 11) == nil)
        #expect(t.stats.negativeHits == 1)
        clock.advance(.seconds(3))
        #expect(t.attribution(pid: 11)?.cgroupPath == "/late")
    }

    @Test func theEntryBoundEvictsTheLeastRecentlyUsedAndCountsEvictions() throws {
        let host = try FakeHost()
        for pid in Int32(1)...5 { try host.setProcess(pid, cgroup: "/p\(pid)") }
        let t = host.translator(clock: clock, withMount: false) { $0.maximumEntries = 3 }
        for pid in Int32(1)...3 { _ = t.attribution(pid: pid) }
        _ = t.attribution(pid: 1) // 1 is now the most recent; 2 is the coldest
        _ = t.attribution(pid: 4)
        _ = t.attribution(pid: 5)
        #expect(t.stats.entries == 3)
        #expect(t.stats.evictions == 2)
        let hitsBefore = t.stats.hits
        _ = t.attribution(pid: 1)
        #expect(t.stats.hits == hitsBefore + 1)
        let missesBefore = t.stats.misses
        _ = t.attribution(pid: 2)
        #expect(t.stats.misses == missesBefore + 1)
    }

    @Test func theByteBoundLimitsEntriesWhateverTheEntryBound() throws {
        let host = try FakeHost()
        for pid in Int32(1)...20 { try host.setProcess(pid, cgroup: "/system.slice/some-long-service-name-\(pid).service") }
        let probe = host.translator(clock: clock, withMount: false)
        let one = PodTranslator.cost(of: try #require(probe.attribution(pid: 1)))
        let t = host.translator(clock: clock, withMount: false) { $0.maximumBytes = one * 4 + one / 2 }
        for pid in Int32(1)...20 { _ = t.attribution(pid: pid) }
        #expect(t.stats.entries == 4)
        #expect(t.stats.estimatedBytes <= one * 4 + one / 2)
        #expect(t.stats.evictions == 16)
    }

    @Test func aCgroupIDResolvesByWalkingTheHierarchyAndSurvivesTheCgroupsRemoval() throws {
        let host = try FakeHost()
        let path = "/kubepods/besteffort/pod\(sampleUID)/\(sampleContainerID(2))"
        let inode = try host.makeCgroup(path)
        let index = CgroupIndex(mount: host.mount, retention: .seconds(60), minimumRewalkInterval: .zero, clock: clock.read)
        #expect(index.path(forID: inode) == path)
        try host.removeCgroup(path)
        index.refresh()
        #expect(index.path(forID: inode) == path)
        clock.advance(.seconds(61))
        index.refresh()
        #expect(index.path(forID: inode) == nil)
    }

    /// A hierarchy larger than the index may hold is walked only up to the cap, and the walk says it stopped.
    @Test func aWalkStopsAtTheCap() throws {
        let host = try FakeHost()
        for i in 0..<30 { _ = try host.makeCgroup("/kubepods/besteffort/pod\(sampleUID)/c\(i)") }
        let small = CgroupIndex(mount: host.mount, minimumRewalkInterval: .zero, maximumEntries: 10, clock: clock.read)
        small.refresh()
        #expect(small.truncatedWalkCount == 1)
        #expect(small.entries.ids == 10 && small.entries.paths == 10)
        let large = CgroupIndex(mount: host.mount, minimumRewalkInterval: .zero, clock: clock.read)
        large.refresh()
        #expect(large.truncatedWalkCount == 0)
        #expect(large.entries.ids >= 33, "the 30 cgroups and the directories above them")
    }

    /// A walk cut at the cap still knows the pods: the kubelet's tree is walked first, level by level, so neither a
    /// service making cgroups without end nor a pod nesting them deep costs another pod's containers their
    /// attribution.
    @Test func aWalkCutAtTheCapStillKnowsThePodsContainers() throws {
        let host = try FakeHost()
        for i in 0..<40 { _ = try host.makeCgroup("/system.slice/runaway.service/x\(i)") }
        var deep = "/kubepods/burstable/pod\(sampleUID)/\(sampleContainerID(3))"
        for i in 0..<40 { deep += "/n\(i)" }
        _ = try host.makeCgroup(deep)
        for i in 0..<40 { _ = try host.makeCgroup("/user.slice/u\(i)") }
        let container = try host.makeCgroup("/kubepods/besteffort/pod\(sampleUID)/\(sampleContainerID(4))")
        // The root, its three children, two QoS classes, two pods and two containers are 10 directories; the cap
        // leaves room for two more.
        let index = CgroupIndex(mount: host.mount, minimumRewalkInterval: .zero, maximumEntries: 12, clock: clock.read)
        index.refresh()
        #expect(index.truncatedWalkCount == 1)
        #expect(index.knownPath(forID: container) == "/kubepods/besteffort/pod\(sampleUID)/\(sampleContainerID(4))")
        // The cut fell inside the pod's own nest, below every container.
        #expect(index.entries.ids == 12)
    }

    /// kind and a kubelet with `--cgroup-root` nest the kubelet's tree below the root; it still comes first.
    @Test func aNestedKubeletTreeComesFirstToo() throws {
        let host = try FakeHost()
        for i in 0..<40 { _ = try host.makeCgroup("/system.slice/runaway.service/x\(i)") }
        let path = "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod\(sampleUID).slice/cri-containerd-\(sampleContainerID(5)).scope"
        let container = try host.makeCgroup(path)
        // The root, its two children, and the five levels down to the container: 8.
        let index = CgroupIndex(mount: host.mount, minimumRewalkInterval: .zero, maximumEntries: 9, clock: clock.read)
        index.refresh()
        #expect(index.truncatedWalkCount == 1)
        #expect(index.knownPath(forID: container) == path)
    }

    @Test func anUnknownCgroupIDIsNilAndNegativelyCached() throws {
        let host = try FakeHost()
        let t = host.translator(clock: clock)
        #expect(t.attribution(cgroupID: 123_456_789_012) == nil)
        #expect(t.attribution(cgroupID: 123_456_789_012) == nil)
        #expect(t.stats.negativeHits == 1)
    }

    @Test func podsLearnedAfterCachingAreJoinedOnTheNextHit() throws {
        let host = try FakeHost()
        let cid = sampleContainerID(3)
        try host.setProcess(50, cgroup: "/kubepods/pod\(sampleUID)/\(cid)")
        let directory = PodDirectory()
        let t = host.translator(clock: clock, directory: directory, withMount: false)
        #expect(t.attribution(pid: 50)?.pod == nil)
        directory.upsert(podInfo(uid: sampleUID, name: "web-7d9f8c6b5-abcde", containers: [("app", "containerd://\(cid)")],
                                 owner: OwnerRef(kind: "ReplicaSet", name: "web-7d9f8c6b5")))
        let a = try #require(t.attribution(pid: 50))
        #expect(a.pod?.name == "web-7d9f8c6b5-abcde")
        #expect(a.containerName == "app")
        #expect(a.owner == OwnerRef(kind: "Deployment", name: "web"))
        #expect(a.node == "node-1")
        #expect(a.qos == .guaranteed)
    }

    @Test func aPodLevelCgroupJoinsToItsPodWithoutAContainer() throws {
        let host = try FakeHost()
        try host.setProcess(51, cgroup: "/kubepods/burstable/pod\(sampleUID)")
        let directory = PodDirectory()
        directory.upsert(podInfo(uid: sampleUID, name: "db-0", containers: [("db", sampleContainerID(4))],
                                 owner: OwnerRef(kind: "StatefulSet", name: "db")))
        let a = try #require(host.translator(clock: clock, directory: directory, withMount: false).attribution(pid: 51))
        #expect(a.pod?.name == "db-0")
        #expect(a.containerName == nil)
        #expect(a.containerID == nil)
        #expect(a.owner == OwnerRef(kind: "StatefulSet", name: "db"))
    }

    @Test func aForkedChildInheritsItsParentsEntry() throws {
        let host = try FakeHost()
        try host.setProcess(60, cgroup: "/x")
        let t = host.translator(clock: clock, withMount: false)
        let parent = try #require(t.attribution(pid: 60))
        t.observe(NodeEvent(timestampNanos: 0, pid: 60, cgroupID: 0, comm: "sh", kind: .processFork(childPID: 61)))
        #expect(t.attribution(pid: 61) === parent)
        #expect(t.stats.misses == 1)
    }

    @Test func aScanWarmsTheCacheForEveryProcess() throws {
        let host = try FakeHost()
        for pid in Int32(100)..<110 { try host.setProcess(pid, cgroup: "/s/\(pid)") }
        try FileManager.default.createDirectory(atPath: host.proc + "/self", withIntermediateDirectories: true)
        let t = host.translator(clock: clock, withMount: false)
        #expect(t.scanOnce() == 10)
        #expect(t.stats.scans == 1)
        #expect(t.stats.lastScanProcesses == 10)
        let missesAfterScan = t.stats.misses
        for pid in Int32(100)..<110 { #expect(t.attribution(pid: pid)?.cgroupPath == "/s/\(pid)") }
        #expect(t.stats.misses == missesAfterScan)
        #expect(t.stats.hits == 10)
    }

    @Test func runReturnsWhenCancelled() async throws {
        let host = try FakeHost()
        let t = host.translator(clock: clock, withMount: false) { $0.scanInterval = .milliseconds(10) }
        let task = Task { try await t.run() }
        // Cancelled once it has scanned (a task cancelled before it starts never scans, and passes nothing).
        #expect(await eventually { t.stats.scans >= 1 })
        task.cancel()
        try await task.value
    }
}

@Suite(.timeLimit(.minutes(2))) struct LRUTableTests {
    @Test func recencyOrderFollowsTouchesAndInsertsAndRemovedSlotsAreReused() {
        var lru = LRUTable<Int>(maximumEntries: 3, maximumBytes: .max)
        lru.insert(1, 10, stamp: 0, tag: 0, cost: 1)
        lru.insert(2, 20, stamp: 0, tag: 0, cost: 1)
        lru.insert(3, 30, stamp: 0, tag: 0, cost: 1)
        #expect(lru.keysByRecency == [3, 2, 1])
        lru.touch(lru.slot(of: 1)!)
        #expect(lru.keysByRecency == [1, 3, 2])
        lru.insert(4, 40, stamp: 0, tag: 0, cost: 1)
        #expect(lru.keysByRecency == [4, 1, 3])
        #expect(lru.evictions == 1)
        lru.remove(3)
        lru.insert(5, 50, stamp: 0, tag: 0, cost: 1)
        #expect(lru.keysByRecency == [5, 4, 1])
        #expect(lru.keys.count == 3) // slots freed by eviction and removal are reused, never grown past the bound
        #expect(lru.value(at: lru.slot(of: 5)!) == 50)
        #expect(lru.bytes == 3)
    }

    @Test func replacingAnEntryAdjustsBytes() {
        var lru = LRUTable<Int>(maximumEntries: 10, maximumBytes: 100)
        lru.insert(1, 1, stamp: 0, tag: 0, cost: 40)
        lru.insert(2, 2, stamp: 0, tag: 0, cost: 40)
        lru.insert(1, 3, stamp: 0, tag: 0, cost: 70)
        #expect(lru.keysByRecency == [1])
        #expect(lru.bytes == 70)
        #expect(lru.evictions == 1)
    }
}
