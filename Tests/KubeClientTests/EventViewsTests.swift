import Foundation
import KubeClient
import KubeEmulator
import KubeRuntime
import TapioTestSupport
import Testing

/// A core `v1` Event, the form `kubectl get events` and `kubectl describe` read.
struct CoreEvent: KubeResource, Hashable {
    static let apiVersion = "v1", kind = "Event", plural = "events"
    static let namespaced = true
    struct Source: Codable, Sendable, Hashable {
        var component: String?
        var host: String?
    }
    var metadata: ObjectMeta
    var involvedObject: ObjectReference
    var reason: String?
    var message: String?
    var source: Source?
    var firstTimestamp: String?
    var lastTimestamp: String?
    var count: Int32?
    var type: String?
    var eventTime: String?
    var series: Event.Series?
    var action: String?
    var related: ObjectReference?
    var reportingComponent: String?
    var reportingInstance: String?

    init(metadata: ObjectMeta, involvedObject: ObjectReference) {
        self.metadata = metadata; self.involvedObject = involvedObject
    }
}

/// Events are stored once and served by two APIs, as by kube-apiserver: an Event written through events.k8s.io/v1
/// (as Tapio's EventRecorder writes them) is what `kubectl get events` lists through core v1, and the other way round.
@Suite("Events through core v1 and events.k8s.io/v1")
struct EventViewsTests {
    static let eventsType = ResourceType(Event.self)
    static let coreType = ResourceType(CoreEvent.self)

    static func podRef(_ ns: String, _ name: String = "web-1", uid: String = "uid-web-1") -> ObjectReference {
        ObjectReference(apiVersion: "v1", kind: "Pod", name: name, namespace: ns, uid: uid)
    }

    static func recorder(_ client: KubeClient) -> EventRecorder {
        EventRecorder(client: client, reportingController: "tapio.io/agent", reportingInstance: "node-1",
                      config: EventRecorderConfig(seriesUpdateInterval: .zero))
    }

    /// An Event through EventRecorder (events.k8s.io/v1), returned as both APIs show it.
    static func recorded(_ client: KubeClient, _ ns: String, times: Int = 1, reason: String = "OOMKilled",
                         regarding: ObjectReference? = nil, recorder: EventRecorder? = nil) async throws -> (Event, CoreEvent) {
        let rec = recorder ?? Self.recorder(client)
        for _ in 0..<times {
            rec.record(regarding: regarding ?? podRef(ns), type: .warning, reason: reason, action: "Observe",
                       note: "container app was OOM killed")
        }
        await rec.drain()
        #expect(rec.failedCount == 0)
        let ev = try #require(try await client.list(Event.self, namespace: ns).items.first { $0.reason == reason })
        let core = try await client.get(CoreEvent.self, namespace: ns, name: ev.metadata.name ?? "")
        return (ev, core)
    }

    @Test(.timeLimit(.minutes(2))) func anEventWrittenThroughEventsK8sIOIsReadThroughCoreV1() async throws {
        try await withCluster { _, client, ns in
            let rec = Self.recorder(client)
            let (ev, core) = try await Self.recorded(client, ns, recorder: rec)
            // One object: same identity and version in both APIs.
            #expect(core.metadata.name == ev.metadata.name)
            #expect(core.metadata.uid == ev.metadata.uid && ev.metadata.uid != nil)
            #expect(core.metadata.resourceVersion == ev.metadata.resourceVersion)
            #expect(core.metadata.namespace == ns)
            // Converted fields.
            #expect(core.involvedObject == Self.podRef(ns))
            #expect(core.message == "container app was OOM killed")
            #expect(core.reportingComponent == "tapio.io/agent")
            #expect(core.reportingInstance == "node-1")
            #expect(core.reason == "OOMKilled" && core.type == "Warning" && core.action == "Observe")
            #expect(core.eventTime == ev.eventTime && core.eventTime != nil)
            // Nothing is made up: the deprecated fields stay empty (describe and get fall back to eventTime and
            // the reporting controller), as the real conversion leaves them.
            #expect(core.source == CoreEvent.Source(component: nil, host: nil))
            #expect(core.count == nil && core.firstTimestamp == nil && core.lastTimestamp == nil)
            #expect(core.series == nil)

            // The raw core JSON has the shape the server's Go types marshal to.
            let raw = try JSONValue.parse(try await client.getRaw(Self.coreType, namespace: ns, name: ev.metadata.name ?? ""))
            #expect(raw["apiVersion"] == "v1" && raw["kind"] == "Event")
            #expect(raw["source"] == .object([:]))
            #expect(raw["firstTimestamp"] == .null && raw["lastTimestamp"] == .null)
            #expect(raw["count"] == nil && raw["note"] == nil && raw["regarding"] == nil && raw["reportingController"] == nil)

            // The second occurrence sets series.count through events.k8s.io; core v1 sees it at the same version.
            let (ev2, core2) = try await Self.recorded(client, ns, recorder: rec)
            #expect(ev2.series?.count == 2)
            #expect(core2.series == ev2.series)
            #expect(core2.metadata.resourceVersion == ev2.metadata.resourceVersion)
            #expect(core2.metadata.resourceVersion != core.metadata.resourceVersion)
            #expect(try await client.list(CoreEvent.self, namespace: ns).items.count == 1)
        }
    }

    @Test(.timeLimit(.minutes(2))) func aCoreEventIsReadThroughEventsK8sIOWithDeprecatedFields() async throws {
        try await withCluster { _, client, ns in
            let body = JSONValue.object([
                "apiVersion": "v1", "kind": "Event", "metadata": .object(["name": "web-1.pulled"]),
                "involvedObject": .object(["apiVersion": "v1", "kind": "Pod", "name": "web-1", "namespace": .string(ns), "uid": "uid-web-1",
                                           "fieldPath": "spec.containers{app}"]),
                "reason": "Pulled", "message": "Successfully pulled image", "type": "Normal",
                "source": .object(["component": "kubelet", "host": "node-a"]),
                "firstTimestamp": "2025-01-01T02:00:00+02:00", "lastTimestamp": "2025-01-01T00:05:00Z", "count": 3,
                "reportingComponent": "kubelet", "reportingInstance": "node-a",
            ])
            let created = try JSONValue.parse(try await client.createRaw(Self.coreType, namespace: ns, body: body.jsonData()))
            let view = try JSONValue.parse(try await client.getRaw(Self.eventsType, namespace: ns, name: "web-1.pulled"))
            #expect(view["apiVersion"] == "events.k8s.io/v1" && view["kind"] == "Event")
            #expect(view["metadata"]?["uid"] == created["metadata"]?["uid"])
            #expect(view["metadata"]?["resourceVersion"] == created["metadata"]?["resourceVersion"])
            #expect(view["regarding"] == body["involvedObject"])
            #expect(view["note"] == "Successfully pulled image")
            #expect(view["reportingController"] == "kubelet" && view["reportingInstance"] == "node-a")
            #expect(view["deprecatedSource"] == body["source"])
            #expect(view["deprecatedCount"]?.intValue == 3)
            // metav1.Time is stored in UTC, to the second.
            #expect(view["deprecatedFirstTimestamp"] == "2025-01-01T00:00:00Z")
            #expect(view["deprecatedLastTimestamp"] == "2025-01-01T00:05:00Z")
            #expect(view["eventTime"] == .null)
            #expect(view["reason"] == "Pulled" && view["type"] == "Normal")
            for coreOnly in ["involvedObject", "message", "source", "count", "firstTimestamp", "lastTimestamp", "reportingComponent"] {
                #expect(view[coreOnly] == nil, "\(coreOnly) is a core v1 name")
            }
            let typed = try await client.get(Event.self, namespace: ns, name: "web-1.pulled")
            #expect(typed.regarding == Self.podRef(ns).with(fieldPath: "spec.containers{app}"))
            #expect(typed.deprecatedCount == 3)
        }
    }

    @Test(.timeLimit(.minutes(2))) func anUpdateThroughOneAPIShowsInTheOther() async throws {
        try await withCluster { _, client, ns in
            let (ev, core) = try await Self.recorded(client, ns)
            let name = ev.metadata.name ?? ""

            // Through core v1 (PUT), with core field names.
            var c = core
            c.message = "rewritten through core v1"
            c.count = 4
            let updated = try await client.update(c)
            let seen = try await client.get(Event.self, namespace: ns, name: name)
            #expect(seen.note == "rewritten through core v1")
            #expect(seen.deprecatedCount == 4)
            #expect(seen.metadata.resourceVersion == updated.metadata.resourceVersion)

            // Through events.k8s.io/v1 (merge patch of the series).
            let patch = #"{"series":{"count":7,"lastObservedTime":"\#(MicroTime.string())"}}"#
            let patched = try await client.mergePatch(Event.self, namespace: ns, name: name, patch: Data(patch.utf8))
            let back = try await client.get(CoreEvent.self, namespace: ns, name: name)
            #expect(back.series?.count == 7)
            #expect(back.message == "rewritten through core v1" && back.count == 4)
            #expect(back.metadata.resourceVersion == patched.metadata.resourceVersion)

            // events.k8s.io/v1 keeps what an Event says immutable; core v1 does not check (backwards compatibility).
            do {
                _ = try await client.mergePatch(Event.self, namespace: ns, name: name, patch: Data(#"{"note":"changed"}"#.utf8))
                Issue.record("changing the note through events.k8s.io/v1 was accepted")
            } catch KubeError.invalid(_, let causes) {
                #expect(causes.contains { $0.field == "message" }, "\(causes)")
            }
            let viaCore = try await client.mergePatch(CoreEvent.self, namespace: ns, name: name, patch: Data(#"{"message":"changed"}"#.utf8))
            #expect(viaCore.message == "changed")
            #expect(try await client.get(Event.self, namespace: ns, name: name).note == "changed")

            // Events allow unconditional updates (no resourceVersion) and create on update, as their strategy says.
            var unconditional = viaCore
            unconditional.metadata.resourceVersion = nil
            unconditional.count = 5
            #expect(try await client.update(unconditional).count == 5)
            var fresh = CoreEvent(metadata: ObjectMeta(name: "put-created", namespace: ns), involvedObject: Self.podRef(ns))
            fresh.reason = "Put"; fresh.message = "created by PUT"; fresh.type = "Normal"
            _ = try await client.replaceRaw(Self.coreType, namespace: ns, name: "put-created", body: try client.encode(fresh))
            #expect(try await client.get(Event.self, namespace: ns, name: "put-created").note == "created by PUT")
        }
    }

    @Test(.timeLimit(.minutes(2))) func watchesOnEitherAPISeeWritesThroughTheOther() async throws {
        try await withCluster { _, client, ns in
            let core = try await client.watch(CoreEvent.self, namespace: ns, options: WatchOptions(timeoutSeconds: 10))
            let events = try await client.watch(Event.self, namespace: ns, options: WatchOptions(timeoutSeconds: 10))
            let (ev, _) = try await Self.recorded(client, ns)
            let name = ev.metadata.name ?? ""
            try await client.delete(CoreEvent.self, namespace: ns, name: name)

            var coreSeen: [(String, CoreEvent)] = []
            for try await e in core {
                switch e {
                case .added(let o): coreSeen.append(("ADDED", o))
                case .modified(let o): coreSeen.append(("MODIFIED", o))
                case .deleted(let o): coreSeen.append(("DELETED", o))
                case .bookmark: break
                case .error(let err): Issue.record("core watch: \(err)")
                case .undecodable(_, let u): Issue.record("core watch: \(u)")
                }
                if coreSeen.count >= 2 { break }
            }
            #expect(coreSeen.map(\.0) == ["ADDED", "DELETED"])
            let added = try #require(coreSeen.first?.1)
            #expect(added.metadata.name == name && added.metadata.resourceVersion == ev.metadata.resourceVersion)
            #expect(added.involvedObject == Self.podRef(ns))
            #expect(added.message == "container app was OOM killed")
            #expect(added.reportingComponent == "tapio.io/agent")

            var eventsSeen: [(String, Event)] = []
            for try await e in events {
                switch e {
                case .added(let o): eventsSeen.append(("ADDED", o))
                case .modified(let o): eventsSeen.append(("MODIFIED", o))
                case .deleted(let o): eventsSeen.append(("DELETED", o))
                case .bookmark: break
                case .error(let err): Issue.record("events watch: \(err)")
                case .undecodable(_, let u): Issue.record("events watch: \(u)")
                }
                if eventsSeen.count >= 2 { break }
            }
            #expect(eventsSeen.map(\.0) == ["ADDED", "DELETED"], "a delete through core v1 is seen through events.k8s.io/v1")
            #expect(eventsSeen.last?.1.regarding == Self.podRef(ns))
            // One resourceVersion sequence: the delete has the same version in both streams.
            #expect(eventsSeen.last?.1.metadata.resourceVersion == coreSeen.last?.1.metadata.resourceVersion)
        }
    }

    @Test(.timeLimit(.minutes(2))) func fieldSelectorsWorkInEachAPIsOwnNames() async throws {
        try await withCluster { _, client, ns in
            _ = try await Self.recorded(client, ns, reason: "OOMKilled", regarding: Self.podRef(ns, "web-1", uid: "uid-1"))
            _ = try await Self.recorded(client, ns, reason: "MemoryLeak", regarding: Self.podRef(ns, "web-2", uid: "uid-2"))
            let kubelet = JSONValue.object([
                "apiVersion": "v1", "kind": "Event", "metadata": .object(["name": "web-2.started"]),
                "involvedObject": .object(["kind": "Pod", "name": "web-2", "namespace": .string(ns), "uid": "uid-2"]),
                "reason": "Started", "message": "Started container app", "type": "Normal",
                "source": .object(["component": "kubelet", "host": "node-a"]),
                "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:00:00Z", "count": 1,
            ])
            _ = try await client.createRaw(Self.coreType, namespace: ns, body: kubelet.jsonData())

            func core(_ selector: String) async throws -> Set<String> {
                Set(try await client.list(CoreEvent.self, namespace: ns, options: ListOptions(fieldSelector: selector)).items.compactMap(\.reason))
            }
            func events(_ selector: String) async throws -> Set<String> {
                Set(try await client.list(Event.self, namespace: ns, options: ListOptions(fieldSelector: selector)).items.compactMap(\.reason))
            }
            #expect(try await core("involvedObject.name=web-2") == ["MemoryLeak", "Started"])
            #expect(try await core("involvedObject.uid=uid-1") == ["OOMKilled"])
            #expect(try await core("involvedObject.kind=Pod,involvedObject.namespace=\(ns),reason=OOMKilled") == ["OOMKilled"])
            #expect(try await core("type=Normal") == ["Started"])
            #expect(try await core("reportingComponent=tapio.io/agent") == ["OOMKilled", "MemoryLeak"])
            // `source` is source.component, or the reporting controller when there is none.
            #expect(try await core("source=kubelet") == ["Started"])
            #expect(try await core("source=tapio.io/agent") == ["OOMKilled", "MemoryLeak"])
            #expect(try await core("involvedObject.name=web-2,source!=kubelet") == ["MemoryLeak"])

            #expect(try await events("regarding.name=web-2") == ["MemoryLeak", "Started"])
            #expect(try await events("regarding.uid=uid-1,regarding.kind=Pod") == ["OOMKilled"])
            #expect(try await events("reportingController=tapio.io/agent") == ["OOMKilled", "MemoryLeak"])
            #expect(try await events("reason=Started,type=Normal") == ["Started"])

            // Each API accepts only its own names (events.k8s.io/v1 has no `source`, as kube-apiserver 1.36 says).
            for (bad, list) in [("regarding.name=web-1", core), ("involvedObject.name=web-1", events),
                                ("reportingController=tapio.io/agent", core), ("reportingComponent=tapio.io/agent", events),
                                ("source=kubelet", events)] {
                do {
                    _ = try await list(bad)
                    Issue.record("\(bad) was accepted")
                } catch KubeError.badRequest(let message) {
                    #expect(message.contains("field label not supported"), "\(message)")
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(2))) func validationFollowsTheAPIThatWasUsed() async throws {
        try await withCluster { _, client, ns in
            func fields(_ type: ResourceType, _ body: JSONValue) async throws -> [String] {
                do {
                    _ = try await client.createRaw(type, namespace: ns, body: body.jsonData())
                    return []
                } catch KubeError.invalid(_, let causes) {
                    return causes.compactMap(\.field)
                }
            }
            let regarding = JSONValue.object(["kind": "Pod", "name": "web-1", "namespace": .string(ns)])
            // events.k8s.io/v1 creates need eventTime, the reporter, an action, a reason and a known type, and none
            // of the deprecated fields.
            let bare = JSONValue.object(["apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": .object(["name": "bare"]),
                                         "regarding": regarding, "note": "n"])
            #expect(Set(try await fields(Self.eventsType, bare)).isSuperset(of: ["eventTime", "type"]))
            var timed = bare
            timed["eventTime"] = .string(MicroTime.string())
            timed["type"] = "Normal"
            timed["deprecatedCount"] = 2
            #expect(Set(try await fields(Self.eventsType, timed)) == ["reportingController", "reportingInstance", "action", "reason", "count"])
            timed["deprecatedCount"] = nil
            timed["reportingController"] = "tapio.io/agent"; timed["reportingInstance"] = "node-1"
            timed["action"] = "Observe"; timed["reason"] = "Tested"
            timed["series"] = .object(["count": 1, "lastObservedTime": .string(MicroTime.string())])
            #expect(try await fields(Self.eventsType, timed) == ["series.count"])
            timed["series"] = nil
            #expect(try await fields(Self.eventsType, timed) == [])

            // eventTime is a MicroTime: exactly six fractional digits, or the body cannot be decoded.
            var millis = timed
            millis["metadata"] = .object(["name": "millis"])
            millis["eventTime"] = "2025-01-01T00:00:00.123Z"
            do {
                _ = try await client.createRaw(Self.eventsType, namespace: ns, body: millis.jsonData())
                Issue.record("a three-digit eventTime was accepted")
            } catch KubeError.badRequest(let message) {
                #expect(message.contains("2006-01-02T15:04:05.000000Z07:00"), "\(message)")
            }

            // Core v1 keeps the legacy rules only: an old-style Event needs no reporter, but its namespace must be
            // the involved object's.
            let legacy = JSONValue.object(["apiVersion": "v1", "kind": "Event", "metadata": .object(["name": "legacy"]),
                                           "involvedObject": regarding, "reason": "Tested", "message": "m",
                                           "source": .object(["component": "test"])])
            #expect(try await fields(Self.coreType, legacy) == [])
            var elsewhere = legacy
            elsewhere["metadata"] = .object(["name": "elsewhere"])
            elsewhere["involvedObject"]?["namespace"] = "kube-system"
            #expect(try await fields(Self.coreType, elsewhere) == ["involvedObject.namespace"])
            // A core Event with eventTime set is a new-style Event and needs the reporter fields.
            var newStyle = legacy
            newStyle["metadata"] = .object(["name": "new-style"])
            newStyle["eventTime"] = .string(MicroTime.string())
            // Named as core v1 names them, as kube-apiserver 1.36 does.
            #expect(Set(try await fields(Self.coreType, newStyle)) == ["reportingComponent", "reportingInstance", "action"])
        }
    }

    @Test(.timeLimit(.minutes(2)), .enabled(if: Kubectl.isAvailable, Comment(rawValue: Kubectl.unavailableReason)))
    func kubectlGetEventsAndDescribeShowEventsK8sIOEvents() async throws {
        try await withCluster { cluster, client, ns in
            let p = try await client.create(pod("web-1", ns, node: "node-a"))
            let ref = Self.podRef(ns, "web-1", uid: p.metadata.uid ?? "")
            _ = try await Self.recorded(client, ns, regarding: ref)

            let get = try await Kubectl.run(kubeconfig: cluster.kubeconfigPath, ["get", "events", "-n", ns])
            #expect(get.status == 0)
            #expect(Kubectl.headers(get.stdout) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], "\(get.stdout)")
            let rows = Kubectl.table(get.stdout)
            try #require(rows.count == 1, "kubectl printed: \(get.stdout)")
            #expect(rows[0]["TYPE"] == "Warning")
            #expect(rows[0]["REASON"] == "OOMKilled")
            #expect(rows[0]["OBJECT"] == "pod/web-1")
            #expect(rows[0]["MESSAGE"] == "container app was OOM killed")
            #expect(rows[0]["LAST SEEN"]?.hasSuffix("s") == true)

            // describe lists the pod's Events through core v1, by involvedObject field selectors.
            let describe = try await Kubectl.run(kubeconfig: cluster.kubeconfigPath, ["describe", "pod", "web-1", "-n", ns])
            #expect(describe.status == 0)
            let events = describe.stdout.components(separatedBy: "Events:").last ?? ""
            let line = events.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
                .first { $0.contains("OOMKilled") }
            #expect(line?.hasPrefix("Warning OOMKilled") == true, "\(describe.stdout)")
            #expect(line?.contains("tapio.io/agent container app was OOM killed") == true, "\(describe.stdout)")
        }
    }
}

extension ObjectReference {
    func with(fieldPath: String) -> ObjectReference {
        var r = self
        r.fieldPath = fieldPath
        return r
    }
}
