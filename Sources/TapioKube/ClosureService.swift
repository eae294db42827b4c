import ServiceLifecycle

/// A long-running closure as a `Service` that ends on graceful shutdown.
public struct ClosureService: Service {
    let body: @Sendable () async -> Void
    public init(_ body: @escaping @Sendable () async -> Void) { self.body = body }
    public func run() async throws { await cancelWhenGracefulShutdown { await body() } }
}
