/// How an agent's heartbeat Lease says what it runs with — written by the agent, read by the operator.
///
/// The Lease is `tapio-agent-<node>` in Tapio's namespace, labelled `app.kubernetes.io/name=tapio` and
/// `tapio.io/node=<node>`; `tapio.io/applied-policies` holds `name=generation,…` and `tapio.io/policy-errors`
/// holds `name: why; …` for policies the agent could not apply; `tapio.io/node-problems` lists, one per line, what
/// keeps the agent from working fully whatever the policy (probes that did not load, calls the API server refused);
/// `tapio.io/insights-written-through` is a time (RFC 3339) by which every Insight update the agent had was written,
/// `tapio.io/engine-started` when its correlation engine last started afresh (a policy change restarts it), and the
/// Lease's `acquireTime` is when the agent started — from these the operator tells the Insights a restarted agent no
/// longer holds.
public enum HeartbeatAnnotations {
    public static let applied = "tapio.io/applied-policies"
    public static let errors = "tapio.io/policy-errors"
    public static let problems = "tapio.io/node-problems"
    public static let insightsWrittenThrough = "tapio.io/insights-written-through"
    public static let engineStarted = "tapio.io/engine-started"
    public static let nodeLabel = "tapio.io/node"
    public static let appLabel = "app.kubernetes.io/name"
    public static func leaseName(node: String) -> String { "tapio-agent-\(node)" }

    public static func encodeApplied(_ policies: [String: Int64]) -> String {
        policies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    public static func decodeApplied(_ s: String) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for part in s.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2, let g = Int64(kv[1]) { out[String(kv[0])] = g }
        }
        return out
    }

    /// Longest `policy-errors` value written: an object's annotations may total 256 KiB, and a Lease written every
    /// heartbeat should stay small.
    public static let maxErrorsLength = 16 * 1024

    /// Policy names are DNS subdomains, so they contain neither ": " nor "; ". Past `maxErrorsLength` the rest are
    /// counted, not listed.
    public static func encodeErrors(_ errors: [String: String]) -> String {
        var out = ""
        let sorted = errors.sorted { $0.key < $1.key }
        for (i, e) in sorted.enumerated() {
            let part = "\(e.key): \(e.value.replacingOccurrences(of: "; ", with: ", "))"
            if out.utf8.count + part.utf8.count + 2 > maxErrorsLength {
                out += "\(out.isEmpty ? "" : "; ")…: and \(sorted.count - i) more policies"
                break
            }
            out += (out.isEmpty ? "" : "; ") + part
        }
        return out
    }

    public static func decodeErrors(_ s: String) -> [String: String] {
        var out: [String: String] = [:]
        for part in s.components(separatedBy: "; ") {
            guard let r = part.range(of: ": ") else { continue }
            out[String(part[..<r.lowerBound])] = String(part[r.upperBound...])
        }
        return out
    }

    /// One problem per line (newlines inside one become spaces), each cut to 1 KiB, `maxErrorsLength` in all.
    public static func encodeProblems(_ problems: [String]) -> String {
        var out = ""
        for (i, p) in problems.enumerated() {
            let line = String(p.replacingOccurrences(of: "\n", with: " ").prefix(1024))
            if out.utf8.count + line.utf8.count + 1 > maxErrorsLength {
                out += "\nand \(problems.count - i) more"
                break
            }
            out += (out.isEmpty ? "" : "\n") + line
        }
        return out
    }

    public static func decodeProblems(_ s: String) -> [String] {
        s.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }
}
