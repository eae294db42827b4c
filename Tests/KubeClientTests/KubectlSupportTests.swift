import Foundation
@testable import KubeClient
import KubeEmulator
import TapioTestSupport
import Testing

/// What kubectl needs from an API server, asked for through the Swift client: discovery, the `meta.k8s.io` Table
/// form `kubectl get` prints, metadata-only forms, and honest 404/406/400 answers. These run against the emulator,
/// or against the server `TAPIO_TEST_KUBECONFIG` names (all but the aggregated-discovery fallback hold there too).
@Suite("kubectl support: discovery and server-side tables")
struct KubectlSupportTests {
    static let insightType = ResourceType(apiVersion: "tapio.io/v1alpha1", kind: "Insight", plural: "insights", namespaced: true)
    /// What `kubectl get` (1.32) sends.
    static let kubectlTableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    /// What kubectl's discovery client sends for `/api` and `/apis`.
    static let aggregatedDiscoveryAccept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"

    static func crds() throws -> [CustomResourceDefinition] {
        try KubeEmulator.defaultCRDFiles().map { try CustomResourceDefinition.load(yamlFile: $0) }
    }

    static func insight(_ name: String, _ ns: String, type: String = "OOMPrediction") -> JSONValue {
        .object(["apiVersion": "tapio.io/v1alpha1", "kind": "Insight", "metadata": .object(["name": .string(name), "namespace": .string(ns)]),
                 "spec": .object(["type": .string(type), "severity": "Warning", "title": "Pod leaky will run out of memory",
                                  "summary": "Working set grows 2 MiB/s towards its 256 MiB limit.",
                                  "subject": .object(["kind": "Pod", "name": "leaky", "namespace": .string(ns)]),
                                  "prediction": .object(["kind": "OOMKill", "probability": .double(0.85), "confidence": .double(0.9),
                                                         "timeToEvent": "3m15s"])])])
    }

    /// Creates an Insight and sets its status phase (through /status, as the agent does).
    /// Creates an Insight and then writes its status, as the agent does: two changes (ADDED, MODIFIED) to a watcher.
    /// The CRD defaults `status.phase` to Active, so the status write sets `lastSeen` too: a patch that changes
    /// nothing is no event on either server.
    static func createInsight(_ client: KubeClient, _ name: String, _ ns: String, type: String = "OOMPrediction") async throws {
        _ = try await client.createRaw(insightType, namespace: ns, body: insight(name, ns, type: type).jsonData())
        _ = try await client.patchRaw(insightType, namespace: ns, name: name, subresource: "status",
                                      patch: Data(#"{"status":{"phase":"Active","lastSeen":"2026-01-01T00:00:00Z"}}"#.utf8), patchType: .merge)
    }

    struct Answer {
        var status: Int
        var contentType: String
        var body: JSONValue
        var text: String
    }

    /// GET with a chosen `Accept` header, through the client's own request builder and connection pool; any status
    /// is returned (not thrown) so tests can look at Status bodies.
    static func get(_ client: KubeClient, _ path: String, query: [(String, String)] = [], accept: String) async throws -> Answer {
        var req = client.makeRequest(method: .GET, path: path, query: query, body: nil, contentType: nil,
                                     auth: try await client.authentication())
        req.headers.replaceOrAdd(name: "Accept", value: accept)
        let resp = try await client.http.execute(req, timeout: .seconds(30))
        let bytes = try await resp.body.collect(upTo: 64 << 20)
        let data = Data(bytes.readableBytesView)
        return Answer(status: Int(resp.status.code), contentType: resp.headers.first(name: "Content-Type") ?? "",
                      body: (try? JSONValue.parse(data)) ?? .null, text: String(decoding: data, as: UTF8.self))
    }

    static func json(_ client: KubeClient, _ path: String) async throws -> JSONValue {
        try JSONValue.parse(try await client.send(method: .GET, path: path).body)
    }

    static func columnNames(_ table: JSONValue) -> [String] {
        (table["columnDefinitions"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
    }

    // MARK: Discovery

    @Test(.timeLimit(.minutes(2))) func discoveryListsEveryEmulatedKindWithTheCRDsNames() async throws {
        try await withCluster { _, client, _ in
            let version = try await Self.json(client, "/version")
            #expect(version["major"]?.stringValue == "1")
            #expect(version["gitVersion"]?.stringValue?.hasPrefix("v1.") == true)

            let api = try await Self.json(client, "/api")
            #expect(api["kind"]?.stringValue == "APIVersions")
            #expect(api["versions"]?.arrayValue?.contains("v1") == true)

            let apis = try await Self.json(client, "/apis")
            #expect(apis["kind"]?.stringValue == "APIGroupList")
            let groups = apis["groups"]?.arrayValue ?? []
            for g in ["apps", "events.k8s.io", "coordination.k8s.io", "tapio.io"] {
                let group = groups.first { $0["name"]?.stringValue == g }
                #expect(group != nil, "group \(g) missing from /apis")
                let preferred = group?["preferredVersion"]?["groupVersion"]?.stringValue
                #expect(preferred?.hasPrefix(g + "/") == true)
                #expect(group?["versions"]?.arrayValue?.contains { $0["groupVersion"]?.stringValue == preferred } == true)
            }
            let tapioGroup = try await Self.json(client, "/apis/tapio.io")
            #expect(tapioGroup["kind"]?.stringValue == "APIGroup")
            #expect(tapioGroup["name"]?.stringValue == "tapio.io")

            // Every built-in kind the emulator serves, where kubectl looks for it.
            var docs: [String: [JSONValue]] = [:]
            func resources(_ groupVersion: String) async throws -> [JSONValue] {
                if let d = docs[groupVersion] { return d }
                let path = groupVersion.contains("/") ? "/apis/\(groupVersion)" : "/api/\(groupVersion)"
                let doc = try await Self.json(client, path)
                #expect(doc["kind"]?.stringValue == "APIResourceList")
                #expect(doc["groupVersion"]?.stringValue == groupVersion)
                docs[groupVersion] = doc["resources"]?.arrayValue ?? []
                return docs[groupVersion]!
            }
            for k in EmulatedKind.builtins {
                let list = try await resources(k.apiVersion)
                let r = list.first { $0["name"]?.stringValue == k.plural }
                #expect(r?["kind"]?.stringValue == k.kind, "\(k.apiVersion) \(k.plural)")
                #expect(r?["namespaced"]?.boolValue == k.namespaced, "\(k.apiVersion) \(k.plural)")
                #expect(r?["verbs"]?.arrayValue?.contains("list") == true && r?["verbs"]?.arrayValue?.contains("watch") == true)
                if k.hasStatus {
                    let s = list.first { $0["name"]?.stringValue == "\(k.plural)/status" }
                    let verbs = Set(s?["verbs"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                    #expect(verbs.isSuperset(of: ["get", "patch", "update"]), "\(k.plural)/status")
                }
            }
            let core = try await resources("v1")
            #expect(core.first { $0["name"]?.stringValue == "pods" }?["shortNames"] == .array(["po"]))
            #expect(core.first { $0["name"]?.stringValue == "pods" }?["categories"]?.arrayValue?.contains("all") == true)
            #expect(core.first { $0["name"]?.stringValue == "pods" }?["singularName"]?.stringValue == "pod")

            // Every CRD from crds/, named as the CRD document names it.
            for crd in try Self.crds() {
                for v in crd.versions where v.served {
                    let list = try await resources("\(crd.group)/\(v.name)")
                    let r = list.first { $0["name"]?.stringValue == crd.names.plural }
                    #expect(r?["kind"]?.stringValue == crd.names.kind)
                    #expect(r?["singularName"]?.stringValue == (crd.names.singular ?? crd.names.kind.lowercased()))
                    #expect(r?["namespaced"]?.boolValue == (crd.scope == .namespaced))
                    #expect((r?["shortNames"]?.arrayValue ?? []).compactMap(\.stringValue) == crd.names.shortNames)
                    #expect((r?["categories"]?.arrayValue ?? []).compactMap(\.stringValue) == crd.names.categories)
                    if v.statusSubresource {
                        let s = list.first { $0["name"]?.stringValue == "\(crd.names.plural)/status" }
                        #expect(s?["kind"]?.stringValue == crd.names.kind)
                    }
                }
            }
        }
    }

    /// kubectl asks for aggregated discovery first; a legacy document sent as plain `application/json` is what makes
    /// client-go fall back (a real 1.33 server answers the aggregated form instead, so this is emulator-only).
    @Test(.timeLimit(.minutes(2))) func aRequestForAggregatedDiscoveryGetsTheLegacyDocumentAsPlainJSON() async throws {
        try await withCluster { cluster, client, _ in
            guard cluster.requireEmulator() != nil else { return }
            for path in ["/api", "/apis"] {
                let a = try await Self.get(client, path, accept: Self.aggregatedDiscoveryAccept)
                #expect(a.status == 200)
                #expect(a.contentType == "application/json")
                #expect(a.body["kind"]?.stringValue == (path == "/api" ? "APIVersions" : "APIGroupList"))
            }
            // Asking for nothing but a conversion discovery cannot do is refused, not half-answered.
            let refused = try await Self.get(client, "/apis", accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
            #expect(refused.status == 406)
            #expect(refused.body["kind"]?.stringValue == "Status")
            #expect(refused.body["reason"]?.stringValue == "NotAcceptable")
        }
    }

    @Test(.timeLimit(.minutes(2))) func unknownPathsAre404WithAStatusBody() async throws {
        try await withCluster { _, client, ns in
            for path in ["/apis/nope.example.com", "/apis/nope.example.com/v1", "/apis/tapio.io/v9", "/api/v2",
                         "/apis/tapio.io/v1alpha1/widgets", "/apis/tapio.io/v1alpha1/namespaces/\(ns)/widgets",
                         "/api/v1/namespaces/\(ns)/pods/x/frobnicate"] {
                let a = try await Self.get(client, path, accept: "application/json")
                #expect(a.status == 404, "\(path)")
                if path.hasPrefix("/api/") {
                    // The legacy group's own handler: a Status.
                    #expect(a.body["kind"]?.stringValue == "Status", "\(path)")
                    #expect(a.body["reason"]?.stringValue == "NotFound", "\(path)")
                    #expect(a.body["code"]?.intValue == 404, "\(path)")
                } else {
                    // kube-apiserver's catch-all handler under /apis: plain text.
                    #expect(a.text == "404 page not found\n" && a.contentType.hasPrefix("text/plain"), "\(path): \(a.contentType) \(a.text)")
                }
            }
            await #expect {
                _ = try await client.send(method: .GET, path: "/apis/nope.example.com/v1")
            } throws: { e in
                guard case KubeError.notFound = e else { return false }
                return true
            }
        }
    }

    /// kubectl 1.33 sends protobuf bodies for some built-in writes (`kubectl create namespace`). The emulator has
    /// no protobuf codec, so it answers like a server without one — 415 — rather than a misleading 400.
    @Test(.timeLimit(.minutes(2))) func aBodyInAMediaTypeTheEmulatorCannotDecodeIs415() async throws {
        try await withCluster { cluster, client, ns in
            guard cluster.requireEmulator() != nil else { return }
            let body = Data([0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f])
            for path in ["/api/v1/namespaces", "/apis/coordination.k8s.io/v1/namespaces/\(ns)/leases"] {
                await #expect {
                    _ = try await client.send(method: .POST, path: path, body: body, contentType: "application/vnd.kubernetes.protobuf")
                } throws: { e in
                    "\(e)".contains("415") || "\(e)".contains("UnsupportedMediaType")
                }
            }
            // JSON still works.
            let ok = try await client.send(method: .POST, path: "/apis/coordination.k8s.io/v1/namespaces/\(ns)/leases",
                                           body: Data(#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"c"}}"#.utf8),
                                           contentType: "application/json")
            #expect(ok.status == 201)
        }
    }

    // MARK: Tables

    @Test(.timeLimit(.minutes(2))) func anInsightListAsATableHasTheCRDsPrinterColumnsInOrder() async throws {
        try await withCluster { _, client, ns in
            try await Self.createInsight(client, "oom-leaky", ns)
            let crd = try #require(try Self.crds().first { $0.names.kind == "Insight" })
            let printerColumns = try #require(crd.version("v1alpha1")).printerColumns
            #expect(!printerColumns.isEmpty)

            let a = try await Self.get(client, Self.insightType.path(namespace: ns), query: [("limit", "500")], accept: Self.kubectlTableAccept)
            #expect(a.status == 200)
            #expect(a.contentType.hasPrefix("application/json"))
            let table = a.body
            #expect(table["kind"]?.stringValue == "Table")
            #expect(table["apiVersion"]?.stringValue == "meta.k8s.io/v1")
            #expect(table["metadata"]?["resourceVersion"]?.stringValue?.isEmpty == false)
            #expect(Self.columnNames(table) == ["Name"] + printerColumns.map(\.name))
            let defs = table["columnDefinitions"]?.arrayValue ?? []
            #expect(defs.first?["format"]?.stringValue == "name")
            #expect(defs.dropFirst().map { $0["type"]?.stringValue ?? "" } == printerColumns.map(\.type))
            #expect(defs.dropFirst().map { $0["priority"]?.intValue ?? -1 } == printerColumns.map(\.priority))

            let rows = table["rows"]?.arrayValue ?? []
            try #require(rows.count == 1)
            let cells = rows[0]["cells"]?.arrayValue ?? []
            #expect(cells.count == 1 + printerColumns.count)
            func cell(_ column: String) -> JSONValue? {
                guard let i = Self.columnNames(table).firstIndex(of: column), i < cells.count else { return nil }
                return cells[i]
            }
            #expect(cell("Name") == "oom-leaky")
            #expect(cell("Type") == "OOMPrediction")
            #expect(cell("Severity") == "Warning")
            #expect(cell("Subject") == "leaky")
            #expect(cell("Probability")?.doubleValue == 0.85)
            #expect(cell("Time-To-Event") == "3m15s")
            #expect(cell("Phase") == "Active")
            // A `date` column comes back rendered as an age, as kube-apiserver renders it.
            let age = cell("Age")?.stringValue ?? ""
            #expect(age.hasSuffix("s") && Int(age.dropLast()) != nil, "Age cell \(age)")
            // kubectl's default: rows carry PartialObjectMetadata.
            let object = rows[0]["object"]
            #expect(object?["kind"]?.stringValue == "PartialObjectMetadata")
            #expect(object?["apiVersion"]?.stringValue == "meta.k8s.io/v1")
            #expect(object?["metadata"]?["name"]?.stringValue == "oom-leaky")
            #expect(object?["metadata"]?["namespace"]?.stringValue == ns)
            #expect(object?["spec"] == nil)

            // A single GET is a one-row Table; includeObject chooses what the row carries.
            let path = Self.insightType.path(namespace: ns, name: "oom-leaky")
            let full = try await Self.get(client, path, query: [("includeObject", "Object")], accept: Self.kubectlTableAccept)
            #expect(full.body["rows"]?.arrayValue?.count == 1)
            #expect(full.body["rows"]?[0]?["object"]?["kind"]?.stringValue == "Insight")
            #expect(full.body["rows"]?[0]?["object"]?["spec"]?["type"]?.stringValue == "OOMPrediction")
            let none = try await Self.get(client, path, query: [("includeObject", "None")], accept: Self.kubectlTableAccept)
            #expect(none.body["rows"]?[0]?["object"] == nil || none.body["rows"]?[0]?["object"] == .null)
            let bad = try await Self.get(client, path, query: [("includeObject", "Everything")], accept: Self.kubectlTableAccept)
            #expect(bad.status == 400)
            #expect(bad.body["reason"]?.stringValue == "BadRequest")
            // v1beta1 Tables are still served.
            let beta = try await Self.get(client, path, accept: "application/json;as=Table;v=v1beta1;g=meta.k8s.io")
            #expect(beta.body["apiVersion"]?.stringValue == "meta.k8s.io/v1beta1")
        }
    }

    @Test(.timeLimit(.minutes(2))) func builtInKindsPrintLikeKubeAPIServer() async throws {
        try await withCluster { _, client, ns in
            _ = try await client.create(pod("leaky", ns, node: "node-a"))
            _ = try await client.create(lease("tapio-operator", ns, holder: "operator-0"))

            let pods = try await Self.get(client, ResourceType(Pod.self).path(namespace: ns), accept: Self.kubectlTableAccept).body
            #expect(Self.columnNames(pods) == ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"])
            let pc = pods["rows"]?[0]?["cells"]?.arrayValue ?? []
            #expect(pc.first == "leaky")
            #expect(pc.count > 1 ? pc[1] == "0/1" : false)
            #expect(pc.count > 6 ? pc[6] == "node-a" : false)

            let leases = try await Self.get(client, ResourceType(Lease.self).path(namespace: ns), accept: Self.kubectlTableAccept).body
            #expect(Self.columnNames(leases) == ["Name", "Holder", "Age"])
            #expect(leases["rows"]?[0]?["cells"]?.arrayValue?.prefix(2) == ["tapio-operator", "operator-0"])

            let nsTable = try await Self.get(client, ResourceType(Namespace.self).path(namespace: nil, name: ns), accept: Self.kubectlTableAccept).body
            #expect(Self.columnNames(nsTable) == ["Name", "Status", "Age"])
            #expect(nsTable["rows"]?[0]?["cells"]?.arrayValue?.prefix(2) == [.string(ns), "Active"])
        }
    }

    @Test(.timeLimit(.minutes(2))) func aTableForAnUnknownGroupIsRefusedOrFallsBackToThePlainList() async throws {
        try await withCluster { _, client, ns in
            try await Self.createInsight(client, "oom-leaky", ns)
            let path = Self.insightType.path(namespace: ns)
            // Nothing acceptable: 406 with a Status.
            for accept in ["application/json;as=Table;g=example.com;v=v1", "application/json;as=Table", "application/json;as=Table;g=meta.k8s.io;v=v7",
                           "application/json;as=Widget;g=meta.k8s.io;v=v1", "text/html"] {
                let a = try await Self.get(client, path, accept: accept)
                #expect(a.status == 406, "\(accept)")
                #expect(a.body["kind"]?.stringValue == "Status", "\(accept)")
                #expect(a.body["reason"]?.stringValue == "NotAcceptable", "\(accept)")
            }
            // A plain alternative: the ordinary list.
            let plain = try await Self.get(client, path, accept: "application/json;as=Table;g=example.com;v=v1, application/json")
            #expect(plain.status == 200)
            #expect(plain.body["kind"]?.stringValue == "InsightList")
            #expect(plain.body["items"]?.arrayValue?.count == 1)
            // Through `send` (Accept: application/json) nothing changes for the operator and agent.
            let viaSend = try JSONValue.parse(try await client.send(method: .GET, path: path).body)
            #expect(viaSend["kind"]?.stringValue == "InsightList")
        }
    }

    @Test(.timeLimit(.minutes(2))) func metadataOnlyFormsForListsAndObjects() async throws {
        try await withCluster { _, client, ns in
            try await Self.createInsight(client, "oom-leaky", ns)
            let path = Self.insightType.path(namespace: ns)
            let list = try await Self.get(client, path, accept: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").body
            #expect(list["kind"]?.stringValue == "PartialObjectMetadataList")
            #expect(list["items"]?[0]?["kind"]?.stringValue == "PartialObjectMetadata")
            #expect(list["items"]?[0]?["metadata"]?["name"]?.stringValue == "oom-leaky")
            #expect(list["items"]?[0]?["spec"] == nil)
            let one = try await Self.get(client, path + "/oom-leaky", accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1").body
            #expect(one["kind"]?.stringValue == "PartialObjectMetadata")
            // The single-object form of a list is refused.
            let wrong = try await Self.get(client, path, accept: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
            #expect(wrong.status == 406)
        }
    }

    /// `kubectl get -w`: a Table watch sends column definitions with its first event only.
    @Test(.timeLimit(.minutes(2))) func aTableWatchSendsHeadersOnce() async throws {
        try await withCluster { _, client, ns in
            let before = try JSONValue.parse(try await client.send(method: .GET, path: Self.insightType.path(namespace: ns)).body)
            let rv = try #require(before["metadata"]?["resourceVersion"]?.stringValue)
            try await Self.createInsight(client, "oom-leaky", ns)
            let a = try await Self.get(client, Self.insightType.path(namespace: ns),
                                       query: [("watch", "true"), ("resourceVersion", rv), ("timeoutSeconds", "2")],
                                       accept: Self.kubectlTableAccept)
            #expect(a.status == 200)
            let events = a.text.split(separator: "\n").compactMap { try? JSONValue.parse(Data($0.utf8)) }
            try #require(events.count >= 2)
            #expect(events[0]["type"]?.stringValue == "ADDED")
            #expect(events[0]["object"]?["kind"]?.stringValue == "Table")
            #expect(Self.columnNames(events[0]["object"] ?? .null).first == "Name")
            #expect(events[1]["type"]?.stringValue == "MODIFIED")
            #expect(events[1]["object"]?["kind"]?.stringValue == "Table")
            #expect(events[1]["object"]?["columnDefinitions"] == nil || events[1]["object"]?["columnDefinitions"] == .null)
            #expect(events[1]["object"]?["rows"]?[0]?["cells"]?.arrayValue?.contains("Active") == true)
        }
    }
}

