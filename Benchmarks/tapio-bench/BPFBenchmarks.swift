import CTapioBPF
import Foundation
import TapioBPF
import TapioModel

/// Benchmarks for the BPF probes (need root and BPF; they fail with the reason otherwise). See Harness.swift.
let bpfBenchmarks: [Benchmark] = [
    Benchmark(name: "bpf-ringbuf-swift-vs-c",
              summary: "ring buffer -> events/s: the Swift reader (decode to NodeEvent, hand off) vs a plain C libbpf reader",
              run: { try ringBufferSwiftVersusC() }),
    Benchmark(name: "bpf-idle-agent",
              summary: "CPU (millicores) and RSS with all probes at 19 Hz, a snapshot every 10 s, a draining consumer; 30 s (TAPIO_BENCH_IDLE_SECONDS)",
              run: { try await idleAgent(seconds: Double(ProcessInfo.processInfo.environment["TAPIO_BENCH_IDLE_SECONDS"] ?? "30") ?? 30) }),
    Benchmark(name: "bpf-page-fault-cost",
              summary: "added ns per 4 KiB page fault with the memory probes (rss_stat + sampler) attached",
              run: { try pageFaultCost() }),
]

private func benchProbes(enabled: ProbeSet, ringBytes: Int = 8 << 20, reader: Bool, extra: Set<String> = [],
                         queue: Int = 65_536) throws -> BPFProbes {
    var configuration = BPFConfiguration(settings: BPFSettings(enabled: enabled), ringBufferBytes: ringBytes,
                                         queueCapacity: queue)
    configuration.extraPrograms = extra
    configuration.startsReader = reader
    return try BPFProbes(configuration: configuration)
}

/// Fills the ring buffer with the in-kernel producer, then times draining it — once through the Swift reader
/// (the real path: records decoded in place into NodeEvents and pushed on the bounded queue), once through a
/// C libbpf reader of the same ring. Rounds alternate so both see the same cache and CPU state.
private func ringBufferSwiftVersusC() throws -> [Measurement] {
    let perRound: UInt32 = 400_000
    let probes = try benchProbes(enabled: [], ringBytes: 64 << 20, reader: false, extra: ["tapio_bench_fill"],
                                 queue: Int(perRound) + 1024)
    defer { probes.close() }
    guard let cReader = ctapio_c_reader_new(probes.ringBufferMapFD) else {
        throw BPFError.system(step: "C reader ring_buffer__new", errno: errno)
    }
    defer { ctapio_c_reader_free(cReader) }
    guard let fieldReader = RingFieldReader(ringMapFD: probes.ringBufferMapFD) else {
        throw BPFError.system(step: "Swift field reader ring_buffer__new", errno: errno)
    }

    // Three readers of the same ring, in rotation: C, Swift reading the same fields in place, and the agent's
    // full path (decode into NodeEvent + bounded queue hand-off).
    var rates: [[Double]] = [[], [], []]
    for round in 0..<15 {
        guard probes.benchFill(count: perRound) else {
            throw BPFError.load(program: "tapio_bench_fill", errno: 0, detail: "not loaded")
        }
        let which = round % 3
        let start = nowNanos()
        var n = 0
        while true {
            let k: Int
            switch which {
            case 0: k = Int(ctapio_c_reader_consume(cReader))
            case 1: k = fieldReader.consume()
            default: k = probes.drainOnce()
            }
            if k <= 0 { break }
            n += k
        }
        let elapsed = Double(nowNanos() - start) / 1e9
        if round >= 3 { rates[which].append(Double(n) / elapsed) }
        // The agent's consumer side, outside the timing: empty the queue for the next round.
        while let batch = probes.events().takeBatch(max: 65_536) { blackHole(batch.count) }
    }
    blackHole(ctapio_c_reader_checksum(cReader) &+ fieldReader.checksum)
    let c = median(rates[0]), swift = median(rates[1]), full = median(rates[2])
    let stats = probes.kernelStats()
    return [
        Measurement(metric: "c_events_per_s", value: c, unit: "events/s"),
        Measurement(metric: "swift_in_place_events_per_s", value: swift, unit: "events/s"),
        Measurement(metric: "swift_in_place_over_c", value: swift / c * 100, unit: "% (budget >= 80)"),
        Measurement(metric: "swift_full_path_events_per_s", value: full, unit: "events/s"),
        Measurement(metric: "swift_full_path_over_c", value: full / c * 100, unit: "%"),
        Measurement(metric: "c_ns_per_event", value: 1e9 / c, unit: "ns"),
        Measurement(metric: "swift_in_place_ns_per_event", value: 1e9 / swift, unit: "ns"),
        Measurement(metric: "swift_full_path_ns_per_event", value: 1e9 / full, unit: "ns"),
        Measurement(metric: "kernel_ringbuf_drops", value: Double(stats.ringBufferDrops), unit: "records"),
        Measurement(metric: "queue_shed", value: Double(probes.health().shed), unit: "events"),
    ]
}

/// The agent's steady state: every probe on at 19 Hz, the reader thread draining, a consumer task taking
/// batches — on an otherwise idle machine.
private func idleAgent(seconds: Double) async throws -> [Measurement] {
    let rssBefore = currentRSSBytes()
    var settings = BPFSettings(enabled: .all)
    settings.ignoredPID = getpid()
    let probes = try BPFProbes(configuration: BPFConfiguration(settings: settings))
    defer { probes.close() }
    let consumer = Task.detached { () -> Int in
        var n = 0
        while let batch = await probes.events().nextBatch(max: 1024) { n += batch.count }
        return n
    }
    try await Task.sleep(for: .seconds(2)) // settle: libbpf, the first batches
    let cpu0 = processCPUNanos(), wall0 = nowNanos(), events0 = probes.health().events
    // Like the agent: a snapshot of every process's memory every 10 s on top of the 19 Hz sampler.
    var remaining = seconds
    while remaining > 0 {
        try probes.snapshotMemory()
        let step = min(10, remaining)
        try await Task.sleep(for: .seconds(step))
        remaining -= step
    }
    let cpu = Double(processCPUNanos() - cpu0), wall = Double(nowNanos() - wall0)
    let events = probes.health().events - events0
    let rss = currentRSSBytes()
    probes.close()
    _ = await consumer.value
    return [
        Measurement(metric: "cpu_millicores", value: cpu / wall * 1000, unit: "mCPU (budget <= 5)"),
        Measurement(metric: "rss_mib", value: Double(rss) / 1_048_576, unit: "MiB (budget <= 40)"),
        Measurement(metric: "rss_mib_before_load", value: Double(rssBefore) / 1_048_576, unit: "MiB (process baseline)"),
        Measurement(metric: "events_per_s", value: Double(events) / (wall / 1e9), unit: "events/s"),
    ]
}

/// Touches fresh anonymous pages (one fault each) with no probes, then with the memory probes attached.
private func pageFaultCost() throws -> [Measurement] {
    let pages = 32_768 // 128 MiB
    func nsPerFault() -> Double {
        var best = Double.infinity
        for _ in 0..<7 {
            let size = pages * 4096
            guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                  p != MAP_FAILED else { return .nan }
            let bytes = p.assumingMemoryBound(to: UInt8.self)
            let start = nowNanos()
            for i in stride(from: 0, to: size, by: 4096) { bytes[i] = 1 }
            let elapsed = Double(nowNanos() - start)
            munmap(p, size)
            best = min(best, elapsed / Double(pages))
        }
        return best
    }
    let without = nsPerFault()
    let probes = try benchProbes(enabled: .memory, reader: true)
    defer { probes.close() }
    let with = nsPerFault()
    let drainer = probes.events()
    while let batch = drainer.takeBatch(max: 65_536) { blackHole(batch.count) }
    return [
        Measurement(metric: "ns_per_fault_without", value: without, unit: "ns"),
        Measurement(metric: "ns_per_fault_with_memory_probes", value: with, unit: "ns"),
        Measurement(metric: "added_ns_per_fault", value: with - without, unit: "ns"),
    ]
}

private func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.isEmpty ? .nan : s[s.count / 2]
}
