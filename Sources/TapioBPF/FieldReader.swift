import CTapioBPF

/// A Swift ring buffer reader that only reads each record's fields in place into a checksum — the same work
/// as the benchmark's C reader — to measure the libbpf → Swift callback path apart from building events.
package final class RingFieldReader {
    private var ring: OpaquePointer?
    private let state = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)

    package init?(ringMapFD: Int32) {
        state.initialize(to: 0)
        guard let ring = ring_buffer__new(ringMapFD, { ctx, data, size in
            guard let ctx, let data else { return 0 }
            let sum = ctx.assumingMemoryBound(to: UInt64.self)
            let h = UnsafeRawPointer(data).assumingMemoryBound(to: tapio_event_header.self)
            if h.pointee.type == TAPIO_EV_MEMORY.rawValue || h.pointee.type == TAPIO_EV_BENCH.rawValue {
                let m = UnsafeRawPointer(data).assumingMemoryBound(to: tapio_memory_event.self)
                sum.pointee &+= m.pointee.anon_bytes &+ m.pointee.file_bytes &+ m.pointee.shmem_bytes
                    &+ UInt64(h.pointee.pid) &+ h.pointee.cgroup_id &+ h.pointee.ts_ns
                    &+ UInt64(UInt8(bitPattern: h.pointee.comm.0))
            } else {
                sum.pointee &+= UInt64(h.pointee.pid) &+ UInt64(size)
            }
            return 0
        }, UnsafeMutableRawPointer(state), nil) else {
            state.deallocate()
            return nil
        }
        self.ring = ring
    }

    /// Consumes everything available; returns the records read.
    package func consume() -> Int { Int(ring_buffer__consume(ring)) }
    package var checksum: UInt64 { state.pointee }

    deinit {
        ring_buffer__free(ring)
        state.deallocate()
    }
}
