import Foundation
import Synchronization
@testable import TapioNode
import TapioModel

/// A clock tests move by hand.
final class ManualClock: Sendable {
    let now = Atomic<UInt64>(1_000_000_000)
    func advance(_ d: Duration) { now.add(d.nanos, ordering: .relaxed) }
    var read: @Sendable () -> UInt64 { { [self] in now.load(ordering: .relaxed) } }
}

/// A fake /proc and a fake cgroup hierarchy in a temporary directory: real directories (real inodes) without root.
final class FakeHost {
    let root: String
    var proc: String { root + "/proc" }
    var cgroupMount: String { root + "/cgroup" }
    var mount: CgroupMount { CgroupMount(version: .v1, mountPoint: cgroupMount) }

    init() throws {
        root = NSTemporaryDirectory() + "tapio-node-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/proc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/cgroup", withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Creates the cgroup directory and returns its inode.
    @discardableResult func makeCgroup(_ path: String) throws -> UInt64 {
        try FileManager.default.createDirectory(atPath: cgroupMount + path, withIntermediateDirectories: true)
        return try #require(FileIO.inode(of: cgroupMount + path))
    }

    func removeCgroup(_ path: String) throws { try FileManager.default.removeItem(atPath: cgroupMount + path) }

    /// Writes /proc/<pid>/cgroup naming `path` on the memory hierarchy.
    func setProcess(_ pid: Int32, cgroup path: String) throws {
        try FileManager.default.createDirectory(atPath: "\(proc)/\(pid)", withIntermediateDirectories: true)
        try "5:cpu:/\n4:memory:\(path)\n0::/\n".write(toFile: "\(proc)/\(pid)/cgroup", atomically: false, encoding: .utf8)
    }

    func removeProcess(_ pid: Int32) throws { try FileManager.default.removeItem(atPath: "\(proc)/\(pid)") }
}

import Testing
extension FakeHost {
    func translator(clock: ManualClock, directory: PodDirectory? = nil, withMount: Bool = true,
                    configure: (inout PodTranslator.Configuration) -> Void = { _ in }) -> PodTranslator {
        var c = PodTranslator.Configuration()
        c.procRoot = proc
        configure(&c)
        return PodTranslator(configuration: c, mount: withMount ? mount : nil, directory: directory, clock: clock.read)
    }
}

let sampleUID = "0f6e3c4a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
func sampleContainerID(_ n: Int) -> String {
    let h = String(n, radix: 16)
    return String(repeating: "0", count: 64 - h.count) + h
}
