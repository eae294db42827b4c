import Foundation
import TapioModel

/// The stable identity of an insight: its type and subject (plus, for ClusterHealth, which group failed).
/// Repeated detections of one identity update one insight; ``name`` is the deterministic Insight CR name.
public struct InsightIdentity: Sendable, Hashable {
    public var type: InsightType
    public var subject: Subject
    /// Distinguishes several insights of one type on one subject (ClusterHealth: "CrashLoop image=repo/app:v2");
    /// empty otherwise.
    public var detail: String

    public init(type: InsightType, subject: Subject, detail: String = "") {
        self.type = type
        self.subject = subject
        self.detail = detail
    }

    /// A valid Kubernetes object name (lowercase, `[a-z0-9-]`, ≤ 63 characters) that is the same for the same
    /// identity in every process and every run: a readable prefix and a 10-hex FNV-1a hash of the full key.
    public var name: String {
        let key = "\(type.rawValue)|\(subject.stableKey)|\(detail)"
        let hash = String(InsightNaming.fnv1a64(key) & 0xff_ffff_ffff, radix: 16)
        let hex = String(repeating: "0", count: 10 - hash.count) + hash
        var readable = type.rawValue.lowercased() + "-" + subject.readableName
        readable = String(readable.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "-" })
        while readable.contains("--") { readable = readable.replacingOccurrences(of: "--", with: "-") }
        readable = String(readable.prefix(63 - 11)).trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return readable + "-" + hex
    }
}

extension Subject {
    /// The full identity key (uids included) that the name hash is taken over.
    var stableKey: String {
        switch self {
        case .podContainer(let p, let c): "pod/\(p.namespace)/\(p.name)/\(p.uid)/\(c)"
        case .pod(let p): "pod/\(p.namespace)/\(p.name)/\(p.uid)"
        case .node(let n): "node/\(n)"
        case .cluster: "cluster"
        case .localContainer(let id): "container/\(id)"
        case .localCgroup(let id, let path): "cgroup/\(id)/\(path)"
        case .localProcess(let pid, let comm): "process/\(pid)/\(comm)"
        }
    }

    var readableName: String {
        switch self {
        case .podContainer(let p, let c): "\(p.name)-\(c)"
        case .pod(let p): p.name
        case .node(let n): n
        case .cluster: "cluster"
        case .localContainer(let id): String(id.prefix(12))
        case .localCgroup(let id, let path): path.isEmpty ? "cgroup-\(id)" : String(path.split(separator: "/").last ?? "cgroup")
        case .localProcess(let pid, let comm): "\(comm)-\(pid)"
        }
    }
}

/// How an insight changed with this update.
public enum InsightChange: String, Sendable, Hashable, Codable {
    /// First detection of this identity (or the first since it resolved).
    case new
    /// Seen again; the numbers moved but nothing a person must re-read.
    case updated
    /// Severity rose, or a prediction's probability crossed 50 % or 80 % upwards.
    case escalated
    /// The condition has been clear for `resolveAfter` (or its subject went away).
    case resolved
}

/// One thing the engine tells its sinks.
public struct InsightUpdate: Sendable, Hashable {
    public var identity: InsightIdentity
    public var spec: InsightSpec
    public var change: InsightChange
    /// Engine time of this update (nanoseconds since the Unix epoch).
    public var observedAt: UInt64
    /// When this identity was first detected (in its current active period).
    public var firstSeenAt: UInt64
    /// Detections so far in the current active period.
    public var occurrences: Int

    public init(identity: InsightIdentity, spec: InsightSpec, change: InsightChange, observedAt: UInt64,
                firstSeenAt: UInt64, occurrences: Int) {
        self.identity = identity
        self.spec = spec
        self.change = change
        self.observedAt = observedAt
        self.firstSeenAt = firstSeenAt
        self.occurrences = occurrences
    }
}
