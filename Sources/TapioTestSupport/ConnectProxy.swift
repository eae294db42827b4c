import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP `CONNECT` proxy on 127.0.0.1 for tests of clients that must go through one: it records each tunnel's
/// target (and its `Proxy-Authorization`, if any), connects to it when it is on 127.0.0.1, answers 200 and relays
/// bytes both ways. `requireAuthorization` makes it answer 407 to a request without that header value. Threads and
/// blocking sockets: a test helper, not a server. Call `stop()` when done.
public final class ConnectProxy: Sendable {
    public let port: Int
    private let listener: Int32
    private let state = Mutex(State())
    private let requireAuthorization: String?

    struct State {
        var targets: [String] = []
        var authorizations: [String?] = []
        var sockets: Set<Int32> = []
        var stopped = false
    }

    /// The `host:port` of every tunnel asked for, in order.
    public var targets: [String] { state.withLock { $0.targets } }
    /// The `Proxy-Authorization` header of each (nil: none).
    public var authorizations: [String?] { state.withLock { $0.authorizations } }

    public init(requireAuthorization: String? = nil) throws {
        self.requireAuthorization = requireAuthorization
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Loopback.Failure(description: "socket: errno \(errno)") }
        do {
            port = try Loopback.bindAnyPort(fd)
            guard listen(fd, 64) == 0 else { throw Loopback.Failure(description: "listen 127.0.0.1:\(port): errno \(errno)") }
        } catch {
            close(fd)
            throw error
        }
        listener = fd
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Stops accepting and cuts every tunnel. Descriptors are only shut down here (under the lock, so none has been
    /// closed and its number reused by another test meanwhile); the threads that own them close them.
    public func stop() {
        state.withLock { s in
            s.stopped = true
            for fd in s.sockets { shutdown(fd, Int32(SHUT_RDWR)) }
        }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private func track(_ fd: Int32) -> Bool {
        state.withLock { s in
            guard !s.stopped else { return false }
            s.sockets.insert(fd)
            return true
        }
    }

    private func release(_ fd: Int32) {
        state.withLock { s in
            s.sockets.remove(fd)
            close(fd)
        }
    }

    private func acceptLoop() {
        defer { close(listener) }
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if state.withLock({ $0.stopped }) { return }
                // EINTR, ECONNABORTED, EMFILE on a loaded machine: try again (briefly, should it persist).
                if errno != EINTR { usleep(10_000) }
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            guard track(client) else {
                close(client)
                return
            }
            Thread.detachNewThread { [self] in serve(client) }
        }
    }

    /// Reads the CONNECT head, opens the tunnel and relays until either side closes.
    private func serve(_ client: Int32) {
        defer { release(client) }
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while head.count < 16_384 {
            guard read(client, &byte, 1) == 1 else { return }
            head.append(byte)
            if head.suffix(4) == Array("\r\n\r\n".utf8) { break }
        }
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let request = lines.first?.split(separator: " ") ?? []
        guard request.count == 3, request[0] == "CONNECT" else {
            reply(client, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        }
        let target = String(request[1])
        let auth = lines.dropFirst().first { $0.lowercased().hasPrefix("proxy-authorization:") }
            .map { String($0.dropFirst("proxy-authorization:".count)).trimmingCharacters(in: .whitespaces) }
        state.withLock {
            $0.targets.append(target)
            $0.authorizations.append(auth)
        }
        if let required = requireAuthorization, auth != required {
            reply(client, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
            return
        }
        guard let colon = target.lastIndex(of: ":"), let port = Int(target[target.index(after: colon)...]),
              ["127.0.0.1", "localhost"].contains(String(target[..<colon])) else {
            reply(client, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        }
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard upstream >= 0, track(upstream) else {
            if upstream >= 0 { close(upstream) }
            return
        }
        defer { release(upstream) }
        var addr = Loopback.address(port: port)
        let connected = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            reply(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        }
        reply(client, "HTTP/1.1 200 Connection Established\r\n\r\n")
        var fds = [pollfd(fd: client, events: Int16(POLLIN), revents: 0), pollfd(fd: upstream, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = poll(&fds, 2, 1000)
            if n < 0 && errno != EINTR { return }
            if state.withLock({ $0.stopped }) { return }
            for i in 0..<2 where fds[i].revents != 0 {
                let got = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
                guard got > 0 else { return }
                var sent = 0
                while sent < got {
                    let w = buffer.withUnsafeBytes { write(fds[1 - i].fd, $0.baseAddress! + sent, got - sent) }
                    guard w > 0 else { return }
                    sent += w
                }
            }
        }
    }

    private func reply(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
