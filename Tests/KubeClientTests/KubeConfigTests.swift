import Foundation
import KubeClient
import Testing

@Suite("Kubeconfig parsing")
struct KubeConfigTests {
    static let good = """
    apiVersion: v1
    kind: Config
    current-context: one
    clusters:
    - name: c1
      cluster:
        server: https://10.0.0.1:6443
        insecure-skip-tls-verify: true
    contexts:
    - name: one
      context: {cluster: c1, user: u1, namespace: team-a}
    - name: two
      context: {cluster: c1, user: u2}
    users:
    - name: u1
      user: {token: abc}
    - name: u2
      user: {tokenFile: tok}
    """

    @Test func theCurrentContextSuppliesServerTokenAndNamespace() throws {
        let c = try KubeConfig.parse(yaml: Self.good, file: "/tmp/kc")
        #expect(c.server.absoluteString == "https://10.0.0.1:6443")
        #expect(c.token == "abc")
        #expect(c.namespace == "team-a")
        #expect(c.insecureSkipTLSVerify)
    }

    @Test func anExplicitContextWinsAndRelativeTokenFilesResolveAgainstTheKubeconfigDirectory() throws {
        let c = try KubeConfig.parse(yaml: Self.good, file: "/etc/kube/kc", context: "two")
        #expect(c.tokenFile == "/etc/kube/tok")
        #expect(c.namespace == "default")
    }

    @Test func aMissingServerIsReportedWithFileAndField() throws {
        let yaml = Self.good.replacingOccurrences(of: "    server: https://10.0.0.1:6443\n", with: "")
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.parse(yaml: yaml, file: "/tmp/bad") }
        #expect(e.file == "/tmp/bad")
        #expect(e.field == "clusters[name=c1].cluster.server")
        #expect(e.description.hasPrefix("/tmp/bad: clusters[name=c1].cluster.server"))
    }

    @Test func invalidBase64CertificateDataNamesTheField() throws {
        let yaml = Self.good.replacingOccurrences(of: "insecure-skip-tls-verify: true", with: "certificate-authority-data: '%%%not base64'")
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.parse(yaml: yaml, file: "/tmp/bad") }
        #expect(e.field == "clusters[name=c1].cluster.certificate-authority-data")
    }

    @Test func anUnknownContextIsReported() throws {
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.parse(yaml: Self.good, file: "/tmp/kc", context: "nope") }
        #expect(e.field == "contexts")
        #expect(e.message.contains("nope"))
    }

    @Test func inClusterConfigNeedsTheServiceEnvironment() throws {
        let e = try #require(throws: KubeConfigError.self) { try KubeConfig.inCluster(environment: [:]) }
        #expect(e.field == "KUBERNETES_SERVICE_HOST")
    }
}
