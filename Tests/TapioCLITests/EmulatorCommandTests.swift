import Foundation
import KubeClient
import TapioTestSupport
import Testing

/// The `tapio-emulator` binary the README's walkthrough starts: it serves until SIGINT (Ctrl-C) or SIGTERM, then
/// stops and removes the kubeconfig it wrote. (Its SIGINT source was released as soon as it was made, so Ctrl-C —
/// ignored to let the source have it — did nothing, and only SIGTERM stopped it.)
@Suite("tapio-emulator", .timeLimit(.minutes(2)))
struct EmulatorCommandTests {
    static var executable: URL { CommandRunner.buildProductsDirectory.appendingPathComponent("tapio-emulator") }

    @Test("it serves until SIGINT or SIGTERM, then exits 0 and removes its kubeconfig", arguments: [SIGINT, SIGTERM])
    func stopsOnASignal(_ signal: Int32) async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.executable.path), "not built: \(Self.executable.path)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-emulator-cmd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let kubeconfig = dir.appendingPathComponent("kubeconfig").path
        let p = Process()
        p.executableURL = Self.executable
        p.arguments = ["--kubeconfig", kubeconfig]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        #expect(await eventually(timeout: .seconds(30)) { FileManager.default.fileExists(atPath: kubeconfig) }, "no kubeconfig written")
        let client = try KubeClient(kubeconfigPath: kubeconfig)
        _ = try await client.list(Namespace.self)
        try await client.shutdown()

        kill(p.processIdentifier, signal)
        #expect(await eventually(timeout: .seconds(30)) { !p.isRunning }, "still running 30 s after signal \(signal)")
        guard !p.isRunning else { return }
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "\(p.terminationReason) \(p.terminationStatus)")
        #expect(!FileManager.default.fileExists(atPath: kubeconfig), "the kubeconfig was left behind")
    }

    @Test("an unknown argument exits 64 with the usage")
    func anUnknownArgumentExits64() async throws {
        let r = try await CommandRunner.run(Self.executable, ["--no-such-flag"], timeout: .seconds(30))
        #expect(r.status == 64)
        #expect(r.stderr.contains("unknown argument --no-such-flag") && r.stderr.contains("usage: tapio-emulator"), "\(r.stderr)")
    }
}
