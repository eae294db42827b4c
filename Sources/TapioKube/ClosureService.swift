import ServiceLifecycle

/// A long-running closure as a `Service` that ends on graceful shutdown.
public struct ClosureService: Service {
    let body: @Sendable () async -> Void
    public init(_ body: @escaping @Sendable () async -> Void) { self.body = body }
    public func run() async throws { await cancelWhenGracefulShutdown { await body() } }
}

/// Waits for graceful shutdown, then calls `stop` — for work that runs outside the group but must end as soon as
/// shutdown starts. Put it last: a group stops its services in reverse order.
public struct StopOnShutdown: Service {
    let stop: @Sendable () -> Void
    public init(_ stop: @escaping @Sendable () -> Void) { self.stop = stop }
    public func run() async throws {
        try? await gracefulShutdown()
        stop()
    }
}
