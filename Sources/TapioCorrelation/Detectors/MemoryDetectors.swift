import DequeModule
import TapioModel

/// OOM prediction, memory leak and unbounded growth share one analysis of the memory series per evaluation.
extension CorrelationEngine {
    /// What the OOM prediction concluded: a prediction, a reason an active one is over (memory fell back, stopped,
    /// a known cycle), a curve that levels off below the limit (over once that reading has held, see
    /// ``Forecast/levelsOffHoldSeconds``), or nothing to say.
    enum OOMJudgement {
        case predict(InsightIdentity, InsightSpec)
        case settle(String)
        case levelsOff(String)
        case none
    }

    /// The memory detectors' findings, the reason to settle an active OOM prediction now, if there is one, and the
    /// reading that the curve levels off below the limit, if that is what this evaluation saw.
    func memoryDetectors(_ i: Int, now: UInt64)
        -> (found: [(InsightIdentity, InsightSpec)], settle: String?, levelsOff: String?) {
        let s = states[i]
        var series = s.memory
        // A subject that stopped reporting: its buckets age out here, so stale growth is not re-detected forever.
        let oldest = Int64((now > windowNanos ? now - windowNanos : 0) / bucketNanos)
        while let f = series.buckets.first, f.index < oldest { series.buckets.removeFirst() }
        guard let a = MemoryAnalysis.analyze(series, now: now) else { return ([], nil, nil) }
        var out: [(InsightIdentity, InsightSpec)] = []
        var settle: String?
        var levelsOff: String?
        var judgement = oomPrediction(s, a, now: now)
        // A climb that began inside the window (a process started in a cgroup that was idle, a leak after a
        // plateau) is judged on its own too: the flat part before it would otherwise hide it until it has left the
        // window's older half, far too late for a fast leak.
        if case .none = judgement, let climb = recentClimb(series, limit: s.effectiveLimit) {
            var sub = series
            sub.buckets = climb
            if let b = MemoryAnalysis.analyze(sub, now: now), case .predict(let id, let spec) = oomPrediction(s, b, now: now) {
                judgement = .predict(id, spec)
            }
        }
        switch judgement {
        case .predict(let id, let spec): out.append((id, spec))
        case .settle(let why): settle = why
        case .levelsOff(let why): levelsOff = why
        case .none: break
        }
        if let l = memoryLeak(s, a, now: now) {
            out.append(l)
        } else if s.effectiveLimit == nil, let u = unboundedGrowth(s, a, now: now) {
            out.append(u)
        }
        return (out, settle, levelsOff)
    }

    /// Growth a person should hear about: positive, sustained, statistically clear (z ≥ 4: detectors re-test every
    /// bucket, so a looser bar would let noise through sooner or later), and large against the noise (the rise
    /// over the fitted span is at least three robust residual σ).
    ///
    /// And seen for long enough: at least 90 s (or 30 % of the window), since the first ramp of a slow GC sawtooth
    /// looks exactly like a leak until the first reclaim; in sawtooth mode, at least four cycle peaks and rising
    /// troughs.
    func growing(_ a: MemoryAnalysis) -> Bool {
        let minSpan = max(90, 0.3 * Double(windowNanos) / 1e9)
        return a.fit.slope > 0 && a.sustained && a.fit.zScore >= 4 && a.fit.slope * a.fit.span >= 3 * a.fit.sigma
            && a.fit.span >= minSpan
            // Under a sawtooth, growth means the troughs after reclaim climb too, not just the peaks.
            && (!a.sawtooth || (a.fit.count >= 4 && a.floorSlope > 0 && a.floorZ >= 3))
    }

    func fitSentence(_ a: MemoryAnalysis) -> String {
        lineSentence(a.fit, points: a.fit.count, of: a.sawtooth ? "GC-cycle peaks" : "points")
    }

    func lineSentence(_ line: TrendFit, points: Int, of what: String) -> String {
        "R² \((line.rSquared * 100).rounded() / 100) over \(Formatting.duration(seconds: line.span)), \(points) \(what)"
    }

    func rate(_ bytesPerSecond: Double) -> String {
        bytesPerSecond >= 1024 * 1024 / 60 ? "\(Formatting.bytes(bytesPerSecond * 60))/min"
            : "\(Formatting.bytes(bytesPerSecond * 3600))/h"
    }

    // MARK: Leak

    /// Growth above the policy's threshold held across (most of) the window, with the floor rising too: what
    /// reclaim or GC frees does not bring memory back.
    func memoryLeak(_ s: SubjectState, _ a: MemoryAnalysis, now: UInt64) -> (InsightIdentity, InsightSpec)? {
        let threshold = config.leakThresholdBytesPerHour / 3600
        let window = Double(windowNanos) / 1e9
        guard growing(a), a.fit.slope >= threshold, a.fit.span >= 0.75 * window,
              a.floorSlope >= 0.5 * threshold, a.floorZ >= 3 else { return nil }
        let at = Formatting.rfc3339(nanos: now)
        var evidence = [
            Evidence(source: s.hasCgroupSeries ? "cgroup" : "ebpf",
                     description: "Grew \(rate(a.fit.slope)) for \(Formatting.duration(seconds: a.fit.span)) (\(fitSentence(a)))",
                     observedAt: at, value: a.bytesPerHour, unit: "bytes/h"),
            Evidence(source: s.hasCgroupSeries ? "cgroup" : "ebpf",
                     description: a.sawtooth ? "Memory after each of \(a.cycles) reclaim cycles is higher than before"
                         : "The floor after reclaim rises \(rate(max(0, a.floorSlope)))",
                     observedAt: at, value: a.floorSlope * 3600, unit: "bytes/h"),
        ]
        let limitText: String
        if let l = s.effectiveLimit {
            limitText = "its \(Formatting.bytes(l)) limit"
        } else {
            limitText = "no memory limit, so it will take memory from its neighbours"
            evidence.append(Evidence(source: "kubernetes", description: "No memory limit", observedAt: at))
        }
        var actions = [RemediationAdvice.memoryDiagnostics(subject: s.subject, previous: s.restartCount > 0)]
        if case .podContainer(let p, _) = s.subject, let o = s.owner, RemediationAdvice.patchableKinds.contains(o.kind) {
            actions.append(RemediationAction(
                name: "RolloutRestart", title: "Restart \(o.kind) \(o.name) to reclaim the leaked memory",
                description: "A stopgap until the leak is fixed: new pods start from a clean heap.", risk: .low,
                impact: "Pods are replaced one by one following the rollout strategy.",
                commands: ["kubectl rollout restart \(o.kind.lowercased())/\(o.name) -n \(p.namespace)"]))
        }
        if s.effectiveLimit == nil, let inc = RemediationAdvice.increaseLimit(
            subject: s.subject, owner: s.owner, current: nil, request: s.memoryRequest, peak: a.robustPeak,
            ceiling: config.memoryCeilingBytes, reason: "Without a limit a leak affects the whole node.") {
            var set = inc
            set.name = "SetMemoryLimit"
            set.title = set.title.replacingOccurrences(of: "Raise", with: "Set")
            actions.append(set)
        }
        let spec = InsightSpec(
            type: .memoryLeak, severity: .warning,
            title: "Memory leak in \(s.subject.displayName): \(rate(a.fit.slope))",
            summary: "Memory has grown \(rate(a.fit.slope)) for \(Formatting.duration(seconds: a.fit.span)) "
                + "(threshold \(Formatting.bytes(config.leakThresholdBytesPerHour))/h) and reclaim does not bring it "
                + "back; now \(Formatting.bytes(a.lastValue)), \(limitText).",
            subject: s.subject.resourceRef, resources: resources(s), evidence: evidence,
            remediation: Remediation(actions: actions))
        return (InsightIdentity(type: .memoryLeak, subject: s.subject), spec)
    }

    // MARK: Unbounded growth

    /// No limit and clear sustained growth (not yet a window-long leak): nothing will stop it but the node.
    func unboundedGrowth(_ s: SubjectState, _ a: MemoryAnalysis, now: UInt64) -> (InsightIdentity, InsightSpec)? {
        let threshold = config.leakThresholdBytesPerHour / 3600
        guard growing(a), a.fit.slope >= threshold else { return nil }
        let at = Formatting.rfc3339(nanos: now)
        var actions = [RemediationAdvice.memoryDiagnostics(subject: s.subject, previous: false)]
        if var set = RemediationAdvice.increaseLimit(
            subject: s.subject, owner: s.owner, current: nil, request: s.memoryRequest, peak: a.robustPeak,
            ceiling: config.memoryCeilingBytes, reason: "A limit turns a runaway into a contained restart.") {
            set.name = "SetMemoryLimit"
            set.title = set.title.replacingOccurrences(of: "Raise", with: "Set")
            actions.append(set)
        }
        let spec = InsightSpec(
            type: .unboundedMemoryGrowth, severity: .info,
            title: "\(s.subject.displayName) has no memory limit and keeps growing",
            summary: "Memory grows \(rate(a.fit.slope)) (now \(Formatting.bytes(a.lastValue))) with no limit: no "
                + "OOM can be predicted, and the node, not the container, will run out.",
            subject: s.subject.resourceRef, resources: resources(s),
            evidence: [Evidence(source: s.hasCgroupSeries ? "cgroup" : "ebpf",
                                description: "Growing \(rate(a.fit.slope)) (\(fitSentence(a))), no memory limit",
                                observedAt: at, value: a.fit.slope, unit: "bytes/s")],
            remediation: Remediation(actions: actions))
        return (InsightIdentity(type: .unboundedMemoryGrowth, subject: s.subject), spec)
    }

    /// The subject plus its owner and node, as the Insight's `resources`.
    func resources(_ s: SubjectState) -> [ResourceRef] {
        var r = [s.subject.resourceRef]
        if let o = s.owner, let ns = s.subject.pod?.namespace { r.append(ResourceRef(kind: o.kind, namespace: ns, name: o.name)) }
        if let n = s.node { r.append(ResourceRef(kind: "Node", name: n)) }
        return r
    }
}

import Foundation
