import Foundation
import TapioTestSupport
import Testing

/// The agent keeps two files open per limited cgroup; containers often start with a soft limit of 1,024 open
/// files. `tapio sniff` and `tapio agent` raise the soft limit to the hard one when they start.
@Suite(.timeLimit(.minutes(2)))
struct OpenFileLimitTests {
    /// The soft and hard "Max open files" of a process, from /proc.
    static func openFiles(of pid: Int32) -> (soft: String, hard: String)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }) else { return nil }
        let fields = line.dropFirst("Max open files".count).split(separator: " ")
        return fields.count >= 2 ? (String(fields[0]), String(fields[1])) : nil
    }

    @Test func sniffRaisesItsSoftLimitToTheHardOne() async throws {
        var env = ProcessInfo.processInfo.environment
        env["KUBECONFIG"] = "/nonexistent/tapio-test-kubeconfig"
        env["KUBERNETES_SERVICE_HOST"] = nil
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        // The shell lowers its soft limit and becomes sniff (same pid).
        p.arguments = ["-c", "ulimit -S -n 256 && exec \"$0\" sniff -o json --duration 60s", CommandRunner.tapioExecutable.path]
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        let limits = await eventually(timeout: .seconds(60)) { () -> (soft: String, hard: String)? in
            // Only once the shell has become sniff (before, its limit is not sniff's to raise).
            let comm = (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/comm", encoding: .utf8)) ?? ""
            guard p.isRunning, comm.hasPrefix("tapio"), let l = Self.openFiles(of: p.processIdentifier), l.soft != "256" else { return nil }
            return l
        }
        let l = try #require(limits, "sniff's soft limit stayed at 256 (or it ended first)")
        #expect(l.soft == l.hard, "soft \(l.soft), hard \(l.hard)")
    }
}
