import Foundation

/// A program run with pipes on its standard input and output, for tests that talk to it while it runs (e.g. that
/// a streaming command answers before its input ends). Waiting polls with `Task.sleep`, never blocking a thread.
public final class PipedProcess {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    /// Everything read from standard output so far.
    public private(set) var received: [UInt8] = []

    public init(_ executable: URL, _ arguments: [String]) throws {
        // A write to a program that already exited must fail with EPIPE, not kill the test runner.
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let fd = output.fileHandleForReading.fileDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        try process.run()
    }

    deinit { terminate() }

    public func write(_ text: String) throws { try input.fileHandleForWriting.write(contentsOf: Data(text.utf8)) }

    public func closeInput() throws { try input.fileHandleForWriting.close() }

    public var stdout: String { String(decoding: received, as: UTF8.self) }

    /// Reads standard output until `done` holds for all of it; false if `timeout` passed first.
    public func waitForOutput(timeout: Duration, until done: (String) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            drain()
            if done(stdout) { return true }
            if ContinuousClock.now > deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The exit status, or nil if the program still runs after `timeout`.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            drain()
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
        drain()
        return process.terminationStatus
    }

    public func terminate() {
        if process.isRunning { process.terminate() }
    }

    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let fd = output.fileHandleForReading.fileDescriptor
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            received += buffer[..<n]
        }
    }
}
