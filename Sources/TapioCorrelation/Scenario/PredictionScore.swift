import Foundation
import TapioModel

/// Scores the engine's OOM predictions on labelled scenarios (a header with `truth`; see Tests/Scenarios/FORMAT.md
/// and Tests/Scenarios/quality). What a person sees is what is scored: the probability, severity and time-to-OOM of
/// the prediction as last emitted (new, escalated or updated), not values the engine computed but did not say.
///
/// Definitions (the README's performance section prints the table):
/// - a scenario is *warned* when an OOMPrediction of severity Warning or Critical was visible before its kill;
///   *lead time* is the kill minus the first such instant; the *time-to-OOM error* is (predicted − true) / true at it;
/// - *recall*: warned OOM scenarios over OOM scenarios; a *false positive*: a scenario that never OOMs but was warned;
/// - *Brier score*: every 10 s of virtual time while a prediction is visible is a forecast, scored
///   (probability − outcome)², where the outcome is 1 when the kill comes within the prediction horizon of that
///   instant; the score is the mean over all forecasts (the standard definition). The mean of the scenarios' own
///   scores is printed too: there each scenario weighs the same however long its prediction stayed up. Silence is
///   scored by recall and lead time, not here: a scenario without a prediction adds no forecast.
public enum PredictionScore {
    /// Seconds between scoring instants for the Brier score.
    public static let brierStep: Double = 10

    public struct ScenarioResult: Sendable {
        public var name: String
        public var shape: String
        /// Seconds from the start; nil: never OOM-killed.
        public var oomAt: Double?
        /// Seconds from the start of the first prediction of any severity, and of the first Warning or Critical
        /// (both only before the kill).
        public var firstPrediction: Double?
        public var firstWarning: Double?
        public var leadTime: Double? { oomAt.flatMap { o in firstWarning.map { o - $0 } } }
        /// (predicted − true) / true time-to-OOM at the first Warning.
        public var tteError: Double?
        public var maxProbability: Double = 0
        public var maxSeverity: Severity?
        /// How many separate predictions were raised before the kill (or the end): each is a new Insight, so a new
        /// alert. A prediction that is settled and raised again is noise to the people paged by it.
        public var raised = 0
        /// Mean squared error of the visible probability (nil: no prediction was visible), and over how many
        /// instants.
        public var brier: Double?
        public var forecasts = 0
        /// Each scored forecast: the probability and whether the kill came within the horizon.
        public var outcomes: [(Double, Bool)] = []
        /// The time-to-OOM error over the prediction's life: at each scoring instant with a Warning or Critical
        /// prediction visible and a minute or more left before the kill, (predicted − true) / true remaining time,
        /// the predicted one being the visible prediction's time-to-OOM counted from the instant it was said.
        public var lifeErrors: [Double] = []
        /// The median |error| of ``lifeErrors``.
        public var medianLifeError: Double? { PredictionScore.quantile(lifeErrors.map(abs), 0.5) }
        public var isFalsePositive: Bool { oomAt == nil && firstWarning != nil }
    }

    public struct Summary: Sendable {
        public var results: [ScenarioResult]
        public var ooms: Int { results.filter { $0.oomAt != nil }.count }
        public var warned: Int { results.filter { $0.oomAt != nil && $0.firstWarning != nil }.count }
        public var recall: Double { ooms > 0 ? Double(warned) / Double(ooms) : 1 }
        public var falsePositives: Int { results.filter(\.isFalsePositive).count }
        /// Never-OOM scenarios that got only an Info prediction.
        public var infoOnly: Int { results.filter { $0.oomAt == nil && $0.firstWarning == nil && $0.firstPrediction != nil }.count }
        public var tteErrors: [Double] { results.compactMap(\.tteError).map(abs).sorted() }
        public var medianTTEError: Double? {
            let e = tteErrors
            guard !e.isEmpty else { return nil }
            return e.count % 2 == 1 ? e[e.count / 2] : (e[e.count / 2 - 1] + e[e.count / 2]) / 2
        }
        public var worstTTEError: Double? { tteErrors.last }
        /// The Brier score over every forecast (each instant a prediction was visible counts once).
        public var brier: Double? {
            let n = results.reduce(0) { $0 + $1.forecasts }
            guard n > 0 else { return nil }
            return results.reduce(0.0) { $0 + ($1.brier ?? 0) * Double($1.forecasts) } / Double(n)
        }
        /// The mean of the scenarios' Brier scores (each scenario with a prediction weighs the same).
        public var brierPerScenario: Double? {
            let b = results.compactMap(\.brier)
            return b.isEmpty ? nil : b.reduce(0, +) / Double(b.count)
        }
        /// Forecasts by probability (tenths): how many, and how many came true (the kill within the horizon).
        public var reliability: [(bin: Int, forecasts: Int, cameTrue: Int)] {
            tenths.enumerated().filter { $0.element.forecasts > 0 }.map { ($0.offset, $0.element.forecasts, $0.element.cameTrue) }
        }
        /// Per tenth of probability: forecasts, how many came true, and the sum of their probabilities.
        var tenths: [(forecasts: Int, cameTrue: Int, probabilitySum: Double)] {
            var bins = [(forecasts: Int, cameTrue: Int, probabilitySum: Double)](repeating: (0, 0, 0), count: 10)
            for r in results {
                for (p, o) in r.outcomes {
                    let b = min(9, max(0, Int(p * 10)))
                    bins[b].forecasts += 1; bins[b].cameTrue += o ? 1 : 0; bins[b].probabilitySum += p
                }
            }
            return bins
        }
        /// The Brier score's decomposition over the probability's tenths (Murphy 1973): *reliability* is the
        /// forecast-weighted squared gap between each tenth's mean probability and the share of its forecasts that
        /// came true (0: perfectly calibrated; what calibration alone could remove), *resolution* how far those
        /// shares spread from the overall share (what telling cases apart earns), *uncertainty* the overall share
        /// times its complement (the score of always saying the base rate). Brier = reliability − resolution +
        /// uncertainty + `withinBins`: the remainder, from the probabilities' spread inside each tenth and its
        /// covariance with the outcomes (Stephenson et al. 2008); it can be negative, and is a few thousandths on
        /// the corpus. Nil without forecasts.
        public var decomposition: (reliability: Double, resolution: Double, uncertainty: Double, withinBins: Double)? {
            let bins = tenths
            let total = bins.reduce(0) { $0 + $1.forecasts }
            guard total > 0 else { return nil }
            let base = Double(bins.reduce(0) { $0 + $1.cameTrue }) / Double(total)
            var rel = 0.0, res = 0.0
            for bin in bins where bin.forecasts > 0 {
                let nb = Double(bin.forecasts), o = Double(bin.cameTrue) / nb, p = bin.probabilitySum / nb
                rel += nb * (p - o) * (p - o)
                res += nb * (o - base) * (o - base)
            }
            rel /= Double(total); res /= Double(total)
            let unc = base * (1 - base)
            return (rel, res, unc, (brier ?? 0) - (rel - res + unc))
        }
        /// The median and 90th percentile of |time-to-OOM error| over the predictions' life (``ScenarioResult/lifeErrors``)
        /// of the scenarios with the given shapes (all with nil).
        public func lifeTTEError(shapes: Set<String>? = nil) -> (median: Double, p90: Double)? {
            let e = results.filter { shapes?.contains($0.shape) ?? true }.flatMap(\.lifeErrors).map(abs)
            guard let m = PredictionScore.quantile(e, 0.5), let p = PredictionScore.quantile(e, 0.9) else { return nil }
            return (m, p)
        }
        /// The highest probability said about a scenario that never OOMs.
        public var maxFalseProbability: Double { results.filter { $0.oomAt == nil }.map(\.maxProbability).max() ?? 0 }
        /// Worst |TTE error| at the first Warning over the given shapes.
        public func worstTTEError(shapes: Set<String>) -> Double? {
            results.filter { shapes.contains($0.shape) }.compactMap(\.tteError).map(abs).max()
        }
    }

    /// A scenario of the scored directory that cannot be read.
    public struct FileError: Error, CustomStringConvertible {
        public var file: String
        public var error: ScenarioError
        public var description: String { "\(file): \(error)" }
    }

    /// One emitted OOMPrediction update, as seen.
    struct Seen {
        var at: UInt64
        var resolved: Bool
        /// A new prediction (a new Insight, so a new alert for whoever alerts on them).
        var raised: Bool
        var probability: Double
        var severity: Severity
        var tte: Double?
    }

    /// Replays a labelled scenario file and scores it; nil for a scenario without `truth`.
    public static func score(fileURL: URL) throws -> ScenarioResult? {
        let file = try FileHandle(forReadingFrom: fileURL)
        defer { try? file.close() }
        var replay = ScenarioReplayer()
        var seen: [Seen] = []
        let collect: (InsightUpdate) -> Void = { u in
            guard u.identity.type == .oomPrediction else { return }
            seen.append(Seen(at: u.observedAt, resolved: u.change == .resolved, raised: u.change == .new,
                             probability: u.spec.prediction?.probability ?? 0, severity: u.spec.severity,
                             tte: seconds(goDuration: u.spec.prediction?.timeToEvent)))
        }
        while let chunk = try file.read(upToCount: 1 << 16), !chunk.isEmpty {
            try chunk.withUnsafeBytes { raw in try replay.feed(raw.bindMemory(to: UInt8.self), emit: collect) }
        }
        let scenario = try replay.finish(emit: collect)
        guard let truth = scenario.truth else { return nil }
        return score(scenario, truth: truth, seen: seen)
    }

    static func score(_ scenario: Scenario, truth: Scenario.Truth, seen: [Seen]) -> ScenarioResult {
        let start = scenario.startNanos
        func sec(_ t: UInt64) -> Double { t >= start ? Double(t - start) / 1e9 : 0 }
        let oomAt = truth.oomAt.map(sec)
        let end = oomAt ?? sec(scenario.endNanos)
        var r = ScenarioResult(name: scenario.name, shape: truth.shape, oomAt: oomAt)
        for s in seen where !s.resolved && sec(s.at) < end {
            let t = sec(s.at)
            if r.firstPrediction == nil { r.firstPrediction = t }
            if s.raised { r.raised += 1 }
            r.maxProbability = max(r.maxProbability, s.probability)
            r.maxSeverity = max(r.maxSeverity ?? s.severity, s.severity)
            if r.firstWarning == nil, s.severity >= .warning {
                r.firstWarning = t
                if let o = oomAt, let tte = s.tte, o - t > 0 { r.tteError = (tte - (o - t)) / (o - t) }
            }
        }
        // The Brier score over the instants a prediction was visible.
        let horizon = Double(scenario.config.predictionHorizon.nanos) / 1e9
        var sum = 0.0, n = 0
        var k = 0
        var shown: Seen?
        var t = 0.0
        while t < end {
            while k < seen.count, sec(seen[k].at) <= t {
                shown = seen[k].resolved ? nil : seen[k]
                k += 1
            }
            if let o = oomAt, o - t >= 60, let v = shown, v.severity >= .warning, let tte = v.tte {
                let predicted = sec(v.at) + tte - t
                r.lifeErrors.append((predicted - (o - t)) / (o - t))
            }
            if let p = shown?.probability {
                let outcome: Double = oomAt.map { $0 - t <= horizon ? 1 : 0 } ?? 0
                sum += (p - outcome) * (p - outcome)
                n += 1
                r.outcomes.append((p, outcome == 1))
            }
            t += brierStep
        }
        r.brier = n > 0 ? sum / Double(n) : nil
        r.forecasts = n
        return r
    }

    /// Scores every labelled `.jsonl` file in `directory` (in name order).
    public static func scoreDirectory(_ directory: URL) throws -> Summary {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".jsonl") }.sorted()
        var results: [ScenarioResult] = []
        for n in names {
            do {
                if let r = try score(fileURL: directory.appendingPathComponent(n)) { results.append(r) }
            } catch let e as ScenarioError {
                throw FileError(file: n, error: e)
            }
        }
        return Summary(results: results)
    }

    /// The q-quantile of `values` by nearest rank (the median of an even count is the lower middle value); nil when
    /// empty.
    static func quantile(_ values: [Double], _ q: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let v = values.sorted()
        return v[min(v.count - 1, max(0, Int((q * Double(v.count)).rounded(.up)) - 1))]
    }

    static func seconds(goDuration s: String?) -> Double? {
        guard let s, let d = try? GoDuration.parse(s) else { return nil }
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// The summary as a Markdown table (one row per scenario) and the overall figures.
    public static func report(_ s: Summary) -> String {
        func f(_ x: Double?, _ digits: Int = 0) -> String {
            guard let x else { return "–" }
            return String(format: "%.\(digits)f", x)
        }
        func pct(_ x: Double?) -> String { x.map { String(format: "%+.0f %%", $0 * 100) } ?? "–" }
        var lines = ["| scenario | shape | OOM at (s) | first prediction (s) | first Warning (s) | lead (s) | TTE error at first Warning | TTE error over the prediction's life (median) | max probability | max severity | predictions raised | forecasts | Brier |",
                     "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in s.results {
            lines.append("| \(r.name) | \(r.shape) | \(r.oomAt.map { f($0) } ?? "never") | \(f(r.firstPrediction)) | "
                + "\(f(r.firstWarning)) | \(f(r.leadTime)) | \(pct(r.tteError)) | "
                + "\(r.medianLifeError.map { String(format: "%.0f %%", $0 * 100) } ?? "–") | \(f(r.maxProbability, 2)) | "
                + "\(r.maxSeverity?.rawValue ?? "–") | \(r.raised) | \(r.forecasts) | \(f(r.brier, 3)) |")
        }
        let core: Set<String> = ["linear", "accelerating", "staircase"]
        lines.append("")
        lines.append("scenarios: \(s.results.count) (\(s.ooms) OOM, \(s.results.count - s.ooms) never)")
        lines.append("recall at Warning or above: \(s.warned)/\(s.ooms) (\(f(s.recall * 100)) %)")
        lines.append("false positives (Warning or above, never OOM): \(s.falsePositives); Info only: \(s.infoOnly)")
        lines.append("highest probability on a never-OOM scenario: \(f(s.maxFalseProbability, 2))")
        let oomRaises = s.results.filter { $0.oomAt != nil }.map(\.raised)
        let quietRaises = s.results.filter { $0.oomAt == nil }.map(\.raised)
        lines.append("predictions raised before the kill: \(oomRaises.reduce(0, +)) on \(oomRaises.count) OOM scenarios "
            + "(at most \(oomRaises.max() ?? 0) on one); on never-OOM scenarios \(quietRaises.reduce(0, +))")
        lines.append("TTE error at first Warning: median \(f(s.medianTTEError.map { $0 * 100 })) %, worst \(f(s.worstTTEError.map { $0 * 100 })) %; "
            + "worst for linear, accelerating, staircase: \(f(s.worstTTEError(shapes: core).map { $0 * 100 })) %")
        func life(_ shapes: Set<String>?) -> String {
            s.lifeTTEError(shapes: shapes).map { String(format: "%.0f %% / %.0f %%", $0.median * 100, $0.p90 * 100) } ?? "–"
        }
        lines.append("TTE error over the predictions' life (Warning or above, a minute or more before the kill), median / 90th percentile: "
            + "all \(life(nil)); linear \(life(["linear"])), accelerating \(life(["accelerating"])), staircase \(life(["staircase"])), "
            + "after a plateau \(life(["after-plateau"])), slow \(life(["slow"]))")
        lines.append("Brier score: \(f(s.brier, 3)) over \(s.results.reduce(0) { $0 + $1.forecasts }) forecasts; "
            + "mean of the scenarios' scores \(f(s.brierPerScenario, 3))")
        if let d = s.decomposition {
            // The remainder can be a hair below zero; "+ -0.000" reads as a typo.
            let within = (d.withinBins * 1000).rounded() / 1000
            lines.append("Brier decomposition (tenths): reliability \(f(d.reliability, 3)) (calibration error) − resolution "
                + "\(f(d.resolution, 3)) + uncertainty \(f(d.uncertainty, 3)) (\(within < 0 ? "−" : "+") "
                + "\(f(abs(within), 3)) within the tenths)")
        }
        lines.append("reliability (probability: forecasts, share that came true): " + s.reliability.map {
            "\(Double($0.bin) / 10)–\(Double($0.bin + 1) / 10): \($0.forecasts), \(f(Double($0.cameTrue) * 100 / Double($0.forecasts))) %"
        }.joined(separator: "; "))
        return lines.joined(separator: "\n")
    }
}
