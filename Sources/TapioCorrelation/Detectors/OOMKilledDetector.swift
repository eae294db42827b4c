import TapioModel

extension CorrelationEngine {
    /// OOM kills in the window — from the kernel (even a killed child the container survived) and from pod status
    /// (`OOMKilled`, exit 137), each incident counted once.
    func oomKilled(_ i: Int, now: UInt64) -> (InsightIdentity, InsightSpec)? {
        let s = states[i]
        guard let last = s.oomIncidents.last else { return nil }
        let n = s.oomIncidents.count
        let at = Formatting.rfc3339(nanos: now)
        var evidence: [Evidence] = []
        let kernelFresh = s.lastKernelOOM.map { absDiff($0.at, last) <= 60_000_000_000 } ?? false
        if let k = s.lastKernelOOM, s.oomIncidents.contains(where: { absDiff($0, k.at) <= 60_000_000_000 }) || kernelFresh {
            evidence.append(Evidence(source: "ebpf",
                                     description: "The kernel OOM-killed \(k.comm) (pid \(k.pid)) holding \(Formatting.bytes(k.rssBytes))",
                                     observedAt: Formatting.rfc3339(nanos: k.at), value: Double(k.rssBytes), unit: "bytes"))
        }
        let byStatus = s.oomKilledByStatus && absDiff(s.lastCountedOOMFinishedAt, last) <= 60_000_000_000
        if byStatus, let t = s.lastTermination {
            evidence.append(Evidence(source: "kubernetes",
                                     description: "Container terminated: \(t.reason), exit code \(t.exitCode), restart count \(s.restartCount)",
                                     observedAt: Formatting.rfc3339(nanos: t.finishedAtNanos == 0 ? now : t.finishedAtNanos),
                                     value: Double(t.exitCode), unit: "exitCode"))
        }
        if let l = s.effectiveLimit {
            evidence.append(Evidence(source: s.hasCgroupSeries ? "cgroup" : "kubernetes",
                                     description: "Memory limit \(Formatting.bytes(l)), peak working set \(Formatting.bytes(s.peakWorkingSet))",
                                     observedAt: at, value: Double(l), unit: "bytes"))
        }
        // A killed child leaves the container running: the kernel is the only witness, and it is less urgent.
        let containerDied = byStatus || (s.lastExit.map { $0.oom && $0.at >= last } ?? false && s.restartCount > 0)
        let severity: Severity = containerDied || n >= 2 ? .critical : .warning
        let what = containerDied ? "was OOM-killed" : "had a process OOM-killed by the kernel"
        let times = n == 1 ? "" : " \(n) times in the last \(Formatting.duration(seconds: Double(windowNanos) / 1e9))"
        var actions: [RemediationAction] = []
        let peak = max(s.peakWorkingSet, s.lastKernelOOM?.rssBytes ?? 0, s.effectiveLimit ?? 0)
        if let inc = RemediationAdvice.increaseLimit(subject: s.subject, owner: s.owner, current: s.effectiveLimit,
                                                     request: s.memoryRequest, peak: peak,
                                                     ceiling: config.memoryCeilingBytes,
                                                     reason: "It ran out of memory at its limit.") {
            actions.append(inc)
        }
        actions.append(RemediationAdvice.memoryDiagnostics(subject: s.subject, previous: containerDied))
        let spec = InsightSpec(
            type: .oomKilled, severity: severity,
            title: "\(s.subject.displayName) \(what)\(times)",
            summary: "\(s.subject.displayName) \(what)\(times)"
                + (s.effectiveLimit.map { " at its \(Formatting.bytes($0)) limit" } ?? "")
                + (containerDied ? "." : "; the container has not restarted, so a child process may have died while it survived."),
            subject: s.subject.resourceRef, resources: resources(s), evidence: evidence,
            remediation: Remediation(actions: actions))
        return (InsightIdentity(type: .oomKilled, subject: s.subject), spec)
    }
}
