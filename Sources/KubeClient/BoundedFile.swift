import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads a file named by a user (a kubeconfig, a file it points to, a token, a `--policy` manifest) without trusting
/// its size: at most `limit` bytes are read, so `/dev/zero`, a runaway pipe or a wrong path to a disk image is
/// refused with its name instead of filling memory. Pipes and process substitution (`<(kustomize build …)`) work.
public enum BoundedFile {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case cannotRead(path: String, reason: String)
        case tooLarge(path: String, limit: Int)
        public var description: String {
            switch self {
            case .cannotRead(let path, let reason): "cannot read \(path): \(reason)"
            case .tooLarge(let path, let limit): "\(path) is larger than \(limit) bytes, more than such a file can hold"
            }
        }
    }

    /// A kubeconfig, a manifest (the API server's limit is 3 MiB): 4 MiB leaves room for comments.
    public static let textLimit = 4 << 20
    /// A certificate, a key or a bearer token.
    public static let credentialLimit = 1 << 20

    public static func read(_ path: String, limit: Int) throws(Failure) -> Data {
        func failure(_ code: Int32) -> Failure {
            .cannotRead(path: path, reason: code == ENOENT ? "no such file" : String(cString: strerror(code)))
        }
        // Opened without blocking, so a FIFO is not waited on before it is known to be one.
        var fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw failure(errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw failure(errno) }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            throw .cannotRead(path: path, reason: "a directory, not a file")
        case S_IFIFO:
            // A named pipe: wait for its writer, as `cat` would (a FIFO opened without blocking and without a writer
            // reads as empty). Process substitution's /dev/fd/N is a pipe with its writer already attached.
            let blocking = open(path, O_RDONLY | O_CLOEXEC)
            guard blocking >= 0 else { throw failure(errno) }
            close(fd)
            fd = blocking
        default:
            // Reads below may block (a character device, a regular file): clear O_NONBLOCK.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while data.count <= limit {
            let want = min(buffer.count, limit + 1 - data.count)
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, want) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(errno)
            }
            data.append(contentsOf: buffer[..<n])
        }
        guard data.count <= limit else { throw .tooLarge(path: path, limit: limit) }
        return data
    }
}
