import KubeClient
import TapioModel
@testable import TapioOperator
import TapioTestSupport
import Testing

/// The operator remembers each policy's ceiling check; a deleted policy's check is forgotten at the next policy
/// reconcile (it stayed for the operator's life, across terms, with every container it had found).
@Suite(.timeLimit(.minutes(2)))
struct CeilingChecksTests {
    @Test func aDeletedPolicysCheckIsForgotten() async throws {
        try await TestCluster.with { cluster in
            let client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath)
            let checks = CeilingChecks()
            for name in ["kept", "deleted"] {
                var spec = TapioPolicySpec()
                spec.remediation.mode = .apply
                spec.remediation.allowedActions = [RemediationActionName.increaseMemoryLimit.rawValue]
                spec.remediation.memoryCeiling = "1Gi"
                // A selector no pod has: the check lists nothing on a shared cluster either.
                spec.selector.podSelector = PolicyLabelSelector(matchLabels: ["tapio-test/none": cluster.namespace])
                _ = try await checks.findings(for: TapioPolicy(name: name, spec: spec), client: client)
            }
            #expect(checks.count == 2)
            checks.retain(["kept"])
            #expect(checks.count == 1)
            try await client.shutdown()
        }
    }
}
