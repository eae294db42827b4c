import ServiceLifecycle

/// The pipeline as a `Service`: runs until graceful shutdown (SIGINT/SIGTERM) cancels it.
public struct PipelineService: Service {
    let pipeline: Pipeline
    public init(_ pipeline: Pipeline) { self.pipeline = pipeline }
    public func run() async throws {
        await cancelWhenGracefulShutdown { await pipeline.run() }
    }
}

/// Returns after `duration`, ending the service group (`--duration`).
public struct StopAfter: Service {
    let duration: Duration
    public init(_ duration: Duration) { self.duration = duration }
    public func run() async throws {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }
}
