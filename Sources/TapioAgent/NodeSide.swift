import Foundation
import Logging
import TapioBPF
import TapioModel

/// The kernel side of a node: the BPF probes when they can load, /proc and cgroup polling otherwise.
public struct NodeSide: Sendable {
    /// The running sources.
    public var sources: [any EventSource]
    /// The BPF probes, when loaded (for live reconfiguration and `close()`).
    public var probes: BPFProbes?
    /// What runs and what does not, and why — the start-up checklist.
    public var checklist: [(name: String, state: SourceHealth.State)]
    /// Joins kernel events to pods, containers, cgroups and processes.
    public var attributor: NodeAttributor
    /// Why the BPF probes did not load (the agent then polls /proc), nil when they did.
    public var bpfFailure: String?
    /// The periodic BPF memory snapshot, cancelled by ``close()``.
    var snapshots: Task<Void, Never>?
    /// The cgroup memory poller (also among `sources`), told the engine's bucket when the policy's window changes.
    public var cgroupPoller: CgroupMemoryPoller?

    /// The BPF settings for an effective configuration.
    public static func bpfSettings(_ c: EffectiveConfig) -> BPFSettings {
        var enabled: ProbeSet = []
        if c.memoryProbe { enabled.formUnion(.memory) }
        if c.oomProbe { enabled.insert(.oom) }
        if c.processProbe { enabled.insert(.process) }
        if c.networkProbe { enabled.insert(.network) }
        var s = BPFSettings()
        s.enabled = enabled
        s.samplingHz = UInt64(c.samplingHz)
        // Tapio's own allocations are not what anyone wants to be warned about.
        s.ignoredPID = getpid()
        return s
    }

    /// Starts the node's sources: BPF if it can load, else the /proc poller; the cgroup memory poller always.
    public static func start(_ c: EffectiveConfig, logger: Logger) -> NodeSide {
        let cgroups = CgroupMemoryPoller(interval: .seconds(1), bucketNanos: c.correlation.bucketNanos)
        var side = NodeSide(sources: [], probes: nil, checklist: [], attributor: NodeAttributor(limited: cgroups.limited,
                                                                                                 mount: cgroups.mount),
                            snapshots: nil, cgroupPoller: cgroups)
        do {
            var configuration = BPFConfiguration(settings: bpfSettings(c))
            configuration.logger = logger
            let probes = try BPFProbes(configuration: configuration)
            side.probes = probes
            side.sources.append(probes)
            // The sampler sees only tasks on a CPU: a periodic snapshot covers the sleeping ones.
            side.snapshots = Task.detached {
                while !Task.isCancelled {
                    try? probes.snapshotMemory()
                    try? await Task.sleep(for: .seconds(15))
                }
            }
            let down = probes.probeStatus.filter { $0.state != .up }
            side.checklist.append((
                "eBPF probes (\(probes.probeStatus.filter { $0.state == .up }.count) programs, \(c.samplingHz) Hz)",
                down.isEmpty ? .running : .degraded(down.map(\.description).joined(separator: "; "))))
        } catch {
            // Loud: without the probes the agent sees no per-process memory samples and no TCP trouble. The agent
            // also says so in a Warning Event on its Node, in tapio_source_up{source="ebpf"}, and in the policy status.
            logger.warning("eBPF probes unavailable, polling /proc instead", metadata: ["reason": "\(error)"])
            side.bpfFailure = "\(error)"
            side.checklist.append(("eBPF probes", .failed("\(error); polling /proc and cgroup files instead")))
            let poller = ProcPoller(interval: .seconds(1))
            side.sources.append(poller)
            side.checklist.append(("/proc process poller (1 s)", .running))
        }
        side.sources.append(cgroups)
        side.checklist.append(("cgroup memory poller (\(cgroups.describeHierarchy()))", .running))
        return side
    }

    /// No kernel sources at all: a simulated node whose events come only from the caller's sources (the scale
    /// benchmark runs hundreds of agents in one process; each polling this machine's /proc would measure nothing).
    public static func simulated() -> NodeSide {
        NodeSide(sources: [], probes: nil, checklist: [("kernel sources", .stopped)],
                 attributor: NodeAttributor(limited: nil, mount: nil), bpfFailure: nil, snapshots: nil, cgroupPoller: nil)
    }

    public func close() {
        snapshots?.cancel()
        probes?.close()
        for s in sources { s.events().finish() }
    }
}
