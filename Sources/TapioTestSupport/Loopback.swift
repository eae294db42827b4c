import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Helpers for processes a test or benchmark runs on 127.0.0.1: a port to give them, and their HTTP endpoints.
public enum Loopback {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// A TCP port on 127.0.0.1 that nobody listens on right now (bound, read back and released).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw Failure(description: "bind 127.0.0.1:0: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// GET http://127.0.0.1:`port``path`: the status code and the body as text.
    public static func get(port: Int, path: String) async throws -> (status: Int, body: String) {
        guard let url = URL(string: "http://127.0.0.1:\(port)\(path)") else {
            throw Failure(description: "not a URL path: \(path)")
        }
        let (data, response) = try await URLSession.shared.data(from: url)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}
