import Foundation
import TapioCorrelation
import TapioModel

/// Renders insights and the status footer for people: colour and symbols on a terminal, plain text otherwise.
public struct TextRenderer: Sendable {
    public var color: Bool

    public init(color: Bool) { self.color = color }

    /// Colour is right when stdout is a terminal, `NO_COLOR` is unset and `TERM` is not `dumb`.
    public static func shouldUseColor(noColorFlag: Bool) -> Bool {
        let env = ProcessInfo.processInfo.environment
        return !noColorFlag && isatty(1) == 1 && env["NO_COLOR"] == nil && env["TERM"] != "dumb"
    }

    /// The block printed when an insight is new or escalated.
    public func render(_ r: InsightUpdate) -> String {
        let s = r.spec
        var out = ""
        let marker = r.change == .escalated ? " (escalated)" : ""
        out += "\(severityBadge(s.severity)) \(bold(s.title))\(marker)\n"
        out += "  \(dim("subject:")) \(describe(s.subject))   \(dim("type:")) \(s.type.rawValue)   \(dim("insight:")) \(r.identity.name)\n"
        out += "  \(s.summary)\n"
        if let p = s.prediction {
            var parts = ["\(p.kind)"]
            if let t = p.timeToEvent { parts.append("in \(t)") }
            parts.append("probability \(percent(p.probability))")
            parts.append("confidence \(percent(p.confidence))")
            if let at = p.expectedAt { parts.append("at \(at)") }
            out += "  \(dim("prediction:")) \(parts.joined(separator: ", "))\n"
        }
        let others = s.resources.filter { $0 != s.subject }
        if !others.isEmpty {
            out += "  \(dim("resources:")) \(others.map(describe).joined(separator: "; "))\n"
        }
        if let last = s.evidence.last {
            out += "  \(dim("evidence:")) [\(last.source)] \(last.description)"
            out += s.evidence.count > 1 ? " (+\(s.evidence.count - 1) more)\n" : "\n"
        }
        if let actions = s.remediation?.actions, !actions.isEmpty {
            out += "  \(dim("remediation:"))\n"
            for (i, a) in actions.enumerated() {
                out += "    \(i + 1). \(a.title) \(dim("[risk \(a.risk.rawValue.lowercased()); \(a.impact)]"))\n"
                if !a.description.isEmpty { out += "       \(a.description)\n" }
                for c in a.commands { out += "       \(color ? "\u{1B}[36m$\u{1B}[0m" : "$") \(c)\n" }
            }
        }
        return out
    }

    /// One line when an insight resolves.
    public func renderResolved(_ r: InsightUpdate) -> String {
        "\(color ? "\u{1B}[32m✔\u{1B}[0m" : "RESOLVED") \(r.spec.title) — \(describe(r.spec.subject))\n"
    }

    /// The one-line footer: counts and probe health.
    public func footer(_ s: PipelineStatus) -> String {
        let probes = s.sources.map { "\($0.name) \(stateWord($0.health.state))" }.joined(separator: ", ")
        var line = "events \(s.events) · insights \(s.activeInsights.count) · correlations \(s.correlations) · subjects \(s.subjects)"
        if s.shed > 0 { line += " · shed \(s.shed)" }
        line += " · \(probes)"
        return dim(line)
    }

    /// A start-up checklist line: ✔ / ✘ / – and why.
    public func checklist(_ name: String, _ state: SourceHealth.State) -> String {
        switch state {
        case .running, .starting: "\(color ? "\u{1B}[32m✔\u{1B}[0m" : "[ok]  ") \(name)"
        case .degraded(let why): "\(color ? "\u{1B}[33m!\u{1B}[0m" : "[part]") \(name): \(why)"
        case .failed(let why): "\(color ? "\u{1B}[31m✘\u{1B}[0m" : "[off] ") \(name): \(why)"
        case .stopped: "\(color ? "–" : "[off] ") \(name): stopped"
        }
    }

    public func describe(_ r: ResourceRef) -> String {
        var s = r.kind + " "
        if let ns = r.namespace { s += ns + "/" }
        s += r.name
        if let c = r.container { s += " (container \(c))" }
        return s
    }

    private func stateWord(_ s: SourceHealth.State) -> String {
        switch s {
        case .starting: "starting"
        case .running: "ok"
        case .degraded: "degraded"
        case .failed: "off"
        case .stopped: "stopped"
        }
    }

    private func severityBadge(_ s: Severity) -> String {
        let word = s.rawValue.uppercased()
        guard color else { return "[\(word)]" }
        switch s {
        case .critical: return "\u{1B}[1;31m●\u{1B}[0m \u{1B}[31m\(word)\u{1B}[0m"
        case .warning: return "\u{1B}[1;33m●\u{1B}[0m \u{1B}[33m\(word)\u{1B}[0m"
        case .info: return "\u{1B}[1;34m●\u{1B}[0m \u{1B}[34m\(word)\u{1B}[0m"
        }
    }
    private func bold(_ s: String) -> String { color ? "\u{1B}[1m\(s)\u{1B}[0m" : s }
    private func dim(_ s: String) -> String { color ? "\u{1B}[2m\(s)\u{1B}[0m" : s }
    private func percent(_ p: Double) -> String { "\(Int((p * 100).rounded()))%" }
}
