import Foundation
import CProcessHeap

/// The C allocator's view of this process's heap: what the program holds, and what it freed but glibc's malloc kept.
///
/// Anonymous memory (`RssAnon`) that grows while ``inUse`` stays flat is memory freed and retained by the allocator —
/// spread over its arenas, in pages it can only return when they are wholly free — not state the program keeps; the
/// two call for different fixes, which is why `/metrics` shows both (`tapio_process_heap_bytes`).
public struct ProcessHeap: Sendable, Hashable {
    /// Bytes allocated and not freed, large mmap'd blocks included.
    public var inUse: UInt64
    /// Bytes in free chunks the arenas keep (freed by the program, not returned to the system).
    public var free: UInt64
    /// Bytes the arenas took from the system, large mmap'd blocks excluded.
    public var arenaBytes: UInt64
    /// How many arenas malloc runs (0 when it could not say).
    public var arenas: Int

    public init(inUse: UInt64, free: UInt64, arenaBytes: UInt64, arenas: Int) {
        self.inUse = inUse
        self.free = free
        self.arenaBytes = arenaBytes
        self.arenas = arenas
    }

    /// Now, from glibc's `mallinfo2` (every arena, each under its lock: microseconds, fine per scrape); nil where the
    /// C library is not glibc.
    /// `countingArenas: false` leaves ``arenas`` 0 and skips writing malloc_info's XML to count them.
    public static func current(countingArenas: Bool = true) -> ProcessHeap? {
        let s = cprocess_heap_stats(countingArenas ? 1 : 0)
        guard s.available != 0 else { return nil }
        return ProcessHeap(inUse: s.in_use, free: s.free, arenaBytes: s.arena, arenas: Int(s.arenas))
    }

    /// Gives what malloc keeps in free chunks back to the system (`malloc_trim(0)`): after a burst — a relist that
    /// decoded 50,000 Insights, then freed the response — glibc keeps the freed pages in its arenas, and they count in
    /// the process's RSS until something else reuses them. True when memory was released; false elsewhere than glibc.
    /// (`free` does not shrink afterwards: the chunks stay on malloc's lists, only their pages go back.)
    @discardableResult
    public static func trim() -> Bool { cprocess_heap_trim() != 0 }
}

/// Trims the heap (``ProcessHeap/trim()``) every `period` while malloc holds at least `minimumFree` bytes in free
/// chunks and a quarter as much as the program uses. The operator at 50,000 Insights held 310 MiB and kept another
/// 163 MiB freed — its relist, then each 15-s pass's copies of the store — for an RSS of 510 MiB, over its 500 MiB
/// budget. A trim walks every arena's free lists (12 ms for 100 MiB in 100,000 blocks here): every 15 s, the
/// detectors' period, that is under a thousandth of a core.
public struct HeapTrimmer: Sendable {
    public var period: Duration
    public var minimumFree: UInt64

    public init(period: Duration = .seconds(15), minimumFree: UInt64 = 8 << 20) {
        self.period = period
        self.minimumFree = minimumFree
    }

    /// Whether a heap in this state is worth trimming.
    public func shouldTrim(_ heap: ProcessHeap) -> Bool {
        heap.free >= minimumFree && heap.free >= heap.inUse / 4
    }

    /// Until cancelled.
    public func run() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: period) } catch { return }
            if let heap = ProcessHeap.current(countingArenas: false), shouldTrim(heap) { ProcessHeap.trim() }
        }
    }
}

/// The pages of this process's code and constants that start-up touched and rest does not need.
///
/// An agent's start-up runs code it never runs again — argument parsing, the kubeconfig and TLS set-up, libbpf's ELF
/// loader, the first lists' decoding — and the kernel maps those pages into the process for good, with more around
/// each: the file's readahead (up to the disk's `read_ahead_kb`, 8 MiB on this machine) fills the page cache and the
/// 64-KiB fault-around maps what is cached. Clean file pages, dropped first under pressure, but counted in the
/// process's RSS and charged to its cgroup until then. ``release(randomAccess:)`` gives them back.
public enum ProcessFilePages {
    public struct Released: Sendable, Hashable {
        /// Mappings advised.
        public var mappings: Int
        /// Their resident bytes just before.
        public var residentBefore: UInt64
        /// The first error (`errno`) met, 0 if none; EINVAL: a kernel before 5.4 (no MADV_PAGEOUT).
        public var errno: Int32

        public init(mappings: Int, residentBefore: UInt64, errno: Int32) {
            self.mappings = mappings
            self.residentBefore = residentBefore
            self.errno = errno
        }
    }

    /// `madvise(MADV_PAGEOUT)` on every read-only private file mapping whose resident pages are all file pages (not
    /// the relocated, copy-on-write ones, which would go to swap), after `MADV_RANDOM` when `randomAccess`: a page
    /// needed again is then read alone, not with a readahead window that fault-around would map back in whole.
    /// The kernel skips pages another mapping shares (on the operator's node, the operator maps the same image's
    /// binary: the same page cache), and every page of a file the process neither owns nor may write. So the
    /// executable's own mappings are then unmapped outright (`MADV_DONTNEED`: this process's page-table entries only;
    /// pages others map stay in the page cache, a page needed again is faulted back from there or from the file).
    /// Shared libraries' pages in either case stay — compare ``Resident`` before and after.
    ///
    /// Then drops what the page cache holds of the executable and no process maps: readahead's pages around start-up's
    /// faults, which fault-around would map back in. `onlyFile` (an absolute path, as `/proc/self/maps` spells it)
    /// restricts all of it to that file's mappings — what a test can do to its own process.
    public static func release(randomAccess: Bool, onlyFile: String? = nil) -> Released {
        let r = onlyFile.map { path in path.withCString { cprocess_release_file_pages(randomAccess ? 1 : 0, $0) } }
            ?? cprocess_release_file_pages(randomAccess ? 1 : 0, nil)
        return Released(mappings: Int(r.mappings), residentBefore: r.resident_before, errno: r.error)
    }
}

/// This process's resident memory by kind, from `/proc/self/status`.
public struct Resident: Sendable, Hashable {
    public var anonymous: UInt64
    public var file: UInt64
    public var shmem: UInt64
    public var total: UInt64 { anonymous &+ file &+ shmem }

    public init(anonymous: UInt64, file: UInt64, shmem: UInt64) {
        self.anonymous = anonymous
        self.file = file
        self.shmem = shmem
    }

    /// Nil where `/proc/self/status` has no `RssAnon`/`RssFile`/`RssShmem` lines (not Linux ≥ 4.5).
    public static func current() -> Resident? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        return parse(status: text)
    }

    /// The three `Rss…:` lines of a `/proc/PID/status` text, in bytes; nil if one is missing or not a number of kB
    /// that fits.
    public static func parse(status text: String) -> Resident? {
        var found: [Substring: UInt64] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("Rss") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 3, parts[2] == "kB", let kib = UInt64(parts[1]) else { continue }
            let (bytes, overflow) = kib.multipliedReportingOverflow(by: 1024)
            guard !overflow else { continue }
            found[parts[0]] = bytes
        }
        guard let a = found["RssAnon:"], let f = found["RssFile:"], let s = found["RssShmem:"] else { return nil }
        return Resident(anonymous: a, file: f, shmem: s)
    }
}
