import Foundation
import Glibc
import TapioModel
@testable import TapioBPF

/// Why the kernel tests cannot run here, or nil when they can (printed by the skip trait).
let kernelSkipReason: String? = {
    let a = BPFProbes.availability()
    return a.isAvailable ? nil : "BPF kernel tests skipped: \(a.summary)"
}()
let canLoadBPF = kernelSkipReason == nil

/// Collects node events until `done` says enough or `timeout` passes; returns everything seen.
func collect(from probes: BPFProbes, timeout: Double, until done: ([NodeEvent]) -> Bool = { _ in false })
    async -> [NodeEvent]
{
    var seen: [NodeEvent] = []
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        while let batch = probes.events().takeBatch(max: 4096) {
            for case .node(let e) in batch { seen.append(e) }
        }
        if done(seen) { break }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return seen
}

/// Throws away what is queued so far.
func drain(_ probes: BPFProbes) {
    while probes.events().takeBatch(max: 4096) != nil {}
}

/// A child process started through Foundation; `stdin` lets a test hold it until it is placed in a cgroup.
struct Child {
    let process: Process
    let stdin: Pipe
    let stdout: Pipe?
    var pid: Int32 { process.processIdentifier }

    static func start(_ executable: String, _ arguments: [String], output: Bool = false) throws -> Child {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardInput = pipe
        let out = output ? Pipe() : nil
        p.standardOutput = out ?? FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return Child(process: p, stdin: pipe, stdout: out)
    }

    /// Blocks until the child writes a line (its "ready").
    func readLine() -> String {
        var line = Data()
        while let handle = stdout?.fileHandleForReading, let byte = try? handle.read(upToCount: 1), !byte.isEmpty {
            if byte.first == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }

    func release() { stdin.fileHandleForWriting.write(Data("go\n".utf8)) }

    /// Blocks its thread until the child ends: for a `defer` after SIGKILL, where the end is a moment away.
    func wait() -> (status: Int32, reason: Process.TerminationReason) {
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason)
    }

    /// Waits for the child to end without holding a thread: `waitUntilExit` blocked one of the machine's two
    /// cooperative threads for the child's whole life, and a parallel run starved beside it (a controller test
    /// saw no 20-ms requeue within 20 s).
    func exited() async -> (status: Int32, reason: Process.TerminationReason) {
        while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        return wait()
    }
}

func python(_ code: String, output: Bool = false) throws -> Child {
    try Child.start("/usr/bin/python3", ["-c", code], output: output)
}

/// A kubelet-shaped memory cgroup: <root>/kubepods/burstable/pod<UID>/<64-hex container id>, on the cgroup v1
/// memory hierarchy when there is one (this machine), else on cgroup v2 with the memory controller (most
/// clusters). Removed leaf-first by `remove()` (call it in a defer).
struct KubeletCgroup {
    let root: String
    let podUID: String
    let containerID: String
    let v2: Bool
    var leaf: String { "\(root)/kubepods/burstable/pod\(podUID)/\(containerID)" }

    static let v1Hierarchy = "/sys/fs/cgroup/memory"
    static let v2Hierarchy = "/sys/fs/cgroup"
    static var hasV1: Bool { FileManager.default.fileExists(atPath: v1Hierarchy + "/memory.limit_in_bytes") }
    static var hasV2Memory: Bool {
        (try? String(contentsOfFile: v2Hierarchy + "/cgroup.subtree_control", encoding: .utf8))?
            .split(separator: " ").contains { $0.trimmingCharacters(in: .whitespacesAndNewlines) == "memory" } ?? false
    }
    static var available: Bool { hasV1 || hasV2Memory }

    static func create(limitBytes: UInt64) throws -> KubeletCgroup {
        let tag = "tapio-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let uid = UUID().uuidString.lowercased()
        let id = (0..<4).map { _ in String(format: "%016llx", UInt64.random(in: 0...UInt64.max)) }.joined()
        let v2 = !hasV1
        let cg = KubeletCgroup(root: "\(v2 ? v2Hierarchy : v1Hierarchy)/\(tag)", podUID: uid, containerID: id, v2: v2)
        do {
            try cg.setUp(limitBytes: limitBytes)
        } catch {
            cg.remove() // what was created before the failure
            throw error
        }
        return cg
    }

    private func setUp(limitBytes: UInt64) throws {
        let cg = self
        if v2 {
            // v2: each level must pass the memory controller down to its children.
            var dir = cg.root
            for part in ["kubepods", "burstable", "pod\(podUID)", containerID] {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try KubeletCgroup.write("+memory", to: dir + "/cgroup.subtree_control")
                dir += "/" + part
            }
            try FileManager.default.createDirectory(atPath: cg.leaf, withIntermediateDirectories: true)
            try KubeletCgroup.write("\(limitBytes)", to: cg.leaf + "/memory.max")
            try? KubeletCgroup.write("0", to: cg.leaf + "/memory.swap.max")
        } else {
            try FileManager.default.createDirectory(atPath: cg.leaf, withIntermediateDirectories: true)
            // No swap on the leaf either, so the limit ends in an OOM kill, not in swapping.
            try? KubeletCgroup.write("0", to: cg.leaf + "/memory.swappiness")
            try KubeletCgroup.write("\(limitBytes)", to: cg.leaf + "/memory.limit_in_bytes")
            try? KubeletCgroup.write("\(limitBytes)", to: cg.leaf + "/memory.memsw.limit_in_bytes")
        }
    }

    func add(pid: Int32) throws { try KubeletCgroup.write("\(pid)", to: leaf + "/cgroup.procs") }

    var leafInode: UInt64 {
        var st = stat()
        return stat(leaf, &st) == 0 ? UInt64(st.st_ino) : 0
    }

    /// The directory under this test's root whose inode is `cgroupID`, as the agent would resolve it.
    func path(ofCgroupID cgroupID: UInt64) -> String? {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return nil }
        for case let rel as String in walker {
            var st = stat()
            let full = root + "/" + rel
            if stat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, UInt64(st.st_ino) == cgroupID { return full }
        }
        return nil
    }

    func remove() {
        var dir = leaf
        // Leaf first; a cgroup with tasks cannot be removed, so wait briefly for killed tasks to leave.
        while dir.hasPrefix(root) {
            for _ in 0..<50 where rmdir(dir) != 0 && errno == EBUSY { usleep(20_000) }
            if dir == root { break }
            dir = (dir as NSString).deletingLastPathComponent
        }
    }

    static func write(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let n = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard n >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }
}

/// A TCP port on loopback that nothing listens on (bound, then closed).
func closedLoopbackPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: addr.sin_port)
}

func loopback(port: UInt16) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = port.bigEndian
    return addr
}

extension NodeEvent {
    var memory: NodeEvent.MemorySample? { if case .memorySample(let m) = kind { return m } else { return nil } }
    var oom: NodeEvent.OOMKill? { if case .oomKill(let o) = kind { return o } else { return nil } }
    var exit: NodeEvent.ProcessExit? { if case .processExit(let x) = kind { return x } else { return nil } }
    var tcp: NodeEvent.TCPEvent? { if case .tcp(let t) = kind { return t } else { return nil } }
    var isExec: Bool { if case .processExec = kind { return true } else { return false } }
}
