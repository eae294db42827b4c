import Foundation
import KubeClient
import KubeEmulator
import TapioTestSupport
import Testing

@Suite("Raw watch streams")
struct WatchStreamTests {
    @Test(.timeLimit(.minutes(2))) func aWatchFromACompactedVersionEndsWith410Gone() async throws {
        try await withCluster { cluster, client, ns in
            guard let emu = cluster.requireEmulator() else { return }
            let first = try await client.create(lease("old", ns))
            _ = try await client.create(lease("newer", ns))
            emu.compact()
            let stream = try await client.watch(Lease.self, namespace: ns,
                                                options: WatchOptions(resourceVersion: first.metadata.resourceVersion, timeoutSeconds: 5))
            var sawGone = false
            for try await e in stream {
                if case .error(let err) = e, case .gone = err { sawGone = true; break }
            }
            #expect(sawGone)
        }
    }

    @Test(.timeLimit(.minutes(2))) func bookmarksCarryTheCurrentResourceVersionAndSelectorsTurnMovesIntoAddsAndDeletes() async throws {
        try await withCluster { cluster, client, ns in
            guard cluster.requireEmulator() != nil else { return }  // real servers send bookmarks about once a minute
            let start = try await client.create(lease("sel", ns, labels: ["role": "a"]))
            let stream = try await client.watch(Lease.self, namespace: ns, options: WatchOptions(
                labelSelector: "role=b", resourceVersion: start.metadata.resourceVersion, timeoutSeconds: 10))
            var l = start
            l.metadata.labels = ["role": "b"]
            l = try await client.update(l)
            l.metadata.labels = ["role": "c"]
            l = try await client.update(l)
            var kinds: [String] = []
            var bookmarkRV: String?
            for try await e in stream {
                switch e {
                case .added: kinds.append("added")
                case .modified: kinds.append("modified")
                case .deleted: kinds.append("deleted")
                case .bookmark(let rv): bookmarkRV = rv
                case .error(let err): Issue.record("unexpected \(err)")
                case .undecodable(_, let u): Issue.record("unexpected \(u)")
                }
                // The tests' emulator bookmarks every half second: one may fall between the two updates and carry the first's
                // version (current then). Read on to one after both.
                if kinds.count >= 2 && bookmarkRV == l.metadata.resourceVersion { break }
            }
            #expect(kinds == ["added", "deleted"], "moving into the selection is ADDED, out of it DELETED")
            #expect(bookmarkRV == l.metadata.resourceVersion, "no bookmark at the last update's version within the watch's 10 s")
        }
    }
}
