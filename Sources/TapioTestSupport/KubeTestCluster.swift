import Foundation
import KubeClient
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
    private let cleanups = CleanupActions()

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

    /// Registers something to undo when the test ends (deleting a cluster-scoped object it created, say), so a
    /// shared real cluster is left as it was found even when the test fails half-way — provided the test reaches
    /// `stop()` or `runCleanups()`, which the suites' `with…` helpers guarantee by running the body in `do/catch`.
    public func atCleanup(_ action: @escaping @Sendable () async -> Void) {
        cleanups.add(action)
    }

    /// Runs what `atCleanup` registered, newest first, once. Call while the clients the actions use still work.
    public func runCleanups() async {
        for action in cleanups.takeAll().reversed() { await action() }
    }

    /// Runs the registered clean-ups and stops the emulator (for a real server, nothing more).
    public func stop() async {
        await runCleanups()
        await emulator?.stop()
    }
}

extension TestCluster {
    /// Starts a cluster, runs `body` and stops the cluster, awaited, whatever `body` did. (`defer { Task { await
    /// cluster.stop() } }` hands the stop to a task nobody waits for: a test that finishes last in a parallel run lets
    /// the process exit first, and the emulator's kubeconfig directory stays in /tmp.)
    public static func with<T>(tls: Bool = true, _ body: (TestCluster) async throws -> T) async throws -> T {
        try await using(try await start(tls: tls), stop: { await $0.stop() }, body)
    }
}

extension TestCluster {
    /// Starts a cluster and a client for it, creates the test's `namespace` and runs `body`; then — whatever `body`
    /// did — runs what it registered with `atCleanup` while the client still works, deletes the namespace, shuts the
    /// client down and stops the cluster, so a shared real cluster is left as it was found when a test fails half-way.
    public static func withNamespace<T>(tls: Bool = true, historyLimit: Int = 10_000, retry: RetryPolicy = RetryPolicy(),
                                        _ body: (TestCluster, KubeClient) async throws -> T) async throws -> T {
        let cluster = try await start(tls: tls, historyLimit: historyLimit)
        let client: KubeClient
        do { client = try KubeClient(kubeconfigPath: cluster.kubeconfigPath, retryPolicy: retry) } catch {
            await cluster.stop()
            throw error
        }
        func end() async {
            await cluster.runCleanups()
            try? await client.delete(Namespace.self, name: cluster.namespace)
            try? await client.shutdown()
            await cluster.stop()
        }
        do {
            _ = try await client.create(Namespace(metadata: ObjectMeta(name: cluster.namespace)))
            let result = try await body(cluster, client)
            await end()
            return result
        } catch {
            await end()
            throw error
        }
    }
}

/// Starts an emulator, runs `body` and stops the emulator, awaited, whatever `body` did (see `TestCluster.with`).
public func withEmulator<T>(tls: Bool = true, _ body: (KubeEmulator) async throws -> T) async throws -> T {
    try await using(try await KubeEmulator.start(tls: tls), stop: { await $0.stop() }, body)
}

/// Runs `body` on `resource`, then `stop`s it, awaited, whether `body` returned or threw.
private func using<R, T>(_ resource: R, stop: (R) async -> Void, _ body: (R) async throws -> T) async throws -> T {
    do {
        let result = try await body(resource)
        await stop(resource)
        return result
    } catch {
        await stop(resource)
        throw error
    }
}

/// The clean-up actions a test registered, guarded by a lock (tests register them from any task).
final class CleanupActions: @unchecked Sendable {
    private let lock = NSLock()
    private var actions: [@Sendable () async -> Void] = []

    func add(_ action: @escaping @Sendable () async -> Void) {
        lock.withLock { actions.append(action) }
    }

    func takeAll() -> [@Sendable () async -> Void] {
        lock.withLock {
            defer { actions = [] }
            return actions
        }
    }
}
