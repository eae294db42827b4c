/// Typed events from the node side (kernel probes, /proc and cgroup polling).
///
/// Every event carries the pid and the memory cgroup id (the cgroup directory's inode, as the BPF probes
/// report it), so the translator can attach a container and pod. Values are fixed-width and copyable;
/// nothing here holds a command line, an environment or a payload (privacy, DESIGN.md §2).
public struct NodeEvent: Sendable, Hashable {
    /// Nanoseconds since the Unix epoch.
    public var timestampNanos: UInt64
    public var pid: Int32
    /// The memory cgroup id: the cgroup directory's inode (0 when unknown).
    public var cgroupID: UInt64
    /// The process name (`comm`, at most 15 bytes in the kernel).
    public var comm: String
    public var kind: Kind

    public init(timestampNanos: UInt64, pid: Int32, cgroupID: UInt64, comm: String, kind: Kind) {
        self.timestampNanos = timestampNanos
        self.pid = pid
        self.cgroupID = cgroupID
        self.comm = comm
        self.kind = kind
    }

    /// News that should not wait for a batch to fill or time out: an OOM kill (the engine judges its batch at once,
    /// and the pipeline wakes the engine for it).
    public var isUrgent: Bool {
        if case .oomKill = kind { return true }
        return false
    }

    public enum Kind: Sendable, Hashable {
        /// A sample of a process's memory counters (bytes).
        case memorySample(MemorySample)
        /// A container's (cgroup's) memory usage and limit from the cgroup files (bytes; limit nil = unlimited).
        case cgroupMemory(CgroupMemory)
        /// The kernel chose this process as an OOM victim (`oom/mark_victim`).
        case oomKill(OOMKill)
        case processExec
        case processFork(childPID: Int32)
        /// Exit of a whole process (thread group). `signal` is 0 for a normal exit.
        case processExit(ProcessExit)
        case tcp(TCPEvent)
    }

    public struct MemorySample: Sendable, Hashable {
        public var rssAnonBytes: UInt64
        public var rssFileBytes: UInt64
        public var rssShmemBytes: UInt64
        public var rssBytes: UInt64 { rssAnonBytes &+ rssFileBytes &+ rssShmemBytes }
        public init(rssAnonBytes: UInt64, rssFileBytes: UInt64, rssShmemBytes: UInt64) {
            self.rssAnonBytes = rssAnonBytes
            self.rssFileBytes = rssFileBytes
            self.rssShmemBytes = rssShmemBytes
        }
    }

    public struct CgroupMemory: Sendable, Hashable {
        public var usageBytes: UInt64
        public var workingSetBytes: UInt64
        public var limitBytes: UInt64?
        /// Samples read just before this one, after the previous one sent, that were identical to that previous one
        /// and were not sent (the cgroup poller sends an unchanged sample only once per engine bucket): the engine
        /// counts them as the zero changes they were, so its picture of the series' jitter is the same as if they had come.
        public var unchangedBefore: UInt32
        public init(usageBytes: UInt64, workingSetBytes: UInt64, limitBytes: UInt64?, unchangedBefore: UInt32 = 0) {
            self.usageBytes = usageBytes
            self.workingSetBytes = workingSetBytes
            self.limitBytes = limitBytes
            self.unchangedBefore = unchangedBefore
        }
    }

    public struct OOMKill: Sendable, Hashable {
        public var victimPID: Int32
        public var totalVMBytes: UInt64
        public var anonRSSBytes: UInt64
        public var fileRSSBytes: UInt64
        public var shmemRSSBytes: UInt64
        public init(victimPID: Int32, totalVMBytes: UInt64, anonRSSBytes: UInt64, fileRSSBytes: UInt64, shmemRSSBytes: UInt64) {
            self.victimPID = victimPID
            self.totalVMBytes = totalVMBytes
            self.anonRSSBytes = anonRSSBytes
            self.fileRSSBytes = fileRSSBytes
            self.shmemRSSBytes = shmemRSSBytes
        }
    }

    public struct ProcessExit: Sendable, Hashable {
        public var exitCode: Int32
        public var signal: Int32
        public var peakRSSBytes: UInt64
        public init(exitCode: Int32, signal: Int32, peakRSSBytes: UInt64) {
            self.exitCode = exitCode
            self.signal = signal
            self.peakRSSBytes = peakRSSBytes
        }
    }

    public struct TCPEvent: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable, Codable {
            case retransmit, resetSent, resetReceived, connectFailed, socketError
        }
        public var kind: Kind
        /// Addresses as text ("127.0.0.1", "::1"); ports in host order.
        public var sourceAddress: String
        public var sourcePort: UInt16
        public var destinationAddress: String
        public var destinationPort: UInt16
        /// errno for socket errors and failed connects (e.g. 111 ECONNREFUSED), else 0.
        public var errno: Int32
        public init(kind: Kind, sourceAddress: String, sourcePort: UInt16, destinationAddress: String, destinationPort: UInt16, errno: Int32) {
            self.kind = kind
            self.sourceAddress = sourceAddress
            self.sourcePort = sourcePort
            self.destinationAddress = destinationAddress
            self.destinationPort = destinationPort
            self.errno = errno
        }
    }
}
