#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
import Logging
import Synchronization
import TapioCorrelation
import TapioNode

/// The engine's memory beyond its window (``EngineMemory``) kept in a file across agent restarts (`--state-file`;
/// the DaemonSet keeps it in the node's /var/lib/tapio).
///
/// Written whole, atomically: to `<path>.tmp`, fsync'd, renamed over the file, and the directory fsync'd — a crash
/// or a power cut leaves the last complete file or the new one, never half of one. Writes run on a thread of their
/// own (a serial dispatch queue: encoding and fsync must not hold one of the few threads the async tasks share), one
/// at a time; a snapshot submitted while one is being written replaces the one waiting (only the newest matters),
/// and a snapshot is never written over a later one (they are numbered as they come, not by the wall clock).
///
/// A file that cannot be read back (cut short, corrupted, another version's, too large) is an error in the log
/// naming the byte and the field, is moved aside to `<path>.invalid` for a person to look at (not deleted: nothing
/// is lost, and the next write does not destroy it), and the agent starts without it, as it would without a file.
///
/// One agent per file: the first to start holds an advisory lock on `<path>.lock` (flock, released by the kernel
/// when the process ends, however it ends). A replacement started while its predecessor stops waits for it (it
/// then reads the predecessor's last snapshot); a second agent that keeps running beside the first — a second
/// install on the node sharing the hostPath, a `tapio agent` run by hand beside the DaemonSet's — would rename its
/// snapshots over the first's, each forgetting the other's containers, and their `.tmp` files would collide: it
/// reads and writes nothing for as long as it runs, and says so.
public final class EngineMemoryFile: Sendable {
    /// Largest file read back (``EngineMemoryCodec/maxFileBytes``).
    public static let defaultMaxBytes = EngineMemoryCodec.maxFileBytes

    public struct Stats: Sendable, Hashable {
        public var writesSucceeded: UInt64 = 0
        public var writesFailed: UInt64 = 0
        /// Snapshots replaced by a newer one before they were written, or older than the one already written.
        public var writesSuperseded: UInt64 = 0
        public var lastWriteBytes = 0
        /// Snapshots not written because another agent holds the file's lock.
        public var writesLocked: UInt64 = 0
        /// Start-up is waiting for another agent's lock.
        public var waitingForLock = false
        /// What the start read back: `restored`, `none` (no file), `invalid` (moved aside), `unreadable` or
        /// `locked` (another agent uses the file); empty before it has been read.
        public var readOutcome = ""
        public var restoredContainers = 0
        public var restoredWorkloads = 0
    }

    public let path: String
    let maxBytes: Int
    let logger: Logger
    private struct State {
        var stats = Stats()
        /// The snapshot waiting to be written, with its number.
        var waiting: (memory: EngineMemory, sequence: UInt64)?
        var scheduled = false
        var nextSequence: UInt64 = 1
        /// The number of the last snapshot written: an earlier one is not written over it.
        var writtenThrough: UInt64 = 0
        var lastError: String?
        /// Another agent holds the lock (or the agent stopped while it waited for it): nothing is read or written
        /// any more.
        var lockedOut = false
        /// Start-up has read the file (or given up on it).
        var loaded = false
    }
    private let state = Mutex(State())
    private let lock: StateFileLock
    private let queue = DispatchQueue(label: "tapio.state-file")

    public init(path: String, maxBytes: Int = EngineMemoryFile.defaultMaxBytes, logger: Logger) {
        self.path = path
        self.maxBytes = maxBytes
        self.logger = logger
        self.lock = StateFileLock(for: path, logger: logger)
    }

    public var stats: Stats { state.withLock { $0.stats } }

    /// How long start-up waits for another agent's lock (``StateFileLock``).
    public static let defaultLockWait = StateFileLock.defaultWait

    /// Reads the file back (at start-up), once its lock is this agent's: another agent's is waited for up to
    /// `lockWait`; past that, this agent neither reads nor writes the file for as long as it runs (taking it over
    /// later, with a memory that never held the file's, would throw the file's away). Nil when there is no file or
    /// it cannot be used; each case is logged and counted (``Stats/readOutcome``).
    public func load(lockWait: Duration = EngineMemoryFile.defaultLockWait) async -> EngineMemory? {
        makeDirectory()
        let outcome = await lock.wait(upTo: lockWait) { self.state.withLock { $0.stats.waitingForLock = true } }
        state.withLock { s in
            s.stats.waitingForLock = false
            s.loaded = true
            // Stopped while it waited, or kept out: nothing to read, and nothing of its own to write over the file.
            if outcome != .held { s.lockedOut = true }
            if outcome == .busy { s.stats.readOutcome = "locked" }
        }
        switch outcome {
        case .held:
            break
        case .cancelled:
            logger.info("stopped while waiting for \(path).lock: the engine memory file was neither read nor written")
            return nil
        case .busy:
            logger.error("another tapio agent uses the engine memory file \(path) (it holds \(path).lock): this agent neither reads nor writes it for as long as it runs, so its restart will forget its memory histories. Give each agent its own --state-file")
            return nil
        }
        let bytes: [UInt8]
        switch Self.readAll(path, limit: maxBytes) {
        case .failure(let e) where e.code == ENOENT:
            logger.info("no engine memory at \(path) yet (first start on this node): memory histories start empty")
            state.withLock { $0.stats.readOutcome = "none" }
            return nil
        case .failure(let e):
            let why = e.code == EINVAL ? "it is not a regular file" : "\(e)"
            logger.error("cannot read the engine memory file \(path): \(why); memory histories start empty, and it will be written over")
            state.withLock { $0.stats.readOutcome = "unreadable" }
            return nil
        case .success(nil):
            moveAside("it is larger than \(maxBytes) bytes, more than this version writes")
            return nil
        case .success(let b?):
            bytes = b
        }
        do {
            let memory = try EngineMemoryCodec.decode(bytes)
            state.withLock { $0.stats.readOutcome = "restored" }
            return memory
        } catch {
            moveAside("\(error)")
            return nil
        }
    }

    /// Notes what the engine took over of a loaded memory (for the log and the metrics).
    public func noteRestored(_ memory: EngineMemory, containers: Int, workloads: Int) {
        state.withLock {
            $0.stats.restoredContainers = containers
            $0.stats.restoredWorkloads = workloads
        }
        logger.info("engine memory restored from \(path): \(containers) of \(memory.containerCount) containers' minute histories, \(workloads) workloads' cycles (\(memory.workloadCount) in the file)")
    }

    /// Creates the file's directory (and its parents) when missing, readable by root only: the DaemonSet's hostPath
    /// volume creates it too, but `tapio agent` run by hand is given only a path (absolute or relative).
    private func makeDirectory() {
        var dir = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/").dropLast() {
            dir += "/" + part
            if mkdir(dir, 0o700) != 0, errno != EEXIST {
                logger.error("cannot create \(dir) for the engine memory file: \(Errno(errno))")
                return
            }
        }
    }

    private func moveAside(_ why: String) {
        let aside = path + ".invalid"
        let moved = rename(path, aside) == 0 ? "moved to \(aside)" : "could not be moved aside (\(Errno(errno)))"
        logger.error("the engine memory file \(path) cannot be used: \(why); \(moved); memory histories start empty")
        state.withLock { $0.stats.readOutcome = "invalid" }
    }

    /// Hands a snapshot to the writer (returns at once; the engine's task does not wait for the disk).
    public func submit(_ memory: EngineMemory) {
        let schedule = state.withLock { s -> Bool in
            if s.waiting != nil { s.stats.writesSuperseded &+= 1 }
            s.waiting = (memory, s.nextSequence)
            s.nextSequence &+= 1
            defer { s.scheduled = true }
            return !s.scheduled
        }
        guard schedule else { return }
        queue.async { [self] in
            let next = state.withLock { s -> (memory: EngineMemory, sequence: UInt64)? in
                defer { s.waiting = nil; s.scheduled = false }
                return s.waiting
            }
            if let next { write(next.memory, sequence: next.sequence) }
        }
    }

    /// Writes a snapshot now, after any write under way (at shutdown: the last one, after the engine's final flush).
    public func writeNow(_ memory: EngineMemory) {
        // (On the queue itself, `sync` would never return.)
        dispatchPrecondition(condition: .notOnQueue(queue))
        let sequence = state.withLock { s -> UInt64 in
            if s.waiting != nil { s.stats.writesSuperseded &+= 1 }
            s.waiting = nil
            defer { s.nextSequence &+= 1 }
            return s.nextSequence
        }
        queue.sync { write(memory, sequence: sequence) }
    }

    /// On the queue.
    private func write(_ memory: EngineMemory, sequence: UInt64) {
        let newer = state.withLock { s -> Bool in
            if sequence > s.writtenThrough { return true }
            s.stats.writesSuperseded &+= 1
            return false
        }
        guard newer else { return }
        // Its directory removed while the agent runs (or never made): made again, with the lock file in it.
        if access(Self.directory(of: path), F_OK) != 0 { makeDirectory() }
        let lockedOut = state.withLock { $0.lockedOut }
        let attempt = lockedOut ? .busy : lock.tryLock()
        if case .unavailable(let e) = attempt {
            // (Out of descriptors or memory: this write goes ahead unlocked, said once; the next one tries again.)
            lock.sayUnlocked(e, "cannot lock \(lock.lockPath)")
        } else if attempt == .busy {
            let first = state.withLock { s -> Bool in
                s.stats.writesLocked &+= 1
                // Before start-up read the file, a busy lock is not yet a verdict (``load(lockWait:)`` waits).
                guard s.loaded else { return false }
                defer { s.lockedOut = true }
                return !s.lockedOut
            }
            // (Kept out at start, it was said then; here, the lock file was made again and another agent took it.)
            if first {
                logger.error("another tapio agent took the engine memory file \(path) (its lock file was removed and made again): this agent no longer writes it")
            }
            return
        }
        let bytes = EngineMemoryCodec.encode(memory)
        var error = Self.writeAtomically(bytes, to: path)
        // Its directory removed since the check above: made again, once (the lock is taken again next time).
        if error != nil, access(Self.directory(of: path), F_OK) != 0 {
            makeDirectory()
            error = Self.writeAtomically(bytes, to: path)
        }
        let report = state.withLock { s -> String? in
            if let error {
                s.stats.writesFailed &+= 1
                // Once per distinct error, not every minute: the metric counts the rest.
                defer { s.lastError = error }
                return s.lastError == error ? nil : error
            }
            s.stats.writesSucceeded &+= 1
            s.stats.lastWriteBytes = bytes.count
            s.writtenThrough = sequence
            s.lastError = nil
            return nil
        }
        if let report {
            logger.error("writing the engine memory file failed: \(report); the agent goes on without it (an agent restart then forgets the memory histories), retried every minute")
        }
    }

    /// `bytes` to `path` through `<path>.tmp`: write, fsync, rename, fsync the directory. The error, or nil.
    static func writeAtomically(_ bytes: [UInt8], to path: String) -> String? {
        let tmp = path + ".tmp"
        // (A .tmp left by a crash is replaced, not reused: it may have another mode.)
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return "cannot create \(tmp): \(Errno(errno))" }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = Errno(errno)
                close(fd); unlink(tmp)
                return "cannot write \(tmp): \(e)"
            }
            written += n
        }
        if fsync(fd) != 0 {
            let e = Errno(errno)
            close(fd); unlink(tmp)
            return "cannot sync \(tmp): \(e)"
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = Errno(errno)
            unlink(tmp)
            return "cannot rename \(tmp) to \(path): \(e)"
        }
        // The rename itself is durable only once the directory is synced.
        let dfd = open(directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
        return nil
    }

    static func directory(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
    }

    /// The whole file, or nil when it is larger than `limit` (told by its size before anything is read).
    /// Anything but a regular file (a FIFO, a device, a directory) is refused with EINVAL, unread: opened without
    /// O_NONBLOCK, a FIFO with no writer would have held the agent's start for good.
    static func readAll(_ path: String, limit: Int) -> Result<[UInt8]?, Errno> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { return .failure(Errno(errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(Errno(errno)) }
        guard st.st_mode & S_IFMT == S_IFREG else { return .failure(Errno(EINVAL)) }
        guard st.st_size >= 0, st.st_size <= limit else { return .success(nil) }
        let size = Int(st.st_size)
        var out = [UInt8](repeating: 0, count: size)
        var filled = 0
        while filled < size {
            let n = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, size - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(Errno(errno))
            }
            if n == 0 { break }
            filled += n
        }
        // (A file that shrank while it was read is what was there: the checksum will tell.)
        out.removeLast(size - filled)
        return .success(out)
    }
}
