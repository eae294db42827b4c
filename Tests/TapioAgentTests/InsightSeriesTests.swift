import Foundation
import KubeClient
import TapioKube
import TapioModel
import TapioOperator
import TapioSinks
import TapioTestSupport
import Testing

/// Per-Insight series for alerting (issue 15): one set per active Insight, capped, removed when it resolves.
struct InsightSeriesTests {
    static func series(_ name: String, _ severity: Severity, probability: Double? = nil) -> InsightSeries {
        InsightSeries(namespace: "shop", name: name, type: .oomPrediction, severity: severity, subjectKind: "Pod",
                      subjectName: "\(name)-pod", container: "app", node: "n1", probability: probability,
                      timeToEventSeconds: probability == nil ? nil : 240, eventTimestampSeconds: probability == nil ? nil : 1.8e9)
    }

    static func lines(_ m: TapioMetrics, _ metric: String) -> [Substring] {
        String(decoding: m.render(), as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix(metric + "{") }
    }

    @Test func theCapKeepsTheMostSevereAndCountsTheRestAndGoneInsightsLoseTheirSeries() {
        let m = TapioMetrics()
        m.setInsightSeries([Self.series("a", .info), Self.series("b", .critical, probability: 0.7),
                            Self.series("c", .warning, probability: 0.4)], limit: 2)
        let info = Self.lines(m, "tapio_insight_info")
        #expect(info.count == 2, "\(info)")
        #expect(info.contains { $0.contains(#"name="b""#) } && info.contains { $0.contains(#"name="c""#) })
        #expect(Self.lines(m, "tapio_insight_series_omitted").isEmpty)  // unlabelled: checked below
        #expect(String(decoding: m.render(), as: UTF8.self).contains("tapio_insight_series_omitted 1"))
        let p = Self.lines(m, "tapio_insight_probability")
        #expect(p.contains { $0.contains(#"name="b""#) && $0.contains(#"subject_name="b-pod""#) && $0.hasSuffix(" 0.7") }, "\(p)")
        #expect(Self.lines(m, "tapio_insight_time_to_event_seconds").count == 2)

        // b resolved, c escalated: b's series go, c's Warning series is replaced by its Critical one.
        m.setInsightSeries([Self.series("a", .info), Self.series("c", .critical, probability: 0.9)], limit: 2)
        let after = Self.lines(m, "tapio_insight_info")
        #expect(after.count == 2, "\(after)")
        #expect(!after.contains { $0.contains(#"name="b""#) })
        #expect(after.contains { $0.contains(#"name="c""#) && $0.contains(#"severity="Critical""#) })
        #expect(!after.contains { $0.contains(#"severity="Warning""#) })
        #expect(Self.lines(m, "tapio_insight_probability").count == 1)
        #expect(String(decoding: m.render(), as: UTF8.self).contains("tapio_insight_series_omitted 0"))

        m.clearInsightSeries()
        #expect(Self.lines(m, "tapio_insight_info").isEmpty)
        #expect(Self.lines(m, "tapio_insight_time_to_event_seconds").isEmpty)
    }

    /// The operator exports an agent's active OOMPrediction with its pod, probability and time-to-event, and drops
    /// the series once the Insight resolves.
    @Test(.timeLimit(.minutes(3))) func theOperatorExportsAnActiveInsightAndDropsItWhenItResolves() async throws {
        let (ns, name, exported, tte, at, gone) = try await TestCluster.withNamespace { cluster, client in
            let ns = cluster.namespace
            _ = try? await client.create(Namespace(metadata: KubeObjectMeta(name: "tapio-system")))
            let metrics = TapioMetrics()
            let op = Operator(options: .init(identity: "series-\(ns)", metricsHost: "127.0.0.1", metricsPort: 0, clusterCheck: .seconds(1)),
                              client: try KubeClient(kubeconfigPath: cluster.kubeconfigPath), metrics: metrics)
            let task = Task { try await op.run(signals: []) }
            // The operator stops before the namespace goes, whatever the test did.
            cluster.atCleanup {
                task.cancel()
                _ = await task.result
            }
            let name = "oomprediction-api-0-app-series"
            let stamp = Date().formatted(.iso8601)
            var object = try await client.create(InsightObject(
                metadata: KubeObjectMeta(name: name, namespace: ns, labels: ["tapio.io/node": "node-a", "tapio.io/type": "OOMPrediction"]),
                spec: InsightSpec(type: .oomPrediction, severity: .critical, title: "api-0 will be OOM-killed", summary: "test",
                                  subject: ResourceRef(kind: "Pod", namespace: ns, name: "api-0", container: "app"),
                                  prediction: Prediction(kind: "OOMKill", probability: 0.85, confidence: 0.9, timeToEvent: "4m",
                                                         expectedAt: nil))))
            object.status = InsightStatus(phase: .active, firstSeen: stamp, lastSeen: stamp, occurrences: 1)
            object = try await client.updateStatus(object)
            func probabilityLine() -> Substring? {
                Self.lines(metrics, "tapio_insight_probability").first { $0.contains("name=\"\(name)\"") }
            }
            // Until the status write is seen too: the expected time is counted from its lastSeen.
            let exported = await eventually(timeout: .seconds(60)) { () -> Substring? in
                guard Self.lines(metrics, "tapio_insight_predicted_event_timestamp_seconds").contains(where: { $0.contains("name=\"\(name)\"") })
                else { return nil }
                return probabilityLine()
            }
            let tte = Self.lines(metrics, "tapio_insight_time_to_event_seconds").first { $0.contains("name=\"\(name)\"") }
            let at = Self.lines(metrics, "tapio_insight_predicted_event_timestamp_seconds").first { $0.contains("name=\"\(name)\"") }

            object.status?.phase = .resolved
            _ = try await client.updateStatus(object)
            let gone = await eventually(timeout: .seconds(60)) {
                Self.lines(metrics, "tapio_insight_info").contains { $0.contains("name=\"\(name)\"") } ? nil : true
            }
            try? await client.deleteRaw(ResourceType(InsightObject.self), namespace: ns, name: name)
            return (ns, name, exported, tte, at, gone)
        }

        let line = try #require(exported, "no tapio_insight_probability series for \(name)")
        for label in ["namespace=\"\(ns)\"", #"type="OOMPrediction""#, #"severity="Critical""#, #"subject_kind="Pod""#,
                      #"subject_name="api-0""#, #"container="app""#, #"node="node-a""#] {
            #expect(line.contains(label), "\(label) missing in \(line)")
        }
        #expect(line.hasSuffix(" 0.85"), "\(line)")
        #expect(tte?.hasSuffix(" 240.0") == true || tte?.hasSuffix(" 240") == true, "\(String(describing: tte))")
        // Expected at: the last write plus four minutes.
        let expectedAt = try #require(at.flatMap { Double($0.split(separator: " ").last ?? "") })
        #expect(abs(expectedAt - (Date().timeIntervalSince1970 + 240)) < 240, "\(expectedAt)")
        #expect(gone == true, "the series stayed after the Insight resolved")
    }

    /// `tapio_insights` is set only where a count moved (it is refreshed every second); a count that fell to zero
    /// is set to zero, and every type and severity is exported from the first call on.
    @Test func insightCountsFollowTheActiveSetIncludingFallsToZero() {
        let m = TapioMetrics()
        func count(_ type: String, _ severity: String) -> Substring? {
            Self.lines(m, "tapio_insights").first { $0.contains(#"type="\#(type)""#) && $0.contains(#"severity="\#(severity)""#) }?
                .split(separator: " ").last
        }
        m.setInsightCounts([(.oomPrediction, .critical), (.oomPrediction, .critical), (.memoryLeak, .warning)])
        #expect(count("OOMPrediction", "Critical") == "2.0")
        #expect(count("MemoryLeak", "Warning") == "1.0")
        #expect(count("CrashLoop", "Info") == "0.0", "every type and severity is exported")
        m.setInsightCounts([(.oomPrediction, .critical), (.oomPrediction, .critical), (.memoryLeak, .warning)])
        m.setInsightCounts([(.oomPrediction, .warning)])
        #expect(count("OOMPrediction", "Critical") == "0.0")
        #expect(count("OOMPrediction", "Warning") == "1.0")
        #expect(count("MemoryLeak", "Warning") == "0.0")
    }

    /// The pipeline reports the engine's sizes once a second and only moves are set: a structure that returns to
    /// a value it had before, or falls to zero, must still be exported as it is now.
    @Test func stateEntriesFollowEveryMoveIncludingBackAndToZero() {
        let m = TapioMetrics()
        func entries(_ structure: String) -> Substring? {
            Self.lines(m, "tapio_state_entries").first { $0.contains(#"structure="\#(structure)""#) }?.split(separator: " ").last
        }
        m.stateEntries([("engine_subjects", 5), ("engine_subjects_local_process", 2)])
        #expect(entries("engine_subjects") == "5.0")
        #expect(entries("engine_subjects_local_process") == "2.0")
        m.stateEntries([("engine_subjects", 7), ("engine_subjects_local_process", 2)])
        m.stateEntries([("engine_subjects", 5), ("engine_subjects_local_process", 0)])
        #expect(entries("engine_subjects") == "5.0")
        #expect(entries("engine_subjects_local_process") == "0.0")
    }
}
