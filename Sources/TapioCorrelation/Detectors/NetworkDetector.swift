import TapioModel

extension CorrelationEngine {
    /// TCP failures from a pod (refused connects, resets, socket errors; retransmits weigh a tenth) that coincide
    /// with its restarts or probe failures in the window. Failures alone are not enough: a client that retries a
    /// flaky backend happily is not a problem a person must act on.
    func network(_ i: Int, now: UInt64) -> (InsightIdentity, InsightSpec)? {
        let s = states[i]
        guard !s.net.isEmpty, let pod = s.subject.pod else { return nil }
        var refused: UInt32 = 0, resets: UInt32 = 0, retransmits: UInt32 = 0, errors: UInt32 = 0
        for b in s.net {
            refused &+= b.refused
            resets &+= b.resets
            retransmits &+= b.retransmits
            errors &+= b.errors
        }
        let weighted = Double(refused) + Double(resets) + Double(errors) + Double(retransmits) / 10
        let restarts = s.restartTimes.count
        let probes = s.probeFailures.count
        guard weighted >= Double(config.networkFailureThreshold), restarts + probes > 0 else { return nil }
        let at = Formatting.rfc3339(nanos: now)
        let remotes = s.remotes.sorted { $0.count > $1.count }.prefix(3)
        let remoteText = remotes.map { "\($0.address):\($0.port) (\($0.count))" }.joined(separator: ", ")
        var evidence = [Evidence(source: "ebpf",
                                 description: "TCP: \(refused) refused connects, \(resets) resets, \(errors) socket errors, \(retransmits) retransmits; remotes \(remoteText)",
                                 observedAt: at, value: weighted, unit: "failures")]
        if restarts > 0 {
            evidence.append(Evidence(source: "kubernetes", description: "\(restarts) restart\(restarts == 1 ? "" : "s") in the window",
                                     observedAt: at, value: Double(restarts), unit: "restarts"))
        }
        if probes > 0 {
            evidence.append(Evidence(source: "kubernetes",
                                     description: "\(probes) \(s.lastProbe ?? "probe") probe failure\(probes == 1 ? "" : "s"): \(s.lastProbeMessage ?? "")",
                                     observedAt: at, value: Double(probes), unit: "failures"))
        }
        let ns = pod.namespace
        var commands: [String] = []
        for r in remotes {
            commands.append("kubectl get endpointslices -A -o wide | grep -w \(r.address)  # who serves \(r.address)")
            commands.append("kubectl get svc -A -o wide | grep -w \(r.address)")
        }
        commands.append("kubectl get networkpolicy -n \(ns)")
        commands.append("kubectl describe networkpolicy -n \(ns)")
        if let r = remotes.first {
            commands.append("kubectl run tapio-nettest-\(pod.name.prefix(20)) --rm -i --restart=Never -n \(ns) --image=busybox:1.36 -- nc -vz -w 3 \(r.address) \(r.port)")
        }
        let spec = InsightSpec(
            type: .networkIssue, severity: restarts > 0 ? .critical : .warning,
            title: "\(s.subject.displayName): TCP failures to \(remotes.first.map { "\($0.address):\($0.port)" } ?? "remote peers") "
                + "with \(restarts > 0 ? "restarts" : "probe failures")",
            summary: "\(Int.rounding(clamping: weighted)) TCP failures in the window (\(refused) refused, \(resets) reset) to \(remoteText), "
                + "while the pod had \(restarts) restart\(restarts == 1 ? "" : "s") and \(probes) probe failure\(probes == 1 ? "" : "s").",
            subject: s.subject.resourceRef, resources: resources(s), evidence: evidence,
            remediation: Remediation(actions: [RemediationAction(
                name: "CheckConnectivity", title: "Check the service it talks to",
                description: "Is anything serving those addresses, does a NetworkPolicy block the traffic, and can a fresh pod in the namespace connect?",
                risk: .low, impact: "Read-only, plus one short-lived test pod.", commands: commands)]))
        return (InsightIdentity(type: .networkIssue, subject: s.subject), spec)
    }
}
