import Foundation

/// A program left running while a test watches what it prints, signals it and waits for it to exit: for tests
/// that must stop a long-running command once a condition holds rather than after a fixed time. Output goes to
/// files so a chatty program never blocks on a full pipe; waiting polls with `Task.sleep`, never blocking a thread
/// of the cooperative pool (as wide as the machine: 2 threads here).
public final class BackgroundCommand: @unchecked Sendable {
    public let process = Process()
    private let directory: URL
    private var stdoutURL: URL { directory.appendingPathComponent("stdout") }
    private var stderrURL: URL { directory.appendingPathComponent("stderr") }

    public init(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-bg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("stdout").path, contents: nil)
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("stderr").path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: directory.appendingPathComponent("stdout"))
        process.standardError = try FileHandle(forWritingTo: directory.appendingPathComponent("stderr"))
        do { try process.run() } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// `tapio` with these arguments.
    public convenience init(tapio arguments: [String], environment: [String: String]? = nil) throws {
        try self.init(CommandRunner.tapioExecutable, arguments, environment: environment)
    }

    deinit { cleanUp() }

    /// Everything written to standard output so far.
    public var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    /// Everything written to standard error so far.
    public var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
    public var isRunning: Bool { process.isRunning }
    public var pid: Int32 { process.processIdentifier }

    public func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Polls `condition` (every 200 ms) until it holds, the program exits, or `timeout` passes: whether it held.
    /// The program's exit ends the wait early, since nothing it printed will change after that, but the condition
    /// is checked once more on the final output.
    public func waitFor(timeout: Duration, _ condition: (BackgroundCommand) throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline && process.isRunning {
            if try condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return try condition(self)
    }

    /// The exit status, or nil if the program still runs after `timeout`.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    /// Kills the program if it still runs and removes its output files.
    public func cleanUp() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }
}

extension BackgroundCommand {
    /// The /metrics address `tapio sniff -o prometheus` announces on stderr once it listens (the port may be 0).
    public func announcedMetricsURL(timeout: Duration = .seconds(60)) async -> URL? {
        var url: URL?
        _ = await waitFor(timeout: timeout) { s in
            let text = s.stderr
            if let r = text.range(of: #"http://127\.0\.0\.1:[0-9]+/metrics"#, options: .regularExpression) {
                url = URL(string: String(text[r]))
            }
            return url != nil
        }
        return url
    }
}

extension BackgroundCommand {
    /// The port `tapio agent` or `tapio operator` serves /metrics, /healthz and /readyz on, from its log.
    public var metricsPort: Int? {
        let log = stderr
        guard let r = log.range(of: #"/readyz on port [0-9]+"#, options: .regularExpression) else { return nil }
        return Int(log[r].split(separator: " ").last ?? "")
    }

    /// SIGTERM, then up to `grace` for the program to exit: whether it did, and how long it took.
    public func terminate(grace: Duration = .seconds(30)) async -> (exited: Bool, after: Duration) {
        let start = ContinuousClock.now
        signal(SIGTERM)
        while process.isRunning && ContinuousClock.now - start < grace { try? await Task.sleep(for: .milliseconds(50)) }
        return (!process.isRunning, ContinuousClock.now - start)
    }
}
