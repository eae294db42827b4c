import Foundation
import KubeEmulator

/// The API server a test talks to, always through a kubeconfig: an in-process `KubeEmulator` by default, or the
/// cluster named by the kubeconfig in `TAPIO_TEST_KUBECONFIG` (a real kube-apiserver with `crds/` applied). Tests
/// against a real server work in their own namespace (`namespace`, `tapio-test-<random>`) and remove it afterwards.
public final class TestCluster: Sendable {
    /// The kubeconfig to build clients from.
    public let kubeconfigPath: String
    /// Present only when running against the emulator; fault injection needs it.
    public let emulator: KubeEmulator?
    /// A namespace name unique to this test (created by the test through its client).
    public let namespace: String

    /// True when `TAPIO_TEST_KUBECONFIG` points the tests at a real server.
    public static var usesRealServer: Bool { ProcessInfo.processInfo.environment["TAPIO_TEST_KUBECONFIG"].map { !$0.isEmpty } ?? false }

    init(kubeconfigPath: String, emulator: KubeEmulator?) {
        self.kubeconfigPath = kubeconfigPath
        self.emulator = emulator
        let chars = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        namespace = "tapio-test-" + String((0..<8).map { _ in chars.randomElement()! })
    }

    /// Starts (or points at) a server. `tls: false` asks the emulator for plain HTTP.
    public static func start(tls: Bool = true, historyLimit: Int = 10_000, bookmarkInterval: Duration = .milliseconds(500)) async throws -> TestCluster {
        if let path = ProcessInfo.processInfo.environment["TAPIO_TEST_KUBECONFIG"], !path.isEmpty {
            return TestCluster(kubeconfigPath: path, emulator: nil)
        }
        let emu = try await KubeEmulator.start(tls: tls, historyLimit: historyLimit, bookmarkInterval: bookmarkInterval)
        return TestCluster(kubeconfigPath: emu.kubeconfigPath, emulator: emu)
    }

    /// Returns the emulator for tests that inject faults, or prints why the test is skipped and returns nil.
    public func requireEmulator(_ test: String = #function) -> KubeEmulator? {
        if let emulator { return emulator }
        FileHandle.standardError.write(Data("skipped \(test): needs fault injection, only available with the emulator (TAPIO_TEST_KUBECONFIG is set)\n".utf8))
        return nil
    }

    /// Stops the emulator (nothing to do for a real server; the test removes its namespace).
    public func stop() async {
        await emulator?.stop()
    }
}
