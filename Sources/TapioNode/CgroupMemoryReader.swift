import TapioModel

/// Reads one cgroup directory's memory files (v1 or v2). Stateless and cheap to copy.
///
/// v1: `memory.usage_in_bytes`, `memory.limit_in_bytes`, `memory.stat`, `memory.failcnt`, `memory.oom_control`.
/// v2: `memory.current`, `memory.max`, `memory.stat`, `memory.events`. Both: `memory.pressure` if present.
/// Working set follows kubelet/cadvisor: usage − inactive file (v1 `total_inactive_file`, v2 `inactive_file`),
/// clamped at 0.
public struct CgroupMemoryReader: Sendable, Hashable {
    public var directory: String
    public var version: CgroupVersion

    public init(directory: String, version: CgroupVersion) {
        self.directory = directory
        self.version = version
    }

    /// A reader for a cgroup path (as `/proc/<pid>/cgroup` names it) under `mount`.
    public init(cgroupPath: String, mount: CgroupMount) {
        self.init(directory: mount.directory(forCgroupPath: cgroupPath), version: mount.version)
    }

    /// v1 reports "no limit" as LONG_MAX rounded down to a page (9223372036854771712); anything this large is none.
    static let v1UnlimitedThreshold: UInt64 = 0x7FFF_FFFF_FFFF_0000

    /// Reads everything. Throws ``CgroupReadError`` naming the first required file that is missing or malformed;
    /// optional files (pressure, oom_control's oom_kill on old kernels) leave their fields nil.
    public func read() throws(CgroupReadError) -> CgroupMemoryStats {
        switch version {
        case .v1: try readV1()
        case .v2: try readV2()
        }
    }

    private func readV1() throws(CgroupReadError) -> CgroupMemoryStats {
        let usage = try number("memory.usage_in_bytes")
        let rawLimit = try number("memory.limit_in_bytes")
        let stat = try keyed("memory.stat")
        let failcnt = try number("memory.failcnt")
        let oom = try? keyed("memory.oom_control")
        // Hierarchical totals include children (a pod cgroup's containers); fall back to local values.
        let inactive = stat["total_inactive_file"] ?? stat["inactive_file"] ?? 0
        return CgroupMemoryStats(
            version: .v1, usageBytes: usage, limitBytes: rawLimit >= Self.v1UnlimitedThreshold ? nil : rawLimit,
            workingSetBytes: usage > inactive ? usage - inactive : 0, inactiveFileBytes: inactive,
            rssBytes: stat["total_rss"] ?? stat["rss"] ?? 0, cacheBytes: stat["total_cache"] ?? stat["cache"] ?? 0,
            failcnt: failcnt, oomKills: oom?["oom_kill"], underOOM: oom?["under_oom"].map { $0 != 0 },
            pressure: pressure())
    }

    private func readV2() throws(CgroupReadError) -> CgroupMemoryStats {
        let usage = try number("memory.current")
        let limitText = try text("memory.max").trimmingCharacters(in: " \n")
        let limit: UInt64?
        if limitText == "max" { limit = nil } else if let v = UInt64(limitText) { limit = v } else {
            throw .malformed(file: path("memory.max"), content: limitText)
        }
        let stat = try keyed("memory.stat")
        let events = try keyed("memory.events")
        let inactive = stat["inactive_file"] ?? 0
        return CgroupMemoryStats(
            version: .v2, usageBytes: usage, limitBytes: limit,
            workingSetBytes: usage > inactive ? usage - inactive : 0, inactiveFileBytes: inactive,
            rssBytes: stat["anon"] ?? 0, cacheBytes: stat["file"] ?? 0,
            oomEvents: events["oom"] ?? 0, oomKills: events["oom_kill"] ?? 0, pressure: pressure())
    }

    /// What a poller needs every second, in as few reads as it can: the limit first — an unlimited cgroup costs
    /// that one small read and gives nil — then usage, and the inactive file pages scanned out of `memory.stat`
    /// without building a dictionary. Agrees with ``read()`` on usage, working set and limit.
    public func sample() throws(CgroupReadError) -> (usageBytes: UInt64, workingSetBytes: UInt64, limitBytes: UInt64)? {
        guard let limit = try limit() else { return nil }
        let usage: UInt64
        let inactive: UInt64
        switch version {
        case .v1:
            usage = try number("memory.usage_in_bytes")
            let stat = try text("memory.stat")
            inactive = Self.statValue(stat, "total_inactive_file") ?? Self.statValue(stat, "inactive_file") ?? 0
        case .v2:
            usage = try number("memory.current")
            inactive = Self.statValue(try self.text("memory.stat"), "inactive_file") ?? 0
        }
        return (usage, usage > inactive ? usage - inactive : 0, limit)
    }

    /// The memory limit alone (one small read); nil when the cgroup has none.
    public func limit() throws(CgroupReadError) -> UInt64? {
        switch version {
        case .v1:
            let raw = try number("memory.limit_in_bytes")
            return raw < Self.v1UnlimitedThreshold ? raw : nil
        case .v2:
            let text = try self.text("memory.max").trimmingCharacters(in: " \n")
            if text == "max" { return nil }
            guard let v = UInt64(text) else { throw .malformed(file: path("memory.max"), content: text) }
            return v
        }
    }

    /// The value of `key` in `key value` lines, scanning bytes (the poller's hot path; `keyed` allocates per line).
    static func statValue(_ text: String, _ key: String) -> UInt64? {
        var text = text
        return text.withUTF8 { statValue(bytes: $0, key) }
    }

    static func statValue(bytes: UnsafeBufferPointer<UInt8>, _ key: String) -> UInt64? {
        do {
            let k = Array(key.utf8)
            var i = 0
            let n = bytes.count
            while i < n {
                // At a line start: does the line begin with "key "?
                var j = 0
                while j < k.count, i + j < n, bytes[i + j] == k[j] { j += 1 }
                if j == k.count, i + j < n, bytes[i + j] == UInt8(ascii: " ") {
                    var v: UInt64 = 0
                    var p = i + j + 1
                    var digits = 0
                    while p < n, bytes[p] >= UInt8(ascii: "0"), bytes[p] <= UInt8(ascii: "9") {
                        let (m, o1) = v.multipliedReportingOverflow(by: 10)
                        let (a, o2) = m.addingReportingOverflow(UInt64(bytes[p] - UInt8(ascii: "0")))
                        if o1 || o2 { return nil }
                        v = a
                        p += 1
                        digits += 1
                    }
                    return digits > 0 ? v : nil
                }
                while i < n, bytes[i] != UInt8(ascii: "\n") { i += 1 }
                i += 1
            }
            return nil
        }
    }

    /// The pipeline's event for this cgroup: usage, working set and limit.
    public func event(cgroupID: UInt64, timestampNanos: UInt64 = MonotonicClock.wallNanos()) throws(CgroupReadError) -> NodeEvent {
        let s = try read()
        return NodeEvent(timestampNanos: timestampNanos, pid: 0, cgroupID: cgroupID, comm: "",
                         kind: .cgroupMemory(.init(usageBytes: s.usageBytes, workingSetBytes: s.workingSetBytes,
                                                   limitBytes: s.limitBytes)))
    }

    private func pressure() -> MemoryPressure? {
        guard case .success(let t) = FileIO.read(path("memory.pressure")) else { return nil }
        return MemoryPressure.parse(t)
    }

    private func path(_ file: String) -> String { directory + "/" + file }

    private func text(_ file: String) throws(CgroupReadError) -> String {
        switch FileIO.read(path(file)) {
        case .success(let t): return t
        case .failure(let e): throw .unreadable(file: path(file), errno: e)
        }
    }

    private func number(_ file: String) throws(CgroupReadError) -> UInt64 {
        let t = try text(file)
        guard let v = UInt64(t.trimmingCharacters(in: " \n")) else { throw .malformed(file: path(file), content: t) }
        return v
    }

    /// `key value` lines (memory.stat, memory.events, memory.oom_control).
    private func keyed(_ file: String) throws(CgroupReadError) -> [String: UInt64] {
        let t = try text(file)
        var out: [String: UInt64] = [:]
        for line in t.split(separator: "\n") {
            let kv = line.split(separator: " ")
            if kv.count == 2, let v = UInt64(kv[1]) { out[String(kv[0])] = v }
        }
        if out.isEmpty { throw .malformed(file: path(file), content: t) }
        return out
    }
}

extension String {
    /// Foundation-free trim for the few characters cgroup files end with.
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
