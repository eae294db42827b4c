import DequeModule
import TapioModel

/// ``EngineMemory`` as bytes, for the agent's checkpoint file: a fixed little-endian layout (no text to parse, no
/// number that is not range-checked), versioned, with a checksum over everything before it.
///
///     "TAPIOMEM" · version u16 (1) · reserved u16 · takenAt u64 · containers u32 · workloads u32
///     container: namespace, pod name, pod uid, container (strings: u16 length + UTF-8) · flags u8 (1 owner,
///                2 limit, 4 request, 8 cgroup series, 16 restart count from the pod's status) · [owner kind, owner
///                name] · [limit u64] · [request u64] ·
///                restart count u32 · last counted OOM kill u64 · last seen u64 ·
///                history: first sample u64 · last minute i64 · minutes u16 (≤ 128) × (max u32, min u32) ·
///                kill marks, restart marks: count u8 · complete since i64 · minutes i64…
///     workload:  namespace, owner kind, owner name, container · last noted u64 · drops u8 (≤ 4) ×
///                (pod uid, pod name, minute i64, peak f64)
///     FNV-1a 64 of all the bytes before it, u64
///
/// Reading checks every count against its bound and what is left of the file, every string for UTF-8 and length,
/// every minute number for the range an instant can give (so no arithmetic on it overflows later), every mark list
/// for order and every peak for a finite, non-negative value: a file cut short, corrupted or written by another
/// version is an error naming the byte and the field, never a crash, a hang or a huge allocation.
public enum EngineMemoryCodec {
    public static let version: UInt16 = 1
    static let magic = Array("TAPIOMEM".utf8)
    /// Longest string kept: Kubernetes names are at most 253 bytes; a longer one is not from a pod.
    static let maxString = 1024
    /// Most containers written (the most recently seen): far more than any node runs (the kubelet's default is 110
    /// pods), and it keeps the file under ~15 MB, well inside the agent's memory limit when it is read back.
    public static let maxContainers = 10_000
    /// Largest file read back: more than the most this version writes — ``maxContainers`` containers with names
    /// of the longest Kubernetes allows and full histories and marks, and ``WorkloadCycles/capacity`` workloads
    /// with four drops each, ~22 MB (`theLargestFileFitsTheReadLimit`) — and far inside the agent's memory limit
    /// (128 MiB in the DaemonSet) with the decoded copy beside it.
    public static let maxFileBytes = 24 << 20
    /// The largest minute number an instant (nanoseconds since the epoch, 64 bits) gives.
    static let maxMinute = Int64(UInt64.max / MemoryHistory.minuteNanos)

    public struct DecodeError: Error, CustomStringConvertible, Equatable {
        public var offset: Int
        public var field: String
        public var problem: String
        public var description: String { "at byte \(offset) (\(field)): \(problem)" }
    }

    public static func encode(_ m: EngineMemory) -> [UInt8] {
        var w = Writer()
        w.bytes.reserveCapacity(64 + min(m.containers.count, maxContainers) * 1_200 + min(m.workloadCycles.count, WorkloadCycles.capacity) * 300)
        w.bytes.append(contentsOf: magic)
        w.u16(version)
        w.u16(0)
        w.u64(m.takenAt)
        let containers = m.containers.prefix(maxContainers)
        w.u32(UInt32(containers.count))
        w.u32(UInt32(min(m.workloadCycles.count, WorkloadCycles.capacity)))
        for c in containers {
            w.string(c.pod.namespace); w.string(c.pod.name); w.string(c.pod.uid); w.string(c.container)
            let flags: UInt8 = (c.owner != nil ? 1 : 0) | (c.memoryLimit != nil ? 2 : 0) | (c.memoryRequest != nil ? 4 : 0)
                | (c.hasCgroupSeries ? 8 : 0) | (c.restartsKnown ? 16 : 0)
            w.u8(flags)
            if let o = c.owner { w.string(o.kind); w.string(o.name) }
            if let l = c.memoryLimit { w.u64(l) }
            if let r = c.memoryRequest { w.u64(r) }
            w.u32(UInt32(clamping: c.restartCount))
            w.u64(c.lastCountedOOMFinishedAt)
            w.u64(c.lastSeen)
            let h = c.history
            w.u64(h.firstAt)
            w.i64(h.lastMinute)
            w.u16(UInt16(clamping: h.minutes.count))
            for x in h.minutes.suffix(MemoryHistory.capacity) { w.u32(x.max); w.u32(x.min) }
            w.marks(h.oomMarks)
            w.marks(h.restartMarks)
        }
        // In a fixed order (the newest first), so the same memory is always the same bytes.
        let workloads = m.workloadCycles.entries.sorted {
            ($1.value.lastNoted, $0.key.namespace, $0.key.ownerKind, $0.key.ownerName, $0.key.container)
                < ($0.value.lastNoted, $1.key.namespace, $1.key.ownerKind, $1.key.ownerName, $1.key.container)
        }
        for (key, e) in workloads.prefix(WorkloadCycles.capacity) {
            w.string(key.namespace); w.string(key.ownerKind); w.string(key.ownerName); w.string(key.container)
            w.u64(e.lastNoted)
            let drops = e.drops.suffix(WorkloadCycles.dropsKept)
            w.u8(UInt8(drops.count))
            for d in drops { w.string(d.podUID); w.string(d.podName); w.i64(d.minute); w.f64(d.peak) }
        }
        w.u64(fnv1a(w.bytes[...]))
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> EngineMemory {
        var r = Reader(bytes: bytes[...])
        guard bytes.count >= magic.count + 8, Array(bytes.prefix(magic.count)) == magic else {
            throw DecodeError(offset: 0, field: "header", problem: "not a Tapio engine memory file (no TAPIOMEM mark)")
        }
        let body = bytes.count - 8
        var tail = Reader(bytes: bytes[body...])
        let stored = try tail.u64("checksum")
        guard stored == fnv1a(bytes[..<body]) else {
            throw DecodeError(offset: body, field: "checksum", problem: "the checksum does not match: the file is cut short or corrupted")
        }
        r.bytes = bytes[..<body]
        r.offset = magic.count
        let v = try r.u16("version")
        guard v == version else {
            throw DecodeError(offset: magic.count, field: "version", problem: "version \(v), this build reads \(version)")
        }
        _ = try r.u16("reserved")
        let takenAt = try r.u64("taken at")
        // Each record takes at least this many bytes (a container: four empty strings, flags, restart count, four
        // instants, the minute count and two empty mark lists; a workload: four empty strings, an instant and the
        // drop count): a count that could not fit is refused before anything is reserved for it, and so is one
        // past what is ever written.
        let containerCount = try r.count("containers", minimumBytes: 4 * 2 + 1 + 4 + 4 * 8 + 2 + 2 * 9, atMost: maxContainers)
        let workloadCount = try r.count("workloads", minimumBytes: 4 * 2 + 8 + 1, atMost: WorkloadCycles.capacity)
        var containers: [EngineMemory.Container] = []
        containers.reserveCapacity(containerCount)
        for n in 0..<containerCount {
            // (Built only for an error's message.)
            func field() -> String { "container \(n)" }
            let pod = PodRef(namespace: try r.string("\(field()) namespace"), name: try r.string("\(field()) pod name"),
                             uid: try r.string("\(field()) pod uid"))
            let container = try r.string("\(field()) name")
            let flagsAt = r.offset
            let flags = try r.u8("\(field()) flags")
            guard flags & ~0x1F == 0 else {
                throw DecodeError(offset: flagsAt, field: "\(field()) flags", problem: "unknown flags \(flags)")
            }
            let owner = flags & 1 != 0 ? OwnerRef(kind: try r.string("\(field()) owner kind"), name: try r.string("\(field()) owner name")) : nil
            let limit = flags & 2 != 0 ? try r.u64("\(field()) limit") : nil
            let request = flags & 4 != 0 ? try r.u64("\(field()) request") : nil
            let restartsAt = r.offset
            let restarts = try r.u32("\(field()) restart count")
            guard restarts <= UInt32(Int32.max) else {
                throw DecodeError(offset: restartsAt, field: "\(field()) restart count", problem: "\(restarts) is past a restart count's range")
            }
            let lastOOM = try r.u64("\(field()) last counted OOM kill")
            let lastSeen = try r.u64("\(field()) last seen")
            var h = MemoryHistory()
            h.firstAt = try r.u64("\(field()) first sample")
            let lastMinuteAt = r.offset
            h.lastMinute = try r.i64("\(field()) last minute")
            let minutesAt = r.offset
            let minutes = Int(try r.u16("\(field()) minutes"))
            guard minutes <= MemoryHistory.capacity else {
                throw DecodeError(offset: minutesAt, field: "\(field()) minutes", problem: "\(minutes) minutes, at most \(MemoryHistory.capacity) are kept")
            }
            // Every entry's minute (the last one's, counted back) must be one an instant can give.
            guard h.lastMinute >= Int64(max(minutes - 1, 0)), h.lastMinute <= maxMinute else {
                throw DecodeError(offset: lastMinuteAt, field: "\(field()) last minute", problem: "minute \(h.lastMinute) is out of range")
            }
            var entries = Deque<MemoryHistory.Minute>()
            entries.reserveCapacity(minutes)
            for _ in 0..<minutes {
                entries.append(MemoryHistory.Minute(max: try r.u32("\(field()) minute maximum"), min: try r.u32("\(field()) minute minimum")))
            }
            h.minutes = entries
            h.oomMarks = try r.marks("\(field()) kill marks", capacity: MemoryHistory.oomMarksKept)
            h.restartMarks = try r.marks("\(field()) restart marks", capacity: MemoryHistory.restartMarksKept)
            containers.append(EngineMemory.Container(
                pod: pod, container: container, owner: owner, memoryLimit: limit, memoryRequest: request,
                hasCgroupSeries: flags & 8 != 0, restartCount: Int(restarts), restartsKnown: flags & 16 != 0,
                lastCountedOOMFinishedAt: lastOOM, lastSeen: lastSeen, history: h))
        }
        var cycles = WorkloadCycles()
        for n in 0..<workloadCount {
            func field() -> String { "workload \(n)" }
            let key = WorkloadCycles.Key(namespace: try r.string("\(field()) namespace"), ownerKind: try r.string("\(field()) owner kind"),
                                         ownerName: try r.string("\(field()) owner name"), container: try r.string("\(field()) container"))
            let lastNoted = try r.u64("\(field()) last noted")
            let dropsAt = r.offset
            let drops = Int(try r.u8("\(field()) drops"))
            guard drops <= WorkloadCycles.dropsKept else {
                throw DecodeError(offset: dropsAt, field: "\(field()) drops", problem: "\(drops) drops, at most \(WorkloadCycles.dropsKept) are kept")
            }
            var entry = WorkloadCycles.Entry(lastNoted: lastNoted)
            for _ in 0..<drops {
                let uid = try r.string("\(field()) drop's pod uid"), name = try r.string("\(field()) drop's pod name")
                let minuteAt = r.offset
                let minute = try r.i64("\(field()) drop's minute")
                guard minute >= 0, minute <= maxMinute else {
                    throw DecodeError(offset: minuteAt, field: "\(field()) drop's minute", problem: "minute \(minute) is out of range")
                }
                let peakAt = r.offset
                let peak = try r.f64("\(field()) drop's peak")
                guard peak.isFinite, peak >= 0 else {
                    throw DecodeError(offset: peakAt, field: "\(field()) drop's peak", problem: "\(peak) is not a memory size")
                }
                entry.drops.append(WorkloadCycles.Drop(podUID: uid, podName: name, minute: minute, peak: peak))
            }
            cycles.merge(key, entry)
        }
        guard r.offset == body else {
            throw DecodeError(offset: r.offset, field: "end", problem: "\(body - r.offset) bytes left over after the last record")
        }
        return EngineMemory(containers: containers, workloadCycles: cycles, takenAt: takenAt)
    }

    /// FNV-1a, 64 bits: catches a file cut short or a flipped byte (it is not a defence against a forger; the
    /// file is the agent's own, in a directory only it writes).
    static func fnv1a(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    struct Writer {
        var bytes: [UInt8] = []
        mutating func u8(_ v: UInt8) { bytes.append(v) }
        mutating func u16(_ v: UInt16) { for k in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * k))) } }
        mutating func u32(_ v: UInt32) { for k in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * k))) } }
        mutating func u64(_ v: UInt64) { for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) } }
        mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
        mutating func f64(_ v: Double) { u64(v.bitPattern) }
        mutating func string(_ s: String) {
            let utf8 = Array(s.utf8.prefix(EngineMemoryCodec.maxString))
            u16(UInt16(utf8.count))
            bytes.append(contentsOf: utf8)
        }
        mutating func marks(_ m: MinuteMarks) {
            u8(UInt8(clamping: m.minutes.count))
            i64(m.completeSince)
            for x in m.minutes.prefix(Int(UInt8.max)) { i64(x) }
        }
    }

    struct Reader {
        var bytes: ArraySlice<UInt8>
        var offset = 0

        mutating func take(_ n: Int, _ field: @autoclosure () -> String) throws(DecodeError) -> ArraySlice<UInt8> {
            guard n >= 0, bytes.count - offset >= n else {
                throw DecodeError(offset: offset, field: field(), problem: "the file ends \(n - (bytes.count - offset)) bytes short of it")
            }
            let start = bytes.startIndex + offset
            offset += n
            return bytes[start..<(start + n)]
        }
        mutating func le(_ n: Int, _ field: @autoclosure () -> String) throws(DecodeError) -> UInt64 {
            let b = try take(n, field())
            var v: UInt64 = 0
            for (k, x) in zip(0..<UInt64(n), b) { v |= UInt64(x) << (8 * k) }
            return v
        }
        mutating func u8(_ f: @autoclosure () -> String) throws(DecodeError) -> UInt8 { UInt8(truncatingIfNeeded: try le(1, f())) }
        mutating func u16(_ f: @autoclosure () -> String) throws(DecodeError) -> UInt16 { UInt16(truncatingIfNeeded: try le(2, f())) }
        mutating func u32(_ f: @autoclosure () -> String) throws(DecodeError) -> UInt32 { UInt32(truncatingIfNeeded: try le(4, f())) }
        mutating func u64(_ f: @autoclosure () -> String) throws(DecodeError) -> UInt64 { try le(8, f()) }
        mutating func i64(_ f: @autoclosure () -> String) throws(DecodeError) -> Int64 { Int64(bitPattern: try le(8, f())) }
        mutating func f64(_ f: @autoclosure () -> String) throws(DecodeError) -> Double { Double(bitPattern: try le(8, f())) }

        mutating func string(_ field: @autoclosure () -> String) throws(DecodeError) -> String {
            let at = offset
            let n = Int(try u16(field()))
            guard n <= EngineMemoryCodec.maxString else {
                throw DecodeError(offset: at, field: field(), problem: "a string of \(n) bytes, at most \(EngineMemoryCodec.maxString)")
            }
            let raw = try take(n, field())
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw DecodeError(offset: at + 2, field: field(), problem: "not UTF-8")
            }
            return s
        }

        /// A u32 count of records of at least `minimumBytes` each, checked against what is left and `atMost`.
        mutating func count(_ field: String, minimumBytes: Int, atMost: Int) throws(DecodeError) -> Int {
            let at = offset
            let n = Int(try u32(field))
            guard n <= atMost else {
                throw DecodeError(offset: at, field: field, problem: "\(n) records, at most \(atMost) are written")
            }
            guard n <= (bytes.count - offset) / minimumBytes else {
                throw DecodeError(offset: at, field: field, problem: "\(n) records cannot fit in the \(bytes.count - offset) bytes left")
            }
            return n
        }

        mutating func marks(_ field: @autoclosure () -> String, capacity: Int) throws(DecodeError) -> MinuteMarks {
            let at = offset
            let n = Int(try u8(field()))
            guard n <= capacity else {
                throw DecodeError(offset: at, field: field(), problem: "\(n) marks, at most \(capacity) are kept")
            }
            let completeSince = try i64(field())
            var minutes: [Int64] = []
            for _ in 0..<n { minutes.append(try i64(field())) }
            // Minutes an instant can give (completeSince is one past a dropped mark's).
            guard completeSince >= 0, completeSince <= EngineMemoryCodec.maxMinute + 1,
                  minutes.allSatisfy({ $0 >= 0 && $0 <= EngineMemoryCodec.maxMinute }) else {
                throw DecodeError(offset: at, field: field(), problem: "a minute out of range")
            }
            guard let m = MinuteMarks(minutes: minutes, completeSince: completeSince) else {
                throw DecodeError(offset: at, field: field(), problem: "the marks are not in order")
            }
            return m
        }
    }
}
