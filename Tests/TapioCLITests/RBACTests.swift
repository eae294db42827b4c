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
    func kubeconfig(_ admin: KubeClient, serviceAccount: String, in dir: URL, token given: String? = nil) async throws -> String {
        let token: String
        if let given { token = given } else { token = try await tokenWithoutNode(admin, serviceAccount: serviceAccount) }
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
    static func waitReady(_ process: BackgroundCommand, timeout: Duration) async -> (Bool, String) {
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
        let policy = try nodeRestriction()
        let node = "rbac-node-\(suffix)"
        var processes: [BackgroundCommand] = []
        do {
            _ = try await admin.create(Namespace(metadata: ObjectMeta(name: ns)))
            for (type, object) in objects {
                _ = try await admin.createRaw(type, namespace: type.namespaced ? ns : nil,
                                              body: try JSONSerialization.data(withJSONObject: object))
            }
            // Pod-bound, as in the DaemonSet: where the shipped admission policy is installed, only such a token,
            // naming the agent's node, may write.
            _ = try await admin.create(Node(metadata: ObjectMeta(name: node)))
            let agentToken = try await podBoundToken(admin, node: node)
            let agentConfig = try await kubeconfig(admin, serviceAccount: "tapio-agent", in: dir, token: agentToken)
            // And under the shipped admission policy, as deployed.
            try await installNodeRestriction(admin, policy, agentToken: agentToken)
            let operatorConfig = try await kubeconfig(admin, serviceAccount: "tapio-operator", in: dir)
            let agent = try BackgroundCommand(tapio: ["agent", "--node-name", node, "--namespace", ns,
                                                               "--kubeconfig", agentConfig, "--metrics-addr", "127.0.0.1:0"])
            processes.append(agent)
            let op = try BackgroundCommand(tapio: ["operator", "--leader-elect", "--namespace", ns, "--identity", "rbac-\(suffix)",
                                                            "--kubeconfig", operatorConfig, "--metrics-addr", "127.0.0.1:0"])
            processes.append(op)
            let (agentReady, agentSays) = await Self.waitReady(agent, timeout: .seconds(90))
            #expect(agentReady, "the agent never became ready: \(agentSays)\n\(agent.stderr.suffix(3000))")
            let (opReady, opSays) = await Self.waitReady(op, timeout: .seconds(90))
            #expect(opReady, "the operator never became ready: \(opSays)\n\(op.stderr.suffix(3000))")
            // The heartbeat and the election Lease were written with the roles' grants.
            let beat = try? await admin.get(Lease.self, namespace: ns, name: "tapio-agent-\(node)")
            #expect(beat != nil, "no heartbeat Lease")
            let leading = await eventually(timeout: .seconds(60), every: .milliseconds(50)) {
                (try? await admin.get(Lease.self, namespace: ns, name: "tapio-operator"))?.spec?.holderIdentity == "rbac-\(suffix)"
            }
            #expect(leading, "the operator never took its Lease")
            // The writes that only findings cause.
            // Insights are written by server-side apply: patch, and create for a new one.
            let writes = [("create", "tapio.io", "insights", ""), ("patch", "tapio.io", "insights", ""),
                          ("get", "tapio.io", "insights", ""), ("patch", "tapio.io", "insights", "status"),
                          ("create", "events.k8s.io", "events", ""), ("patch", "events.k8s.io", "events", "")]
            for (verb, group, resource, sub) in writes {
                #expect(try await allowed(admin, "tapio-agent", verb, group, resource, subresource: sub, namespace: "default"),
                        "the agent may not \(verb) \(resource)/\(sub)")
            }
            for (verb, group, resource, sub) in writes + [("delete", "tapio.io", "insights", ""),
                                                          ("update", "tapio.io", "tapiopolicies", "status")] {
                #expect(try await allowed(admin, "tapio-operator", verb, group, resource, subresource: sub, namespace: "default"),
                        "the operator may not \(verb) \(resource)/\(sub)")
            }
            // And what they must not do: least privilege.
            #expect(try await !allowed(admin, "tapio-agent", "patch", "apps", "deployments", namespace: "default"))
            #expect(try await !allowed(admin, "tapio-agent", "delete", "tapio.io", "insights", namespace: "default"))
            #expect(try await !allowed(admin, "tapio-agent", "watch", "events.k8s.io", "events", namespace: "default"),
                    "the agent reads probe failures and evictions from its pods, not from every node's Events")
            #expect(try await !allowed(admin, "tapio-operator", "patch", "apps", "deployments", namespace: "default"),
                    "patching workloads belongs to the remediation component only")
            // Nothing the code does not use (the rules' verbs, 6 December): an agent reads no other node's Insights.
            for (verb, resource, sub) in [("list", "insights", ""), ("watch", "insights", ""), ("update", "insights", ""),
                                          ("update", "insights", "status")] {
                #expect(try await !allowed(admin, "tapio-agent", verb, "tapio.io", resource, subresource: sub, namespace: "default"),
                        "the agent may \(verb) \(resource)/\(sub)")
            }
            #expect(try await !allowed(admin, "tapio-agent", "get", "events.k8s.io", "events", namespace: "default"))
            #expect(try await !allowed(admin, "tapio-operator", "watch", "", "pods", namespace: "default"))
            #expect(try await !allowed(admin, "tapio-operator", "update", "tapio.io", "insights", namespace: "default"))
            for p in [agent, op] {
                let text = p.stderr.lowercased()
                #expect(!text.contains("forbidden") && !text.contains("unauthorized"), "\(p.stderr.suffix(3000))")
            }
        } catch {
            Issue.record(error)
        }
        for p in processes { _ = await p.terminate(grace: .seconds(20)); p.cleanUp() }
        for (type, object) in policy.reversed() + objects.reversed() where !type.namespaced {
            if let name = (object["metadata"] as? [String: Any])?["name"] as? String {
                try? await admin.deleteRaw(type, namespace: nil, name: name)
            }
        }
        try? await admin.delete(Node.self, name: node)
        try? await admin.delete(Namespace.self, name: ns)
        try? await admin.shutdown()
        try? FileManager.default.removeItem(at: dir)
    }

    // MARK: A node speaks only for itself

    /// The shipped admission policy, renamed with the suffix so it never collides with an installed one.
    func nodeRestriction() throws -> [(ResourceType, [String: Any])] {
        let text = try String(contentsOf: CommandRunner.repositoryRoot.appendingPathComponent("config/rbac/agent_node_restriction.yaml"),
                              encoding: .utf8)
        var out: [(ResourceType, [String: Any])] = []
        for case var object as [String: Any] in try Yams.load_all(yaml: text) {
            let kind = object["kind"] as? String ?? ""
            var meta = object["metadata"] as? [String: Any] ?? [:]
            meta["name"] = "\(meta["name"] ?? "")-\(suffix)"
            object["metadata"] = meta
            if kind == "ValidatingAdmissionPolicyBinding", var spec = object["spec"] as? [String: Any] {
                spec["policyName"] = "\(spec["policyName"] ?? "")-\(suffix)"
                object["spec"] = spec
            }
            let plural = kind == "ValidatingAdmissionPolicy" ? "validatingadmissionpolicies" : "validatingadmissionpolicybindings"
            out.append((ResourceType(apiVersion: "admissionregistration.k8s.io/v1", kind: kind, plural: plural, namespaced: false), object))
        }
        return out
    }

    /// A pod-bound token for `tapio-agent`: the pod (never started: no kubelet needed) runs on `node`.
    func podBoundToken(_ admin: KubeClient, node: String) async throws -> String {
        let podDoc: [String: Any] = ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "agent-\(suffix)", "namespace": ns],
                                     "spec": ["nodeName": node, "serviceAccountName": "tapio-agent",
                                              "containers": [["name": "agent", "image": "registry.k8s.io/pause:3.9"]]]]
        let created = try await admin.createRaw(ResourceType(Pod.self), namespace: ns, body: try JSONSerialization.data(withJSONObject: podDoc))
        let pod = try JSONDecoder().decode(Pod.self, from: created)
        let request: [String: Any] = ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": [
            "expirationSeconds": 3600,
            "boundObjectRef": ["kind": "Pod", "apiVersion": "v1", "name": pod.metadata.name ?? "", "uid": pod.metadata.uid ?? ""]]]
        let answer = try await admin.send(method: .POST, path: "/api/v1/namespaces/\(ns)/serviceaccounts/tapio-agent/token",
                                          body: try JSONSerialization.data(withJSONObject: request))
        let json = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any]
        return try #require((json?["status"] as? [String: Any])?["token"] as? String)
    }

    func client(token: String, _ admin: KubeClient) throws -> KubeClient {
        var config = admin.config
        config.token = token
        config.tokenFile = nil
        config.clientCertificatePEM = nil
        config.clientKeyPEM = nil
        return try KubeClient(config: config, retryPolicy: RetryPolicy(maxAttempts: 1))
    }

    /// Issue 13 item 6, issue 17 item 8: with the shipped admission policy, an agent's pod-bound token writes its
    /// own node's heartbeat Lease, Insights and Events, and is refused — with a message saying why — another node's,
    /// the operator's election Lease and the approve annotation; a token without a node is refused everything.
    @Test func anAgentsTokenWritesOnlyForItsOwnNode() async throws {
        let admin = try KubeClient(kubeconfigPath: try #require(ProcessInfo.processInfo.environment["TAPIO_TEST_KUBECONFIG"]))
        let rbac = try manifests()
        let policy = try nodeRestriction()
        let node = "vap-node-\(suffix)"
        do {
            _ = try await admin.create(Namespace(metadata: ObjectMeta(name: ns)))
            for (type, object) in rbac {
                _ = try await admin.createRaw(type, namespace: type.namespaced ? ns : nil, body: try JSONSerialization.data(withJSONObject: object))
            }
            _ = try await admin.create(Node(metadata: ObjectMeta(name: node)))
            var election = Lease.Spec()
            election.holderIdentity = "operator-0"
            _ = try await admin.create(Lease(metadata: ObjectMeta(name: "tapio-operator", namespace: ns), spec: election))
            let token = try await podBoundToken(admin, node: node)
            try await installNodeRestriction(admin, policy, agentToken: token)
            let agent = try client(token: token, admin)
            defer { Task { try? await agent.shutdown() } }
            func lease(_ name: String) -> Lease { Self.lease(name, ns, holder: node) }
            func refusal(_ body: () async throws -> Void) async -> String? { await Self.refusal(body) }
            let foreign = await refusal { _ = try await agent.create(lease("tapio-agent-other-node")) }
            #expect(foreign?.contains("may write only its own heartbeat Lease tapio-agent-\(node)") == true, "\(foreign ?? "allowed")")
            var taken = try await admin.get(Lease.self, namespace: ns, name: "tapio-operator")
            taken.spec?.holderIdentity = node
            let takeover = await refusal { _ = try await agent.update(taken) }
            #expect(takeover != nil, "an agent took over the operator's election Lease")
            #expect(await refusal { _ = try await agent.create(lease("tapio-agent-\(node)")) } == nil, "its own heartbeat was refused")

            func insight(_ name: String, node: String, approve: Bool = false) -> InsightDoc {
                InsightDoc(name: name, namespace: ns, node: node, approve: approve)
            }
            let own = await refusal { _ = try await agent.createRaw(InsightDoc.type, namespace: ns, body: insight("own", node: node).json) }
            #expect(own == nil, "its own node's Insight was refused: \(own ?? "")")
            let forged = await refusal { _ = try await agent.createRaw(InsightDoc.type, namespace: ns, body: insight("forged", node: "someone-else").json) }
            #expect(forged?.contains("may write only Insights labelled tapio.io/node=\(node)") == true, "\(forged ?? "allowed")")
            let approved = await refusal { _ = try await agent.createRaw(InsightDoc.type, namespace: ns, body: insight("approved", node: node, approve: true).json) }
            #expect(approved?.contains("approving a remediation is for people") == true, "\(approved ?? "allowed")")
            let patched = await refusal {
                _ = try await agent.patchRaw(InsightDoc.type, namespace: ns, name: "own",
                                             patch: Data(#"{"metadata":{"annotations":{"tapio.io/approve":"true"}}}"#.utf8), patchType: .merge)
            }
            #expect(patched?.contains("approving a remediation is for people") == true, "\(patched ?? "allowed")")
            // A person (here the admin) approves.
            _ = try await admin.patchRaw(InsightDoc.type, namespace: ns, name: "own",
                                         patch: Data(#"{"metadata":{"annotations":{"tapio.io/approve":"true"}}}"#.utf8), patchType: .merge)
            // The agent's own later writes keep the person's approval (they do not touch it).
            let rewrite = await refusal {
                _ = try await agent.patchRaw(InsightDoc.type, namespace: ns, name: "own",
                                             patch: Data(#"{"spec":{"title":"rewritten"}}"#.utf8), patchType: .merge)
            }
            #expect(rewrite == nil, "\(rewrite ?? "")")

            func event(_ instance: String) -> Data {
                let e: [String: Any] = ["apiVersion": "events.k8s.io/v1", "kind": "Event",
                                        "metadata": ["generateName": "tapio-", "namespace": ns],
                                        "eventTime": "2026-12-02T00:00:00.000000Z", "reportingController": "tapio.io/agent",
                                        "reportingInstance": instance, "action": "Detected", "reason": "OOMKilled", "type": "Warning",
                                        "regarding": ["kind": "Pod", "namespace": ns, "name": "p"], "note": "test"]
                return (try? JSONSerialization.data(withJSONObject: e)) ?? Data()
            }
            let events = ResourceType(apiVersion: "events.k8s.io/v1", kind: "Event", plural: "events", namespaced: true)
            #expect(await refusal { _ = try await agent.createRaw(events, namespace: ns, body: event(node)) } == nil)
            let spoofed = await refusal { _ = try await agent.createRaw(events, namespace: ns, body: event("someone-else")) }
            #expect(spoofed?.contains("may write only Events it reports as itself") == true, "\(spoofed ?? "allowed")")

            // A token that names no node (not bound to a pod) may write nothing.
            let unbound = try client(token: try await tokenWithoutNode(admin), admin)
            let nameless = await refusal { _ = try await unbound.create(lease("tapio-agent-\(node)")) }
            #expect(nameless?.contains("must authenticate with its pod's ServiceAccount token") == true, "\(nameless ?? "allowed")")
            try? await unbound.shutdown()
        } catch {
            Issue.record(error)
        }
        for (type, object) in policy.reversed() {
            if let name = (object["metadata"] as? [String: Any])?["name"] as? String { try? await admin.deleteRaw(type, namespace: nil, name: name) }
        }
        for (type, object) in rbac.reversed() where !type.namespaced {
            if let name = (object["metadata"] as? [String: Any])?["name"] as? String { try? await admin.deleteRaw(type, namespace: nil, name: name) }
        }
        try? await admin.delete(Node.self, name: node)
        try? await admin.delete(Namespace.self, name: ns)
        try? await admin.shutdown()
    }

    static func lease(_ name: String, _ ns: String, holder: String) -> Lease {
        var spec = Lease.Spec()
        spec.holderIdentity = holder
        return Lease(metadata: ObjectMeta(name: name, namespace: ns), spec: spec)
    }

    /// What the server said when `body` failed; nil when it succeeded.
    static func refusal(_ body: () async throws -> Void) async -> String? {
        do { try await body(); return nil } catch { return "\(error)" }
    }

    /// Creates the renamed admission policy and waits until the server enforces it (it compiles the policy
    /// asynchronously): until the agent's token is refused a Lease that is not its own.
    func installNodeRestriction(_ admin: KubeClient, _ policy: [(ResourceType, [String: Any])], agentToken: String) async throws {
        for (type, object) in policy {
            _ = try await admin.createRaw(type, namespace: nil, body: try JSONSerialization.data(withJSONObject: object))
        }
        let agent = try client(token: agentToken, admin)
        var attempt = 0
        let active = await eventually(timeout: .seconds(60), every: .milliseconds(50)) {
            attempt += 1
            return await Self.refusal { _ = try await agent.create(Self.lease("tapio-agent-elsewhere-\(attempt)", ns, holder: "x")) } != nil
        }
        try? await agent.shutdown()
        try #require(active, "the admission policy never took effect")
    }

    /// A token of the TokenRequest API bound to nothing (so naming no node).
    func tokenWithoutNode(_ admin: KubeClient, serviceAccount: String = "tapio-agent") async throws -> String {
        let request = #"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}"#
        let answer = try await admin.send(method: .POST, path: "/api/v1/namespaces/\(ns)/serviceaccounts/\(serviceAccount)/token",
                                          body: Data(request.utf8))
        let json = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any]
        return try #require((json?["status"] as? [String: Any])?["token"] as? String)
    }
}

/// A minimal Insight as JSON, labelled with a node.
struct InsightDoc {
    static let type = ResourceType(apiVersion: "tapio.io/v1alpha1", kind: "Insight", plural: "insights", namespaced: true)
    var name: String
    var namespace: String
    var node: String
    var approve: Bool
    var json: Data {
        var meta: [String: Any] = ["name": name, "namespace": namespace, "labels": ["tapio.io/node": node]]
        if approve { meta["annotations"] = ["tapio.io/approve": "true"] }
        let doc: [String: Any] = ["apiVersion": "tapio.io/v1alpha1", "kind": "Insight", "metadata": meta, "spec": [
            "type": "OOMKilled", "severity": "Critical", "title": "t", "summary": "s",
            "subject": ["kind": "Pod", "namespace": namespace, "name": "p"]]]
        return (try? JSONSerialization.data(withJSONObject: doc)) ?? Data()
    }
}
