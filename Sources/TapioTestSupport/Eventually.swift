/// Polls `body` every `every` until it returns a value or `timeout` passes; returns the value, or nil if none came.
/// Any value ends the wait — `false` too: a condition that may be unknown (`{ pod?.isReady }`) belongs in the
/// Bool overload below, written `{ pod?.isReady == true }`.
/// Tests wait for conditions this way, never for a fixed time: the timeout bounds a hang, it is not a timing.
public func eventually<T>(timeout: Duration = .seconds(20), every: Duration = .milliseconds(100),
                          _ body: () async throws -> T?) async rethrows -> T? {
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if let value = try await body() { return value }
        try? await Task.sleep(for: every)
    }
    return try await body()
}

/// Polls `condition` every `every` until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(20), every: Duration = .milliseconds(100),
                       _ condition: () async throws -> Bool) async rethrows -> Bool {
    try await eventually(timeout: timeout, every: every) { try await condition() ? true : nil } ?? false
}
