import Foundation
import KubeClient
import KubeRuntime
import Logging
import TapioTestSupport
import Testing

/// A Lease as a stricter reader sees it: `spec.holderIdentity` required. Leases without a holder are valid to any API
/// server and undecodable here — the situation of an Insight written by another version of Tapio, reproduced with a
/// built-in kind so it runs the same against the emulator and a real server.
struct StrictLease: KubeResource {
    static let apiVersion = "coordination.k8s.io/v1"
    static let kind = "Lease"
    static let plural = "leases"
    static let namespaced = true
    struct Spec: Codable, Sendable { var holderIdentity: String }
    var metadata: ObjectMeta
    var spec: Spec
}

@Suite("Objects that do not decode", .timeLimit(.minutes(3)))
struct UndecodableObjectTests {
    @Test func aWatchEventWhoseObjectDoesNotDecodeIsReportedWithItsNameAndVersion() throws {
        let line = #"{"type":"MODIFIED","object":{"metadata":{"name":"bad","namespace":"n","resourceVersion":"42"},"spec":{}}}"#
        let event = try WatchEvent<StrictLease>.decode(line: Array(line.utf8))
        guard case .undecodable(let type, let object) = event else { Issue.record("got \(event)"); return }
        #expect(type == "MODIFIED")
        #expect(object.name == "bad" && object.namespace == "n" && object.resourceVersion == "42")
        #expect(object.message.contains("holderIdentity"))
        // Not an object at all, or a line that is not an event: still an error, the stream is broken.
        #expect(throws: KubeError.self) { try WatchEvent<StrictLease>.decode(line: Array(#"{"type":"ADDED"}"#.utf8)) }
        let odd = try WatchEvent<StrictLease>.decode(line: Array(#"{"type":"ADDED","object":7}"#.utf8))
        guard case .undecodable(_, let nameless) = odd else { Issue.record("got \(odd)"); return }
        #expect(nameless.name == nil && nameless.description.hasPrefix("an object without a name"))
    }

    @Test func aListPageSkipsWhatDoesNotDecodeAndKeepsTheRest() throws {
        let page = #"""
            {"metadata":{"resourceVersion":"9"},"items":[
              {"metadata":{"name":"a"},"spec":{"holderIdentity":"x"}},
              {"metadata":{"name":"b","labels":{"k":7}},"spec":{}},
              7, null, "text", [1],
              {"metadata":{"name":"c"},"spec":{"holderIdentity":"y"}}]}
            """#
        let list = try JSONDecoder().decode(ObjectList<StrictLease>.self, from: Data(page.utf8))
        #expect(list.items.map(\.metadata.name) == ["a", "c"])
        #expect(list.undecodableCount == 5)
        #expect(list.undecodable.first?.name == "b", "the name is read even where other metadata is malformed")
        #expect(list.metadata.resourceVersion == "9")
        let empty = try JSONDecoder().decode(ObjectList<StrictLease>.self, from: Data(#"{"metadata":{},"items":null}"#.utf8))
        #expect(empty.items.isEmpty && empty.undecodableCount == 0)
    }

    @Test func oneUndecodableObjectNeitherFailsTheListNorStallsTheWatch() async throws {
        try await withCluster { cluster, plain, ns in
            let outcomes = Box(Outcomes())
            let lines = Box<[(level: Logger.Level, message: String)]>([])
            let client = try observedClient(cluster, outcomes, logger: CapturingLogHandler.logger(lines))
            do { try await run(plain, client, ns, outcomes, lines) } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    func run(_ plain: KubeClient, _ client: KubeClient, _ ns: String, _ outcomes: Box<Outcomes>,
             _ lines: Box<[(level: Logger.Level, message: String)]>) async throws {
        _ = try await plain.create(lease("good-1", ns, holder: "h1"))
        _ = try await plain.create(lease("bad", ns))
        _ = try await plain.create(lease("good-2", ns, holder: "h2"))

        let page = try await client.list(StrictLease.self, namespace: ns)
        #expect(Set(page.items.map(\.metadata.name)) == ["good-1", "good-2"])
        #expect(page.undecodable.map(\.name) == ["bad"])
        #expect(outcomes.get.undecodable["leases"] == 1)
        #expect(lines.get.contains { $0.level == .warning && $0.message.contains("\(ns)/bad") && $0.message.contains("list leases") })

        // A watcher: the initial set without the bad object; then a change to the bad object (still bad) must
        // not stall it: objects written after it arrive, and the bad one arrives once it is readable.
        let seen = Box<[String]>([])
        let initial = Box<Set<String>?>(nil)
        let cfg = WatcherConfig(initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(200))
        let watch = Task {
            var frame: Set<String> = []
            for try await e in Watcher(client: client, StrictLease.self, namespace: ns, config: cfg) {
                switch e {
                case .initStart: frame = []
                case .initApply(let l): frame.insert(l.metadata.name ?? "")
                case .initDone: initial.with { $0 = frame }
                case .apply(let l): seen.with { $0.append("\(l.metadata.name ?? ""):\(l.spec.holderIdentity)") }
                case .delete(let l): seen.with { $0.append("-\(l.metadata.name ?? "")") }
                }
            }
        }
        defer { watch.cancel() }
        #expect(await eventually(timeout: .seconds(30)) { initial.get != nil })
        #expect(initial.get == ["good-1", "good-2"])

        var bad = try await plain.get(Lease.self, namespace: ns, name: "bad")
        bad.metadata.labels = ["touched": "1"]
        _ = try await plain.update(bad)
        _ = try await plain.create(lease("good-3", ns, holder: "h3"))
        #expect(await eventually(timeout: .seconds(30)) { seen.get.contains("good-3:h3") }, "seen: \(seen.get)")
        #expect(await eventually(timeout: .seconds(30)) { outcomes.get.undecodable["leases", default: 0] >= 2 })

        bad = try await plain.get(Lease.self, namespace: ns, name: "bad")
        bad.spec?.holderIdentity = "fixed"
        _ = try await plain.update(bad)
        #expect(await eventually(timeout: .seconds(30)) { seen.get.contains("bad:fixed") }, "seen: \(seen.get)")
        #expect(!seen.get.contains { $0.hasPrefix("bad:") && $0 != "bad:fixed" })
        #expect(outcomes.get.streamFailed == 0, "skipping is not a broken stream")
        watch.cancel()
        _ = await watch.result
        for name in ["good-1", "good-2", "good-3", "bad"] { try? await plain.delete(Lease.self, namespace: ns, name: name) }
    }
}
