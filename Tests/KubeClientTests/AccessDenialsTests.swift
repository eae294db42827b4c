import Foundation
import KubeEmulator
import Logging
import TapioTestSupport
import Testing

@testable import KubeClient

@Suite("Calls the API server refuses", .timeLimit(.minutes(3)))
struct AccessDenialsTests {
    @Test func deniedCallsAreKeptByResourceNotByObject() {
        #expect(AccessDenials.resource(of: "/apis/events.k8s.io/v1/events") == "/apis/events.k8s.io/v1/events")
        #expect(AccessDenials.resource(of: "/api/v1/namespaces/ns/pods/web-1") == "/api/v1/namespaces/ns/pods")
        #expect(AccessDenials.resource(of: "/api/v1/namespaces/ns") == "/api/v1/namespaces")
        #expect(AccessDenials.resource(of: "/api/v1/nodes/n1") == "/api/v1/nodes")
        #expect(AccessDenials.resource(of: "/apis/tapio.io/v1alpha1/namespaces/a/insights/x/status")
                == "/apis/tapio.io/v1alpha1/namespaces/a/insights/*/status")
        #expect(AccessDenials.resource(of: "/version") == "/version")
        let d = AccessDenials()
        #expect(d.record(verb: "GET", path: "/api/v1/namespaces/ns/pods/a", message: "no"))
        #expect(!d.record(verb: "GET", path: "/api/v1/namespaces/ns/pods/b", message: "no"), "one entry per resource")
        #expect(d.record(verb: "WATCH", path: "/api/v1/namespaces/ns/pods", message: "no"))
        d.succeeded(verb: "GET", path: "/api/v1/namespaces/ns/pods/c")
        #expect(d.current.map(\.verb) == ["WATCH"])
        for i in 0..<100 { d.record(verb: "GET", path: "/apis/g/v1/r\(i)", message: "no") }
        #expect(d.current.count == AccessDenials.capacity)
    }

    @Test func aForbiddenAnswerIsLoggedAtWarningKeptAndClearedByTheNextSuccess() async throws {
        try await withCluster { cluster, _, ns in
            guard let emu = cluster.requireEmulator() else { return }
            let lines = Box<[(level: Logger.Level, message: String)]>([])
            let client = try observedClient(cluster, Box(Outcomes()), logger: CapturingLogHandler.logger(lines))
            defer { emu.behave() }
            let path = "/namespaces/\(ns)/leases"
            emu.misbehave(.status(403), pathContains: path)
            await #expect(throws: KubeError.self) { _ = try await client.list(Lease.self, namespace: ns) }
            await #expect(throws: KubeError.self) { _ = try await client.watch(Lease.self, namespace: ns) }
            let denied = client.accessDenials.current
            #expect(denied.map(\.verb) == ["GET", "WATCH"])
            #expect(denied.allSatisfy { $0.resource == "/apis/coordination.k8s.io/v1\(path)" && $0.message.hasPrefix("forbidden") })
            #expect(lines.get.contains { $0.level == .warning && $0.message.contains("GET /apis/coordination.k8s.io/v1\(path)") && $0.message.contains("forbidden") })
            emu.behave()
            _ = try await client.list(Lease.self, namespace: ns)
            #expect(client.accessDenials.current.map(\.verb) == ["WATCH"], "a list that succeeds clears the list's denial only")
            _ = try await client.watch(Lease.self, namespace: ns, options: WatchOptions(timeoutSeconds: 1))
            #expect(client.accessDenials.current.isEmpty)
            try await client.shutdown()
        }
    }
}
