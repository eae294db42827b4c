#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import Synchronization
import TapioNode

/// Who writes a state file: the agent that holds an advisory lock (flock) on `<path>.lock`. The kernel drops the
/// lock when the process ends, however it ends, so a crashed agent leaves nothing to clean up; the lock file itself
/// stays (removing it would let two agents lock two different files).
///
/// A replacement started while its predecessor stops waits for it (``wait(upTo:onWaiting:)``); an agent that keeps
/// running beside another (a second install on the node sharing the hostPath, a `tapio agent` run by hand beside the
/// DaemonSet's) is kept off — what it then does is ``EngineMemoryFile``'s to decide.
public final class StateFileLock: Sendable {
    /// How long start-up waits for another agent's lock: a DaemonSet pod being replaced holds it until its last
    /// write, as it stops (within its 30 s termination grace period), and a replacement can start before that — after
    /// the DaemonSet is deleted and created again, or with `maxSurge`.
    public static let defaultWait: Duration = .seconds(40)

    public enum Attempt: Equatable, Sendable {
        /// Held, or used without a lock: the lock file cannot be made or locked here at all (see ``tryLock()``).
        case held
        /// Another open file description holds it.
        case busy
        /// Not now (out of file descriptors or memory): tried again, and used without a lock when it must be.
        case unavailable(Errno)
    }

    public enum Wait: Sendable { case held, busy, cancelled }

    public let lockPath: String
    /// The file the lock is for (for the log).
    let path: String
    let logger: Logger
    private struct State {
        /// The open lock file whose flock this agent holds; -1 while it does not.
        var fd: Int32 = -1
        /// Said once: the lock file could not be opened or locked (not held by another), the file is used unlocked.
        var unlockedReported = false
    }
    private let state = Mutex(State())
    /// One ``tryLock()`` at a time.
    private let calls = Mutex(())

    public init(for path: String, logger: Logger) {
        self.path = path
        self.lockPath = path + ".lock"
        self.logger = logger
    }

    deinit {
        state.withLock { if $0.fd >= 0 { close($0.fd); $0.fd = -1 } }
    }

    /// Takes the lock unless this agent holds it already — and still holds the lock *file* there now: a lock on a
    /// file that was removed with its directory (and made again by a write) keeps no one else out.
    ///
    /// One call at a time (start-up's wait and the writer's queue may not overlap), its system calls outside the
    /// state's mutex. When the lock file cannot be made or locked here at all (a read-only or missing directory —
    /// the write then fails and says why —, a permission refused, no flock on this file system), the file is used
    /// without a lock, said once: one agent unable to lock is no reason for it to keep no memory.
    public func tryLock() -> Attempt {
        calls.withLock { _ in
            let held = state.withLock { $0.fd }
            if held >= 0 {
                var mine = stat(), there = stat()
                if fstat(held, &mine) == 0, stat(lockPath, &there) == 0, mine.st_dev == there.st_dev, mine.st_ino == there.st_ino {
                    return .held
                }
                state.withLock { $0.fd = -1 }
                close(held)
            }
            // (Read-only is enough for flock, and opens a lock file another user made.)
            // O_NONBLOCK: a FIFO put at the lock's path must not hold the open (and the agent's start) for good.
            let fd = open(lockPath, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o600)
            guard fd >= 0 else { return unlocked(Errno(errno), "cannot open \(lockPath)") }
            var st = stat()
            guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
                close(fd)
                return unlocked(Errno(EINVAL), "cannot lock \(lockPath), which is not a regular file")
            }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                let e = Errno(errno)
                close(fd)
                return e.code == EWOULDBLOCK ? .busy : unlocked(e, "cannot lock \(lockPath)")
            }
            state.withLock { $0.fd = fd }
            return .held
        }
    }

    /// A failure to open or lock the lock file that is not another agent's lock: for now, or for good.
    private func unlocked(_ e: Errno, _ what: String) -> Attempt {
        if [EMFILE, ENFILE, ENOMEM, ENOLCK, EINTR, EAGAIN].contains(e.code) { return .unavailable(e) }
        sayUnlocked(e, what)
        return .held
    }

    /// Says, once, that the file is used without a lock, and why.
    public func sayUnlocked(_ e: Errno, _ what: String) {
        let first = state.withLock { s -> Bool in defer { s.unlockedReported = true }; return !s.unlockedReported }
        if first { logger.notice("\(what) (\(e)): \(path) is used without a lock") }
    }

    /// Waits, up to `wait`, for the lock (at start-up); `onWaiting` runs once, when the wait begins.
    public func wait(upTo wait: Duration, onWaiting: () -> Void) async -> Wait {
        let deadline = ContinuousClock.now + wait
        var said = false
        while true {
            let attempt = tryLock()
            if attempt == .held { return .held }
            if Task.isCancelled { return .cancelled }
            guard ContinuousClock.now < deadline else {
                guard case .unavailable(let e) = attempt else { return .busy }
                sayUnlocked(e, "cannot lock \(lockPath)")
                return .held
            }
            if !said, attempt == .busy {
                said = true
                onWaiting()
                logger.notice("another tapio agent holds \(lockPath): waiting up to \(wait.components.seconds) s for it to stop (a pod being replaced writes its last snapshot as it stops)")
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
