import Foundation
import Synchronization
import TapioCorrelation
import TapioModel

/// Writes to stdout without interleaving the footer and insight blocks.
final class ConsoleWriter: Sendable {
    private let state = Mutex<String?>(nil)  // the footer currently on screen, if any
    let inPlace: Bool

    init(inPlace: Bool) { self.inPlace = inPlace }

    /// Prints a block above the footer (the footer is redrawn after it).
    func printBlock(_ text: String) {
        state.withLock { footer in
            var out = ""
            if inPlace && footer != nil { out += "\r\u{1B}[2K" }
            out += text
            if inPlace, let f = footer { out += f }
            StandardStream.output.write(out)
        }
    }

    /// Replaces the footer in place (terminals only).
    func setFooter(_ text: String) {
        guard inPlace else { return }
        state.withLock { footer in
            footer = text
            StandardStream.output.write("\r\u{1B}[2K" + text)
        }
    }

    /// Ends the footer line so whatever comes next starts on a fresh line.
    func endFooter() {
        state.withLock { footer in
            if inPlace && footer != nil { StandardStream.output.write("\n") }
            footer = nil
        }
    }
}

/// The live terminal view: new and escalated insights as blocks (most severe first), resolutions as one line,
/// plain updates only in the footer, so a repeated insight never floods the screen.
public final class TerminalSink: InsightSink {
    public let renderer: TextRenderer
    let console: ConsoleWriter
    let minSeverity: Severity
    private let shown = Mutex<[String: Severity]>([:])

    /// - Parameter inPlace: redraw the status footer in place (true on a terminal).
    public init(renderer: TextRenderer, inPlace: Bool, minSeverity: Severity = .info) {
        self.renderer = renderer
        self.console = ConsoleWriter(inPlace: inPlace)
        self.minSeverity = minSeverity
    }

    public func emit(_ updates: [InsightUpdate]) async {
        let ordered = updates.sorted { $0.spec.severity > $1.spec.severity }
        var text = ""
        for u in ordered {
            switch u.change {
            case .new, .escalated:
                guard u.spec.severity >= minSeverity else { continue }
                shown.withLock { $0[u.identity.name] = u.spec.severity }
                text += renderer.render(u) + "\n"
            case .resolved:
                let wasShown = shown.withLock { $0.removeValue(forKey: u.identity.name) != nil }
                if wasShown { text += renderer.renderResolved(u) }
            case .updated:
                // A detection that crossed --min-severity since it began is worth its first block.
                let isNew = u.spec.severity >= minSeverity && shown.withLock { s in
                    guard s[u.identity.name] == nil else { return false }
                    s[u.identity.name] = u.spec.severity
                    return true
                }
                if isNew { text += renderer.render(u) + "\n" }
            }
        }
        if !text.isEmpty { console.printBlock(text) }
    }

    public func status(_ status: PipelineStatus) async {
        console.setFooter(renderer.footer(status))
    }

    /// Prints a line above the footer (start-up checklist, notices).
    public func line(_ text: String) { console.printBlock(text + "\n") }

    public func finish(summary: String) {
        console.endFooter()
        StandardStream.output.write(summary)
    }
}

/// `-o json`: every update as one JSON line, and a status record every `statusEvery` seconds and at the end.
public final class JSONLinesSink: InsightSink {
    let statusEvery: Int
    let minSeverity: Severity
    private let ticks = Mutex(0)

    public init(statusEverySeconds: Int = 10, minSeverity: Severity = .info) {
        self.statusEvery = max(1, statusEverySeconds)
        self.minSeverity = minSeverity
    }

    public func emit(_ updates: [InsightUpdate]) async {
        var out = ""
        for u in updates where u.spec.severity >= minSeverity || u.change == .resolved {
            out += JSONLines.encode(u) + "\n"
        }
        if !out.isEmpty { StandardStream.output.write(out) }
    }

    public func status(_ status: PipelineStatus) async {
        let due = ticks.withLock { n -> Bool in
            n += 1
            return n % statusEvery == 0
        }
        if due { writeStatus(status) }
    }

    public func writeStatus(_ status: PipelineStatus) {
        StandardStream.output.write(JSONLines.encode(status, at: Date()) + "\n")
    }
}

/// Keeps `/metrics` current: active insights, predictions, events, shed counts and source health.
public final class MetricsSink: InsightSink {
    public let metrics: TapioMetrics
    /// Also export one `tapio_insight_*` series set per active insight (`tapio sniff`, which is its own operator;
    /// an agent leaves that to the leading operator, which sees every node's Insights).
    let perInsightSeries: Bool
    private let lastEvents = Mutex<UInt64>(0)

    public init(metrics: TapioMetrics, perInsightSeries: Bool = false) {
        self.metrics = metrics
        self.perInsightSeries = perInsightSeries
    }

    public func emit(_ updates: [InsightUpdate]) async {}

    public func status(_ status: PipelineStatus) async {
        metrics.insights(active: status.activeInsights)
        if perInsightSeries { metrics.setInsightSeries(status.activeInsights.map(Self.series)) }
        metrics.subjects(status.subjects)
        metrics.stateEntries(status.engineSizes)
        for (stage, n) in status.shedByStage { metrics.shedTotal(stage: stage, total: n) }
        for s in status.sources { metrics.sourceHealth(s.name, s.health) }
        for (outcome, n) in status.attributionRetries { metrics.attributionRetries(outcome: outcome, total: n) }
        let delta = lastEvents.withLock { last -> UInt64 in
            defer { last = status.events }
            return status.events &- last
        }
        metrics.eventsProcessed(source: "all", count: Int(clamping: delta))
    }
}

extension MetricsSink {
    /// An active insight as its per-Insight series (the same labels the operator gives an Insight object).
    static func series(_ u: InsightUpdate) -> InsightSeries {
        let prediction = u.spec.prediction
        let tte = prediction?.timeToEvent.flatMap { try? GoDuration.parse($0) }
            .map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        let probability = prediction.map(\.probability).flatMap { $0.isFinite ? min(1, max(0, $0)) : nil }
        return InsightSeries(namespace: u.spec.subject.namespace ?? "", name: u.identity.name, type: u.spec.type,
                             severity: u.spec.severity, subjectKind: u.spec.subject.kind, subjectName: u.spec.subject.name,
                             container: u.spec.subject.container ?? "", node: "", probability: probability,
                             timeToEventSeconds: tte, eventTimestampSeconds: tte.map { Double(u.observedAt) / 1e9 + $0 })
    }
}
