#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small-file reads with plain syscalls: /proc and cgroup files are tiny, and Foundation's readers cost several
/// microseconds more than the kernel does.
enum FileIO {
    /// Reads a whole small file as text. Returns the errno on failure.
    static func read(_ path: String, limit: Int = 1 << 16) -> Result<String, Errno> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return .failure(Errno(errno)) }
        defer { close(fd) }
        var capacity = 4096
        while true {
            var outcome: Result<String, Errno>? = nil
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
                var filled = 0
                while filled < capacity {
                    let n = pread(fd, buffer.baseAddress! + filled, capacity - filled, off_t(filled))
                    if n < 0 {
                        if errno == EINTR { continue }
                        outcome = .failure(Errno(errno)); return
                    }
                    if n == 0 { break }
                    filled += n
                }
                if filled < capacity || capacity >= limit {
                    outcome = .success(String(decoding: UnsafeBufferPointer(rebasing: buffer[..<filled]), as: UTF8.self))
                }
            }
            if let outcome { return outcome }
            capacity *= 4
        }
    }

    /// Reads a small /proc or cgroup file into a stack buffer and hands its bytes to `body`, with as few syscalls
    /// as possible: seq_file regenerates the text on every read at a non-zero offset, so a short first read (less
    /// than half the buffer — no record is that long) is taken as the end of the file. Returns nil (and the errno)
    /// when the file cannot be opened or read, or is larger than the buffer.
    static func withBytes<R>(_ path: String, capacity: Int = 16 << 10,
                             _ body: (UnsafeBufferPointer<UInt8>) -> R) -> Result<R, Errno>? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return .failure(Errno(errno)) }
        defer { close(fd) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer -> Result<R, Errno>? in
            var filled = 0
            while filled < capacity {
                let n = Glibc.read(fd, buffer.baseAddress! + filled, capacity - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    return .failure(Errno(errno))
                }
                filled += n
                if n == 0 || (filled == n && n < capacity / 2) {
                    return .success(body(UnsafeBufferPointer(rebasing: buffer[..<filled])))
                }
            }
            return nil
        }
    }

    /// The inode of a directory (a cgroup's id), or nil when it does not exist.
    static func inode(of path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    /// Writes `text` to an existing file (cgroup control files).
    static func write(_ text: String, to path: String) -> Errno? {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { return Errno(errno) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        return n < 0 ? Errno(errno) : nil
    }
}

/// An errno value with its name for messages.
public struct Errno: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int32
    public init(_ code: Int32) { self.code = code }
    public var description: String { String(cString: strerror(code)) + " (errno \(code))" }
}
