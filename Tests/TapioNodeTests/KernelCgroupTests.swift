import Foundation
import Testing
import TapioModel
import TapioTestSupport
@testable import TapioNode

/// Real cgroups (v1 memory here) with real processes. Needs root; skips with the reason otherwise.
@Suite(.serialized, .enabled(if: TestCgroup.isAvailable, "\(TestCgroup.unavailableReason ?? "")"), .timeLimit(.minutes(5)))
struct KernelCgroupTests {
    let mount: CgroupMount

    init() throws {
        mount = try #require(CgroupMount.discover(), "no memory cgroup hierarchy found in /proc/self/mountinfo")
    }

    func reader(_ cg: TestCgroup) -> CgroupMemoryReader {
        CgroupMemoryReader(cgroupPath: cg.cgroupPath, mount: mount)
    }

    @Test func theReaderReturnsTheLimitTheTestSetAndNoneWhenUnlimited() throws {
        try TestCgroup.with(memoryLimit: 64 << 20) { cg in
            #expect(reader(cg).directory == cg.directory)
            let s = try reader(cg).read()
            #expect(s.limitBytes == 64 << 20)
            #expect(s.workingSetBytes <= s.usageBytes)
            if mount.version == .v1 { #expect(s.failcnt != nil) } else { #expect(s.oomKills != nil) }
            try cg.setMemoryLimit(nil)
            #expect(try reader(cg).read().limitBytes == nil)
        }
    }

    @Test func usageAndRSSRiseWhenAProcessInTheCgroupAllocates() throws {
        try TestCgroup.with(memoryLimit: 256 << 20) { cg in
            let p = try TestProcess.allocating(bytes: 48 << 20)
            defer { p.kill() }
            try cg.add(pid: p.pid)
            let before = try reader(cg).read()
            try p.release()
            var after = before
            // Until every figure shows the allocation (up to 20 s): usage, which counts more than the process's pages,
            // can pass +40 MiB while the process is still touching its last pages (seen once: RSS at +37 MiB then).
            func shown(_ s: CgroupMemoryStats) -> Bool {
                s.usageBytes >= before.usageBytes + (40 << 20) && s.rssBytes >= before.rssBytes + (40 << 20)
                    && s.workingSetBytes >= 40 << 20
            }
            for _ in 0..<1000 where !shown(after) {
                usleep(20_000)
                after = try reader(cg).read()
            }
            #expect(after.usageBytes >= before.usageBytes + (40 << 20))
            #expect(after.rssBytes >= before.rssBytes + (40 << 20))
            #expect(after.workingSetBytes >= 40 << 20)
            #expect(after.workingSetBytes <= after.usageBytes)
        }
    }

    /// The poller's open handle sees the allocation through its re-read files, agrees with a fresh full read,
    /// refuses an unlimited cgroup, and reports nothing once the cgroup is gone.
    @Test func anOpenHandleFollowsTheCgroupAndEndsWithIt() throws {
        let cg = try TestCgroup.create(memoryLimit: 256 << 20)
        var removed = false
        defer { if !removed { cg.destroy() } }
        let handle = try #require(CgroupMemoryHandle.open(directory: cg.directory, version: mount.version))
        defer { handle.close() }
        #expect(handle.limitBytes == 256 << 20)
        let p = try TestProcess.allocating(bytes: 48 << 20)
        try cg.add(pid: p.pid)
        let before = try #require(handle.sample())
        try p.release()
        // Until the process has touched its memory and the usage has settled (two samples 20 ms apart within 1 MiB):
        // the comparison with a fresh reader below must not race its last pages. Up to 60 s, for a loaded machine.
        var after = before
        var previous = before
        for _ in 0..<3000 {
            usleep(20_000)
            previous = after
            after = try #require(handle.sample())
            if after.usageBytes >= before.usageBytes + (40 << 20),
               abs(Int64(after.usageBytes) - Int64(previous.usageBytes)) < 1 << 20 { break }
        }
        #expect(after.usageBytes >= before.usageBytes + (40 << 20), "the handle kept showing the old value")
        let full = try reader(cg).read()
        #expect(abs(Int64(full.usageBytes) - Int64(after.usageBytes)) < 8 << 20)
        #expect(after.workingSetBytes <= after.usageBytes)
        p.kill()
        try cg.setMemoryLimit(nil)
        #expect(CgroupMemoryHandle.open(directory: cg.directory, version: mount.version) == nil, "unlimited has no handle")
        cg.destroy()
        removed = true
        #expect(handle.sample() == nil, "a removed cgroup still sampled")
    }

    @Test func aProcessInAKubeletCgroupfsCgroupResolvesToItsPodAndContainerThroughProc() throws {
        try TestCgroup.with(layout: .cgroupfs(qos: "burstable")) { cg in
            let p = try TestProcess.sleep()
            defer { p.kill() }
            try cg.add(pid: p.pid)
            let t = PodTranslator(mount: mount)
            let a = try #require(t.attribution(pid: p.pid))
            #expect(a.cgroupPath == cg.cgroupPath)
            #expect(a.cgroupID == (try cg.inode))
            #expect(a.podUID == cg.podUID)
            #expect(a.containerID == cg.containerID)
            #expect(a.qos == .burstable)
            // The cgroup id the BPF probes report leads to the same cgroup.
            let byID = try #require(t.attribution(cgroupID: try cg.inode))
            #expect(byID.cgroupPath == cg.cgroupPath)
        }
    }

    @Test func aProcessInASystemdDriverCgroupResolvesWithRuntime() throws {
        try TestCgroup.with(layout: .systemd(qos: "besteffort")) { cg in
            let p = try TestProcess.sleep()
            defer { p.kill() }
            try cg.add(pid: p.pid)
            let a = try #require(PodTranslator(mount: mount).attribution(pid: p.pid))
            #expect(a.podUID == cg.podUID)
            #expect(a.qos == .besteffort)
            #expect(a.containerID == cg.containerID)
            #expect(a.runtime == .containerd)
        }
    }

    @Test func aCgroupIDFromTheIndexResolvesAfterANewCgroupAppearsAndAfterItIsRemoved() throws {
        let cg = try TestCgroup.create(layout: .podOnly(qos: nil))
        var destroyed = false
        defer { if !destroyed { cg.destroy() } }
        let id = try cg.inode
        let t = PodTranslator(mount: mount)
        let a = try #require(t.attribution(cgroupID: id))
        #expect(a.podUID == cg.podUID)
        #expect(a.qos == .guaranteed)
        cg.destroy()
        destroyed = true
        t.index?.refresh()
        t.removeAll()
        #expect(t.attribution(cgroupID: id)?.cgroupPath == cg.cgroupPath)
    }

    @Test func anExitEventInvalidatesTheDeadPidAndLaterLookupsFailCheaply() throws {
        try TestCgroup.with(layout: .cgroupfs(qos: nil)) { cg in
            let p = try TestProcess.sleep()
            try cg.add(pid: p.pid)
            let t = PodTranslator(mount: mount)
            #expect(t.attribution(pid: p.pid)?.containerID == cg.containerID)
            p.kill()
            t.observe(NodeEvent(timestampNanos: 0, pid: p.pid, cgroupID: try cg.inode, comm: "sleep",
                                kind: .processExit(.init(exitCode: 0, signal: 9, peakRSSBytes: 0))))
            #expect(t.stats.invalidations == 1)
            #expect(t.attribution(pid: p.pid) == nil)
            #expect(t.attribution(pid: p.pid) == nil)
            #expect(t.stats.negativeHits == 1)
        }
    }

    @Test func theSamplerEmitsACgroupMemoryEventWithTheCgroupsID() throws {
        try TestCgroup.with(memoryLimit: 32 << 20) { cg in
            let id = try cg.inode
            let sampler = CgroupMemorySampler(interval: .seconds(1)) { [reader = reader(cg)] in
                [.init(cgroupID: id, reader: reader),
                 .init(cgroupID: 1, reader: CgroupMemoryReader(directory: "/nonexistent/tapio", version: .v1))]
            }
            let events = sampler.sample()
            #expect(events.count == 1)
            #expect(sampler.failureCount == 1)
            let e = try #require(events.first)
            #expect(e.cgroupID == id)
            guard case .cgroupMemory(let m) = e.kind else { Issue.record("wrong kind \(e.kind)"); return }
            #expect(m.limitBytes == 32 << 20)
        }
    }

    @Test func destroyKillsRemainingProcessesAndRemovesTheWholeTree() throws {
        let cg = try TestCgroup.create()
        let p = try TestProcess.sleep()
        defer { p.kill() }
        try cg.add(pid: p.pid)
        #expect(cg.processes() == [p.pid])
        cg.destroy()
        #expect(!FileManager.default.fileExists(atPath: cg.topDirectory))
    }

    @Test func withRemovesTheTreeAndKillsItsProcessesWhenTheBodyThrows() throws {
        struct Boom: Error {}
        var top = ""
        var pid: Int32 = 0
        #expect(throws: Boom.self) {
            try TestCgroup.with(memoryLimit: 16 << 20) { cg in
                top = cg.topDirectory
                let p = try TestProcess.gated(shell: "exec /bin/sleep 600")
                pid = p.pid
                try cg.add(pid: p.pid)
                throw Boom()
            }
        }
        #expect(!top.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: top))

        let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: " ").dropFirst(2).first
        #expect(state == nil || state == "Z")
    }
}
