import Foundation

public enum TestCgroupError: Error, CustomStringConvertible {
    case unavailable(String)
    case io(String)
    public var description: String {
        switch self {
        case .unavailable(let s): "cgroups unavailable: \(s)"
        case .io(let s): s
        }
    }
}

/// A real memory cgroup for kernel tests, laid out like kubelet's, removed with everything in it by ``destroy()``.
///
/// Created under `<memory mount>/tapio-test-<pid>-<random>/…` — v1 `memory` when mounted (this machine), else the
/// cgroup2 mount when its root offers `memory`. Use ``with(layout:memoryLimit:_:)`` so the tree goes away even when
/// the test throws or an expectation fails:
///
/// ```swift
/// try TestCgroup.with(memoryLimit: 64 << 20) { cg in
///     let p = try TestProcess.sleep()
///     try cg.add(pid: p.pid)
///     // /proc/<p.pid>/cgroup now names cg.cgroupPath
/// }
/// ```
public final class TestCgroup: Sendable {
    public enum Version: String, Sendable { case v1, v2 }

    /// The kubelet layout to imitate below the test's top directory.
    public enum Layout: Sendable {
        /// `kubepods[/<qos>]/pod<uid>/<64hex>` (cgroupfs driver, containerd/docker leaf). qos nil = guaranteed.
        case cgroupfs(qos: String?)
        /// `kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/cri-containerd-<64hex>.scope`.
        case systemd(qos: String?)
        /// `kubepods/<qos>/pod<uid>` with no container (pod-level cgroup).
        case podOnly(qos: String?)
        /// Any components, e.g. `["system.slice", "foo.service"]`.
        case custom([String])
    }

    public let version: Version
    /// The hierarchy's mount point (`/sys/fs/cgroup/memory` here).
    public let mountPoint: String
    /// `<mount>/tapio-test-…`: everything this cgroup created lives below it.
    public let topDirectory: String
    /// The leaf directory.
    public let directory: String
    /// The leaf's path relative to the hierarchy root, as `/proc/<pid>/cgroup` shows it.
    public let cgroupPath: String
    /// The pod UID and container id in the layout (random per cgroup; empty for `.custom`, container id empty for `.podOnly`).
    public let podUID: String
    public let containerID: String

    /// Nil when test cgroups can be made here; otherwise why not (for `.enabled(if:)` traits and skip messages).
    public static var unavailableReason: String? {
        if getuid() != 0 { return "needs root to create cgroups (uid \(getuid()))" }
        return hierarchy() == nil ? "no cgroup hierarchy with the memory controller is mounted" : nil
    }

    public static var isAvailable: Bool { unavailableReason == nil }

    /// The memory hierarchy: v1 `memory` mount first, then a cgroup2 mount whose root lists `memory`.
    static func hierarchy() -> (Version, String)? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        var unified: String? = nil
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            if right[0] == "cgroup", right[2].split(separator: ",").contains("memory") { return (.v1, String(left[4])) }
            if right[0] == "cgroup2", unified == nil,
               let c = try? String(contentsOfFile: "\(left[4])/cgroup.controllers", encoding: .utf8),
               c.split(whereSeparator: \.isWhitespace).contains("memory") {
                unified = String(left[4])
            }
        }
        return unified.map { (.v2, $0) }
    }

    private init(version: Version, mountPoint: String, top: String, components: [String], podUID: String, containerID: String) {
        self.version = version
        self.mountPoint = mountPoint
        self.topDirectory = mountPoint + "/" + top
        self.directory = ([topDirectory] + components).joined(separator: "/")
        self.cgroupPath = "/" + ([top] + components).joined(separator: "/")
        self.podUID = podUID
        self.containerID = containerID
    }

    /// Creates the tree (and sets the limit). On failure nothing is left behind.
    public static func create(layout: Layout = .cgroupfs(qos: "burstable"), memoryLimit: UInt64? = nil) throws -> TestCgroup {
        if let reason = unavailableReason { throw TestCgroupError.unavailable(reason) }
        guard let (version, mount) = hierarchy() else { throw TestCgroupError.unavailable("no memory hierarchy") }
        let uid = UUID().uuidString.lowercased()
        let cid = randomHex(64)
        let components: [String]
        var podUID = uid, containerID = cid
        switch layout {
        case .cgroupfs(let qos):
            components = ["kubepods"] + (qos.map { [$0] } ?? []) + ["pod\(uid)", cid]
        case .podOnly(let qos):
            components = ["kubepods"] + (qos.map { [$0] } ?? []) + ["pod\(uid)"]
            containerID = ""
        case .systemd(let qos):
            let q = qos.map { "-\($0)" } ?? ""
            let pod = "kubepods\(q)-pod\(uid.replacingOccurrences(of: "-", with: "_")).slice"
            components = ["kubepods.slice"] + (qos.map { ["kubepods-\($0).slice"] } ?? []) + [pod, "cri-containerd-\(cid).scope"]
        case .custom(let c):
            components = c
            podUID = ""
            containerID = ""
        }
        let top = "tapio-test-\(getpid())-\(randomHex(8))"
        let cg = TestCgroup(version: version, mountPoint: mount, top: top, components: components, podUID: podUID, containerID: containerID)
        do {
            var dir = cg.topDirectory
            try makeDirectory(dir)
            for c in components {
                if version == .v2 { try? write("+memory", to: dir + "/cgroup.subtree_control") }
                dir += "/" + c
                try makeDirectory(dir)
            }
            if let memoryLimit { try cg.setMemoryLimit(memoryLimit) }
        } catch {
            cg.destroy()
            throw error
        }
        return cg
    }

    /// Creates a cgroup, runs `body`, and destroys the tree whatever happens.
    public static func with<T>(layout: Layout = .cgroupfs(qos: "burstable"), memoryLimit: UInt64? = nil,
                               _ body: (TestCgroup) throws -> T) throws -> T {
        let cg = try create(layout: layout, memoryLimit: memoryLimit)
        defer { cg.destroy() }
        return try body(cg)
    }

    /// Async variant of ``with(layout:memoryLimit:_:)``.
    public static func with<T>(layout: Layout = .cgroupfs(qos: "burstable"), memoryLimit: UInt64? = nil,
                               _ body: (TestCgroup) async throws -> T) async throws -> T {
        let cg = try create(layout: layout, memoryLimit: memoryLimit)
        defer { cg.destroy() }
        return try await body(cg)
    }

    /// Sets (or, with nil, removes) the leaf's memory limit.
    public func setMemoryLimit(_ bytes: UInt64?) throws {
        try setMemoryLimit(bytes, of: directory)
    }

    private func setMemoryLimit(_ bytes: UInt64?, of dir: String) throws {
        switch version {
        case .v1: try Self.write(bytes.map(String.init) ?? "-1", to: dir + "/memory.limit_in_bytes")
        case .v2: try Self.write(bytes.map(String.init) ?? "max", to: dir + "/memory.max")
        }
    }

    /// A cgroup at `relative` below this tree's top directory (`a/b/c`: each level created, with the memory
    /// controller enabled on v2), limited when `memoryLimit` is given; its directory. ``destroy()`` removes it.
    public func addChild(_ relative: String, memoryLimit: UInt64?) throws -> String {
        var dir = topDirectory
        for c in relative.split(separator: "/") {
            if version == .v2 { try? Self.write("+memory", to: dir + "/cgroup.subtree_control") }
            dir += "/" + c
            if !FileManager.default.fileExists(atPath: dir) { try Self.makeDirectory(dir) }
        }
        if let memoryLimit { try setMemoryLimit(memoryLimit, of: dir) }
        return dir
    }

    /// Another pod's container beside this one, under the same kubelet directory (`…/kubepods/<qos>/pod<uid>/<id>`),
    /// with a memory limit: what a node's new pod looks like to a walk that already knows the kubelet's subtree.
    /// Returns the container's directory; ``destroy()`` removes it with the rest of the tree.
    public func addSiblingPod(memoryLimit: UInt64) throws -> String {
        // `directory` is <top>/…/kubepods/<qos>/pod<uid>/<id>: the new pod goes beside pod<uid>.
        let podsParent = ((directory as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        let relative = String(podsParent.dropFirst(topDirectory.count)) + "/pod\(UUID().uuidString.lowercased())/\(Self.randomHex(64))"
        return try addChild(relative, memoryLimit: memoryLimit)
    }

    /// Moves a process (all its threads) into the leaf.
    public func add(pid: Int32) throws {
        try Self.write(String(pid), to: directory + "/cgroup.procs")
    }

    /// The leaf's inode: the id BPF reports as the memory cgroup id.
    public var inode: UInt64 {
        get throws {
            var st = stat()
            guard stat(directory, &st) == 0 else { throw TestCgroupError.io("stat \(directory): errno \(errno)") }
            return UInt64(st.st_ino)
        }
    }

    /// Pids in the leaf now.
    public func processes() -> [Int32] { Self.pids(in: directory) }

    /// Kills every process in the tree, then removes its directories deepest first. Idempotent; never throws
    /// (cleanup must not mask the test's own failure), but reports what it could not remove on stderr.
    public func destroy() {
        let dirs = Self.directories(under: topDirectory).sorted { $0.count > $1.count }
        guard !dirs.isEmpty else { return }
        for d in dirs { for p in Self.pids(in: d) { kill(p, SIGKILL) } }
        for d in dirs {
            var removed = false
            // Killed tasks leave the cgroup asynchronously; v1 answers EBUSY until they have.
            for _ in 0..<200 {
                for p in Self.pids(in: d) { kill(p, SIGKILL) }
                if rmdir(d) == 0 || errno == ENOENT { removed = true; break }
                usleep(10_000)
            }
            if !removed {
                FileHandle.standardError.write(Data("TestCgroup: could not remove \(d): errno \(errno)\n".utf8))
            }
        }
    }

    static func pids(in dir: String) -> [Int32] {
        guard let t = try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8) else { return [] }
        return t.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Every directory of the tree, including `root`; empty when it does not exist.
    static func directories(under root: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { return [] }
        var out = [root]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            let p = root + "/" + name
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue {
                out += directories(under: p)
            }
        }
        return out
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw TestCgroupError.io("mkdir \(path): errno \(errno)") }
    }

    static func write(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TestCgroupError.io("open \(path): errno \(errno)") }
        defer { close(fd) }
        let n = text.utf8CString.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count - 1) }
        if n < 0 { throw TestCgroupError.io("write \(text) to \(path): errno \(errno)") }
    }

    /// Random lowercase hex (container ids, unique names).
    public static func randomHex(_ count: Int) -> String {
        let digits = Array("0123456789abcdef")
        return String((0..<count).map { _ in digits[Int.random(in: 0..<16)] })
    }
}
