import Foundation
import KubeClient
import KubeEmulator
import TapioTestSupport
import Testing

/// Real `kubectl` against the cluster the tests use, reached through its kubeconfig only: the emulator's, or the
/// server `TAPIO_TEST_KUBECONFIG` names (kubectl then talks to that server and the test still runs; only the
/// cluster-scoped TapioPolicy fixture is emulator-only). Skipped, with the reason printed, when kubectl is absent.
@Suite("kubectl against the test cluster")
struct KubectlCommandTests {
    static func run(_ kubeconfig: String, _ args: [String]) async throws -> CommandResult {
        try await Kubectl.run(kubeconfig: kubeconfig, args)
    }

    @Test(.timeLimit(.minutes(2)), .enabled(if: Kubectl.isAvailable, Comment(rawValue: Kubectl.unavailableReason)))
    func kubectlGetAndDescribeWork() async throws {
        try await withCluster { cluster, client, ns in
            try await KubectlSupportTests.createInsight(client, "oom-leaky", ns)
            _ = try await client.create(pod("leaky", ns, node: "node-a"))
            _ = try await client.create(lease("tapio-operator", ns, holder: "operator-0"))
            let crd = try #require(try KubectlSupportTests.crds().first { $0.names.kind == "Insight" })
            let shown = try #require(crd.version("v1alpha1")).printerColumns.filter { $0.priority == 0 }.map { $0.name.uppercased() }

            // kubectl get insights: the CRD's printer columns, filled in.
            let get = try await Self.run(cluster.kubeconfigPath, ["get", "insights", "-n", ns])
            #expect(get.status == 0)
            #expect(Kubectl.headers(get.stdout) == ["NAME"] + shown)
            let rows = Kubectl.table(get.stdout)
            try #require(rows.count == 1, "kubectl printed: \(get.stdout)")
            #expect(rows[0]["NAME"] == "oom-leaky")
            #expect(rows[0]["TYPE"] == "OOMPrediction")
            #expect(rows[0]["SEVERITY"] == "Warning")
            #expect(rows[0]["SUBJECT"] == "leaky")
            #expect(rows[0]["PROBABILITY"] == "0.85")
            #expect(rows[0]["TIME-TO-EVENT"] == "3m15s")
            #expect(rows[0]["PHASE"] == "Active")
            #expect(rows[0]["AGE"]?.hasSuffix("s") == true, "AGE \(rows[0]["AGE"] ?? "")")

            // Short names and the singular name resolve through discovery.
            for name in crd.names.shortNames + [crd.names.singular ?? "insight"] {
                let r = try await Self.run(cluster.kubeconfigPath, ["get", name, "oom-leaky", "-n", ns])
                #expect(r.status == 0 && r.stdout.contains("oom-leaky"), "kubectl get \(name)")
            }

            // -o json: the objects themselves.
            let json = try await Self.run(cluster.kubeconfigPath, ["get", "insights", "-n", ns, "-o", "json"])
            #expect(json.status == 0)
            let list = try JSONValue.parse(Data(json.stdout.utf8))
            #expect(list["items"]?.arrayValue?.count == 1)
            #expect(list["items"]?[0]?["spec"]?["type"]?.stringValue == "OOMPrediction")
            #expect(list["items"]?[0]?["status"]?["phase"]?.stringValue == "Active")

            // describe: the generic describer GETs the object and lists its core/v1 Events by field selector.
            let describe = try await Self.run(cluster.kubeconfigPath, ["describe", "insight", "oom-leaky", "-n", ns])
            #expect(describe.status == 0)
            let lines = describe.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
            #expect(lines.contains("Name: oom-leaky"), "\(describe.stdout)")
            #expect(lines.contains("Kind: Insight"))
            #expect(lines.contains("Type: OOMPrediction"))
            #expect(lines.contains { $0.hasPrefix("Events:") })

            let pods = try await Self.run(cluster.kubeconfigPath, ["get", "pods", "-n", ns])
            #expect(Kubectl.headers(pods.stdout) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"])
            #expect(Kubectl.table(pods.stdout).first?["NAME"] == "leaky")
            #expect(Kubectl.table(pods.stdout).first?["READY"] == "0/1")

            let leases = try await Self.run(cluster.kubeconfigPath, ["get", "leases", "-n", ns])
            #expect(Kubectl.headers(leases.stdout) == ["NAME", "HOLDER", "AGE"])
            #expect(Kubectl.table(leases.stdout).first?["HOLDER"] == "operator-0")

            // TapioPolicies are cluster-scoped: only the emulator gets a throwaway one (a real cluster's are left alone).
            let policyType = ResourceType(apiVersion: "tapio.io/v1alpha1", kind: "TapioPolicy", plural: "tapiopolicies", namespaced: false)
            if cluster.emulator != nil {
                let policy = JSONValue.object(["apiVersion": "tapio.io/v1alpha1", "kind": "TapioPolicy",
                                               "metadata": .object(["name": "kubectl-test"]), "spec": .object([:])])
                _ = try await client.createRaw(policyType, namespace: nil, body: policy.jsonData())
            }
            let policies = try await Self.run(cluster.kubeconfigPath, ["get", "tapiopolicies"])
            #expect(policies.status == 0)
            if cluster.emulator != nil {
                let pcrd = try #require(try KubectlSupportTests.crds().first { $0.names.kind == "TapioPolicy" })
                let cols = try #require(pcrd.storageVersion).printerColumns.filter { $0.priority == 0 }.map { $0.name.uppercased() }
                #expect(Kubectl.headers(policies.stdout) == ["NAME"] + cols)
                #expect(Kubectl.table(policies.stdout).first?["NAME"] == "kubectl-test")
                try? await client.deleteRaw(policyType, namespace: nil, name: "kubectl-test")
            }
        }
    }
}
