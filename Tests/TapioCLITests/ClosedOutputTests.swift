import Foundation
import TapioTestSupport
import Testing

/// `tapio sniff -o json | head -n1`: once the reader has gone, sniff ends as a Unix tool does, by SIGPIPE. It died
/// of a runtime trap instead: Foundation's `FileHandle.write(_:)` is a `try!` on Linux, and SwiftNIO (the Kubernetes
/// client) ignores SIGPIPE for the whole process, so the write failed with EPIPE and the `try!` crashed.
@Suite(.timeLimit(.minutes(2)))
struct ClosedOutputTests {
    @Test func sniffEndsBySIGPIPEWhenItsReaderHasGone() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-closed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A cluster that refuses connections: sniff opens a socket trying it (so SIGPIPE is ignored from then on)
        // and goes on watching the machine alone.
        let kubeconfig = dir.appendingPathComponent("kubeconfig")
        try """
        apiVersion: v1
        kind: Config
        clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
        users: [{name: u, user: {token: t}}]
        contexts: [{name: x, context: {cluster: c, user: u}}]
        current-context: x
        """.write(to: kubeconfig, atomically: true, encoding: .utf8)
        let pipe = Pipe()
        let p = Process()
        p.executableURL = CommandRunner.tapioExecutable
        p.arguments = ["sniff", "-o", "json", "--duration", "3s", "--kubeconfig", kubeconfig.path]
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        // The reader is gone before sniff writes anything: its first line (at the latest the final status) fails.
        try pipe.fileHandleForReading.close()
        try p.run()
        try pipe.fileHandleForWriting.close()
        while p.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGPIPE,
                "sniff ended with \(p.terminationReason == .exit ? "exit status" : "signal") \(p.terminationStatus), not by SIGPIPE")
    }
}
