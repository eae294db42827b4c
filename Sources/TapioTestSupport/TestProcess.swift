import Foundation
import KubeClient
import Synchronization

/// A child process for kernel tests: spawned with posix_spawn, optionally held at a gate (blocked reading stdin) so a
/// test can move it into a cgroup before it does its work, and always killed and reaped by ``kill()``.
public final class TestProcess: Sendable {
    public let pid: Int32
    private let gateFD: Atomic<Int32>
    private let reaped = Atomic<Bool>(false)

    private init(pid: Int32, gateFD: Int32) {
        self.pid = pid
        self.gateFD = Atomic(gateFD)
    }

    deinit { kill() }

    /// `sleep <seconds>`: a process that does nothing, to move into cgroups and look up through /proc.
    public static func sleep(seconds: Int = 600) throws -> TestProcess {
        try spawn(["/bin/sleep", String(seconds)], gated: false)
    }

    /// Runs `command` with `/bin/sh -c` only after ``release()``: until then the shell blocks reading stdin, so it can
    /// be moved into a cgroup first and everything it starts is charged there.
    public static func gated(shell command: String) throws -> TestProcess {
        try spawn(["/bin/sh", "-c", "read _gate; \(command)"], gated: true)
    }

    /// A process that, once released, allocates and touches `bytes` of anonymous memory and then sleeps.
    public static func allocating(bytes: Int) throws -> TestProcess {
        try gated(shell: "exec /usr/bin/perl -e '$x = \"a\" x \(bytes); sleep 600'")
    }

    /// Opens the gate of a ``gated(shell:)`` process.
    public func release() throws {
        let fd = gateFD.exchange(-1, ordering: .acquiringAndReleasing)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let ok = "\n".utf8CString.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, 1) } == 1
        if !ok { throw TestCgroupError.io("write to the gate of pid \(pid): errno \(errno)") }
    }

    /// True while the process has not exited (or has exited but is not yet reaped).
    public var isAlive: Bool { !reaped.load(ordering: .acquiring) && Foundation.kill(pid, 0) == 0 }

    /// SIGKILL and reap; idempotent.
    public func kill() {
        let fd = gateFD.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { close(fd) }
        guard !reaped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = Foundation.kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    private static func spawn(_ argv: [String], gated: Bool) throws -> TestProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var fds: [Int32] = [-1, -1]
        if gated {
            // Other tests spawn processes concurrently: keep both ends out of every child but this one's stdin.
            guard ChildProcessSetup.closeOnExecPipe(&fds) else { throw TestCgroupError.io("pipe: errno \(errno)") }
            posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // Nothing else of this process goes with it, sockets included: a child living on (this one sleeps up to ten
        // minutes) would keep the server's end of another test's connection open after the server closed it, and
        // that client would never see the end.
        ChildProcessSetup.closeInheritedDescriptors(&actions)
        let cargs = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = cargs.withUnsafeBufferPointer { buf in
            posix_spawn(&pid, argv[0], &actions, nil, UnsafeMutablePointer(mutating: buf.baseAddress!), environ)
        }
        if gated { close(fds[0]) }
        guard rc == 0 else {
            if gated { close(fds[1]) }
            throw TestCgroupError.io("posix_spawn \(argv[0]): errno \(rc)")
        }
        return TestProcess(pid: pid, gateFD: gated ? fds[1] : -1)
    }
}
