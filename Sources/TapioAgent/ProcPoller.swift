import Foundation
import Synchronization
import TapioModel
import TapioNode

/// The fallback for the BPF memory probe: every `interval`, each process's resident memory from
/// `/proc/<pid>/statm`, as `memorySample` events. No exit codes or OOM victims (only the kernel probes see those;
/// the cgroup poller still reports OOM kill counters). The poller's own pid is skipped.
public final class ProcPoller: EventSource, Sendable {
    public let name = "proc"
    let procRoot: String
    let loop: PollingLoop
    static let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    public init(interval: Duration, procRoot: String = "/proc", capacity: Int = 16_384) {
        self.procRoot = procRoot
        self.loop = PollingLoop(interval: interval, capacity: capacity)
    }

    var queue: BoundedQueue<TapioEvent> { loop.queue }

    public func events() -> BoundedQueue<TapioEvent> {
        let me = getpid()
        return loop.start { [self] in scanOnce(skipping: me) }
    }

    public func health() -> SourceHealth { loop.health() }

    /// Reads every process once; returns how many samples it queued (and 1 error when /proc cannot be listed).
    @discardableResult
    func scanOnce(skipping me: Int32) -> (events: Int, errors: UInt64) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: procRoot) else { return (0, 1) }
        let now = MonotonicClock.wallNanos()
        var n = 0
        for entry in entries {
            guard let pid = Int32(entry), pid != me else { continue }
            // A process can exit between listing and reading: skip it quietly.
            guard let statm = readSmall("\(procRoot)/\(entry)/statm") else { continue }
            let f = statm.split(separator: " ")
            guard f.count >= 3, let resident = UInt64(f[1]), let shared = UInt64(f[2]) else { continue }
            if resident == 0 { continue }  // kernel threads
            let comm = readSmall("\(procRoot)/\(entry)/comm").map { String($0.dropLast()) } ?? ""
            let anon = (resident &- min(shared, resident)) &* Self.pageSize
            let sample = NodeEvent.MemorySample(rssAnonBytes: anon, rssFileBytes: min(shared, resident) &* Self.pageSize,
                                                rssShmemBytes: 0)
            queue.push(.node(NodeEvent(timestampNanos: now, pid: pid, cgroupID: 0, comm: comm, kind: .memorySample(sample))))
            n += 1
        }
        return (n, 0)
    }
}

/// Reads a small /proc or /sys file in one go (they are generated on read; no need for buffering).
func readSmall(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<n], as: UTF8.self)
}
