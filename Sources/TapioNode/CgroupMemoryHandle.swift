import Glibc

/// A limited cgroup's usage and `memory.stat` files, kept open and re-read with `pread` from offset 0 — the kernel
/// regenerates a control file on every read from its start — so a once-a-second sample costs two reads, no path
/// lookups and no allocation. The limit is read once, when the handle is opened (a poller re-opens on its walks).
///
/// `memory.stat` is the expensive file (the kernel formats ~35 counters, on v1 with hierarchical totals): it is
/// re-read when usage moved by more than 1 % since it was last read, or after 10 s; in between the working set
/// uses the last inactive-file figure with the fresh usage.
///
/// Not thread-safe: one owner samples and closes it.
public final class CgroupMemoryHandle: @unchecked Sendable {
    public let directory: String
    public let version: CgroupVersion
    public let limitBytes: UInt64
    let usageFD: Int32
    let statFD: Int32
    private var statUsage: UInt64 = 0
    private var statInactive: UInt64 = 0
    private var statAt: UInt64 = 0
    static let statMaxAgeNanos: UInt64 = 10_000_000_000

    init(directory: String, version: CgroupVersion, limitBytes: UInt64, usageFD: Int32, statFD: Int32) {
        self.directory = directory
        self.version = version
        self.limitBytes = limitBytes
        self.usageFD = usageFD
        self.statFD = statFD
    }

    /// Opens the files of a cgroup that has a memory limit; nil when it has none (or cannot be read).
    public static func open(directory: String, version: CgroupVersion) -> CgroupMemoryHandle? {
        let reader = CgroupMemoryReader(directory: directory, version: version)
        guard let first = try? reader.sample() else { return nil }
        let usageFile = version == .v1 ? "memory.usage_in_bytes" : "memory.current"
        let usage = Glibc.open(directory + "/" + usageFile, O_RDONLY | O_CLOEXEC)
        guard usage >= 0 else { return nil }
        let stat = Glibc.open(directory + "/memory.stat", O_RDONLY | O_CLOEXEC)
        guard stat >= 0 else {
            Glibc.close(usage)
            return nil
        }
        return CgroupMemoryHandle(directory: directory, version: version, limitBytes: first.limitBytes,
                                  usageFD: usage, statFD: stat)
    }

    /// Usage, working set (usage − inactive file, as the kubelet computes it) and the limit; nil once the cgroup
    /// is gone (the kernel fails reads of a removed cgroup's files) or a file reads as garbage.
    public func sample() -> (usageBytes: UInt64, workingSetBytes: UInt64, limitBytes: UInt64)? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16_384) { buffer -> (UInt64, UInt64, UInt64)? in
            guard let base = buffer.baseAddress else { return nil }
            let n = pread(usageFD, base, 64, 0)
            guard n > 0 else { return nil }
            var usage: UInt64 = 0
            var digits = 0
            for i in 0..<n {
                let b = base[i]
                guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { break }
                usage = usage &* 10 &+ UInt64(b - UInt8(ascii: "0"))
                digits += 1
            }
            guard digits > 0 else { return nil }
            let now = MonotonicClock.coarseNanos()
            let moved = usage > statUsage ? usage - statUsage : statUsage - usage
            if statAt == 0 || now &- statAt >= Self.statMaxAgeNanos || moved > usage / 100 {
                let m = pread(statFD, base, buffer.count, 0)
                guard m > 0 else { return nil }
                let stat = UnsafeBufferPointer(start: base, count: m)
                statInactive = version == .v1
                    ? CgroupMemoryReader.statValue(bytes: stat, "total_inactive_file") ?? CgroupMemoryReader.statValue(bytes: stat, "inactive_file") ?? 0
                    : CgroupMemoryReader.statValue(bytes: stat, "inactive_file") ?? 0
                statUsage = usage
                statAt = now
            }
            return (usage, usage > statInactive ? usage - statInactive : 0, limitBytes)
        }.map { (usageBytes: $0.0, workingSetBytes: $0.1, limitBytes: $0.2) }
    }

    public func close() {
        Glibc.close(usageFD)
        Glibc.close(statFD)
    }
}
