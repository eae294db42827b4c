import Foundation
import TapioModel

/// An OOM prediction's Insight: the evidence (where memory is, how it grows, which curve and why), the remediation
/// and the prediction's figures, from the growth as read (``CorrelationEngine/GrowthReading``).
extension CorrelationEngine {
    func predictionSpec(_ s: SubjectState, _ a: MemoryAnalysis, limit: UInt64, now: UInt64, reading r: GrowthReading,
                        timeToOOM t: Double, probability shownProbability: Double, doubt: CurveDoubt?,
                        heldAtInfo: Bool) -> InsightSpec {
        let L = Double(limit)
        // How well the line the prediction rests on fits, from how many points, over how much of the window.
        let basis = r.carrier.map { (fit: $0.fit, points: $0.points) } ?? (fit: a.fit, points: a.fit.count)
        var confidence = basis.fit.rSquared.squareRoot()
            * (1 - exp(-Double(basis.points) / 6))
            * min(1, basis.fit.span / (Double(windowNanos) / 1e9)).squareRoot()
        let ooms = s.oomIncidents.count
        if ooms > 0 { confidence += (1 - confidence) * 0.5 }
        confidence = (min(0.99, max(0.01, confidence)) * 100).rounded() / 100
        let standing = s.active.first { $0.identity.type == .oomPrediction }?.spec.severity
        var severity = Self.predictionSeverity(probability: shownProbability, timeToOOM: t, standing: standing)
        // While the curve is open (``CurveDoubt``), a prediction not yet past Info stays there unless the sooner
        // reading leaves five minutes or less: its time is not one to act by.
        let held = heldAtInfo && severity > .info && (standing ?? .info) <= .info
            && (doubt?.time ?? t) > Forecast.curveDoubtUrgentSeconds
        if held { severity = .info }
        let ttoText = Formatting.duration(seconds: t)
        let expected = now.adding(saturating: UInt64.rounding(clamping: t * 1e9))
        let at = Formatting.rfc3339(nanos: now)
        let source = s.hasCgroupSeries ? "cgroup" : "ebpf"
        var evidence = [
            Evidence(source: source,
                     description: "Working set \(Formatting.bytes(a.lastValue)) of a \(Formatting.bytes(limit)) limit",
                     observedAt: at, value: Double(a.lastValue), unit: "bytes"),
            Evidence(source: source,
                     description: "Growing \(rate(r.slope)) (\(r.carrier.map { lineSentence($0.fit, points: $0.points, of: $0.of) } ?? fitSentence(a)); growing for \(Formatting.duration(seconds: r.growthSpan)))",
                     observedAt: at, value: r.slope, unit: "bytes/s"),
        ]
        if let g = r.compounding {
            let ratio = g.advantage < 100 ? "\(Int.rounding(clamping: g.advantage))" : "over 100"
            var text = "Growth compounds: the rate doubles every \(Formatting.duration(seconds: g.doubling)) (over the "
                + "last \(g.count) minutes this curve fits \(ratio) times better than a steady speed-up"
            if let steady = r.steadyTime, steady > t {
                text += ", which would reach the limit later, in \(Formatting.duration(seconds: steady))"
            }
            evidence.append(Evidence(source: source, description: text + ")", observedAt: at, value: g.doubling,
                                     unit: "seconds"))
        } else if let k = r.knee {
            evidence.append(Evidence(
                source: source,
                description: "Steady growth since it began \(Formatting.duration(seconds: -k.knee)) ago after a flat "
                    + "stretch: a straight line from there fits better than a speed-up",
                observedAt: at, value: -k.knee, unit: "seconds"))
        } else if r.accel > 0 {
            var text = "Growth is speeding up: the recent half of the window grows \(rate(a.recent?.slope ?? r.slope)), the older \(rate(a.older?.slope ?? r.slope))"
            // The same points fit a compounding curve as well: say how much sooner the limit comes on it, when that is
            // a tenth or more sooner (closer than that the two readings say the same).
            if let c = doubt, let g = c.rival {
                text += "; over the last \(g.count) minutes a compounding curve, the rate doubling every "
                    + "\(Formatting.duration(seconds: c.doubling)), fits \(g.advantage >= 1 ? "about" : "nearly") as well, "
                    + "and on it the limit comes sooner, in ~\(Formatting.duration(seconds: c.time))"
            } else if let c = doubt {
                text += "; if the rate keeps doubling every \(Formatting.duration(seconds: c.doubling)) as it does now, "
                    + "the limit comes sooner, in ~\(Formatting.duration(seconds: c.time))"
            }
            evidence.append(Evidence(source: source, description: text, observedAt: at, value: r.accel, unit: "bytes/s²"))
        } else if let g = r.logarithmic {
            evidence.append(Evidence(
                source: source,
                description: "Growth slows but does not level off: memory has risen about \(Formatting.bytes(g.perDoubling)) "
                    + "each time the climb's age doubled (over the last \(g.count) minutes this curve fits clearly better "
                    + "than one levelling off)",
                observedAt: at, value: g.perDoubling, unit: "bytes"))
        } else if r.accel < 0, let top = r.asymptote {
            evidence.append(Evidence(source: source, description: "Growth is slowing: on this curve it levels off at ~\(Formatting.bytes(top)), above the \(Formatting.bytes(limit)) limit",
                                     observedAt: at, value: top, unit: "bytes"))
        }
        for n in r.notes { evidence.append(Evidence(source: source, description: n, observedAt: at)) }
        if held {
            // Said, so that an Info at a high probability is not read as a quiet one.
            let which = doubt.map { "the limit comes in \(Formatting.duration(seconds: t)) on a steady speed-up, in "
                + "~\(Formatting.duration(seconds: $0.time)) if the growth compounds" }
                ?? "the curve was in doubt within the last \(Formatting.duration(seconds: Forecast.curveDoubtHoldSeconds))"
            evidence.append(Evidence(
                source: source,
                description: "Held at Info until the curve is known: \(which); a Warning waits until the climb shows "
                    + "which, or until \(Formatting.duration(seconds: Forecast.curveDoubtUrgentSeconds)) are left",
                observedAt: at, value: doubt?.time ?? t, unit: "seconds"))
        }
        if ooms > 0 {
            evidence.append(Evidence(source: s.oomKilledByStatus ? "kubernetes" : "ebpf",
                                     description: "OOM-killed \(ooms) time\(ooms == 1 ? "" : "s") in the last \(Formatting.duration(seconds: Double(windowNanos) / 1e9))",
                                     observedAt: at, value: Double(ooms), unit: "count"))
        }
        var actions: [RemediationAction] = []
        if let inc = RemediationAdvice.increaseLimit(
            subject: s.subject, owner: s.owner, current: limit, request: s.memoryRequest,
            // The container is heading for its limit: like VPA after an OOM, size from the limit it will reach.
            peak: max(a.robustPeak, limit), ceiling: config.memoryCeilingBytes,
            reason: "At the current rate the limit is reached in \(ttoText).") {
            actions.append(inc)
        }
        actions.append(RemediationAdvice.memoryDiagnostics(subject: s.subject, previous: ooms > 0 || s.restartCount > 0))
        let spec = InsightSpec(
            type: .oomPrediction, severity: severity,
            title: "OOM kill predicted in \(ttoText) for \(s.subject.displayName)",
            summary: "Memory grows \(rate(r.slope)) toward its \(Formatting.bytes(limit)) limit "
                + "(now \(Formatting.bytes(a.lastValue)), \(Formatting.percent(Double(a.lastValue) / L)) of it); "
                + "OOM kill in about \(ttoText), probability \(Formatting.percent(shownProbability)), "
                + "confidence \(Formatting.percent(confidence)).",
            subject: s.subject.resourceRef, resources: resources(s), evidence: evidence,
            prediction: Prediction(kind: "OOMKill", probability: shownProbability,
                                   confidence: confidence, timeToEvent: ttoText,
                                   expectedAt: Formatting.rfc3339(nanos: expected)),
            remediation: Remediation(actions: actions))
        return spec
    }
}
