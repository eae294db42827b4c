import Foundation

/// The `kubectl` on this machine, for tests that check what users see (`kubectl get insights`). Tests that need it
/// skip with `unavailableReason` when it is absent.
public enum Kubectl {
    /// The first `kubectl` on PATH, or nil.
    public static let executable: URL? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { URL(fileURLWithPath: String($0)).appendingPathComponent("kubectl") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    public static var isAvailable: Bool { executable != nil }
    public static var unavailableReason: String { "kubectl is not installed (none on PATH)" }

    /// Runs `kubectl --kubeconfig <kubeconfig> <arguments>` with a private discovery cache (so no test reads another
    /// server's cached discovery) and `KUBECONFIG` unset. Prints what failed when kubectl exits non-zero.
    public static func run(kubeconfig: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CommandResult {
        guard let executable else { throw KubectlUnavailable() }
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("tapio-kubectl-cache-\(getpid())").path
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "KUBECONFIG")
        let r = try await CommandRunner.run(executable, ["--kubeconfig", kubeconfig, "--cache-dir", cache, "--request-timeout", "20s"] + arguments,
                                            environment: env, timeout: timeout)
        if r.status != 0 || r.timedOut {
            FileHandle.standardError.write(Data("kubectl \(arguments.joined(separator: " ")) exited \(r.status)\(r.timedOut ? " (timed out)" : ""): \(r.stderr)\n".utf8))
        }
        return r
    }

    /// kubectl's table output as rows keyed by column header (`NAME`, `TYPE`, `NOMINATED NODE`…). Cells are cut at
    /// the header's column offsets, so empty cells (a blank PROBABILITY) stay empty instead of shifting the row.
    public static func table(_ output: String) -> [[String: String]] {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: true).map { Array($0) }
        guard let header = lines.first else { return [] }
        // Columns are separated by at least two spaces; multi-word headers have single spaces.
        var starts: [Int] = []
        var names: [String] = []
        var i = 0
        while i < header.count {
            if header[i] != " " {
                let start = i
                while i < header.count, !(header[i] == " " && (i + 1 >= header.count || header[i + 1] == " ")) { i += 1 }
                starts.append(start)
                names.append(String(header[start..<i]))
            } else {
                i += 1
            }
        }
        return lines.dropFirst().map { line in
            var row: [String: String] = [:]
            for (n, name) in names.enumerated() {
                let from = starts[n], to = n + 1 < starts.count ? starts[n + 1] : Int.max
                guard from < line.count else { row[name] = ""; continue }
                row[name] = String(line[from..<min(to, line.count)]).trimmingCharacters(in: .whitespaces)
            }
            return row
        }
    }

    /// The column headers of kubectl's table output, in order.
    public static func headers(_ output: String) -> [String] {
        guard let first = output.split(separator: "\n").first else { return [] }
        return first.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

public struct KubectlUnavailable: Error, CustomStringConvertible {
    public var description: String { Kubectl.unavailableReason }
}
