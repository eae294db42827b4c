import Foundation
import KubeClient
import KubeEmulator
import TapioTestSupport
import Testing

/// The API server the tests talk to takes bodies from them as a real one does from anyone: what would trap or hold
/// it without bound is refused (the emulator runs as CI's API server; a crash there fails every test at once).
@Suite("The emulator's input limits", .timeLimit(.minutes(2)))
struct EmulatorInputTests {
    /// YAML 1.1's base-60 integers (`1:30`) stay strings, as Kubernetes' YAML reader keeps them; a long one made
    /// Yams multiply past Int64 and trap the process.
    @Test func aBase60NumberIsAStringAndNeverTraps() throws {
        let v = try JSONValue.parseYAML("{metadata: {name: x}, v: 1:0:0:0:0:0:0:0:0:0:0, t: 1:30, f: 1:30.5, n: 90}")
        #expect(v["v"] == .string("1:0:0:0:0:0:0:0:0:0:0"))
        #expect(v["t"] == .string("1:30"))
        #expect(v["f"] == .string("1:30.5"))
        #expect(v["n"] == .int(90))
    }

    /// Nine levels of ten aliases are 10⁹ values once copied: refused at the budget, not expanded.
    @Test func anAliasBombIsRefused() throws {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 { yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let clock = ContinuousClock(), start = clock.now
        #expect(throws: JSONValue.YAMLError.self) { try JSONValue.parseYAML(yaml) }
        // Not a timing assertion: a bound on a hang, far above the budget's few seconds on a loaded machine.
        #expect(clock.now - start < .seconds(60))
    }

    /// A request body past 3 MiB is answered 413, as kube-apiserver answers it, not buffered whole.
    @Test func aBodyPastThreeMebibytesIsRefused() async throws {
        try await withCluster { _, client, ns in
            let big = String(repeating: "x", count: 4 << 20)
            let body = Data(#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"big","annotations":{"k":"\#(big)"}}}"#.utf8)
            let type = ResourceType(Lease.self)
            do {
                _ = try await client.createRaw(type, namespace: ns, body: body)
                Issue.record("a 4 MiB body was accepted")
            } catch let e as KubeError {
                guard case .server(let code, _, _) = e, code == 413 else { Issue.record("\(e)"); return }
            }
            // The connection's next request is served as usual.
            let small = Data(#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"small"}}"#.utf8)
            _ = try await client.createRaw(type, namespace: ns, body: small)
        }
    }

    /// A client that opens a watch and never reads it: once more events wait for it than the buffer holds, its
    /// watch is ended (it would resume from the last version it saw) instead of buffering every change for it.
    @Test func aWatchThatFallsBehindIsEnded() async throws {
        let emu = try await KubeEmulator.start(tls: false, watchBuffer: 8)
        let client = try KubeClient(config: KubeConfig.load(path: emu.kubeconfigPath))
        do {
            let stuck = try Loopback.RawClient(port: emu.port, receiveBuffer: 4096)
            try stuck.send("GET /apis/coordination.k8s.io/v1/namespaces/default/leases?watch=true HTTP/1.1\r\n"
                           + "Host: x\r\nAuthorization: Bearer \(emu.token)\r\n\r\n")
            #expect(await eventually(timeout: .seconds(60)) { emu.openWatchCount == 1 })
            // 64 changes of 128 KiB each: far more than the socket's buffers take, so they wait in the emulator.
            let note = String(repeating: "x", count: 128 << 10)
            for i in 0..<64 {
                var l = lease("l\(i)", "default")
                l.metadata.annotations = ["note": note]
                _ = try await client.create(l)
                if emu.openWatchCount == 0 { break }
            }
            #expect(await eventually(timeout: .seconds(60)) { emu.openWatchCount == 0 }, "the stuck watch was never ended")
            // What it had buffered is delivered, then the response ends.
            #expect(await stuck.readToEnd() != nil, "the stuck watch's connection never ended")
            // A watch that would start further behind than its buffer holds is told to list instead (410).
            let late = try Loopback.RawClient(port: emu.port)
            try late.send("GET /apis/coordination.k8s.io/v1/namespaces/default/leases?watch=true HTTP/1.1\r\n"
                          + "Host: x\r\nAuthorization: Bearer \(emu.token)\r\n\r\n")
            let answer = String(decoding: try #require(await late.readToEnd()), as: UTF8.self)
            #expect(answer.contains(#""type":"ERROR""#) && answer.contains("list instead"), "\(answer.prefix(2000))")
        } catch {
            Issue.record(error)
        }
        try await client.shutdown()
        await emu.stop()
    }
}
