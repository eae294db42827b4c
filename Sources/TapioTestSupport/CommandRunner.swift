import Foundation

/// Runs a program to completion for tests: its exit status and what it printed.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// True when the program was killed because it outlived its timeout.
    public var timedOut: Bool
}

public enum CommandRunner {
    /// The directory holding this build's products (`tapio`, `tapio-bench`, the test bundle).
    public static var buildProductsDirectory: URL {
        // The test runner is itself a product in that directory (.build/<triple>/<config>/tapioPackageTests.xctest).
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// The `tapio` executable built with the tests.
    public static var tapioExecutable: URL { buildProductsDirectory.appendingPathComponent("tapio") }

    /// The repository's root directory (for crds/, config/, Tests/Scenarios/).
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `executable` with `arguments`, killing it after `timeout`. Output is captured through files so a
    /// chatty program never blocks on a full pipe. Waiting is `Task.sleep`, never a blocked thread: tests run in
    /// parallel on a cooperative pool as wide as the machine (2 threads here), which a blocking wait would starve.
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
                           timeout: Duration = .seconds(60)) async throws -> CommandResult {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-cmd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        if let environment { p.environment = environment }
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = ContinuousClock.now + timeout
        var timedOut = false
        while p.isRunning {
            if ContinuousClock.now > deadline {
                timedOut = true
                p.terminate()
                try? await Task.sleep(for: .milliseconds(500))
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        p.waitUntilExit()
        try out.close()
        try err.close()
        return CommandResult(status: p.terminationStatus,
                             stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                             stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "",
                             timedOut: timedOut)
    }
}
