import TapioModel

/// Remediation as exact commands and patches. Pure string building; nothing here runs anything.
enum RemediationAdvice {
    static let mi: UInt64 = 1 << 20

    /// The VPA recommender's OOM bump: `max(used + 100Mi, used × 1.2)` with `used = max(request, peak)`, capped by
    /// the ceiling, rounded up to whole Mi.
    static func bumpedLimit(request: UInt64?, peak: UInt64, ceiling: UInt64?) -> UInt64 {
        let used = max(request ?? 0, peak)
        // Saturating: a peak near 16Ei (a scenario can say so) caps at the largest whole Mi instead of trapping.
        var v = max(used.adding(saturating: 100 * mi), UInt64.rounding(clamping: (Double(used) * 1.2).rounded(.up)))
        if let c = ceiling { v = min(v, c) }
        let whole = v / mi * mi
        return whole == v ? v : (whole.addingReportingOverflow(mi).overflow ? whole : whole + mi)
    }

    /// Kinds whose pod template a strategic-merge patch can change.
    static let patchableKinds: Set<String> = ["Deployment", "StatefulSet", "DaemonSet"]

    /// The memory limit action: a `kubectl patch` of the owning workload and the exact patch, or, without a
    /// patchable owner, the command for a local cgroup; nil when the ceiling leaves no room above the current limit.
    static func increaseLimit(subject: Subject, owner: OwnerRef?, current: UInt64?, request: UInt64?, peak: UInt64,
                              ceiling: UInt64?, reason: String) -> RemediationAction? {
        let newLimit = bumpedLimit(request: request, peak: peak, ceiling: ceiling)
        if let c = current, newLimit <= c { return nil }
        let q = Formatting.quantityMi(newLimit)
        let from = current.map { " from \(Formatting.bytes($0))" } ?? ""
        let capped = ceiling.map { newLimit >= $0 ? " (capped by the policy's memory ceiling)" : "" } ?? ""
        let description = "\(reason) Raise the memory limit\(from) to \(q): the VPA bump max(used + 100Mi, used × 1.2) "
            + "with used = max(request, peak) = \(Formatting.bytes(max(request ?? 0, peak)))\(capped)."
        switch subject {
        case .podContainer(let pod, let container):
            guard let o = owner, patchableKinds.contains(o.kind) else {
                return RemediationAction(
                    name: "IncreaseMemoryLimit", title: "Raise the memory limit to \(q)",
                    description: description + " The pod has no Deployment, StatefulSet or DaemonSet owner to patch; "
                        + "change the limit where the pod is defined.",
                    risk: .medium, impact: "The pod must be recreated to take the new limit.",
                    commands: ["kubectl get pod \(pod.name) -n \(pod.namespace) -o yaml"])
            }
            let body = #"{"spec":{"template":{"spec":{"containers":[{"name":"\#(jsonEscape(container))","resources":{"limits":{"memory":"\#(q)"}}}]}}}}"#
            let cmd = "kubectl patch \(o.kind.lowercased()) \(o.name) -n \(pod.namespace) --type=strategic -p '\(body)'"
            return RemediationAction(
                name: "IncreaseMemoryLimit", title: "Raise the memory limit of \(container) to \(q)",
                description: description, risk: .medium,
                impact: "Rolls out new pods of \(o.kind) \(o.name); each needs up to \(q) on its node.",
                commands: [cmd],
                patch: Patch(target: PatchTarget(apiVersion: "apps/v1", kind: o.kind, namespace: pod.namespace, name: o.name),
                             type: .strategicMerge, body: body))
        case .localCgroup(_, let path) where !path.isEmpty:
            return RemediationAction(
                name: "IncreaseMemoryLimit", title: "Raise the cgroup's memory limit to \(q)", description: description,
                risk: .medium, impact: "Takes effect immediately; the host must have the memory.",
                commands: ["echo \(newLimit) > /sys/fs/cgroup\(path)/memory.max  # cgroup v2",
                           "echo \(newLimit) > /sys/fs/cgroup/memory\(path)/memory.limit_in_bytes  # cgroup v1"])
        default:
            return RemediationAction(
                name: "IncreaseMemoryLimit", title: "Raise the memory limit to \(q)", description: description,
                risk: .medium, impact: "Takes effect when the workload is restarted with the new limit.", commands: [])
        }
    }

    /// Commands to look inside a container's memory.
    static func memoryDiagnostics(subject: Subject, previous: Bool) -> RemediationAction {
        switch subject {
        case .podContainer(let p, let c):
            var cmds = ["kubectl top pod \(p.name) -n \(p.namespace) --containers",
                        "kubectl exec -n \(p.namespace) \(p.name) -c \(c) -- cat /sys/fs/cgroup/memory.stat"]
            if previous { cmds.append("kubectl logs -n \(p.namespace) \(p.name) -c \(c) --previous") }
            return RemediationAction(name: "InspectMemory", title: "Look at where the memory goes",
                                     description: "Current usage, the cgroup's memory breakdown (anon vs file cache), "
                                         + "and the last words of the previous container.",
                                     risk: .low, impact: "Read-only.", commands: cmds)
        case .localCgroup(_, let path) where !path.isEmpty:
            return RemediationAction(name: "InspectMemory", title: "Look at where the memory goes",
                                     description: "The cgroup's memory breakdown (anon vs file cache).", risk: .low,
                                     impact: "Read-only.",
                                     commands: ["cat /sys/fs/cgroup\(path)/memory.stat 2>/dev/null || cat /sys/fs/cgroup/memory\(path)/memory.stat"])
        case .localProcess(let pid, _):
            return RemediationAction(name: "InspectMemory", title: "Look at where the memory goes",
                                     description: "The process's memory status and largest mappings.", risk: .low,
                                     impact: "Read-only.",
                                     commands: ["grep -E 'VmRSS|RssAnon|RssFile|RssShmem' /proc/\(pid)/status",
                                                "sort -k2 -n -r /proc/\(pid)/smaps_rollup | head"])
        default:
            return RemediationAction(name: "InspectMemory", title: "Look at where the memory goes", description: "",
                                     risk: .low, impact: "Read-only.", commands: [])
        }
    }

    static func jsonEscape(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "'": out += "\\u0027"  // keeps the shell's single quotes intact
            default:
                if ch.value < 0x20 { out += String(format: "\\u%04x", ch.value) } else { out.unicodeScalars.append(ch) }
            }
        }
        return out
    }
}

import Foundation
