import CTapioBPF
import Foundation
import Logging
import Synchronization
import TapioModel

/// Tapio's kernel probes: memory sampling, OOM kills, process lifecycle and TCP trouble, loaded from the BPF
/// object embedded in the binary and streamed as ``NodeEvent``s.
///
/// `init` opens the object, sets its load-time tunables, loads it and attaches every program; a program that
/// fails to load is switched off and the object reloaded without it, so one broken probe never takes the
/// others down (``probeStatus`` says which is down and why). Events arrive on a bounded queue
/// (``events()``) drained from the ring buffer by a dedicated thread; what the queue sheds and what the
/// kernel could not fit are counted (``health()``, ``kernelStats()``). ``apply(_:)`` changes settings while
/// running. ``close()`` (or deinit) releases every link, fd and the object, and ends the event sequence.
///
/// ```swift
/// guard BPFProbes.availability().isAvailable else { /* fall back to /proc polling */ }
/// let probes = try BPFProbes()
/// for await event in probes.events() { … }
/// ```
public final class BPFProbes: EventSource {
    public let name = "ebpf"

    private struct Handles {
        var skeleton: OpaquePointerBox?
        var object: OpaquePointerBox?
        var ring: OpaquePointerBox?
        var links: [OpaquePointerBox] = []
        var perfLinks: [OpaquePointerBox] = []
        var waitFD: Int32 = -1
        var eventFD: Int32 = -1
        var configFD: Int32 = -1
        var statsFD: Int32 = -1
        var ringFD: Int32 = -1
        var tcpCountsFD: Int32 = -1
        var settings: BPFSettings
        var statuses: [ProbeStatus] = []
        var perfError: String?
        var closed = false
        var rateWindow: (nanos: UInt64, events: UInt64, rate: Double) = (0, 0, 0)
    }

    private let handles: Mutex<Handles>
    private let sink: RingSink
    private let reader: RingReaderThread?
    private let queue: BoundedQueue<TapioEvent>
    private let errorCount = Atomic<UInt64>(0)

    /// What BPF needs and what is missing here, without loading anything: privileges, kernel BTF, the
    /// embedded object. When not available, use the /proc and cgroup pollers instead.
    public static func availability() -> BPFAvailability {
        var missing: [String] = []
        let uid = geteuid()
        if uid != 0 {
            let caps = effectiveCapabilities() ?? 0
            func has(_ c: Capability) -> Bool { caps & (1 << UInt64(c.rawValue)) != 0 }
            let bpf = has(.bpf) || has(.sysAdmin)
            let perfmon = has(.perfmon) || has(.sysAdmin)
            if !bpf || !perfmon {
                let lacking = [bpf ? nil : "CAP_BPF", perfmon ? nil : "CAP_PERFMON"].compactMap { $0 }
                missing.append("BPF needs root or CAP_BPF and CAP_PERFMON: running as uid \(uid) without "
                    + lacking.joined(separator: " and "))
            }
        }
        if access("/sys/kernel/btf/vmlinux", R_OK) != 0 {
            missing.append("no kernel BTF at /sys/kernel/btf/vmlinux (\(errnoName(errno))): CO-RE programs need a "
                + "kernel built with CONFIG_DEBUG_INFO_BTF=y")
        }
        var size = 0
        if ctapio_bpf_object_bytes(&size) == nil || size == 0 {
            missing.append("no BPF object embedded in this binary (scripts/gen-bpf.sh was not run before the build)")
        }
        return BPFAvailability(missing: missing)
    }

    /// Loads and attaches the probes and starts draining the ring buffer.
    /// - Throws: ``BPFError/unavailable(_:)`` when privileges or BTF are missing; ``BPFError/nothingRunning(_:)``
    ///   when no probe program could be loaded and attached; other cases for system failures.
    public init(configuration: BPFConfiguration = BPFConfiguration()) throws(BPFError) {
        let availability = BPFProbes.availability()
        guard availability.isAvailable else { throw .unavailable(availability) }

        let loaded = try BPFProbes.load(configuration)
        var h = Handles(settings: configuration.settings)
        h.skeleton = loaded.skeleton
        h.object = OpaquePointerBox(loaded.object)
        h.statuses = loaded.statuses
        let object = loaded.object
        // From here on every resource is recorded in `h`, so one cleanup releases whatever was made.
        func fail(_ error: BPFError) -> BPFError {
            BPFProbes.release(&h, reader: nil)
            return error
        }
        h.configFD = bpf_map__fd(bpf_object__find_map_by_name(object, "tapio_config_map"))
        h.statsFD = bpf_map__fd(bpf_object__find_map_by_name(object, "tapio_stats"))
        h.ringFD = bpf_map__fd(bpf_object__find_map_by_name(object, "tapio_events"))
        h.tcpCountsFD = bpf_map__fd(bpf_object__find_map_by_name(object, "tcp_counts"))
        if let e = BPFProbes.writeConfig(fd: h.configFD, configuration.settings) { throw fail(e) }

        // Attach everything that loaded; the perf sampler separately, per CPU.
        for i in h.statuses.indices where h.statuses[i].state == .up {
            let status = h.statuses[i]
            guard let prog = bpf_object__find_program_by_name(object, status.program) else { continue }
            // The sampler attaches per CPU below; iterators run on demand; syscall programs are run, not attached.
            if status.section == "perf_event" || status.section.hasPrefix("syscall") || status.section.hasPrefix("iter/") {
                continue
            }
            if let link = bpf_program__attach(prog) {
                h.links.append(OpaquePointerBox(link))
            } else {
                h.statuses[i].state = .down("attach \(status.section): \(errnoName(errno))")
            }
        }
        BPFProbes.attachSampler(&h)
        guard h.statuses.contains(where: { $0.state == .up && !$0.probe.isEmpty }) else {
            throw fail(.nothingRunning(h.statuses))
        }

        // The hand-off: ring buffer -> sink (decode in place) -> bounded queue.
        queue = BoundedQueue(capacity: configuration.queueCapacity, policy: configuration.overflowPolicy)
        sink = RingSink(queue: queue)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        guard let ring = ring_buffer__new(h.ringFD, { ctx, data, size in
            guard let ctx, let data else { return 0 }
            Unmanaged<RingSink>.fromOpaque(ctx).takeUnretainedValue().handle(UnsafeRawPointer(data), size: size)
            return 0
        }, context, nil) else { throw fail(.system(step: "ring_buffer__new", errno: errno)) }
        h.ring = OpaquePointerBox(ring)
        h.eventFD = ctapio_eventfd()
        guard h.eventFD >= 0 else { throw fail(.system(step: "eventfd", errno: -h.eventFD)) }
        h.waitFD = ctapio_wait_set_create(ring_buffer__epoll_fd(ring), h.eventFD)
        guard h.waitFD >= 0 else { throw fail(.system(step: "epoll", errno: -h.waitFD)) }

        if configuration.startsReader {
            reader = RingReaderThread(ring: ring, sink: sink, waitFD: h.waitFD, eventFD: h.eventFD,
                                      pollMilliseconds: configuration.pollIntervalMilliseconds)
        } else {
            reader = nil
        }
        h.rateWindow = (BPFProbes.monotonicNanos(), 0, 0)
        // Loading parsed the kernel's BTF (several MB) for CO-RE and freed it; hand that heap back to the
        // system so the agent's resident size reflects what it keeps.
        ctapio_release_free_heap()
        handles = Mutex(h)
        reader?.start()
    }

    deinit { close() }

    /// The events, until ``close()``: a bounded queue with one consumer. Full, it sheds by the configured
    /// policy and counts it (``SourceHealth/shed``).
    public func events() -> BoundedQueue<TapioEvent> { queue }

    /// State (running, degraded with the reasons, stopped), last event time, counts and events per second.
    public func health() -> SourceHealth {
        let events = sink.events.load(ordering: .relaxed)
        let errors = errorCount.load(ordering: .relaxed) + (reader?.errors.load(ordering: .relaxed) ?? 0)
            + sink.malformed.load(ordering: .relaxed)
        return handles.withLock { h in
            let now = BPFProbes.monotonicNanos()
            let elapsed = now &- h.rateWindow.nanos
            if elapsed >= 1_000_000_000 {
                h.rateWindow = (now, events, Double(events &- h.rateWindow.events) / (Double(elapsed) / 1e9))
            }
            let state: SourceHealth.State
            if h.closed {
                state = .stopped
            } else {
                let down = h.statuses.filter { if case .down = $0.state { return true } else { return false } }
                var reasons = down.map { status -> String in
                    if case .down(let why) = status.state { return why }
                    return ""
                }
                if let p = h.perfError { reasons.append(p) }
                state = reasons.isEmpty ? .running : .degraded(reasons.joined(separator: "; "))
            }
            return SourceHealth(state: state, lastEventNanos: sink.lastEventNanos.load(ordering: .relaxed),
                                events: events, errors: errors, shed: queue.shed,
                                eventsPerSecond: h.rateWindow.rate)
        }
    }

    /// Every program of the object that was meant to run, and whether it does.
    public var probeStatus: [ProbeStatus] { handles.withLock { $0.statuses } }

    /// The settings in force.
    public var settings: BPFSettings { handles.withLock { $0.settings } }

    /// Applies new settings while running: the config map is rewritten (the programs read it on every event),
    /// and the perf events are re-attached only when the sampling frequency or the sampler's on/off changed.
    public func apply(_ settings: BPFSettings) throws(BPFError) {
        let result: BPFError? = handles.withLock { h in
            guard !h.closed else { return .closed }
            if let e = BPFProbes.writeConfig(fd: h.configFD, settings) { return e }
            let old = h.settings
            h.settings = settings
            if old.samplingHz != settings.samplingHz
                || old.enabled.contains(.memorySampler) != settings.enabled.contains(.memorySampler) {
                BPFProbes.detachSampler(&h)
                BPFProbes.attachSampler(&h)
            }
            return nil
        }
        if let result {
            errorCount.add(1, ordering: .relaxed)
            throw result
        }
    }

    /// Kernel-side counters: records submitted, lost to a full ring buffer, skipped by the sampling divisor.
    public func kernelStats() -> BPFKernelStats {
        handles.withLock { h in
            guard !h.closed else { return BPFKernelStats(submitted: 0, ringBufferDrops: 0, sampledOut: 0) }
            func sum(_ key: tapio_stat) -> UInt64 {
                let cpus = Int(libbpf_num_possible_cpus())
                guard cpus > 0 else { return 0 }
                var values = [UInt64](repeating: 0, count: cpus)
                var k = key.rawValue
                guard bpf_map_lookup_elem(h.statsFD, &k, &values) == 0 else { return 0 }
                return values.reduce(0, &+)
            }
            return BPFKernelStats(submitted: sum(TAPIO_STAT_SUBMITTED), ringBufferDrops: sum(TAPIO_STAT_RINGBUF_FULL),
                                  sampledOut: sum(TAPIO_STAT_SAMPLED_OUT))
        }
    }

    /// Emits a memory sample (RSS anon/file/shmem) of every process now — sleeping ones too, which the perf
    /// sampler misses and rss_stat only reports when they change — through ``events()``, and wakes the reader.
    /// Cheap (a fraction of a millisecond per thousand processes); the agent calls it at start and periodically.
    /// Does nothing while ``ProbeSet/memorySnapshot`` is off.
    public func snapshotMemory() throws(BPFError) {
        let eventFD: Int32 = try handles.withLock { (h: inout Handles) throws(BPFError) -> Int32 in
            guard !h.closed, let object = h.object?.pointer else { throw BPFError.closed }
            guard let prog = bpf_object__find_program_by_name(object, "tapio_memory_snapshot"),
                  bpf_program__fd(prog) >= 0 else {
                throw BPFError.load(program: "tapio_memory_snapshot", errno: ENOENT, detail: "not loaded")
            }
            guard let link = bpf_program__attach_iter(prog, nil) else {
                throw BPFError.attach(section: "iter/task", errno: errno)
            }
            defer { bpf_link__destroy(link) }
            let fd = bpf_iter_create(bpf_link__fd(link))
            guard fd >= 0 else { throw BPFError.system(step: "bpf_iter_create iter/task", errno: errno) }
            defer { Glibc.close(fd) }
            // Reading the iterator runs the program over every task; it writes nothing to the fd itself.
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n == 0 { break }
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    throw BPFError.system(step: "read iter/task", errno: errno)
                }
            }
            return h.eventFD
        }
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(eventFD, $0.baseAddress, 8) }
    }

    /// TCP trouble counted in the kernel per process, memory cgroup and kind, since load (complete even when
    /// records were shed). pid 0 is trouble no process could be attributed to (softirq, no known owner).
    public func tcpCounts() -> [TCPTroubleCount] {
        handles.withLock { h in
            guard !h.closed, h.tcpCountsFD >= 0 else { return [] }
            var out: [TCPTroubleCount] = []
            var key = tapio_tcp_count_key()
            var next = tapio_tcp_count_key()
            var first = true
            while (first ? bpf_map_get_next_key(h.tcpCountsFD, nil, &next)
                         : bpf_map_get_next_key(h.tcpCountsFD, &key, &next)) == 0 {
                first = false
                key = next
                var value: UInt64 = 0
                guard bpf_map_lookup_elem(h.tcpCountsFD, &key, &value) == 0 else { continue }
                out.append(TCPTroubleCount(pid: Int32(bitPattern: key.pid), cgroupID: key.cgroup_id,
                                           kind: EventDecoder.tcpKind(key.kind), count: value))
            }
            return out
        }
    }

    /// Detaches every program, frees the ring buffer, closes every fd and the object, and ends ``events()``
    /// (the consumer gets what is queued, then nil). Idempotent; also run by deinit.
    public func close() {
        handles.withLock { h in
            guard !h.closed else { return }
            BPFProbes.release(&h, reader: reader)
        }
        queue.finish()
    }

    // MARK: Benchmark hooks

    /// The ring buffer map's fd (for the benchmark's C reader of the same ring).
    package var ringBufferMapFD: Int32 { handles.withLock { $0.ringFD } }

    /// Drains the ring buffer on the calling thread (only when the reader thread is off); returns records read.
    package func drainOnce() -> Int {
        handles.withLock { h -> Int in
            guard reader == nil, let ring = h.ring else { return 0 }
            let n = ring_buffer__consume(ring.pointer)
            sink.flushCounters()
            return Int(n)
        }
    }

    /// Runs the benchmark producer (`tapio_bench_fill`, loaded only when listed in `extraPrograms`): commits
    /// up to `count` records without waking anyone. Returns false when the program is not loaded.
    package func benchFill(count: UInt32) -> Bool {
        handles.withLock { h -> Bool in
            guard let object = h.object?.pointer,
                  let prog = bpf_object__find_program_by_name(object, "tapio_bench_fill") else { return false }
            let fd = bpf_program__fd(prog)
            guard fd >= 0 else { return false }
            var args: (UInt32, UInt32) = (count, UInt32(getpid()))
            return withUnsafeMutableBytes(of: &args) { raw in
                var opts = bpf_test_run_opts()
                opts.sz = MemoryLayout<bpf_test_run_opts>.size
                opts.ctx_in = UnsafeRawPointer(raw.baseAddress)
                opts.ctx_size_in = UInt32(raw.count)
                return bpf_prog_test_run_opts(fd, &opts) == 0
            }
        }
    }

    // MARK: Loading

    private struct Loaded {
        var skeleton: OpaquePointerBox
        var object: OpaquePointer
        var statuses: [ProbeStatus]
    }

    /// open → tunables → load, switching off one program per retry when the load names the one that failed
    /// (a bpf_object that failed to load cannot be loaded again, so each retry reopens it).
    private static func load(_ configuration: BPFConfiguration) throws(BPFError) -> Loaded {
        ctapio_libbpf_install_print(configuration.verboseLibbpf ? 1 : 0)
        var disabled: [String: String] = [:]
        let pageShift = UInt32(sysconf(Int32(_SC_PAGESIZE)).trailingZeroBitCount)
        let ringBytes = ringSize(configuration.ringBufferBytes)
        while true {
            let btfPath = configuration.kernelBTFPath.flatMap { access($0, R_OK) == 0 ? $0 : nil }
            let opened = btfPath.map { path in path.withCString { ctapio_skel_open($0) } } ?? ctapio_skel_open(nil)
            guard let skel = opened else {
                let e = errno
                forwardLibbpfLog(configuration.logger)
                throw .open(errno: e, detail: lastWarning())
            }
            let object = ctapio_skel_object(skel)!
            ctapio_skel_set_page_shift(skel, pageShift)
            if let ringMap = bpf_object__find_map_by_name(object, "tapio_events") {
                _ = bpf_map__set_max_entries(ringMap, ringBytes)
            }
            var statuses: [ProbeStatus] = []
            var prog = bpf_object__next_program(object, nil)
            while let p = prog {
                let name = String(cString: bpf_program__name(p))
                let section = String(cString: bpf_program__section_name(p)).trimmingPrefix("?")
                if configuration.extraPrograms.contains(name) { _ = bpf_program__set_autoload(p, true) }
                if let why = disabled[name] {
                    _ = bpf_program__set_autoload(p, false)
                    statuses.append(ProbeStatus(program: name, section: section, probe: probe(of: name),
                                                state: .down(why)))
                } else if bpf_program__autoload(p) {
                    statuses.append(ProbeStatus(program: name, section: section, probe: probe(of: name), state: .up))
                }
                prog = bpf_object__next_program(object, p)
            }
            let err = ctapio_skel_load(skel)
            forwardLibbpfLog(configuration.logger)
            if err == 0 {
                return Loaded(skeleton: OpaquePointerBox(skel), object: object, statuses: statuses)
            }
            var nameBuffer = [CChar](repeating: 0, count: 128)
            let progErr = ctapio_libbpf_take_failed_program(&nameBuffer, nameBuffer.count)
            let failed = nameBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let detail = lastWarning()
            ctapio_skel_destroy(skel)
            if progErr != 0, !failed.isEmpty, disabled[failed] == nil {
                disabled[failed] = "load \(failed): \(errnoName(progErr))"
                continue
            }
            throw .load(program: failed.isEmpty ? nil : failed, errno: err, detail: detail)
        }
    }

    /// libbpf's own lines from the last open or load, at debug level.
    private static func forwardLibbpfLog(_ logger: Logger?) {
        var buffer = [CChar](repeating: 0, count: 16_384)
        _ = ctapio_libbpf_take_log(&buffer, buffer.count)
        guard let logger else { return }
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        for line in text.split(separator: "\n") where !line.isEmpty {
            logger.debug("\(line)", metadata: ["source": "libbpf"])
        }
    }

    private static func lastWarning() -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        ctapio_libbpf_last_warning(&buffer, buffer.count)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// The probe family of a program, by its name (internal programs belong to none).
    static func probe(of program: String) -> ProbeSet {
        if program == "tapio_memory_sample" { return .memorySampler }
        if program == "tapio_rss_stat" { return .memoryRSSStat }
        if program == "tapio_memory_snapshot" { return .memorySnapshot }
        if program.hasPrefix("tapio_oom_") { return .oom }
        if program.hasPrefix("tapio_process_") { return .process }
        if program.hasPrefix("tapio_tcp_") { return .network }
        return []
    }

    /// BPF ring buffers are a power-of-two number of pages.
    static func ringSize(_ bytes: Int) -> UInt32 {
        let page = max(4096, sysconf(Int32(_SC_PAGESIZE)))
        var size = page
        while size < bytes && size < (1 << 30) { size <<= 1 }
        return UInt32(size)
    }

    private static func writeConfig(fd: Int32, _ s: BPFSettings) -> BPFError? {
        var config = tapio_config()
        config.enabled = s.enabled.rawValue
        config.sample_divisor = max(1, s.sampleDivisor)
        config.rss_threshold_bytes = s.rssThresholdBytes
        config.wakeup_bytes = s.wakeupBytes
        config.ignore_tgid = UInt32(bitPattern: s.ignoredPID)
        var key: UInt32 = 0
        guard bpf_map_update_elem(fd, &key, &config, UInt64(BPF_ANY)) == 0 else {
            return .system(step: "update config map", errno: errno)
        }
        return nil
    }

    // MARK: perf sampler

    /// Opens a cpu-clock perf event per online CPU at the configured frequency and attaches the sampler to
    /// each (libbpf owns each perf fd from then on and closes it with the link).
    private static func attachSampler(_ h: inout Handles) {
        h.perfError = nil
        guard let object = h.object?.pointer,
              let index = h.statuses.firstIndex(where: { $0.program == "tapio_memory_sample" }),
              h.statuses[index].state == .up || isSamplerAttachFailure(h.statuses[index].state),
              let prog = bpf_object__find_program_by_name(object, "tapio_memory_sample") else { return }
        h.statuses[index].state = .up
        guard h.settings.enabled.contains(.memorySampler), h.settings.samplingHz > 0 else { return }
        var failures: [String] = []
        for cpu in onlineCPUs() {
            guard let cpuNumber = Int32(exactly: cpu) else { continue }
            let fd = ctapio_perf_event_open_cpu_clock(cpuNumber, h.settings.samplingHz)
            if fd < 0 {
                failures.append("perf_event_open cpu-clock cpu \(cpu): \(errnoName(-fd))")
                continue
            }
            if let link = bpf_program__attach_perf_event(prog, fd) {
                h.perfLinks.append(OpaquePointerBox(link))
            } else {
                failures.append("attach perf_event cpu \(cpu): \(errnoName(errno))")
                Glibc.close(fd)
            }
        }
        if h.perfLinks.isEmpty, let first = failures.first {
            h.statuses[index].state = .down(first)
        } else if !failures.isEmpty {
            h.perfError = failures.joined(separator: "; ")
        }
    }

    private static func isSamplerAttachFailure(_ state: ProbeStatus.State) -> Bool {
        if case .down(let why) = state { return why.hasPrefix("perf_event_open") || why.hasPrefix("attach perf") }
        return false
    }

    private static func detachSampler(_ h: inout Handles) {
        for link in h.perfLinks { bpf_link__destroy(link.pointer) }
        h.perfLinks.removeAll()
    }

    /// CPUs from /sys/devices/system/cpu/online ("0-3,5").
    static func onlineCPUs() -> [Int] {
        guard let text = readSmallFile("/sys/devices/system/cpu/online") else {
            return Array(0..<max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        }
        return parseCPUList(text)
    }

    /// A kernel CPU list ("0-3,5") as CPU numbers.
    static func parseCPUList(_ text: String) -> [Int] {
        // The kernel writes this file well; a bind-mounted or fake /sys might not, so ranges are checked rather than
        // trusted (a reversed "5-3" would trap, "0-999999999999" would allocate without bound).
        let maxCPU = 65_535
        var cpus: [Int] = []
        for part in text.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let bounds = part.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 2, bounds[0] >= 0, bounds[0] <= bounds[1], bounds[1] <= maxCPU {
                cpus += Array(bounds[0]...bounds[1])
            } else if bounds.count == 1, let one = bounds.first, (0...maxCPU).contains(one) {
                cpus.append(one)
            }
        }
        return cpus
    }

    // MARK: Cleanup — the one place every resource is released

    private static func release(_ h: inout Handles, reader: RingReaderThread?) {
        h.closed = true
        reader?.stop() // first: the thread must leave ring_buffer__consume before the ring is freed
        detachSampler(&h)
        for link in h.links { bpf_link__destroy(link.pointer) }
        h.links.removeAll()
        if let ring = h.ring { ring_buffer__free(ring.pointer) }
        h.ring = nil
        if h.waitFD >= 0 { Glibc.close(h.waitFD) }
        if h.eventFD >= 0 { Glibc.close(h.eventFD) }
        h.waitFD = -1
        h.eventFD = -1
        if let skel = h.skeleton { ctapio_skel_destroy(skel.pointer) } // closes the maps' and programs' fds
        h.skeleton = nil
        h.object = nil
    }

    private static func monotonicNanos() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}

extension String {
    func trimmingPrefix(_ prefix: String) -> String { hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self }
}
