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

    /// Now, from glibc's `mallinfo2` (every arena, each under its lock: microseconds, fine per scrape); nil where the
    /// C library is not glibc.
    public static func current() -> ProcessHeap? {
        let s = cprocess_heap_stats()
        guard s.available != 0 else { return nil }
        return ProcessHeap(inUse: s.in_use, free: s.free, arenaBytes: s.arena, arenas: Int(s.arenas))
    }
}
