import KubeClient

/// Runs `body`, failing with `KubeError.timeout` if it takes longer than `limit` (and cancelling it).
func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { g in
        g.addTask { try await body() }
        g.addTask { try await Task.sleep(for: limit); return nil }
        defer { g.cancelAll() }
        guard let first = try await g.next(), let value = first else {
            throw KubeError.timeout(message: "no answer within \(limit)")
        }
        return value
    }
}

/// Runs `body` and gives up on it after `limit`, cancelling it: nil when it did not finish in time. For shutdown
/// work against a server that may never answer (a pod has 30 s from SIGTERM to exit), so `body` must end when
/// cancelled — every read of `KubeClient` does.
public func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async -> T) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        return await group.next() ?? nil
    }
}
