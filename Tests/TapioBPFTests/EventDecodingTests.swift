import CTapioBPF
import Testing
import TapioModel
@testable import TapioBPF

@Suite("Decoding ring buffer records", .timeLimit(.minutes(2)))
struct EventDecodingTests {
    @Test("a memory record decodes into a memory sample with the header's pid, cgroup and comm")
    func memoryRecordDecodes() {
        var record = tapio_memory_event()
        record.hdr.type = TAPIO_EV_MEMORY.rawValue
        record.hdr.pid = 4242
        record.hdr.ts_ns = 1_000
        record.hdr.cgroup_id = 777
        withUnsafeMutableBytes(of: &record.hdr.comm) { raw in
            for (i, b) in "python3".utf8.enumerated() { raw[i] = b }
        }
        record.anon_bytes = 3 << 20
        record.file_bytes = 1 << 20
        record.shmem_bytes = 4096
        var decoder = EventDecoder()
        decoder.bootToEpochNanos = 10
        let event = withUnsafeBytes(of: &record) { decoder.decode($0.baseAddress!, size: $0.count) }
        #expect(event?.pid == 4242)
        #expect(event?.cgroupID == 777)
        #expect(event?.comm == "python3")
        #expect(event?.timestampNanos == 1_010)
        #expect(event?.kind == .memorySample(.init(rssAnonBytes: 3 << 20, rssFileBytes: 1 << 20, rssShmemBytes: 4096)))
    }

    @Test("a TCP record decodes its IPv4 addresses, ports and errno")
    func tcpRecordDecodes() {
        var record = tapio_tcp_event()
        record.hdr.type = TAPIO_EV_TCP.rawValue
        record.hdr.pid = 1
        record.kind = TAPIO_TCP_CONNECT_FAILED.rawValue
        record.error = 111
        record.family = 2
        record.sport = 40000
        record.dport = 8080
        withUnsafeMutableBytes(of: &record.saddr) { $0.copyBytes(from: [127, 0, 0, 1]) }
        withUnsafeMutableBytes(of: &record.daddr) { $0.copyBytes(from: [10, 1, 2, 3]) }
        let event = withUnsafeBytes(of: &record) { EventDecoder().decode($0.baseAddress!, size: $0.count) }
        #expect(event?.kind == .tcp(.init(kind: .connectFailed, sourceAddress: "127.0.0.1", sourcePort: 40000,
                                          destinationAddress: "10.1.2.3", destinationPort: 8080, errno: 111)))
    }

    @Test("a truncated or unknown record is rejected, not misread")
    func malformedRecordsAreRejected() {
        var record = tapio_oom_event()
        record.hdr.type = TAPIO_EV_OOM.rawValue
        let short = withUnsafeBytes(of: &record) { EventDecoder().decode($0.baseAddress!, size: 41) }
        #expect(short == nil)
        record.hdr.type = 99
        let unknown = withUnsafeBytes(of: &record) { EventDecoder().decode($0.baseAddress!, size: $0.count) }
        #expect(unknown == nil)
    }

    @Test("the shared header's records keep their documented sizes (the BPF side's layout)")
    func recordSizes() {
        #expect(MemoryLayout<tapio_event_header>.size == 40)
        #expect(MemoryLayout<tapio_memory_event>.size == 72)
        #expect(MemoryLayout<tapio_oom_event>.size == 80)
        #expect(MemoryLayout<tapio_process_event>.size == 64)
        #expect(MemoryLayout<tapio_tcp_event>.size == 96)
        #expect(MemoryLayout<tapio_config>.size == 32)
    }

    @Test("errno names are symbolic, ring sizes are powers of two, probe sets print their names")
    func helpers() {
        #expect(errnoName(1) == "EPERM")
        #expect(errnoName(-13) == "EACCES")
        #expect(errnoName(4242) == "errno 4242")
        #expect(BPFProbes.ringSize(5000) == 8192)
        #expect(BPFProbes.ringSize(1) == 4096)
        #expect(ProbeSet([.oom, .network]).description == "[oom, network]")
        #expect(BPFError.attach(section: "tp_btf/mark_victim", errno: 1).description == "attach tp_btf/mark_victim: EPERM")
    }
}

@Suite("Batched hand-off to the bounded queue", .timeLimit(.minutes(2)))
struct BatchHandOffTests {
    @Test("pushing a batch into a full queue sheds and counts like single pushes, by policy")
    func batchPushSheds() async {
        let oldest = BoundedQueue<Int>(capacity: 4, policy: .dropOldest)
        #expect(oldest.push(contentsOf: Array(1...6)) == 2)
        #expect(oldest.shed == 2)
        #expect(oldest.pushed == 6)
        #expect(oldest.takeBatch(max: 10) == [3, 4, 5, 6])

        let newest = BoundedQueue<Int>(capacity: 4, policy: .dropNewest)
        #expect(newest.push(contentsOf: Array(1...6)) == 2)
        #expect(newest.pushed == 4)
        #expect(newest.takeBatch(max: 10) == [1, 2, 3, 4])

        newest.push(contentsOf: [7, 8])
        #expect(await newest.next() == 7)
        newest.finish()
        #expect(newest.push(contentsOf: [9]) == 1, "a finished queue keeps nothing")
        #expect(await newest.next() == 8)
        #expect(await newest.next() == nil)
    }

    /// The offset from the records' CLOCK_BOOTTIME to the wall clock was taken once, when the probes loaded: a
    /// clock stepped later (chrony's makestep) left every kernel event off by the step. The sink takes it again.
    @Test("the boot-to-wall-clock offset follows a stepped clock")
    func theOffsetIsTakenAgain() {
        let sink = RingSink(queue: BoundedQueue<TapioEvent>(capacity: 4))
        // As if the wall clock had been stepped by an hour since the offset was taken.
        sink.decoder.bootToEpochNanos = EventDecoder.currentBootToEpochOffset() &- 3_600_000_000_000
        sink.offsetTakenAt = 1
        sink.flushCounters()
        let off = Int64(bitPattern: sink.decoder.bootToEpochNanos &- EventDecoder.currentBootToEpochOffset())
        #expect(abs(off) < 1_000_000_000, "the offset is still \(off) ns from the clock's")
    }
}
