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
}
