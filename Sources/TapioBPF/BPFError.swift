import CTapioBPF
import Glibc

/// Why the probes could not start or change. Messages name what failed and the errno, e.g.
/// `attach tp_btf/mark_victim: EPERM`.
public enum BPFError: Error, Sendable, Hashable, CustomStringConvertible {
    /// BPF cannot be used here; the caller should fall back to polling /proc and cgroup files.
    case unavailable(BPFAvailability)
    /// The embedded object could not be opened.
    case open(errno: Int32, detail: String)
    /// The object failed to load, and no single optional program could be blamed and switched off.
    case load(program: String?, errno: Int32, detail: String)
    /// Attaching a program failed.
    case attach(section: String, errno: Int32)
    /// Something else failed in a named step (ring buffer, perf events, a map update).
    case system(step: String, errno: Int32)
    /// No probe program is running.
    case nothingRunning([ProbeStatus])
    /// The probes were closed.
    case closed

    public var description: String {
        switch self {
        case .unavailable(let a): return "BPF unavailable: \(a.summary)"
        case .open(let e, let d): return "open BPF object: \(errnoName(e))\(d.isEmpty ? "" : " (\(d))")"
        case .load(let p, let e, let d):
            return "load \(p ?? "BPF object"): \(errnoName(e))\(d.isEmpty ? "" : " (\(d))")"
        case .attach(let s, let e): return "attach \(s): \(errnoName(e))"
        case .system(let step, let e): return "\(step): \(errnoName(e))"
        case .nothingRunning(let s): return "no BPF probe is running: " + s.map(\.description).joined(separator: "; ")
        case .closed: return "BPF probes are closed"
        }
    }
}

/// The symbolic name of an errno (`EPERM`), with the number when unknown (`errno 4242`).
public func errnoName(_ code: Int32) -> String {
    let e = abs(code)
    let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", E2BIG: "E2BIG",
        EBADF: "EBADF", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY",
        EEXIST: "EEXIST", ENODEV: "ENODEV", EINVAL: "EINVAL", EMFILE: "EMFILE", ENOSPC: "ENOSPC",
        ENOSYS: "ENOSYS", EOPNOTSUPP: "EOPNOTSUPP", ERANGE: "ERANGE", ENXIO: "ENXIO",
        524: "ENOTSUPP", 4001: "LIBBPF_ERRNO__LIBELF", 4003: "LIBBPF_ERRNO__FORMAT", 4007: "LIBBPF_ERRNO__VERIFY",
        4009: "LIBBPF_ERRNO__PROG2BIG", 4010: "LIBBPF_ERRNO__KVER",
    ]
    return names[e] ?? "errno \(e)"
}

/// What BPF needs on this machine, checked without loading anything.
public struct BPFAvailability: Sendable, Hashable {
    /// Each missing requirement, said exactly (which capability, which file, and why it matters).
    public var missing: [String]
    public var isAvailable: Bool { missing.isEmpty }
    public var summary: String { missing.isEmpty ? "available" : missing.joined(separator: "; ") }
}

/// Capability bits (linux/capability.h).
enum Capability: Int {
    case sysAdmin = 21
    case perfmon = 38
    case bpf = 39
}

/// The effective capability set of this process, from /proc/self/status.
func effectiveCapabilities() -> UInt64? {
    guard let status = readSmallFile("/proc/self/status") else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
        return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: " \t"), radix: 16)
    }
    return nil
}

func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return String(decoding: out, as: UTF8.self)
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return s
    }
}
