import Foundation
import NIOCore
import TapioSinks
import TapioTestSupport
import Testing

/// The `/metrics` endpoint listens on the pod network: what a peer can make it hold is bounded, and what it refuses
/// is counted (`HTTPEndpoint.Limits`).
@Suite("The metrics endpoint's limits", .timeLimit(.minutes(2)))
struct HTTPEndpointLimitsTests {
    /// Waits for `condition`, checking every 10 ms, for at most `seconds` (a bound on a hang, not a timing).
    func eventually(_ seconds: Double = 60, _ condition: () -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    func endpoint(_ limits: HTTPEndpoint.Limits, metrics: TapioMetrics? = nil, page: Int = 1 << 20) -> HTTPEndpoint {
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: page)
        return HTTPEndpoint(host: "127.0.0.1", port: 0, routes: [
            "/page": { .init(body: body) },
            "/healthz": { .init(body: Array("ok\n".utf8)) },
        ], limits: limits, metrics: metrics)
    }

    @Test func aPeerThatPipelinesAndNeverReadsCostsOnePage() async throws {
        let metrics = TapioMetrics()
        let e = endpoint(.init(), metrics: metrics, page: 4 << 20)
        let port = try await e.start()
        defer { Task { await e.shutdown() } }
        // 200 requests for a 4 MiB page in one write, nothing read: without a bound each is rendered and queued,
        // 800 MiB held for one peer.
        let greedy = try Loopback.RawClient(port: port, receiveBuffer: 4096)
        try greedy.send(String(repeating: "GET /page HTTP/1.1\r\nHost: x\r\n\r\n", count: 200))
        #expect(try await eventually { e.shed >= 1 }, "the pipelining peer was never refused")
        #expect(e.unsentBytes <= 4 << 20, "more than one page held: \(e.unsentBytes) bytes")
        let exposition = String(decoding: metrics.render(), as: UTF8.self)
        #expect(exposition.contains("tapio_http_refused_total 1"), "\(exposition)")
        // Its connection is closed, so what it held is released; everyone else is still answered.
        _ = greedy.readToEnd()
        #expect(try await eventually { e.unsentBytes == 0 }, "\(e.unsentBytes) bytes still held")
        let (status, body) = try await Loopback.get(port: port, path: "/healthz")
        #expect(status == 200 && body == "ok\n")
        // A client that reads each answer before asking again is never refused, keep-alive or not.
        let polite = try Loopback.RawClient(port: port)
        for _ in 0..<3 {
            try polite.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            var got: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !String(decoding: got, as: UTF8.self).hasSuffix("ok\n") {
                let n = buffer.withUnsafeMutableBytes { recv(polite.fd, $0.baseAddress, $0.count, 0) }
                try #require(n > 0, "the polite client's connection ended")
                got += buffer[..<n]
            }
        }
        #expect(e.shed == 1)
    }

    @Test func connectionsPastTheCapAreClosedAndCounted() async throws {
        let e = endpoint(.init(maxConnections: 3))
        let port = try await e.start()
        defer { Task { await e.shutdown() } }
        var held = try (0..<3).map { _ in try Loopback.RawClient(port: port) }
        #expect(try await eventually { e.openConnections == 3 }, "\(e.openConnections) connections open")
        let fourth = try Loopback.RawClient(port: port)
        #expect(fourth.readToEnd() == [], "the fourth connection was not closed as accepted")
        #expect(e.shed == 1)
        held.removeLast()
        #expect(try await eventually { e.openConnections == 2 }, "\(e.openConnections) connections open")
        let (status, _) = try await Loopback.get(port: port, path: "/healthz")
        #expect(status == 200)
        withExtendedLifetime(held) {}
    }

    @Test func anIdleConnectionIsClosed() async throws {
        let e = endpoint(.init(idleTimeout: .milliseconds(300)))
        let port = try await e.start()
        defer { Task { await e.shutdown() } }
        let idle = try Loopback.RawClient(port: port)
        try idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        // The answer comes, then nothing more is asked: the server closes it (the read sees the end, not a timeout).
        let got = try #require(idle.readToEnd(), "the idle connection was never closed")
        #expect(String(decoding: got, as: UTF8.self).hasSuffix("ok\n"))
        #expect(try await eventually { e.openConnections == 0 })
    }
}
