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
        return try bindAnyPort(fd)
    }

    /// Binds `fd` to 127.0.0.1 on a port the kernel picks, and returns that port.
    static func bindAnyPort(_ fd: Int32) throws -> Int {
        var addr = address(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw Failure(description: "bind 127.0.0.1:0: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// 127.0.0.1:`port` as a socket address.
    static func address(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return addr
    }

    /// GET http://127.0.0.1:`port``path`: the status code and the body as text.
    public static func get(port: Int, path: String) async throws -> (status: Int, body: String) {
        guard let url = URL(string: "http://127.0.0.1:\(port)\(path)") else {
            throw Failure(description: "not a URL path: \(path)")
        }
        let (data, response) = try await URLSession.shared.data(from: url)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// A raw TCP connection to 127.0.0.1, so a test can do what no well-behaved HTTP client does (pipeline without
    /// reading, hold a watch open and never read it). Reads give up after 60 s without a byte: a bound on a hang.
    public final class RawClient {
        public let fd: Int32
        public init(port: Int, receiveBuffer: Int32? = nil) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
            if var size = receiveBuffer {
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            var addr = Loopback.address(port: port)
            let ok = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            // No close here: the instance is whole, so deinit closes it (closing twice could close a descriptor
            // another test has just been given).
            guard ok else { throw Failure(description: "connect: errno \(errno)") }
        }
        deinit { close(fd) }
        public func send(_ text: String) throws {
            let bytes = Array(text.utf8)
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EINTR { continue }  // a signal (another test's child exiting), not an error
                guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
                sent += n
            }
        }
        /// The port this connection's socket is connected to now (nil if it is not a connected socket): for a
        /// failure message, to tell a connection that stayed open from a descriptor closed and reused elsewhere.
        public var peerPort: Int? {
            var addr = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) == 0 }
            }
            return ok ? Int(UInt16(bigEndian: addr.sin_port)) : nil
        }
        /// The errno of the last read that failed (ETIMEDOUT: nothing came for 60 s; ECONNRESET: the server reset it).
        public private(set) var lastError: Int32 = 0
        /// Reads until `done` holds for what was read, or the server ends the connection: the bytes read (nil when
        /// nothing came for 60 s or the read failed). It waits by polling and sleeping, never by blocking a thread:
        /// a blocking read would hold one of Swift concurrency's few threads (two on a 2-core machine), and with
        /// both held, a server of the same process that answers in tasks (the emulator) could not answer at all.
        public func read(until done: ([UInt8]) -> Bool = { _ in false }) async -> [UInt8]? {
            var out: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            var quietSince = ContinuousClock.now
            while !done(out) {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n == 0 { return out }
                if n > 0 {
                    out += buffer[..<n]
                    quietSince = .now
                    continue
                }
                guard errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else {
                    lastError = errno
                    return nil
                }
                if ContinuousClock.now - quietSince > .seconds(60) {
                    lastError = ETIMEDOUT
                    return nil
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return out
        }
        /// Reads until the server ends the connection (see ``read(until:)``).
        public func readToEnd() async -> [UInt8]? { await read() }
    }
}
