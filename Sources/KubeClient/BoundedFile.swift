import Foundation

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
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied or not a file" : "no such file"
            throw .cannotRead(path: path, reason: reason)
        }
        defer { try? handle.close() }
        var data = Data()
        do {
            while data.count <= limit, let chunk = try handle.read(upToCount: min(1 << 16, limit + 1 - data.count)),
                  !chunk.isEmpty {
                data.append(chunk)
            }
        } catch {
            throw .cannotRead(path: path, reason: error.localizedDescription)
        }
        guard data.count <= limit else { throw .tooLarge(path: path, limit: limit) }
        return data
    }
}
