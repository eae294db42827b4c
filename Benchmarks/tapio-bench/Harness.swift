import Foundation

/// One figure a benchmark reports.
struct Measurement: Sendable {
    var metric: String
    var value: Double
    var unit: String
}

/// A named benchmark. `run` does its own warm-up and repetitions and returns its figures.
struct Benchmark: Sendable {
    var name: String
    var summary: String
    var run: @Sendable () async throws -> [Measurement]
}

/// Monotonic nanoseconds, for timing loops.
@inline(__always) func nowNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Process CPU time (user + system) in nanoseconds, from getrusage.
func processCPUNanos() -> UInt64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = UInt64(usage.ru_utime.tv_sec) * 1_000_000_000 + UInt64(usage.ru_utime.tv_usec) * 1_000
    let sys = UInt64(usage.ru_stime.tv_sec) * 1_000_000_000 + UInt64(usage.ru_stime.tv_usec) * 1_000
    return user + sys
}

/// Resident set size of this process in bytes, from /proc/self/statm.
func currentRSSBytes() -> UInt64 {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
    return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
}

/// Keeps the optimiser from deleting work whose result is unused.
@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

enum BenchmarkRunner {
    static func main(registry: [Benchmark], arguments: [String]) async {
        if arguments.contains("--help") || arguments.contains("-h") {
            FileHandle.standardError.write(Data("""
            usage: tapio-bench [--list] [NAME…]
              Runs the named benchmarks (all when none are named). One JSON object per line on stdout,
              a table on stderr. Build with `swift build -c release` for figures worth quoting.

            """.utf8))
            return
        }
        if arguments.contains("--list") {
            for b in registry { print("\(b.name)\t\(b.summary)") }
            return
        }
        let wanted = Set(arguments)
        let unknown = wanted.subtracting(registry.map(\.name))
        if !unknown.isEmpty {
            FileHandle.standardError.write(Data("tapio-bench: unknown benchmark(s): \(unknown.sorted().joined(separator: ", ")); --list names them\n".utf8))
            exit(2)
        }
        var rows: [(String, Measurement)] = []
        var failed = false
        for b in registry where wanted.isEmpty || wanted.contains(b.name) {
            do {
                for m in try await b.run() {
                    rows.append((b.name, m))
                    let line: [String: Any] = ["benchmark": b.name, "metric": m.metric, "value": m.value, "unit": m.unit]
                    let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
                    print(String(decoding: data, as: UTF8.self))
                }
            } catch {
                failed = true
                FileHandle.standardError.write(Data("tapio-bench: \(b.name) failed: \(error)\n".utf8))
            }
        }
        var table = "\n" + pad("benchmark", 34) + pad("metric", 34) + pad("value", 16) + "unit\n"
        for (name, m) in rows {
            table += pad(name, 34) + pad(m.metric, 34) + pad(format(m.value), 16) + m.unit + "\n"
        }
        FileHandle.standardError.write(Data(table.utf8))
        if failed { exit(1) }
    }

    private static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
    private static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(format: "%.3f", v)
    }
}
