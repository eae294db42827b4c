import Foundation
import KubeEmulator
import TapioModel
import TapioTestSupport
import Testing

/// The kustomize manifests in config/, checked without kubectl (CI machines have none): structure, least-privilege
/// RBAC, the agent's security posture and the operator's election setup.
@Suite("Deployment manifests", .timeLimit(.minutes(2)))
struct DeployManifestTests {
    struct Kustomization {
        var dir: String
        var doc: JSONValue
        var resources: [String] { doc["resources"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        var components: [String] { doc["components"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    }

    static func kustomization(_ dir: String) throws -> Kustomization {
        let file = (dir as NSString).appendingPathComponent("kustomization.yaml")
        return Kustomization(dir: dir, doc: try JSONValue.parseYAML(String(contentsOfFile: file, encoding: .utf8)))
    }

    static func isDir(_ p: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &d) && d.boolValue
    }

    /// The objects a kustomization pulls in (resources, then components), following directories like kustomize.
    static func objects(_ dir: String, includeComponents: Bool = true) throws -> [JSONValue] {
        let k = try kustomization(dir)
        var out: [JSONValue] = []
        for r in k.resources + (includeComponents ? k.components : []) {
            let p = ((dir as NSString).appendingPathComponent(r) as NSString).standardizingPath
            if isDir(p) {
                out += try objects(p, includeComponents: includeComponents)
            } else {
                out += try JSONValue.parseYAMLDocuments(String(contentsOfFile: p, encoding: .utf8))
            }
        }
        return out
    }

    static let defaultDir = RepoFiles.path("config/default")
    static let componentDir = RepoFiles.path("config/components/remediation")

    static func find(_ objs: [JSONValue], kind: String, name: String) throws -> JSONValue {
        try #require(objs.first { $0["kind"]?.stringValue == kind && $0["metadata"]?["name"]?.stringValue == name },
                     "\(kind)/\(name) not found")
    }

    /// (apiGroup, resource, verb, resourceNames) for every rule of a Role or ClusterRole.
    static func grants(_ role: JSONValue) -> [(group: String, resource: String, verb: String, names: [String])] {
        var out: [(String, String, String, [String])] = []
        for rule in role["rules"]?.arrayValue ?? [] {
            let names = rule["resourceNames"]?.arrayValue?.compactMap(\.stringValue) ?? []
            for g in rule["apiGroups"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                for r in rule["resources"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                    for v in rule["verbs"]?.arrayValue?.compactMap(\.stringValue) ?? [] { out.append((g, r, v, names)) }
                }
            }
        }
        return out
    }

    static let writeVerbs: Set<String> = ["create", "update", "patch", "delete", "deletecollection", "*"]

    @Test("every kustomization's resources and components exist")
    func kustomizationsResolve() async throws {
        let roots = ["config", "crds"].map(RepoFiles.path)
        var checked = 0
        for root in roots {
            let e = FileManager.default.enumerator(atPath: root)
            while let rel = e?.nextObject() as? String {
                guard (rel as NSString).lastPathComponent == "kustomization.yaml" else { continue }
                let dir = (root as NSString).appendingPathComponent((rel as NSString).deletingLastPathComponent)
                let k = try Self.kustomization(dir)
                for r in k.resources + k.components {
                    let p = ((dir as NSString).appendingPathComponent(r) as NSString).standardizingPath
                    let ok = Self.isDir(p) ? FileManager.default.fileExists(atPath: p + "/kustomization.yaml")
                                           : FileManager.default.fileExists(atPath: p)
                    #expect(ok, "\(dir)/kustomization.yaml: \(r) does not exist")
                }
                checked += 1
            }
        }
        #expect(checked >= 8)
    }

    @Test("the default install has no remediation rights; the optional component holds them")
    func remediationIsOptional() async throws {
        let base = try Self.objects(Self.defaultDir)
        let component = try Self.kustomization(Self.componentDir)
        #expect(component.doc["kind"]?.stringValue == "Component")
        #expect(!base.contains { $0["metadata"]?["name"]?.stringValue == "tapio-remediation" })
        for obj in base where ["Role", "ClusterRole"].contains(obj["kind"]?.stringValue ?? "") {
            for g in Self.grants(obj) where g.group == "apps" || g.group == "*" {
                #expect(!(["deployments", "statefulsets", "*"].contains(g.resource) && Self.writeVerbs.contains(g.verb)),
                        "\(obj["metadata"]?["name"]?.goRendered ?? "") may \(g.verb) \(g.resource)")
            }
        }
        let withComponent = try Self.objects(RepoFiles.path("config/overlays/remediation"))
        let role = try Self.find(withComponent, kind: "ClusterRole", name: "tapio-remediation")
        let g = Self.grants(role)
        // Exactly what IncreaseMemoryLimit uses: read the workload (is it managed by Argo CD or Flux?) and patch it.
        #expect(Set(g.map { "\($0.group)/\($0.resource) \($0.verb)" })
                    == ["apps/deployments get", "apps/deployments patch", "apps/statefulsets get", "apps/statefulsets patch"])
        let binding = try Self.find(withComponent, kind: "ClusterRoleBinding", name: "tapio-remediation")
        #expect(binding["subjects"]?.arrayValue?.first?["name"] == .string("tapio-operator"))
    }

    @Test("the agent reads pods, nodes and policies and writes only insights, their status, events and its Lease")
    func agentRBAC() async throws {
        let objs = try Self.objects(Self.defaultDir)
        let role = Self.grants(try Self.find(objs, kind: "ClusterRole", name: "tapio-agent"))
        for r in ["pods", "nodes", "tapiopolicies"] {
            for v in ["get", "list", "watch"] { #expect(role.contains { $0.resource == r && $0.verb == v }, "\(v) \(r)") }
        }
        let writes = Set(role.filter { Self.writeVerbs.contains($0.verb) }.map { "\($0.group)/\($0.resource)" })
        #expect(writes == ["tapio.io/insights", "tapio.io/insights/status", "events.k8s.io/events"])
        // Issue 14: no cluster-wide Event watch per agent (N agents would each receive every node's Events).
        #expect(!role.contains { $0.resource == "events" && ["list", "watch"].contains($0.verb) })
        #expect(!role.contains { $0.verb == "*" || $0.resource == "*" || $0.group == "*" })
        #expect(!role.contains { $0.resource == "secrets" || $0.resource == "tapiopolicies/status" })
        let lease = try Self.find(objs, kind: "Role", name: "tapio-agent-lease")
        #expect(lease["metadata"]?["namespace"] == .string("tapio-system"))
        #expect(Set(Self.grants(lease).map { "\($0.group)/\($0.resource)" }) == ["coordination.k8s.io/leases"])
        let binding = try Self.find(objs, kind: "RoleBinding", name: "tapio-agent-lease")
        #expect(binding["subjects"]?.arrayValue?.first?["name"] == .string("tapio-agent"))
    }

    @Test("the operator adds policy status and its election Lease, writable by name only")
    func operatorRBAC() async throws {
        let objs = try Self.objects(Self.defaultDir)
        let role = Self.grants(try Self.find(objs, kind: "ClusterRole", name: "tapio-operator"))
        #expect(role.contains { $0.resource == "tapiopolicies/status" && $0.verb == "update" })
        #expect(!role.contains { $0.resource == "tapiopolicies" && Self.writeVerbs.contains($0.verb) })
        #expect(!role.contains { $0.verb == "*" || $0.resource == "*" })
        let lease = Self.grants(try Self.find(objs, kind: "Role", name: "tapio-operator-lease"))
        let updates = lease.filter { $0.verb == "update" || $0.verb == "patch" }
        #expect(!updates.isEmpty && updates.allSatisfy { $0.names == ["tapio-operator"] })
    }

    @Test("the agent DaemonSet uses hostPID, no privileged mode, only the BPF and /proc capabilities, read-only host mounts")
    func agentDaemonSet() async throws {
        let objs = try Self.objects(Self.defaultDir)
        let ds = try Self.find(objs, kind: "DaemonSet", name: "tapio-agent")
        #expect(ds["metadata"]?["namespace"] == .string("tapio-system"))
        let pod = try #require(ds["spec"]?["template"]?["spec"])
        #expect(pod["hostPID"] == .bool(true))
        #expect(pod["serviceAccountName"] == .string("tapio-agent"))
        let c = try #require(pod["containers"]?.arrayValue?.first)
        let command = (c["command"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(command == ["tapio", "agent", "--node-name", "$(NODE_NAME)"])
        #expect(c["env"]?.arrayValue?.contains { $0["name"] == .string("NODE_NAME")
            && $0["valueFrom"]?["fieldRef"]?["fieldPath"] == .string("spec.nodeName") } == true)
        let sc = try #require(c["securityContext"])
        #expect(sc["privileged"] != .bool(true))
        #expect(pod["securityContext"]?["privileged"] != .bool(true))
        let added = Set((sc["capabilities"]?["add"]?.arrayValue ?? []).compactMap(\.stringValue))
        #expect(added == ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"], "not SYS_RESOURCE: runc on the real node could not grant it")
        #expect(sc["capabilities"]?["drop"] == .array([.string("ALL")]))
        // Each capability carries a comment saying why (read from the file, since YAML drops comments).
        let text = try RepoFiles.text("config/agent/daemonset.yaml")
        for cap in added {
            let lines = text.components(separatedBy: "\n")
            let i = try #require(lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == "- \(cap)" })
            #expect(lines[i - 1].trimmingCharacters(in: .whitespaces).hasPrefix("#"), "\(cap) has no justification")
        }
        let volumes = Dictionary(uniqueKeysWithValues: (pod["volumes"]?.arrayValue ?? []).compactMap { v in
            v["name"]?.stringValue.map { ($0, v) } })
        // The host's processes are read through hostPID's /proc: no hostPath of /proc.
        #expect(!volumes.values.contains { $0["hostPath"]?["path"] == .string("/proc") })
        for hostPath in ["/sys/fs/cgroup", "/sys/kernel/btf"] {
            let vol = try #require(volumes.values.first { $0["hostPath"]?["path"] == .string(hostPath) }, "\(hostPath)")
            let mount = try #require(c["volumeMounts"]?.arrayValue?.first { $0["name"] == vol["name"] })
            #expect(mount["readOnly"] == .bool(true), "\(hostPath) must be mounted read-only")
        }
        // The one writable hostPath is the agent's own state directory, where --state-file points (the engine's
        // memory kept across restarts); every other host path is read-only.
        let args = (c["args"]?.arrayValue ?? []).compactMap(\.stringValue)
        let stateFile = try #require(args.firstIndex(of: "--state-file").flatMap { args.indices.contains($0 + 1) ? args[$0 + 1] : nil },
                                     "the agent keeps no state file")
        for m in c["volumeMounts"]?.arrayValue ?? [] {
            let v = volumes[m["name"]?.stringValue ?? ""]
            guard v?["hostPath"] != nil else { continue }
            if v?["hostPath"]?["path"] == .string("/var/lib/tapio") {
                #expect(m["mountPath"] == .string("/var/lib/tapio") && stateFile.hasPrefix("/var/lib/tapio/"), "\(stateFile)")
                #expect(v?["hostPath"]?["type"] == .string("DirectoryOrCreate"))
            } else {
                #expect(m["readOnly"] == .bool(true), "\(m["mountPath"]?.goRendered ?? "")")
            }
        }
        // The budget: ≤ 32 MiB at rest (measured 27–30); the request a little above, the limit headroom above it.
        let req = try Quantity.parseBytes(try #require(c["resources"]?["requests"]?["memory"]?.stringValue))
        let lim = try Quantity.parseBytes(try #require(c["resources"]?["limits"]?["memory"]?.stringValue))
        #expect(req <= 48 << 20 && req >= 32 << 20)
        #expect(lim >= 2 * req)
        #expect(c["resources"]?["requests"]?["cpu"] != nil)
        #expect(c["livenessProbe"]?["httpGet"]?["path"] == .string("/healthz"))
        #expect(c["readinessProbe"]?["httpGet"]?["path"] == .string("/readyz"))
        #expect(c["ports"]?.arrayValue?.first?["containerPort"] == .int(9464))
    }

    @Test("the operator runs two replicas with leader election, health probes and no root")
    func operatorDeployment() async throws {
        let objs = try Self.objects(Self.defaultDir)
        let d = try Self.find(objs, kind: "Deployment", name: "tapio-operator")
        #expect(d["spec"]?["replicas"] == .int(2))
        let pod = try #require(d["spec"]?["template"]?["spec"])
        #expect(pod["serviceAccountName"] == .string("tapio-operator"))
        #expect(pod["securityContext"]?["runAsNonRoot"] == .bool(true))
        let c = try #require(pod["containers"]?.arrayValue?.first)
        let command = (c["command"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(command == ["tapio", "operator", "--leader-elect"])
        #expect(c["livenessProbe"]?["httpGet"]?["path"] == .string("/healthz"))
        #expect(c["readinessProbe"]?["httpGet"]?["path"] == .string("/readyz"))
        #expect(c["securityContext"]?["capabilities"]?["add"] == nil)
        #expect(c["ports"]?.arrayValue?.first?["containerPort"] == .int(9464))
    }

    @Test("namespaced objects live in tapio-system, which the default install creates, with both CRDs")
    func namespaceAndCRDs() async throws {
        let objs = try Self.objects(Self.defaultDir)
        _ = try Self.find(objs, kind: "Namespace", name: "tapio-system")
        _ = try Self.find(objs, kind: "CustomResourceDefinition", name: "tapiopolicies.tapio.io")
        _ = try Self.find(objs, kind: "CustomResourceDefinition", name: "insights.tapio.io")
        let namespaced: Set<String> = ["ServiceAccount", "Role", "RoleBinding", "DaemonSet", "Deployment", "Service",
                                       "PodDisruptionBudget"]
        for o in objs where namespaced.contains(o["kind"]?.stringValue ?? "") {
            #expect(o["metadata"]?["namespace"] == .string("tapio-system"), "\(o["metadata"]?["name"]?.goRendered ?? "")")
        }
        let k = try Self.kustomization(Self.defaultDir)
        #expect(k.doc["namespace"] == .string("tapio-system"))
        #expect(k.components.isEmpty)
    }

    /// kubectl, where installed (this machine has it, CI machines do not).
    static let kubectl: URL? = ["/usr/local/bin/kubectl", "/usr/bin/kubectl"].map(URL.init(fileURLWithPath:))
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }

    @Test("kubectl kustomize renders the default install and the remediation overlay",
          .enabled(if: kubectl != nil, "kubectl is not installed here; the Yams-based checks above cover the structure"),
          arguments: ["config/default", "config/overlays/remediation", "config/samples", "crds"])
    func kustomizeRenders(dir: String) async throws {
        let r = try await CommandRunner.run(try #require(Self.kubectl), ["kustomize", RepoFiles.path(dir)])
        #expect(r.status == 0, "\(r.stderr)")
        let docs = try JSONValue.parseYAMLDocuments(r.stdout)
        #expect(!docs.isEmpty)
        // Quoted enum strings must survive kustomize's own YAML round trip.
        if dir != "config/samples" {
            #expect(r.stdout.contains(#"- "Off""#) || r.stdout.contains("- 'Off'"), "the Off enum lost its quotes")
        }
        let remediation = docs.contains { $0["metadata"]?["name"] == .string("tapio-remediation") }
        #expect(remediation == (dir == "config/overlays/remediation"))
    }

    @Test("the sample policy decodes into the Swift type and passes validation")
    func samplePolicyIsValid() async throws {
        let json = try JSONValue.parseYAML(RepoFiles.text("config/samples/tapio.io_v1alpha1_tapiopolicy.yaml"))
        let (policy, problems) = TapioPolicyValidation.decodeAndValidate(json: json.jsonData())
        #expect(policy?.spec.remediation.mode == .dryRun)
        #expect(problems == [])
    }
}
