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
