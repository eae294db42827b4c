import CTapioBPF
import Logging
import TapioModel

/// The probe families, each switchable at run time (bits of the BPF `config` map).
public struct ProbeSet: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// perf_event sampler of the task on each CPU (`samplingHz` per CPU).
    public static let memorySampler = ProbeSet(rawValue: TAPIO_PROBE_MEMORY_SAMPLER.rawValue)
    /// `tp_btf/rss_stat`: a record whenever a process's RSS moved by `rssThresholdBytes`.
    public static let memoryRSSStat = ProbeSet(rawValue: TAPIO_PROBE_MEMORY_RSS_STAT.rawValue)
    /// `tp_btf/mark_victim`: OOM kills, attributed to the victim.
    public static let oom = ProbeSet(rawValue: TAPIO_PROBE_OOM.rawValue)
    /// exec, fork, exit.
    public static let process = ProbeSet(rawValue: TAPIO_PROBE_PROCESS.rawValue)
    /// TCP retransmits, resets, failed connects, socket errors.
    public static let network = ProbeSet(rawValue: TAPIO_PROBE_NETWORK.rawValue)

    /// `iter/task`: a sample of every process, sleeping ones included, on ``BPFProbes/snapshotMemory()``.
    public static let memorySnapshot = ProbeSet(rawValue: TAPIO_PROBE_MEMORY_SNAPSHOT.rawValue)

    public static let memory: ProbeSet = [.memorySampler, .memoryRSSStat, .memorySnapshot]
    public static let all: ProbeSet = [.memorySampler, .memoryRSSStat, .memorySnapshot, .oom, .process, .network]

    public var description: String {
        let names: [(ProbeSet, String)] = [
            (.memorySampler, "memory-sampler"), (.memoryRSSStat, "memory-rss-stat"),
            (.memorySnapshot, "memory-snapshot"), (.oom, "oom"),
            (.process, "process"), (.network, "network"),
        ]
        return "[" + names.filter { contains($0.0) }.map(\.1).joined(separator: ", ") + "]"
    }
}

/// Settings that apply while the programs run (``BPFProbes/apply(_:)``): no reload, and only the sampling
/// frequency re-attaches the perf events.
public struct BPFSettings: Sendable, Hashable {
    /// Probes that emit events. A probe whose program failed to load stays off whatever this says.
    public var enabled: ProbeSet
    /// perf_event samples per second per CPU (prime by default, so it does not beat with periodic work).
    public var samplingHz: UInt64
    /// Keep one perf sample in N per CPU (1: all) — a cheaper knob than `samplingHz`, applied in the kernel.
    public var sampleDivisor: UInt32
    /// `rss_stat` emits for a process only when its RSS moved by at least this since its last record.
    public var rssThresholdBytes: UInt64
    /// Records are committed without waking the reader until this many bytes are pending (a wakeup costs
    /// ~1.5 µs in a VM); the reader's poll interval (1 s) bounds the latency of a lone record. 0: wake every record.
    public var wakeupBytes: UInt64
    /// Drop events of this process (typically the agent's own pid, whose reading would feed back); 0: none.
    public var ignoredPID: Int32

    public init(enabled: ProbeSet = .all, samplingHz: UInt64 = 19, sampleDivisor: UInt32 = 1,
                rssThresholdBytes: UInt64 = 1 << 20, wakeupBytes: UInt64 = 128 << 10, ignoredPID: Int32 = 0) {
        self.enabled = enabled
        self.samplingHz = samplingHz
        self.sampleDivisor = sampleDivisor
        self.rssThresholdBytes = rssThresholdBytes
        self.wakeupBytes = wakeupBytes
        self.ignoredPID = ignoredPID
    }
}

/// Everything ``BPFProbes`` needs to start: the live settings plus what is fixed at load.
public struct BPFConfiguration: Sendable {
    public var settings: BPFSettings
    /// Ring buffer size in bytes (a power of two, at least one page; rounded up). It is resident twice over
    /// in the agent (the kernel maps the data area twice, pre-populated), so it is kept small: 1 MiB holds
    /// ~10k records, far more than arrive in one poll interval at the default rates.
    public var ringBufferBytes: Int
    /// Capacity of the hand-off queue to the agent, and what it sheds when full (counted in health).
    public var queueCapacity: Int
    public var overflowPolicy: BoundedQueue<TapioEvent>.OverflowPolicy
    /// The reader's longest sleep: bounds the delay of records committed without a wakeup (close() wakes it at
    /// once). A second by default: OOM kills commit with a wakeup, busy nodes reach `wakeupBytes` sooner, and
    /// what is left — samples, exits and TCP records of a quiet node — is judged in batches and windows of
    /// seconds anyway; at 100 ms the reader's ten wake-ups a second were ~8 % of an idle agent's CPU.
    public var pollIntervalMilliseconds: Int32
    /// Forward libbpf warnings to stderr.
    public var verboseLibbpf: Bool
    /// Where libbpf's own messages from open and load go, at debug level (a failure to load explains itself).
    public var logger: Logger?
    /// The kernel BTF that CO-RE relocations resolve against; nil: libbpf's search. The default names the kernel's
    /// own, which keeps libbpf 1.1 from walking module BTF (CAP_SYS_ADMIN) when a type is missing from vmlinux.
    public var kernelBTFPath: String? = "/sys/kernel/btf/vmlinux"
    /// Programs whose autoload is off in the object (`SEC("?…")`) to load too — the benchmark's producer, the
    /// tests' deliberately invalid program.
    package var extraPrograms: Set<String> = []
    /// Start the reader thread (the benchmark drains the ring buffer itself when false).
    package var startsReader = true

    public init(settings: BPFSettings = BPFSettings(), ringBufferBytes: Int = 1 << 20, queueCapacity: Int = 16_384,
                overflowPolicy: BoundedQueue<TapioEvent>.OverflowPolicy = .dropOldest,
                pollIntervalMilliseconds: Int32 = 1_000, verboseLibbpf: Bool = false) {
        self.settings = settings
        self.ringBufferBytes = ringBufferBytes
        self.queueCapacity = queueCapacity
        self.overflowPolicy = overflowPolicy
        self.pollIntervalMilliseconds = pollIntervalMilliseconds
        self.verboseLibbpf = verboseLibbpf
    }
}

/// Kernel-side counters from the `stats` map, summed over CPUs.
public struct BPFKernelStats: Sendable, Hashable {
    /// Records committed to the ring buffer.
    public var submitted: UInt64
    /// Records lost in the kernel because the ring buffer was full.
    public var ringBufferDrops: UInt64
    /// perf samples skipped by `sampleDivisor`.
    public var sampledOut: UInt64
}

/// One program of the object and whether it is running.
public struct ProbeStatus: Sendable, Hashable, CustomStringConvertible {
    public enum State: Sendable, Hashable {
        case up
        /// Not running, and why (`load tapio_oom_mark_victim: EPERM`, `attach tp_btf/mark_victim: ENOENT`).
        case down(String)
    }
    /// The BPF program's name.
    public var program: String
    /// Its ELF section (`tp_btf/mark_victim`, `perf_event`).
    public var section: String
    /// The probe family it belongs to (empty for internal programs).
    public var probe: ProbeSet
    public var state: State

    public var description: String {
        switch state {
        case .up: return "\(program) (\(section)): up"
        case .down(let why): return "\(program) (\(section)): down — \(why)"
        }
    }
}

/// TCP trouble of one kind counted in the kernel for one process and memory cgroup.
public struct TCPTroubleCount: Sendable, Hashable {
    /// 0 when no process could be attributed (softirq context, socket owner unknown).
    public var pid: Int32
    public var cgroupID: UInt64
    public var kind: NodeEvent.TCPEvent.Kind
    public var count: UInt64
}
