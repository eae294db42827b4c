import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KubeClient
import TapioTestSupport
import Testing
import Yams

/// Where RBAC is enforced (a real kube-apiserver; the emulator allows everything).
enum RealRBAC {
    static var skipReason: String? {
        TestCluster.usesRealServer ? nil
            : "needs a real kube-apiserver (TAPIO_TEST_KUBECONFIG): the emulator does not enforce RBAC"
    }
}

/// Issue 17, item 3: the agent's role lacked the Event reads its code makes, and nothing said so. Here the real
/// `tapio agent` and `tapio operator` run with ServiceAccount tokens bound to the shipped roles (config/rbac, renamed
/// and bound in a namespace of the test's own) against a real API server, until each is ready: a refused call makes
/// `/readyz` answer 503 naming it, so "ready" means every call the process made was allowed. The writes made only
/// when there are findings are checked with SubjectAccessReviews.
@Suite("The shipped RBAC on a real API server", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: RealRBAC.skipReason == nil, "\(RealRBAC.skipReason ?? "")"))
struct RBACTests {
    let suffix = String(UUID().uuidString.lowercased().prefix(6))
    var ns: String { "tapio-rbac-\(suffix)" }

    static func resourceType(_ object: [String: Any]) -> ResourceType? {
        guard let apiVersion = object["apiVersion"] as? String, let kind = object["kind"] as? String else { return nil }
        switch kind {
        case "ServiceAccount": return ResourceType(apiVersion: apiVersion, kind: kind, plural: "serviceaccounts", namespaced: true)
        case "ClusterRole": return ResourceType(apiVersion: apiVersion, kind: kind, plural: "clusterroles", namespaced: false)
        case "ClusterRoleBinding": return ResourceType(apiVersion: apiVersion, kind: kind, plural: "clusterrolebindings", namespaced: false)
        case "Role": return ResourceType(apiVersion: apiVersion, kind: kind, plural: "roles", namespaced: true)
        case "RoleBinding": return ResourceType(apiVersion: apiVersion, kind: kind, plural: "rolebindings", namespaced: true)
        default: return nil
        }
    }

    /// The shipped RBAC objects, moved into `ns` (namespaced ones) or renamed with the suffix (cluster-wide ones).
    func manifests() throws -> [(ResourceType, [String: Any])] {
        let dir = CommandRunner.repositoryRoot.appendingPathComponent("config/rbac")
        var out: [(ResourceType, [String: Any])] = []
        for file in ["service_accounts.yaml", "agent_clusterrole.yaml", "agent_lease_role.yaml", "operator_clusterrole.yaml",
                     "operator_lease_role.yaml", "bindings.yaml"] {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for case var object as [String: Any] in try Yams.load_all(yaml: text) {
                let type = try #require(Self.resourceType(object), "\(file): an object the test does not know")
                var meta = object["metadata"] as? [String: Any] ?? [:]
                if type.namespaced { meta["namespace"] = ns } else { meta["name"] = "\(meta["name"] ?? "")-\(suffix)" }
                object["metadata"] = meta
                if var ref = object["roleRef"] as? [String: Any], ref["kind"] as? String == "ClusterRole" {
                    ref["name"] = "\(ref["name"] ?? "")-\(suffix)"
                    object["roleRef"] = ref
                }
                if let subjects = object["subjects"] as? [[String: Any]] {
                    object["subjects"] = subjects.map { s in var s = s; s["namespace"] = ns; return s }
                }
                out.append((type, object))
            }
        }
        return out
    }

    /// A kubeconfig for `serviceAccount` in `ns`: the admin's server and CA, a token from the TokenRequest API.
    func kubeconfig(_ admin: KubeClient, serviceAccount: String, in dir: URL) async throws -> String {
        let request = #"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}"#
        let answer = try await admin.send(method: .POST, path: "/api/v1/namespaces/\(ns)/serviceaccounts/\(serviceAccount)/token",
                                          body: Data(request.utf8))
        let json = try #require(try JSONSerialization.jsonObject(with: answer.body) as? [String: Any])
        let token = try #require((json["status"] as? [String: Any])?["token"] as? String)
        let ca = admin.config.certificateAuthorityPEM.map { Data($0).base64EncodedString() }
        let yaml = """
            apiVersion: v1
            kind: Config
            current-context: sa
            clusters:
            - name: c
              cluster:
                server: \(admin.config.server.absoluteString)
            \(ca.map { "    certificate-authority-data: \($0)" } ?? "    insecure-skip-tls-verify: true")
            contexts:
            - name: sa
              context: {cluster: c, user: sa, namespace: \(ns)}
            users:
            - name: sa
              user: {token: \(token)}
            """
        let path = dir.appendingPathComponent("\(serviceAccount).kubeconfig").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `/readyz` of a running process, polled until 200 (true) or `timeout` (false); the last answer for the message.
    static func waitReady(_ process: HostileServerLifecycleTests.Tapio, timeout: Duration) async -> (Bool, String) {
        let end = ContinuousClock.now + timeout
        var last = "no /readyz answer"
        while ContinuousClock.now < end {
            if let port = process.metricsPort, let url = URL(string: "http://127.0.0.1:\(port)/readyz"),
               let (data, response) = try? await URLSession.shared.data(from: url) {
                last = String(decoding: data, as: UTF8.self)
                if (response as? HTTPURLResponse)?.statusCode == 200 { return (true, last) }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return (false, last)
    }

    /// Whether `serviceAccount` may `verb` `resource` (group, optional subresource) in `namespace` (nil: cluster-wide).
    func allowed(_ admin: KubeClient, _ serviceAccount: String, _ verb: String, _ group: String, _ resource: String,
                 subresource: String = "", namespace: String?) async throws -> Bool {
        let attributes: [String: Any] = ["verb": verb, "group": group, "resource": resource, "subresource": subresource,
                                         "namespace": namespace ?? ""]
        let review: [String: Any] = ["apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                                     "spec": ["user": "system:serviceaccount:\(ns):\(serviceAccount)",
                                              "groups": ["system:serviceaccounts", "system:serviceaccounts:\(ns)", "system:authenticated"],
                                              "resourceAttributes": attributes]]
        let answer = try await admin.send(method: .POST, path: "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                          body: try JSONSerialization.data(withJSONObject: review))
        let json = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any]
        return (json?["status"] as? [String: Any])?["allowed"] as? Bool ?? false
    }

    @Test func theAgentAndTheOperatorNeedNothingTheirRolesDoNotGrant() async throws {
        let admin = try KubeClient(kubeconfigPath: try #require(ProcessInfo.processInfo.environment["TAPIO_TEST_KUBECONFIG"]))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-rbac-\(suffix)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let objects = try manifests()
        let node = "rbac-node-\(suffix)"
        var processes: [HostileServerLifecycleTests.Tapio] = []
        do {
            _ = try await admin.create(Namespace(metadata: ObjectMeta(name: ns)))
            for (type, object) in objects {
                _ = try await admin.createRaw(type, namespace: type.namespaced ? ns : nil,
                                              body: try JSONSerialization.data(withJSONObject: object))
            }
            let agentConfig = try await kubeconfig(admin, serviceAccount: "tapio-agent", in: dir)
            let operatorConfig = try await kubeconfig(admin, serviceAccount: "tapio-operator", in: dir)
            let agent = try HostileServerLifecycleTests.Tapio(["agent", "--node-name", node, "--namespace", ns,
                                                               "--kubeconfig", agentConfig, "--metrics-addr", "127.0.0.1:0"])
            processes.append(agent)
            let op = try HostileServerLifecycleTests.Tapio(["operator", "--leader-elect", "--namespace", ns, "--identity", "rbac-\(suffix)",
                                                            "--kubeconfig", operatorConfig, "--metrics-addr", "127.0.0.1:0"])
            processes.append(op)
            let (agentReady, agentSays) = await Self.waitReady(agent, timeout: .seconds(90))
            #expect(agentReady, "the agent never became ready: \(agentSays)\n\(agent.stderr.suffix(3000))")
            let (opReady, opSays) = await Self.waitReady(op, timeout: .seconds(90))
            #expect(opReady, "the operator never became ready: \(opSays)\n\(op.stderr.suffix(3000))")
            // The heartbeat and the election Lease were written with the roles' grants.
            let beat = try? await admin.get(Lease.self, namespace: ns, name: "tapio-agent-\(node)")
            #expect(beat != nil, "no heartbeat Lease")
            let leading = await HostileServerLifecycleTests().eventually(.seconds(60)) {
                (try? await admin.get(Lease.self, namespace: ns, name: "tapio-operator"))?.spec?.holderIdentity == "rbac-\(suffix)"
            }
            #expect(leading, "the operator never took its Lease")
            // The writes that only findings cause.
            for (verb, group, resource, sub) in [("create", "tapio.io", "insights", ""), ("patch", "tapio.io", "insights", "status"),
                                                  ("create", "events.k8s.io", "events", ""), ("patch", "events.k8s.io", "events", "")] {
                #expect(try await allowed(admin, "tapio-agent", verb, group, resource, subresource: sub, namespace: "default"),
                        "the agent may not \(verb) \(resource)/\(sub)")
            }
            for (verb, group, resource, sub) in [("delete", "tapio.io", "insights", ""), ("update", "tapio.io", "tapiopolicies", "status")] {
                #expect(try await allowed(admin, "tapio-operator", verb, group, resource, subresource: sub, namespace: "default"),
                        "the operator may not \(verb) \(resource)/\(sub)")
            }
            // And what they must not do: least privilege.
            #expect(try await !allowed(admin, "tapio-agent", "patch", "apps", "deployments", namespace: "default"))
            #expect(try await !allowed(admin, "tapio-agent", "delete", "tapio.io", "insights", namespace: "default"))
            #expect(try await !allowed(admin, "tapio-operator", "patch", "apps", "deployments", namespace: "default"),
                    "patching workloads belongs to the remediation component only")
            for p in [agent, op] {
                let text = p.stderr.lowercased()
                #expect(!text.contains("forbidden") && !text.contains("unauthorized"), "\(p.stderr.suffix(3000))")
            }
        } catch {
            Issue.record(error)
        }
        for p in processes { _ = await p.terminate(grace: .seconds(20)); p.cleanUp() }
        for (type, object) in objects.reversed() where !type.namespaced {
            if let name = (object["metadata"] as? [String: Any])?["name"] as? String {
                try? await admin.deleteRaw(type, namespace: nil, name: name)
            }
        }
        try? await admin.delete(Namespace.self, name: ns)
        try? await admin.shutdown()
        try? FileManager.default.removeItem(at: dir)
    }
}
