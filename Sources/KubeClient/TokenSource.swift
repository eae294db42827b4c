import Foundation
import Synchronization

/// Supplies the bearer token. A token file is re-read whenever its modification time or size changes, so a
/// rotated service-account token is picked up on the next request without restarting.
final class TokenSource: Sendable {
    private struct Cached { var token: String?; var mtime: Date?; var size: Int? }
    private let fixed: String?
    private let file: String?
    private let cache = Mutex(Cached())

    init(token: String?, file: String?) {
        fixed = token
        self.file = file
    }

    func current() -> String? {
        guard let file else { return fixed }
        let attrs = try? FileManager.default.attributesOfItem(atPath: file)
        let mtime = attrs?[.modificationDate] as? Date
        let size = (attrs?[.size] as? NSNumber)?.intValue
        return cache.withLock { c in
            if c.token != nil, c.mtime == mtime, c.size == size { return c.token }
            // A file being rewritten, or rewritten with a control character (which the HTTP client would refuse,
            // quoting the token into the error), keeps the last good token and is read again on the next request.
            if let d = try? BoundedFile.read(file, limit: BoundedFile.credentialLimit), let s = String(data: d, encoding: .utf8),
               BearerToken.problem(BearerToken.fromFile(s)) == nil {
                c.token = BearerToken.fromFile(s)
                c.mtime = mtime
                c.size = size
            }
            return c.token ?? fixed
        }
    }
}
