import Foundation
import TapioSinks
import Testing

/// `/metrics` shows glibc's heap — what the process holds against what it freed and malloc kept — read at each scrape
/// (the soak benchmark tells state that grows from retained memory with it).
struct ProcessHeapMetricsTests {
    @Test(.enabled(if: ProcessHeap.current() != nil, "the C library is not glibc (no mallinfo2)"))
    func aScrapeCarriesTheHeapInUseAndFreeAndTheArenaCount() throws {
        let text = String(decoding: TapioMetrics().render(), as: UTF8.self)
        func value(_ series: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        // This process has allocated (the registry, the text): something is in use, and malloc runs an arena.
        #expect(try #require(value(#"tapio_process_heap_bytes{state="in_use"}"#)) > 0, "\(text)")
        #expect(value(#"tapio_process_heap_bytes{state="free"}"#) != nil, "\(text)")
        #expect(try #require(value("tapio_process_heap_arenas")) >= 1, "\(text)")
    }

    /// This process's anonymous resident memory (KiB).
    static func rssAnonKiB() throws -> Int {
        Int(try #require(Resident.current(), "no RssAnon in /proc/self/status").anonymous / 1024)
    }

    /// The operator's relist at 50,000 Insights left 163 MiB freed but held by malloc; a trim gives such pages back.
    /// 100 MiB in 1 KiB blocks, all but every 256th freed: the survivors keep the arena from shrinking at its top, so
    /// the freed pages stay resident until the trim releases them from inside the arena.
    @Test(.enabled(if: ProcessHeap.current() != nil, "the C library is not glibc (no malloc_trim)"))
    func aTrimGivesFreedHeapPagesBackToTheSystem() throws {
        var blocks: [UnsafeMutableRawPointer] = []
        blocks.reserveCapacity(102_400)
        for _ in 0..<102_400 {
            let p = try #require(malloc(1024))
            memset(p, 1, 1024)
            blocks.append(p)
        }
        for (i, p) in blocks.enumerated() where i % 256 != 0 { free(p) }
        let before = try Self.rssAnonKiB()
        let heap = try #require(ProcessHeap.current())
        #expect(HeapTrimmer().shouldTrim(heap), "\(heap)")
        let clock = ContinuousClock()
        let took = clock.measure { #expect(ProcessHeap.trim(), "malloc_trim released nothing") }
        let after = try Self.rssAnonKiB()
        for (i, p) in blocks.enumerated() where i % 256 == 0 { free(p) }
        print("[heap] RssAnon \(before) KiB -> \(after) KiB after a trim that took \(took)")
        #expect(before - after >= 50 * 1024, "RssAnon \(before) KiB before the trim, \(after) KiB after")
    }

    @Test func theTrimmerWaitsForEnoughFreeMemory() {
        let trimmer = HeapTrimmer(minimumFree: 8 << 20)
        #expect(!trimmer.shouldTrim(ProcessHeap(inUse: 10 << 20, free: 4 << 20, arenaBytes: 0, arenas: 1)), "below the minimum")
        #expect(!trimmer.shouldTrim(ProcessHeap(inUse: 400 << 20, free: 20 << 20, arenaBytes: 0, arenas: 8)), "ordinary slack")
        #expect(trimmer.shouldTrim(ProcessHeap(inUse: 310 << 20, free: 163 << 20, arenaBytes: 0, arenas: 8)))
    }
}
