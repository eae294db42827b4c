/// Pressure stall information from a `memory.pressure` file (PSI).
public struct MemoryPressure: Sendable, Hashable {
    /// Share of time (percent) some task stalled on memory over 10 s / 60 s / 300 s.
    public var someAvg10: Double
    public var someAvg60: Double
    public var someAvg300: Double
    /// Total stall time, microseconds.
    public var someTotalMicros: UInt64
    public var fullAvg10: Double
    public var fullAvg60: Double
    public var fullAvg300: Double
    public var fullTotalMicros: UInt64

    public init(someAvg10: Double = 0, someAvg60: Double = 0, someAvg300: Double = 0, someTotalMicros: UInt64 = 0,
                fullAvg10: Double = 0, fullAvg60: Double = 0, fullAvg300: Double = 0, fullTotalMicros: UInt64 = 0) {
        self.someAvg10 = someAvg10
        self.someAvg60 = someAvg60
        self.someAvg300 = someAvg300
        self.someTotalMicros = someTotalMicros
        self.fullAvg10 = fullAvg10
        self.fullAvg60 = fullAvg60
        self.fullAvg300 = fullAvg300
        self.fullTotalMicros = fullTotalMicros
    }

    /// Parses `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` / `full …` lines; nil when neither line is there.
    public static func parse(_ text: String) -> MemoryPressure? {
        var p = MemoryPressure()
        var any = false
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let kind = fields.first, kind == "some" || kind == "full" else { continue }
            var values: [Substring: Substring] = [:]
            for f in fields.dropFirst() {
                let kv = f.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { values[kv[0]] = kv[1] }
            }
            let a10 = values["avg10"].flatMap { Double($0) } ?? 0
            let a60 = values["avg60"].flatMap { Double($0) } ?? 0
            let a300 = values["avg300"].flatMap { Double($0) } ?? 0
            let total = values["total"].flatMap { UInt64($0) } ?? 0
            if kind == "some" {
                (p.someAvg10, p.someAvg60, p.someAvg300, p.someTotalMicros) = (a10, a60, a300, total)
            } else {
                (p.fullAvg10, p.fullAvg60, p.fullAvg300, p.fullTotalMicros) = (a10, a60, a300, total)
            }
            any = true
        }
        return any ? p : nil
    }
}

/// A container's (cgroup's) memory facts, read from its cgroup files. Bytes unless named otherwise.
public struct CgroupMemoryStats: Sendable, Hashable {
    public var version: CgroupVersion
    public var usageBytes: UInt64
    /// nil when unlimited (v1's page-rounded LONG_MAX, v2's `max`).
    public var limitBytes: UInt64?
    /// usage − inactive file, clamped at 0: the figure kubelet evicts on and the OOM killer roughly sees.
    public var workingSetBytes: UInt64
    public var inactiveFileBytes: UInt64
    /// v1 `total_rss`, v2 `anon`.
    public var rssBytes: UInt64
    /// v1 `total_cache`, v2 `file`.
    public var cacheBytes: UInt64
    /// v1 `memory.failcnt` (times usage hit the limit); nil on v2.
    public var failcnt: UInt64?
    /// v2 `memory.events` `oom`; nil on v1.
    public var oomEvents: UInt64?
    /// OOM kills in this cgroup: v2 `memory.events` `oom_kill`, v1 `memory.oom_control` `oom_kill` (kernel ≥ 4.13).
    public var oomKills: UInt64?
    /// v1 `memory.oom_control` `under_oom`.
    public var underOOM: Bool?
    /// `memory.pressure`, when the kernel has PSI for this hierarchy.
    public var pressure: MemoryPressure?

    public init(version: CgroupVersion, usageBytes: UInt64, limitBytes: UInt64?, workingSetBytes: UInt64,
                inactiveFileBytes: UInt64, rssBytes: UInt64, cacheBytes: UInt64, failcnt: UInt64? = nil,
                oomEvents: UInt64? = nil, oomKills: UInt64? = nil, underOOM: Bool? = nil, pressure: MemoryPressure? = nil) {
        self.version = version
        self.usageBytes = usageBytes
        self.limitBytes = limitBytes
        self.workingSetBytes = workingSetBytes
        self.inactiveFileBytes = inactiveFileBytes
        self.rssBytes = rssBytes
        self.cacheBytes = cacheBytes
        self.failcnt = failcnt
        self.oomEvents = oomEvents
        self.oomKills = oomKills
        self.underOOM = underOOM
        self.pressure = pressure
    }
}

/// Why a cgroup memory file could not be used. Names the file.
public enum CgroupReadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// open/read failed (missing file, cgroup removed, permission).
    case unreadable(file: String, errno: Errno)
    /// The file was read but did not hold what it should.
    case malformed(file: String, content: String)

    public var file: String {
        switch self {
        case .unreadable(let f, _), .malformed(let f, _): f
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let f, let e): "cannot read \(f): \(e)"
        case .malformed(let f, let c): "unexpected content in \(f): \(c.prefix(80).debugDescription)"
        }
    }
}
