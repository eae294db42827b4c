import Foundation
import TapioAgent
import TapioCorrelation
import TapioModel
import TapioNode
import TapioTestSupport
import Testing

/// Which subject a kernel event is pinned on, with real cgroups and processes (root: the kernel tests' cgroups).
@Suite(.enabled(if: TestCgroup.isAvailable, "\(TestCgroup.unavailableReason ?? "")"))
struct NodeAttributorTests {
    /// On the real node, a pod's shell had its memory samples pinned on the bare process for minutes — a
    /// "no memory limit" finding in tapio-system about a pod's process — because the samples carried the root
    /// memory cgroup's id, or the id of a cgroup newer than the agent's last walk of the hierarchy. The process's
    /// own cgroup file decides then.
    @Test func aSampleWhoseCgroupIdIsTheRootOrNotYetKnownIsPinnedOnThePodOfItsProcess() throws {
        let cg = try TestCgroup.create(layout: .cgroupfs(qos: "burstable"), memoryLimit: 64 << 20)
        defer { cg.destroy() }
        let process = try TestProcess.sleep(seconds: 120)
        defer { process.kill() }
        try cg.add(pid: process.pid)

        let attributor = NodeAttributor(limited: nil)
        let pod = PodRef(namespace: "shop", name: "api-0", uid: cg.podUID)
        attributor.observe(ClusterEvent(timestampNanos: 1, kind: .podUpdated(PodInfo(
            pod: pod, node: "node-1", owner: nil, labels: [:], phase: "Running", containers: [
                ContainerInfo(name: "app", containerID: cg.containerID, image: "shop/api:1", restartCount: 0, ready: true,
                              memoryRequestBytes: nil, memoryLimitBytes: 64 << 20, lastTermination: nil,
                              currentTermination: nil, waitingReason: nil),
            ]))))
        var root = stat()
        #expect(stat(cg.mountPoint, &root) == 0)
        let ids: [(String, UInt64)] = [("the root cgroup", UInt64(root.st_ino)), ("a cgroup not walked yet", 1 << 40 | 12345)]
        for (what, id) in ids {
            let sample = NodeEvent(timestampNanos: 2, pid: process.pid, cgroupID: id, comm: "sh",
                                   kind: .memorySample(.init(rssAnonBytes: 8 << 20, rssFileBytes: 0, rssShmemBytes: 0)))
            let (subject, _) = attributor.attribute(sample)
            #expect(subject == .podContainer(pod, container: "app"), "a sample carrying \(what)'s id went to \(String(describing: subject))")
        }
        // The cgroup's own id still decides when the process is gone (an exit, an OOM victim).
        let exit = NodeEvent(timestampNanos: 3, pid: 999_999, cgroupID: try cg.inode, comm: "sh",
                             kind: .processExit(.init(exitCode: 0, signal: 9, peakRSSBytes: 0)))
        #expect(attributor.attribute(exit).subject == .podContainer(pod, container: "app"))
    }
}
