import Foundation
import NIOCore
import Synchronization
import TapioSinks
import TapioTestSupport
import Testing

/// The `/metrics` endpoint listens on the pod network: what a peer can make it hold is bounded, and what it refuses
/// is counted (`HTTPEndpoint.Limits`).
@Suite("The metrics endpoint's limits", .timeLimit(.minutes(2)))
struct HTTPEndpointLimitsTests {
    /// Waits for `condition` (the module's `eventually`, every 10 ms, at most 60 s: a bound on a hang, not a timing).
    func eventually(_ condition: () -> Bool) async -> Bool {
        await TapioTestSupport.eventually(timeout: .seconds(60), every: .milliseconds(10)) { condition() }
    }

    /// How many times a route rendered its page.
    final class Renders: Sendable {
        let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .relaxed) }
    }

    func endpoint(_ limits: HTTPEndpoint.Limits, metrics: TapioMetrics? = nil, page: Int = 1 << 20,
                  renders: Renders = Renders()) -> HTTPEndpoint {
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: page)
        return HTTPEndpoint(host: "127.0.0.1", port: 0, routes: [
            "/page": {
                renders.count.add(1, ordering: .relaxed)
                return .init(body: body)
            },
            "/healthz": { .init(body: Array("ok\n".utf8)) },
        ], limits: limits, metrics: metrics)
    }

    /// Reads one answer ending in `suffix` on a kept-alive connection.
    func answer(_ c: Loopback.RawClient, endingWith suffix: String) async throws {
        let got = await c.read { String(decoding: $0, as: UTF8.self).hasSuffix(suffix) }
        try #require(got.map { String(decoding: $0, as: UTF8.self).hasSuffix(suffix) } == true,
                     "the connection ended before its answer (errno \(c.lastError))")
    }

    /// A page larger than any socket buffer here (tcp_wmem's default maximum is 4 MiB): unread, it stays unsent.
    static let bigPage = 8 << 20

    @Test func aPeerThatPipelinesAndNeverReadsCostsOnePage() async throws {
        let metrics = TapioMetrics()
        let renders = Renders()
        let e = endpoint(.init(), metrics: metrics, page: Self.bigPage, renders: renders)
        let port = try await e.start()
        defer { Task { await e.shutdown() } }
        // 200 requests for an 8 MiB page in one write, nothing read: without a bound each is rendered and queued,
        // 1.6 GiB held for one peer.
        let greedy = try Loopback.RawClient(port: port, receiveBuffer: 4096)
        try greedy.send(String(repeating: "GET /page HTTP/1.1\r\nHost: x\r\n\r\n", count: 200))
        #expect(await eventually { e.shed >= 1 }, "the pipelining peer was never refused")
        #expect(e.unsentBytes <= Self.bigPage, "more than one page held: \(e.unsentBytes) bytes")
        let exposition = String(decoding: metrics.render(), as: UTF8.self)
        #expect(exposition.contains("tapio_http_refused_total 1"), "\(exposition)")
        // Its connection is closed, so what it held is released; everyone else is still answered.
        _ = await greedy.readToEnd()
        #expect(await eventually { e.unsentBytes == 0 }, "\(e.unsentBytes) bytes still held")
        let (status, body) = try await Loopback.get(port: port, path: "/healthz")
        #expect(status == 200 && body == "ok\n")
        // The requests already read with the others are not rendered once the connection is refused (they are
        // replayed to the handler as the pipeline is torn down).
        #expect(renders.value == 1, "\(renders.value) pages rendered for a refused peer")
        // A client that reads each answer before asking again is never refused, keep-alive or not.
        let polite = try Loopback.RawClient(port: port)
        for _ in 0..<3 {
            try polite.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try await answer(polite, endingWith: "ok\n")
        }
        #expect(e.shed == 1)
    }

    /// At the cap a new connection is let in by closing the one that has gone longest without a request: a peer
    /// that holds idle connections cannot lock out a kubelet probe. Connections with an answer on its way are not
    /// closed for it; with only such, the new one is refused.
    @Test func atTheCapTheLongestIdleConnectionMakesRoom() async throws {
        let e = endpoint(.init(maxConnections: 3))
        let port = try await e.start()
        defer { Task { await e.shutdown() } }
        var idle: [Loopback.RawClient] = []
        for n in 1...3 {
            idle.append(try Loopback.RawClient(port: port))
            #expect(await eventually { e.openConnections == n }, "\(e.openConnections) connections open")
        }
        let probe = try Loopback.RawClient(port: port)
        try probe.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try await answer(probe, endingWith: "ok\n")
        #expect(await idle[0].readToEnd() == [], "the oldest idle connection was not the one closed")
        #expect(e.shed == 1)
        #expect(await eventually { e.openConnections == 3 })
        withExtendedLifetime(idle) {}

        let busyEndpoint = endpoint(.init(maxConnections: 2), page: Self.bigPage)
        let busyPort = try await busyEndpoint.start()
        defer { Task { await busyEndpoint.shutdown() } }
        var busy: [Loopback.RawClient] = []
        for _ in 0..<2 {
            let c = try Loopback.RawClient(port: busyPort, receiveBuffer: 4096)
            try c.send("GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
            busy.append(c)
        }
        #expect(await eventually { busyEndpoint.unsentBytes > Self.bigPage }, "both pages not on their way")
        let third = try Loopback.RawClient(port: busyPort)
        #expect(await third.readToEnd() == [], "a connection was let in by closing one with an answer on its way")
        #expect(busyEndpoint.shed == 1)
        withExtendedLifetime(busy) {}
    }

    /// An answer nobody takes gives its share of the budget back after the stall timeout.
    @Test func anAnswerNotTakenIsDropped() async throws {
        let e = endpoint(.init(stallTimeout: .milliseconds(300)), page: Self.bigPage)
        let port = try await e.start()
        defer { Task { await e.shutdown() } }
        let stuck = try Loopback.RawClient(port: port, receiveBuffer: 4096)
        try stuck.send("GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await eventually { e.unsentBytes == 0 && e.shed == 1 }, "\(e.unsentBytes) bytes held, shed \(e.shed)")
        // The connection ended with the page cut short: what the socket buffers held, not the whole answer.
        let got = try #require(await stuck.readToEnd(), "the stalled connection was never closed")
        #expect(got.count < Self.bigPage, "the whole page arrived: \(got.count) bytes")
    }

    @Test func anIdleConnectionIsClosed() async throws {
        let e = endpoint(.init(idleTimeout: .seconds(2)))
        let port = try await e.start()
        defer { Task { await e.shutdown() } }
        let idle = try Loopback.RawClient(port: port)
        try idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try await answer(idle, endingWith: "ok\n")
        // Then nothing more is asked: the server closes it, and the client reads the end.
        #expect(await eventually { e.openConnections == 0 }, "the server never closed the idle connection")
        let rest = try #require(await idle.readToEnd(),
                                "the client never saw the end (errno \(idle.lastError), fd \(idle.fd) now connected to port \(idle.peerPort.map(String.init) ?? "none"), the endpoint's \(port))")
        #expect(rest.isEmpty)
    }
}
