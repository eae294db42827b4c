import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` to `path` as an executable (mode 0755) through a descriptor closed on exec.
///
/// Why not `String.write(toFile:)` and `chmod`: a test that runs the file shares its process with tests that start
/// programs at the same moment, and a descriptor open for writing that one of their children inherits makes running
/// the file fail with "Text file busy" (ETXTBSY) for as long as that child keeps it. `String.write` does not set
/// close-on-exec; in a parallel run an exec-credential plugin written that way failed to start.
public func writeExecutable(_ text: String, to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        written += n
    }
    // The process's umask may have taken bits off the mode given to open.
    guard fchmod(fd, 0o755) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
}
