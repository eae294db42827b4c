#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard output and standard error, written with write(2).
///
/// Foundation's `FileHandle.write(_:)` is, on Linux, a `try!` around a write that throws when write(2) fails: a
/// failed write killed the process with a runtime trap. SwiftNIO ignores SIGPIPE for the whole process once it
/// opens a socket (the Kubernetes client, the metrics endpoint), so a reader that has gone — `tapio sniff -o json |
/// head -n1`, quitting `less` — was such a failure, as are a full disk and a full non-blocking descriptor.
public enum StandardStream: Sendable {
    case output, error

    var descriptor: Int32 { self == .output ? STDOUT_FILENO : STDERR_FILENO }

    /// Writes all of `text`; see ``write(_:)-([UInt8])``.
    public func write(_ text: String) { write(Array(text.utf8)) }

    /// Writes all of `bytes`. An interrupted write is retried and a full non-blocking descriptor waited for.
    /// When standard output's reader has gone (EPIPE), the process ends as a Unix tool does then, by SIGPIPE: nothing
    /// it does from then on can be seen. Any other failure — standard error gone, a full disk — drops the text: a
    /// log line must not take the agent down.
    public func write(_ bytes: [UInt8]) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { buffer in
                // `done < count`, so the buffer is not empty and has a base address.
                Self.systemWrite(descriptor, buffer.baseAddress! + done, buffer.count - done)
            }
            if n > 0 {
                done += n
                continue
            }
            let e = errno
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) {
                var p = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 1000)
                continue
            }
            if n < 0 && e == EPIPE && self == .output {
                signal(SIGPIPE, SIG_DFL)
                raise(SIGPIPE)
            }
            return
        }
    }

    private static func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(fd, p, n)
        #else
        Darwin.write(fd, p, n)
        #endif
    }
}
