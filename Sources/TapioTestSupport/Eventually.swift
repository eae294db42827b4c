/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held. Tests wait for
/// conditions this way, never for a fixed time.
public func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
