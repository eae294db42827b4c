import Testing

/// Runs each test of a suite on ``CPUBoundExecutor`` (why: there), for suites that compute for a second or more
/// without awaiting: `@Suite("…", .cpuBound)`.
public struct CPUBound: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public init() {}

    /// Around each test case only, inside its time limit: around the whole test the limit's timer would inherit the
    /// preference too, and share the executor's threads with the test it is to time out.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        test.isSuite || testCase == nil ? nil : self
    }

    public func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        try await withTaskExecutorPreference(CPUBoundExecutor.shared) { try await function() }
    }
}

extension Trait where Self == CPUBound {
    public static var cpuBound: Self { Self() }
}
