import Foundation
import TapioModel
import TapioNode

/// Benchmarks for this area; see Harness.swift.
let nodeBenchmarks: [Benchmark] = [
    Benchmark(name: "node.lookup.cached", summary: "PodTranslator.attribution(pid:) on a warm cache (budget ≤ 50 ns)") {
        let t = PodTranslator()
        let pid = getpid()
        guard t.attribution(pid: pid) != nil else { throw NodeBenchError("cannot resolve own pid") }
        let n = 20_000_000
        for _ in 0..<1_000_000 { blackHole(t.attribution(pid: pid)) }
        let start = nowNanos()
        for _ in 0..<n { blackHole(t.attribution(pid: pid)) }
        let pidNs = Double(nowNanos() - start) / Double(n)
        let id = t.attribution(pid: pid)!.cgroupID
        var idNs = 0.0
        if id != 0, t.attribution(cgroupID: id) != nil {
            let s = nowNanos()
            for _ in 0..<n { blackHole(t.attribution(cgroupID: id)) }
            idNs = Double(nowNanos() - s) / Double(n)
        }
        return [Measurement(metric: "pid lookup", value: pidNs, unit: "ns/op"),
                Measurement(metric: "cgroup id lookup", value: idNs, unit: "ns/op"),
                Measurement(metric: "hits", value: Double(t.stats.hits), unit: "count")]
    },
    Benchmark(name: "node.lookup.uncached", summary: "pid lookup that reads /proc/<pid>/cgroup every time (budget ≤ 10 µs)") {
        var c = PodTranslator.Configuration()
        c.ttl = .zero
        let t = PodTranslator(configuration: c)
        let pid = getpid()
        // Entries expire at once (ttl 0) and the coarse clock ticks every few ms, so invalidate to force each read.
        let n = 200_000
        for _ in 0..<10_000 { t.invalidate(pid: pid); blackHole(t.attribution(pid: pid)) }
        let start = nowNanos()
        for _ in 0..<n {
            t.invalidate(pid: pid)
            blackHole(t.attribution(pid: pid))
        }
        let ns = Double(nowNanos() - start) / Double(n)
        return [Measurement(metric: "pid lookup via /proc", value: ns / 1000, unit: "µs/op"),
                Measurement(metric: "misses", value: Double(t.stats.misses), unit: "count")]
    },
    Benchmark(name: "node.cache.memory", summary: "bytes of RSS per cached pid entry (100,000 entries)") {
        let t = PodTranslator()
        let pid = getpid()
        guard t.attribution(pid: pid) != nil else { throw NodeBenchError("cannot resolve own pid") }
        let n: Int32 = 100_000
        // Fork events copy the parent's entry: 100,000 pid entries sharing one attribution, as a container's do.
        let before = currentRSSBytes()
        for child in 1...n where child != pid {
            t.observe(NodeEvent(timestampNanos: 0, pid: pid, cgroupID: 0, comm: "", kind: .processFork(childPID: 1_000_000 + child)))
        }
        let after = currentRSSBytes()
        let entries = t.stats.entries
        return [Measurement(metric: "entries", value: Double(entries), unit: "count"),
                Measurement(metric: "RSS per entry", value: Double(after &- before) / Double(entries), unit: "bytes"),
                Measurement(metric: "estimated (byte bound) per entry", value: Double(t.stats.estimatedBytes) / Double(entries), unit: "bytes")]
    },
    Benchmark(name: "node.scan.1000", summary: "one /proc scan with 1,000 extra sleep processes, cold cache") {
        var pids: [pid_t] = []
        defer {
            for p in pids { kill(p, SIGKILL) }
            for p in pids { var s: Int32 = 0; waitpid(p, &s, 0) }
        }
        for _ in 0..<1000 {
            var p: pid_t = 0
            let args: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("300"), nil]
            defer { args.forEach { free($0) } }
            let rc = args.withUnsafeBufferPointer { posix_spawn(&p, "/bin/sleep", nil, nil, UnsafeMutablePointer(mutating: $0.baseAddress!), environ) }
            if rc != 0 { throw NodeBenchError("posix_spawn: \(rc)") }
            pids.append(p)
        }
        // Let 1,000 process start-ups finish before timing, so the scan does not compete with their exec.
        try await Task.sleep(for: .seconds(2))
        var results: [Measurement] = []
        var best = UInt64.max
        var seen = 0
        for _ in 0..<5 {
            let t = PodTranslator()
            let cpu0 = processCPUNanos()
            let start = nowNanos()
            seen = t.scanOnce()
            let wall = nowNanos() - start
            let cpu = processCPUNanos() - cpu0
            if wall < best {
                best = wall
                results = [Measurement(metric: "processes scanned", value: Double(seen), unit: "count"),
                           Measurement(metric: "scan wall time", value: Double(wall) / 1e6, unit: "ms"),
                           Measurement(metric: "scan CPU time", value: Double(cpu) / 1e6, unit: "ms"),
                           Measurement(metric: "per process", value: Double(wall) / Double(seen) / 1000, unit: "µs")]
            }
        }
        let warm = PodTranslator()
        warm.scanOnce()
        let start = nowNanos()
        warm.scanOnce()
        results.append(Measurement(metric: "warm rescan wall time", value: Double(nowNanos() - start) / 1e6, unit: "ms"))
        return results
    },
]

struct NodeBenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
