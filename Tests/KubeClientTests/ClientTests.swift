import Foundation
import KubeClient
import KubeEmulator
import Logging
import TapioTestSupport
import Testing

@Suite("KubeClient against an API server")
struct ClientTests {
    /// The test cluster's kubeconfig with `token` as its only credential (set in code, past the kubeconfig's checks).
    static func config(at path: String, withOnlyToken token: String) throws -> KubeConfig {
        var config = try KubeConfig.load(path: path)
        config.token = token
        config.tokenFile = nil
        config.clientCertificatePEM = nil
        config.clientKeyPEM = nil
        return config
    }

    @Test(.timeLimit(.minutes(2))) func aWrongBearerTokenIsRejectedWith401() async throws {
        try await withCluster { cluster, client, ns in
            let config = try Self.config(at: cluster.kubeconfigPath, withOnlyToken: "wrong-token")
            let bad = try KubeClient(config: config)
            defer { Task { try? await bad.shutdown() } }
            await #expect {
                _ = try await bad.list(Lease.self, namespace: ns)
            } throws: { e in
                guard case KubeError.unauthorized = e else { return false }
                return true
            }
            try await bad.shutdown()
        }
    }

    /// A token with a control character that no kubeconfig check saw (set in code): the HTTP client refuses the
    /// header with an error quoting it whole. Neither the error nor the client's log lines may carry the token on.
    @Test(.timeLimit(.minutes(2))) func aHeaderTheHTTPClientRefusesIsNotQuotedInErrorsOrLogLines() async throws {
        try await withCluster { cluster, _, ns in
            let config = try Self.config(at: cluster.kubeconfigPath, withOnlyToken: "s3cret\u{1}tok")
            let lines = Box<[(level: Logger.Level, message: String)]>([])
            let bad = try KubeClient(config: config, retryPolicy: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1)),
                                     logger: CapturingLogHandler.logger(lines))
            let requests: [@Sendable () async throws -> Void] = [
                { _ = try await bad.list(Lease.self, namespace: ns) },
                { _ = try await bad.watch(Lease.self, namespace: ns) },
            ]
            for request in requests {
                do {
                    try await request()
                    Issue.record("a request went out with a header the HTTP client refuses")
                } catch {
                    #expect("\(error)".contains("the HTTP client refused a request header"), "\(error)")
                    #expect(!"\(error)".contains("s3cret"), "\(error)")
                }
            }
            #expect(!lines.get.contains { $0.message.contains("s3cret") }, "\(lines.get.map(\.message))")
            try await bad.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(2))) func aRotatedInClusterTokenIsPickedUpWithoutARestart() async throws {
        try await TestCluster.with { cluster in
            guard let emu = cluster.requireEmulator() else { return }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-sa-\(getpid())-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            try "stale-token".write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
            try (emu.caPEM ?? "").write(to: dir.appendingPathComponent("ca.crt"), atomically: true, encoding: .utf8)
            try "default".write(to: dir.appendingPathComponent("namespace"), atomically: true, encoding: .utf8)
            let config = try KubeConfig.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1",
                                                                "KUBERNETES_SERVICE_PORT": String(emu.port)],
                                                  serviceAccountDirectory: dir.path)
            let client = try KubeClient(config: config, retryPolicy: .none)
            await #expect(throws: KubeError.self) { _ = try await client.get(Namespace.self, name: "default") }
            try emu.token.write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
            let ns = try await client.get(Namespace.self, name: "default")
            #expect(ns.metadata.name == "default")
            try await client.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(2))) func plainHTTPWorksToo() async throws {
        try await withCluster(tls: false) { cluster, client, ns in
            if cluster.emulator != nil { #expect(client.config.server.scheme == "http") }
            let created = try await client.create(lease("plain", ns))
            #expect(created.metadata.uid != nil)
        }
    }

    @Test(.timeLimit(.minutes(2))) func createGetUpdateDeleteWithOptimisticConcurrency() async throws {
        try await withCluster { _, client, ns in
            let created = try await client.create(lease("crud", ns, holder: "a"))
            let rv1 = try #require(created.metadata.resourceVersion)
            var fetched = try await client.get(Lease.self, namespace: ns, name: "crud")
            #expect(fetched.spec?.holderIdentity == "a")
            fetched.spec?.holderIdentity = "b"
            let updated = try await client.update(fetched)
            #expect(updated.spec?.holderIdentity == "b")
            #expect(updated.metadata.resourceVersion != rv1)
            // A write based on the first version is stale now.
            var stale = created
            stale.spec?.holderIdentity = "c"
            await #expect {
                _ = try await client.update(stale)
            } throws: { e in
                guard case KubeError.conflict = e else { return false }
                return true
            }
            await #expect {
                _ = try await client.create(lease("crud", ns))
            } throws: { e in
                guard case KubeError.conflict(let reason, _) = e else { return false }
                return reason == "AlreadyExists"
            }
            try await client.delete(Lease.self, namespace: ns, name: "crud")
            await #expect {
                _ = try await client.get(Lease.self, namespace: ns, name: "crud")
            } throws: { e in
                guard case KubeError.notFound = e else { return false }
                return true
            }
        }
    }

    @Test(.timeLimit(.minutes(2))) func anUpdateWithoutResourceVersionIsInvalid() async throws {
        try await withCluster { _, client, ns in
            var l = try await client.create(lease("norv", ns))
            l.metadata.resourceVersion = nil
            await #expect {
                _ = try await client.update(l)
            } throws: { e in
                guard case KubeError.invalid(_, let causes) = e else { return false }
                return causes.contains { $0.field == "metadata.resourceVersion" }
            }
        }
    }

    @Test(.timeLimit(.minutes(2))) func invalidNamesAreRejected() async throws {
        try await withCluster { _, client, ns in
            await #expect {
                _ = try await client.create(lease("Not_A_DNS_Name", ns))
            } throws: { e in
                guard case KubeError.invalid(_, let causes) = e else { return false }
                return causes.contains { $0.field == "metadata.name" }
            }
        }
    }

    @Test(.timeLimit(.minutes(2))) func dryRunValidatesButStoresNothing() async throws {
        try await withCluster { _, client, ns in
            let answer = try await client.create(lease("dry", ns), options: WriteOptions(dryRun: true))
            #expect(answer.metadata.name == "dry")
            await #expect(throws: KubeError.self) { _ = try await client.get(Lease.self, namespace: ns, name: "dry") }
        }
    }

    @Test(.timeLimit(.minutes(2))) func theStatusSubresourceIsKeptApartAndGenerationFollowsSpecOnly() async throws {
        try await withCluster { cluster, client, ns in
            let name = "\(ns)-status"
            cluster.atCleanup { try? await client.delete(TestPolicy.self, name: name) }
            var p = TestPolicy(metadata: ObjectMeta(name: name),
                               spec: .init(probes: .init(memory: .init(enabled: true, samplingHz: 19)), remediation: .init(mode: "Suggest")),
                               status: .init(observedGeneration: 7))
            p = try await client.create(p)
            #expect(p.metadata.generation == 1)
            #expect(p.status?.observedGeneration == nil, "status is not set through the main resource")
            // Status write: spec changes in the body are ignored, generation unchanged.
            var s = p
            s.status = .init(observedGeneration: 1)
            s.spec?.remediation?.mode = "Off"
            let afterStatus = try await client.updateStatus(s)
            #expect(afterStatus.status?.observedGeneration == 1)
            #expect(afterStatus.spec?.remediation?.mode == "Suggest")
            #expect(afterStatus.metadata.generation == 1)
            // Spec write: status changes ignored, generation bumped.
            var u = afterStatus
            u.spec?.remediation?.mode = "DryRun"
            u.status = .init(observedGeneration: 99)
            let afterSpec = try await client.update(u)
            #expect(afterSpec.spec?.remediation?.mode == "DryRun")
            #expect(afterSpec.status?.observedGeneration == 1)
            #expect(afterSpec.metadata.generation == 2)
            // A metadata-only change does not bump generation.
            var m = afterSpec
            m.metadata.labels = ["team": "sre"]
            let afterMeta = try await client.update(m)
            #expect(afterMeta.metadata.generation == 2)
            try await client.delete(TestPolicy.self, name: name)
            _ = cluster
        }
    }

    @Test(.timeLimit(.minutes(2))) func anInvalidTapioPolicyIsRejectedWith422NamingTheFields() async throws {
        try await withCluster { cluster, client, ns in
            let p = TestPolicy(metadata: ObjectMeta(name: "\(ns)-bad"),
                               spec: .init(probes: .init(memory: .init(enabled: true, samplingHz: 0)), remediation: .init(mode: "Sometimes")))
            // Only if the server wrongly accepts it.
            cluster.atCleanup { try? await client.delete(TestPolicy.self, name: "\(ns)-bad") }
            await #expect {
                _ = try await client.create(p)
            } throws: { e in
                guard case KubeError.invalid(_, let causes) = e else { return false }
                let fields = Set(causes.compactMap(\.field))
                return fields.contains("spec.probes.memory.samplingHz") && fields.contains("spec.remediation.mode")
            }
        }
    }

    /// `allowedActions` and `namespaces` are sets in the CRD: a repeated item is the API server's to refuse, at
    /// `kubectl apply`, not only the operator's (`InvalidSpec`) once stored.
    @Test(.timeLimit(.minutes(2))) func aPolicyListingAnItemTwiceIsRejectedWith422AtTheRepeat() async throws {
        try await withCluster { cluster, client, ns in
            let p = TestPolicy(metadata: ObjectMeta(name: "\(ns)-twice"),
                               spec: .init(remediation: .init(mode: "Apply", allowedActions: ["RestartPod", "RolloutUndo", "RestartPod"],
                                                              namespaces: ["shop", "shop"])))
            cluster.atCleanup { try? await client.delete(TestPolicy.self, name: "\(ns)-twice") }
            await #expect {
                _ = try await client.create(p)
            } throws: { e in
                guard case KubeError.invalid(_, let causes) = e else { return false }
                let fields = Set(causes.filter { $0.reason == "FieldValueDuplicate" }.compactMap(\.field))
                return fields == ["spec.remediation.allowedActions[2]", "spec.remediation.namespaces[1]"]
            }
            // The same lists without the repeats are stored as given.
            var ok = p
            ok.spec?.remediation?.allowedActions = ["RestartPod", "RolloutUndo"]
            ok.spec?.remediation?.namespaces = ["shop"]
            let created = try await client.create(ok)
            #expect(created.spec?.remediation?.allowedActions == ["RestartPod", "RolloutUndo"])
            try await client.delete(TestPolicy.self, name: "\(ns)-twice")
        }
    }

    @Test(.timeLimit(.minutes(2))) func crDefaultsAreAppliedByTheServer() async throws {
        try await withCluster { cluster, client, ns in
            let name = "\(ns)-defaults"
            let created = try await client.create(TestPolicy(metadata: ObjectMeta(name: name), spec: .init()))
            cluster.atCleanup { try? await client.delete(TestPolicy.self, name: name) }
            #expect(created.spec?.probes?.memory?.samplingHz == 19)
            #expect(created.spec?.remediation?.mode == "Suggest")
            try await client.delete(TestPolicy.self, name: name)
        }
    }

    @Test(.timeLimit(.minutes(2))) func listsArePaginatedWithContinueTokens() async throws {
        try await withCluster { _, client, ns in
            for i in 0..<7 { _ = try await client.create(lease("page-\(i)", ns)) }
            var names: [String] = []
            var opts = ListOptions(limit: 3)
            var pages = 0
            while true {
                let page = try await client.list(Lease.self, namespace: ns, options: opts)
                pages += 1
                #expect(page.items.count <= 3)
                names += page.items.compactMap(\.metadata.name)
                guard let c = page.metadata.continue, !c.isEmpty else { break }
                opts.continueToken = c
            }
            #expect(pages == 3)
            #expect(Set(names) == Set((0..<7).map { "page-\($0)" }))
            #expect(names.count == 7)
            let all = try await client.listAll(Lease.self, namespace: ns, pageSize: 2)
            #expect(all.items.count == 7)
        }
    }

    @Test(.timeLimit(.minutes(2))) func labelAndFieldSelectorsFilterLists() async throws {
        try await withCluster { _, client, ns in
            _ = try await client.create(pod("a", ns, node: "n1", labels: ["app": "web", "tier": "front"]))
            _ = try await client.create(pod("b", ns, node: "n2", labels: ["app": "web", "tier": "back"]))
            _ = try await client.create(pod("c", ns, node: "n1", labels: ["app": "db"]))
            func names(_ o: ListOptions) async throws -> Set<String> {
                Set(try await client.list(Pod.self, namespace: ns, options: o).items.compactMap(\.metadata.name))
            }
            #expect(try await names(ListOptions(labelSelector: "app=web")) == ["a", "b"])
            #expect(try await names(ListOptions(labelSelector: "app==web,tier!=front")) == ["b"])
            #expect(try await names(ListOptions(labelSelector: "tier in (front,back)")) == ["a", "b"])
            #expect(try await names(ListOptions(labelSelector: "app notin (web)")) == ["c"])
            #expect(try await names(ListOptions(labelSelector: "tier")) == ["a", "b"])
            #expect(try await names(ListOptions(labelSelector: "!tier")) == ["c"])
            #expect(try await names(ListOptions(fieldSelector: "spec.nodeName=n1")) == ["a", "c"])
            #expect(try await names(ListOptions(labelSelector: "app=web", fieldSelector: "spec.nodeName!=n1")) == ["b"])
            #expect(try await names(ListOptions(fieldSelector: "metadata.name=c")) == ["c"])
            await #expect(throws: KubeError.self) { _ = try await names(ListOptions(fieldSelector: "spec.image=x")) }
        }
    }

    @Test(.timeLimit(.minutes(2))) func aMergePatchChangesOnlyWhatItNames() async throws {
        try await withCluster { _, client, ns in
            _ = try await client.create(lease("mp", ns, labels: ["keep": "yes", "drop": "yes"], holder: "a"))
            let patched = try await client.mergePatch(Lease.self, namespace: ns, name: "mp",
                                                      patch: Data(#"{"metadata":{"labels":{"drop":null,"new":"1"}},"spec":{"leaseDurationSeconds":9}}"#.utf8))
            #expect(patched.metadata.labels == ["keep": "yes", "new": "1"])
            #expect(patched.spec?.holderIdentity == "a")
            #expect(patched.spec?.leaseDurationSeconds == 9)
        }
    }

    @Test(.timeLimit(.minutes(2))) func serverSideApplyCreatesMergesAndDetectsConflicts() async throws {
        try await withCluster { _, client, ns in
            var l = lease("ssa", ns, labels: ["owner": "one"], holder: "one")
            let first = try await client.apply(l, fieldManager: "one")
            #expect(first.spec?.holderIdentity == "one")
            // Re-applying the same intent is a no-op.
            let again = try await client.apply(l, fieldManager: "one")
            #expect(again.metadata.resourceVersion == first.metadata.resourceVersion)
            // Another manager changing a field "one" owns conflicts…
            l.spec?.holderIdentity = "two"
            l.metadata.labels = nil
            await #expect {
                _ = try await client.apply(l, fieldManager: "two")
            } throws: { e in
                guard case KubeError.conflict = e else { return false }
                return true
            }
            // …unless it forces, taking the field over.
            let forced = try await client.apply(l, fieldManager: "two", force: true)
            #expect(forced.spec?.holderIdentity == "two")
            #expect(forced.metadata.labels?["owner"] == "one", "fields owned by the other manager stay")
            // A manager's own fields can change freely; a field it stops applying is removed.
            var mine = lease("ssa", ns, labels: ["owner": "one"], holder: nil)
            mine.spec?.leaseDurationSeconds = 30
            let afterOne = try await client.apply(mine, fieldManager: "one")
            #expect(afterOne.spec?.leaseDurationSeconds == 30)
            #expect(afterOne.spec?.holderIdentity == "two")
        }
    }

    @Test(.timeLimit(.minutes(2))) func a429WithRetryAfterIsWaitedOutAndRetried() async throws {
        try await withCluster { cluster, client, ns in
            guard let emu = cluster.requireEmulator() else { return }
            _ = try await client.create(lease("busy", ns))
            emu.injectFaults(status: 429, count: 1, retryAfterSeconds: 1, pathContains: "/leases/busy")
            let clock = ContinuousClock()
            let start = clock.now
            let got = try await client.get(Lease.self, namespace: ns, name: "busy")
            #expect(got.metadata.name == "busy")
            #expect(clock.now - start >= .seconds(1), "the client waited as long as Retry-After said")
            // With a budget shorter than Retry-After, the caller gets the error and the delay it asked for.
            var cfg = client.config
            cfg.namespace = ns
            let impatient = try KubeClient(config: cfg, retryPolicy: RetryPolicy(maxAttempts: 3, maxRetryAfter: .milliseconds(10)))
            emu.injectFaults(status: 429, count: 1, retryAfterSeconds: 5, pathContains: "/leases/busy")
            await #expect {
                _ = try await impatient.get(Lease.self, namespace: ns, name: "busy")
            } throws: { e in
                guard case KubeError.tooManyRequests(let ra, _) = e else { return false }
                return ra == .seconds(5)
            }
            try await impatient.shutdown()
        }
    }

    @Test(.timeLimit(.minutes(2))) func serverErrorsAreRetriedForReadsButNotForCreates() async throws {
        try await withCluster { cluster, client, ns in
            guard let emu = cluster.requireEmulator() else { return }
            emu.injectFaults(status: 500, count: 2, pathContains: "/namespaces/\(ns)/leases")
            let list = try await client.list(Lease.self, namespace: ns)
            #expect(list.items.isEmpty)
            emu.injectFaults(status: 500, count: 1, pathContains: "/namespaces/\(ns)/leases")
            await #expect {
                _ = try await client.create(lease("once", ns))
            } throws: { e in
                guard case KubeError.server(500, _, _) = e else { return false }
                return true
            }
        }
    }
}
