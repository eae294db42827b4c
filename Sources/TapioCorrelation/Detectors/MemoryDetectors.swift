import DequeModule
import TapioModel

/// OOM prediction, memory leak and unbounded growth share one analysis of the memory series per evaluation.
extension CorrelationEngine {
    /// What the OOM prediction concluded: a prediction, a reason an active one is over (memory fell back, stopped,
    /// a known cycle), a curve that levels off below the limit (over once that reading has held, see
    /// ``Forecast/levelsOffHoldSeconds``), or nothing to say.
    enum OOMJudgement {
        /// `doubted`: the curve's time-to-OOM was open (``CurveDoubt``).
        case predict(InsightIdentity, InsightSpec, doubted: Bool)
        case settle(String)
        case levelsOff(String)
        case none
    }

    /// The memory detectors' findings, the reason to settle an active OOM prediction now, if there is one, the
    /// reading that the curve levels off below the limit, if that is what this evaluation saw, and whether it read
    /// growth speeding up (held for the next evaluation: ``Forecast/speedUpHoldSeconds``).
    func memoryDetectors(_ i: Int, now: UInt64)
        -> (found: [(InsightIdentity, InsightSpec)], settle: String?, levelsOff: String?, speedsUp: Bool, doubted: Bool) {
        let s = states[i]
        var series = s.memory
        // A subject that stopped reporting: its buckets age out here, so stale growth is not re-detected forever.
        let oldest = Int64((now > windowNanos ? now - windowNanos : 0) / bucketNanos)
        while let f = series.buckets.first, f.index < oldest { series.buckets.removeFirst() }
        guard var a = MemoryAnalysis.analyze(series, now: now) else { return ([], nil, nil, false, false) }
        let held = SubjectState.holds(since: s.speedUpAt, for: Forecast.speedUpHoldSeconds, now: now)
        a.speedUpHeld = held
        var speedsUp = a.speedsUp
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
            if var b = MemoryAnalysis.analyze(sub, now: now) {
                b.speedUpHeld = held
                if case .predict(let id, let spec, let doubted) = oomPrediction(s, b, now: now) {
                    judgement = .predict(id, spec, doubted: doubted)
                    speedsUp = b.speedsUp
                }
            }
        }
        var doubted = false
        switch judgement {
        case .predict(let id, let spec, let d): out.append((id, spec)); doubted = d
        case .settle(let why): settle = why
        case .levelsOff(let why): levelsOff = why
        case .none: break
        }
        // A ramp that came back down from about this height before is that cycle again: neither a leak nor growth
        // that only the node will stop. (Read only for a finding: most evaluations have none.)
        if let found = memoryLeak(s, a, now: now) ?? (s.effectiveLimit == nil ? unboundedGrowth(s, a, now: now) : nil),
           !climbsAgain(s, a) {
            out.append(found)
        }
        return (out, settle, levelsOff, speedsUp, doubted)
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
    /// reclaim or GC frees does not bring memory back. And growth that has lasted: a quarter of an hour of it
    /// (``lastingGrowth(_:now:threshold:)``) when the window is shorter. (Not called for a cycle's ramp again:
    /// ``climbsAgain(_:_:)``.)
    func memoryLeak(_ s: SubjectState, _ a: MemoryAnalysis, now: UInt64) -> (InsightIdentity, InsightSpec)? {
        let threshold = config.leakThresholdBytesPerHour / 3600
        let window = Double(windowNanos) / 1e9
        guard growing(a), a.fit.slope >= threshold, a.fit.span >= 0.75 * window,
              a.floorSlope >= 0.5 * threshold, a.floorZ >= 3 else { return nil }
        var lasted: LastingGrowth?
        if window < Self.leakSeconds {
            guard let l = lastingGrowth(s, now: now, threshold: threshold) else { return nil }
            lasted = l
        }
        let at = Formatting.rfc3339(nanos: now)
        let source = s.hasCgroupSeries ? "cgroup" : "ebpf"
        var evidence = [
            Evidence(source: source,
                     description: "Grew \(rate(a.fit.slope)) for \(Formatting.duration(seconds: a.fit.span)) (\(fitSentence(a)))",
                     observedAt: at, value: a.bytesPerHour, unit: "bytes/h"),
            Evidence(source: source,
                     description: a.sawtooth ? "Memory after each of \(a.cycles) reclaim cycles is higher than before"
                         : "The floor after reclaim rises \(rate(max(0, a.floorSlope)))",
                     observedAt: at, value: a.floorSlope * 3600, unit: "bytes/h"),
        ]
        if let lasted {
            evidence.append(Evidence(
                source: source,
                description: "Has grown for \(Formatting.duration(seconds: lasted.span)): each minute's low point rises "
                    + "\(rate(lasted.floors)) and its peak \(rate(lasted.peaks)) (\(lasted.count) minutes)",
                observedAt: at, value: lasted.floors * 3600, unit: "bytes/h"))
        }
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

    /// Whether memory is climbing back to about where a ramp longer than the window peaked before it came back down
    /// (a batch phase, a cache rebuilt on a schedule): within 5 % of the limit (without one, of that peak) of the
    /// highest earlier peak, as the OOM prediction's cycle reading allows. Above it is new ground, and a leak across
    /// cycles gets there. Drops count as the OOM prediction counts them (``CycleReading/cycles(in:limit:)``; not a
    /// kill's); a container restarted before it climbs higher than last time reads as a cycle too, and so does a new
    /// pod's climb to where the workload's earlier pods came back down from. A sawtooth inside the window is judged
    /// by its floors instead.
    func climbsAgain(_ s: SubjectState, _ a: MemoryAnalysis) -> Bool {
        guard !a.sawtooth else { return false }
        // (Not `.map(Double.init)`: for a UInt64 that picks `init(bitPattern:)`.)
        let limit = s.effectiveLimit.map { Double($0) }
        // Its own drops, or with none, those of the workload's earlier pods (``WorkloadCycles``).
        guard let highest = CycleReading.cycles(in: s.history, limit: limit ?? 0).map(\.peak).max()
            ?? workloadDrop(s)?.peak else { return false }
        let running = max(Double(a.robustPeak), a.shape.level)
        return running <= highest + CycleReading.limitShare * (limit ?? highest)
    }

    /// How long growth must have lasted before it is called a leak when the window is shorter: a quarter of an hour.
    /// A leak is growth that goes on, and over five minutes a process warming up grows as steadily as one: on a real
    /// node (the real-cluster tier) a fresh control plane's etcd, kube-apiserver, containerd and kubelet, and a new
    /// pod filling its cache to 140 MiB, were each called leaking within minutes of being watched; recorded on this
    /// machine's realk8s cluster under the API test suite, five of its processes nine times (kube-controller-manager at
    /// 15 Mi/h for growing 133 → 134 MiB in five minutes;
    /// `Tests/Scenarios/unbounded-growth-control-plane-recorded.jsonl`). Until then a growing subject without a limit
    /// is `UnboundedMemoryGrowth` (Info), and one that will reach its limit is an `OOMPrediction`: neither waits.
    static let leakSeconds: Double = 15 * 60

    /// How fast the later half of that quarter hour must grow against the earlier half (minute peaks, Theil–Sen):
    /// a process warming up slows down as it fills, a leak does not. An approach to a level with time constant τ
    /// gives e^(−7.5 min/τ): 0.47 for τ = 10 minutes, 0.61 for 15. On the labelled corpus the straight, staircase, GC
    /// and slow leaks stayed at 0.60–1.53 over every evaluation the rest of the rule passed, the saturating curves
    /// at 0.20–0.60; a noisy slow leak blocked for an evaluation is called one at the next.
    static let leakHalves = 0.6

    struct LastingGrowth {
        /// Bytes/s of the minutes' peaks and of their low points.
        var peaks: Double
        var floors: Double
        var span: Double
        var count: Int
    }

    /// Growth over the last ``leakSeconds`` of the long history, judged as the window judges a leak: each minute's
    /// peak rising at least `threshold` (bytes/s), four standard errors clear, and its low point at least half that,
    /// three errors clear (errors widened for correlated minutes); both halves of the quarter hour rising, each at
    /// least 0.3 of the whole rate (growth that started halfway has not lasted), and not slowing down
    /// (``leakHalves``). On the recorded control plane the peaks' bar is what held back kube-controller-manager's
    /// steps under the tier's load (120 → 125 MiB, z 3.3; the corpus's leaks at least 8.8). The subject must have been
    /// watched that long; minutes without samples are left out (an idle process is sampled only when it runs), at
    /// least two thirds must hold samples, from the first or second of them to the last. Nil when any of it fails.
    func lastingGrowth(_ s: SubjectState, now: UInt64, threshold: Double) -> LastingGrowth? {
        let want = Int(Self.leakSeconds / 60)
        guard now >= s.history.firstAt, Double(now - s.history.firstAt) / 1e9 >= Self.leakSeconds,
              case let m = s.history.lastMinutes(want, now: now), m.ends.count * 3 >= want * 2,
              let first = m.ends.first, let last = m.ends.last, last - first + 60 >= Self.leakSeconds - 60,
              let peaks = RobustTrend.theilSen(t: m.ends, y: m.max, correlated: true),
              let floors = RobustTrend.theilSen(t: m.ends, y: m.min, correlated: true),
              peaks.slope >= threshold, peaks.slope >= 4 * peaks.slopeStdError * peaks.autocorrelation,
              floors.slope >= 0.5 * threshold,
              floors.slope >= 3 * floors.slopeStdError * floors.autocorrelation else { return nil }
        let h = m.ends.count / 2
        guard let older = RobustTrend.theilSen(t: Array(m.ends[..<h]), y: Array(m.max[..<h])),
              let recent = RobustTrend.theilSen(t: Array(m.ends[h...]), y: Array(m.max[h...])),
              min(older.slope, recent.slope) >= 0.3 * peaks.slope,
              recent.slope >= Self.leakHalves * older.slope else { return nil }
        return LastingGrowth(peaks: peaks.slope, floors: floors.slope, span: last - first + 60, count: m.ends.count)
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
