import TapioModel

extension CorrelationEngine {
    /// `CrashLoopBackOff` (or `crashLoopRestarts` restarts within the window), with the last termination from pod
    /// status and, when the kernel saw it, what really killed the process.
    func crashLoop(_ i: Int, now: UInt64) -> (InsightIdentity, InsightSpec)? {
        let s = states[i]
        let backOff = s.waitingReason == "CrashLoopBackOff"
        let restarts = s.restartTimes.count
        guard backOff || restarts >= config.crashLoopRestarts, case .podContainer(let pod, let container) = s.subject
        else { return nil }
        let at = Formatting.rfc3339(nanos: now)
        var evidence = [Evidence(source: "kubernetes",
                                 description: backOff ? "Waiting in CrashLoopBackOff after \(s.restartCount) restarts"
                                     : "\(restarts) restarts in the last \(Formatting.duration(seconds: Double(windowNanos) / 1e9))",
                                 observedAt: at, value: Double(s.restartCount), unit: "restarts")]
        var cause = ""
        if let t = s.lastTermination {
            evidence.append(Evidence(source: "kubernetes",
                                     description: "Last termination: \(t.reason), exit code \(t.exitCode)",
                                     observedAt: Formatting.rfc3339(nanos: t.finishedAtNanos == 0 ? now : t.finishedAtNanos),
                                     value: Double(t.exitCode), unit: "exitCode"))
            cause = "last terminated with \(t.reason), exit code \(t.exitCode)"
        }
        if let x = s.lastExit ?? s.lastKernelOOM {
            let killed: String
            if x.oom {
                killed = "the kernel's OOM killer"
            } else if x.signal != 0 {
                killed = "signal \(x.signal) (\(Self.signalName(x.signal)))"
            } else {
                killed = "exit code \(x.exitCode)"
            }
            evidence.append(Evidence(source: "ebpf",
                                     description: "\(x.comm) (pid \(x.pid)) ended: \(x.oom || x.signal != 0 ? "killed by " : "")\(killed)",
                                     observedAt: Formatting.rfc3339(nanos: x.at), value: Double(x.signal != 0 ? x.signal : x.exitCode),
                                     unit: x.signal != 0 ? "signal" : "exitCode"))
            cause += (cause.isEmpty ? "" : "; ") + "the kernel saw \(x.comm) " + (x.oom || x.signal != 0 ? "killed by \(killed)" : "exit with \(killed)")
        }
        var actions = [
            RemediationAction(name: "InspectCrash", title: "Read why it crashes",
                              description: "The previous container's logs and the pod's events and last state.",
                              risk: .low, impact: "Read-only.",
                              commands: ["kubectl logs -n \(pod.namespace) \(pod.name) -c \(container) --previous",
                                         "kubectl describe pod \(pod.name) -n \(pod.namespace)"]),
        ]
        let rollout = rolloutLikely(s, now: now)
        if let o = s.owner, RemediationAdvice.patchableKinds.contains(o.kind), let why = rollout {
            actions.append(RemediationAction(
                name: "RolloutUndo", title: "Roll \(o.kind) \(o.name) back to its previous revision",
                description: "A recent rollout is the likely cause: \(why).", risk: .medium,
                impact: "Replaces the pods with the previous template; the new version's changes are undone.",
                commands: ["kubectl rollout history \(o.kind.lowercased())/\(o.name) -n \(pod.namespace)",
                           "kubectl rollout undo \(o.kind.lowercased())/\(o.name) -n \(pod.namespace)"]))
        }
        let severity: Severity = s.restartCount >= 5 || s.lastExit?.oom == true ? .critical : .warning
        let spec = InsightSpec(
            type: .crashLoop, severity: severity,
            title: "\(s.subject.displayName) is crash-looping (\(s.restartCount) restarts)",
            summary: "\(s.subject.displayName) keeps crashing: \(s.restartCount) restarts"
                + (cause.isEmpty ? "" : ", \(cause)") + (rollout.map { "; likely caused by a recent rollout (\($0))" } ?? "") + ".",
            subject: s.subject.resourceRef, resources: resources(s), evidence: evidence,
            remediation: Remediation(actions: actions))
        return (InsightIdentity(type: .crashLoop, subject: s.subject), spec)
    }

    /// Why a rollout is the likely cause, if it is: the owner ran another image for this container recently, or
    /// the pod appeared recently while the engine had been watching long enough to have seen its predecessor.
    func rolloutLikely(_ s: SubjectState, now: UInt64) -> String? {
        guard let o = s.owner, case .podContainer(let pod, let c) = s.subject else { return nil }
        if let e = ownerImages["\(pod.namespace)/\(o.kind)/\(o.name)/\(c)"], e.images.count > 1, let img = s.image {
            let others = e.images.filter { $0 != img }
            if !others.isEmpty { return "the image changed from \(others.joined(separator: ", ")) to \(img)" }
        }
        let recent: UInt64 = 10 * 60 * 1_000_000_000
        if let start = startedAt, s.firstSeen > start, s.firstSeen - start >= recent, now >= s.firstSeen,
           now - s.firstSeen <= recent {
            return "the pod was created \(Formatting.duration(seconds: Double(now - s.firstSeen) / 1e9)) ago"
        }
        return nil
    }

    static func signalName(_ s: Int32) -> String {
        switch s {
        case 1: "SIGHUP"
        case 2: "SIGINT"
        case 3: "SIGQUIT"
        case 4: "SIGILL"
        case 6: "SIGABRT"
        case 7: "SIGBUS"
        case 8: "SIGFPE"
        case 9: "SIGKILL"
        case 11: "SIGSEGV"
        case 13: "SIGPIPE"
        case 15: "SIGTERM"
        default: "signal \(s)"
        }
    }
}
