import CTapioBPF
import Glibc
import TapioModel

/// Turns ring buffer records into ``NodeEvent``s, reading fields in place through the record's pointer.
/// Records are laid out by bpf/tapio_events.h (imported through CTapioBPF), so offsets come from one source.
struct EventDecoder {
    /// Added to the records' CLOCK_BOOTTIME stamps to get nanoseconds since the Unix epoch.
    var bootToEpochNanos: UInt64

    init() { bootToEpochNanos = EventDecoder.currentBootToEpochOffset() }

    /// CLOCK_BOOTTIME in nanoseconds.
    static func bootNanos() -> UInt64 {
        var boot = timespec()
        clock_gettime(CLOCK_BOOTTIME, &boot)
        return UInt64(clamping: boot.tv_sec) &* 1_000_000_000 &+ UInt64(clamping: boot.tv_nsec)
    }

    static func currentBootToEpochOffset() -> UInt64 {
        var real = timespec(), boot = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_BOOTTIME, &boot)
        // Clamped: a wall clock set before 1970 must not trap (the offset is then wrong, as the clock is).
        let r = UInt64(clamping: real.tv_sec) &* 1_000_000_000 &+ UInt64(clamping: real.tv_nsec)
        let b = UInt64(clamping: boot.tv_sec) &* 1_000_000_000 &+ UInt64(clamping: boot.tv_nsec)
        return r &- b
    }

    /// The event in a record, or nil when the record is malformed (too short, unknown type).
    func decode(_ data: UnsafeRawPointer, size: Int) -> NodeEvent? {
        guard size >= MemoryLayout<tapio_event_header>.size else { return nil }
        let h = data.assumingMemoryBound(to: tapio_event_header.self)
        let type = h.pointee.type
        let pid = Int32(bitPattern: h.pointee.pid)
        let ts = h.pointee.ts_ns &+ bootToEpochNanos
        let cgroup = h.pointee.cgroup_id
        let comm = EventDecoder.comm(data + MemoryLayout<tapio_event_header>.offset(of: \.comm)!)
        let kind: NodeEvent.Kind
        switch type {
        case TAPIO_EV_MEMORY.rawValue, TAPIO_EV_BENCH.rawValue:
            guard size >= MemoryLayout<tapio_memory_event>.size else { return nil }
            let m = data.assumingMemoryBound(to: tapio_memory_event.self)
            kind = .memorySample(.init(rssAnonBytes: m.pointee.anon_bytes, rssFileBytes: m.pointee.file_bytes,
                                       rssShmemBytes: m.pointee.shmem_bytes))
        case TAPIO_EV_OOM.rawValue:
            guard size >= MemoryLayout<tapio_oom_event>.size else { return nil }
            let o = data.assumingMemoryBound(to: tapio_oom_event.self)
            kind = .oomKill(.init(victimPID: pid, totalVMBytes: o.pointee.total_vm_bytes,
                                  anonRSSBytes: o.pointee.anon_rss_bytes, fileRSSBytes: o.pointee.file_rss_bytes,
                                  shmemRSSBytes: o.pointee.shmem_rss_bytes))
        case TAPIO_EV_EXEC.rawValue:
            kind = .processExec
        case TAPIO_EV_FORK.rawValue:
            guard size >= MemoryLayout<tapio_process_event>.size else { return nil }
            let p = data.assumingMemoryBound(to: tapio_process_event.self)
            kind = .processFork(childPID: Int32(bitPattern: p.pointee.child_pid))
        case TAPIO_EV_EXIT.rawValue:
            guard size >= MemoryLayout<tapio_process_event>.size else { return nil }
            let p = data.assumingMemoryBound(to: tapio_process_event.self)
            kind = .processExit(.init(exitCode: p.pointee.exit_code, signal: p.pointee.exit_signal,
                                      peakRSSBytes: p.pointee.peak_rss_bytes))
        case TAPIO_EV_TCP.rawValue:
            guard size >= MemoryLayout<tapio_tcp_event>.size else { return nil }
            kind = .tcp(EventDecoder.tcp(data.assumingMemoryBound(to: tapio_tcp_event.self)))
        default:
            return nil
        }
        return NodeEvent(timestampNanos: ts, pid: pid, cgroupID: cgroup, comm: comm, kind: kind)
    }

    /// `comm` is at most 15 bytes plus NUL: a small Swift string, no heap allocation.
    static func comm(_ p: UnsafeRawPointer) -> String {
        let bytes = UnsafeRawBufferPointer(start: p, count: Int(TAPIO_COMM_LEN))
        let n = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<n]), as: UTF8.self)
    }

    static func tcp(_ t: UnsafePointer<tapio_tcp_event>) -> NodeEvent.TCPEvent {
        let kind = tcpKind(t.pointee.kind)
        let family = Int32(t.pointee.family)
        let base = UnsafeRawPointer(t)
        let src = address(family: family, base + MemoryLayout<tapio_tcp_event>.offset(of: \.saddr)!)
        let dst = address(family: family, base + MemoryLayout<tapio_tcp_event>.offset(of: \.daddr)!)
        return NodeEvent.TCPEvent(kind: kind, sourceAddress: src, sourcePort: t.pointee.sport,
                                  destinationAddress: dst, destinationPort: t.pointee.dport,
                                  errno: t.pointee.error)
    }

    static func tcpKind(_ raw: UInt32) -> NodeEvent.TCPEvent.Kind {
        switch raw {
        case TAPIO_TCP_RETRANSMIT.rawValue: return .retransmit
        case TAPIO_TCP_RESET_SENT.rawValue: return .resetSent
        case TAPIO_TCP_RESET_RECEIVED.rawValue: return .resetReceived
        case TAPIO_TCP_CONNECT_FAILED.rawValue: return .connectFailed
        default: return .socketError
        }
    }

    static func address(family: Int32, _ p: UnsafeRawPointer) -> String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = buf.withUnsafeMutableBufferPointer { out in
            inet_ntop(family, p, out.baseAddress, socklen_t(out.count)) != nil
        }
        guard ok else { return "" }
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
