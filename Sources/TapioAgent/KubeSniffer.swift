import Foundation
import KubeClient
import KubeRuntime
import Logging
import Synchronization
import TapioCorrelation
import TapioModel
import TapioNode

/// The Kubernetes sniffer: watches this node's pods and its Node — nothing cluster-wide, so each agent receives
/// only events about its own node's objects and thousands of agents stay cheap for the API server — and turns them
/// into typed cluster events (probe failures and evictions included, derived from the pods: ``PodEventDeriver``).
///
/// Pods are kept in ``pods`` (a reflector store) for policy selectors; the Node's labels go to ``onNodeLabels``.
public final class KubeSniffer: EventSource, Sendable {
    public let name = "kubernetes"
    public let pods: ReflectorStore<Pod>
    let client: KubeClient
    let nodeName: String
    let queue: BoundedQueue<TapioEvent>
    let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let counters = Mutex<(events: UInt64, errors: UInt64, last: UInt64, state: SourceHealth.State)>((0, 0, 0, .starting))
    private let known = Mutex<[String: PodInfo]>([:])
    private let conditions = Mutex<[NodeConditionDeriver.Condition]?>(nil)
    /// The watches that have listed at least once (`pods`, `node`).
    private let synced = Mutex<Set<String>>([])
    static let watches: Set<String> = ["pods", "node"]
    private let labelsHandler = Mutex<(@Sendable ([String: String]) -> Void)?>(nil)
    /// Kept in step with ``pods`` as each change arrives, not through the event queue (``feed(_:)``).
    private let directory = Mutex<PodDirectory?>(nil)
    /// Every pod deletion, beside the queue that may shed it: for the pipeline (``Pipeline`` `deletions`).
    public let deletions = PodDeletionLog()
    private let lastLabels = Mutex<[String: String]?>(nil)

    /// Called with the Node's labels once its watch has listed (empty when there is no such Node) and whenever they
    /// change: the policies' node selectors are judged on them, with no polling of the Node.
    public func onNodeLabels(_ handler: @escaping @Sendable ([String: String]) -> Void) {
        labelsHandler.withLock { $0 = handler }
    }

    private func nodeLabels(_ labels: [String: String]) {
        let changed = lastLabels.withLock { last in
            defer { last = labels }
            return last != labels
        }
        if changed { labelsHandler.withLock { $0 }?(labels) }
    }

    /// Keeps `directory` in step with the pod watch itself, as each change arrives: the queue the engine reads sheds
    /// its oldest events under a storm, and a pod deletion shed there would have kept the pod in the directory for
    /// the agent's life (an update shed, a restarted container's new id unknown until the pod's next change).
    ///
    /// Fed at once with the pods already listed, so a late call misses nothing. The watch's own updates take the same
    /// lock after the store has changed, so the newer of the two always lands last.
    public func feed(_ directory: PodDirectory) {
        self.directory.withLock { d in
            d = directory
            for pod in pods.list() { directory.upsert(PodConversion.podInfo(pod)) }
        }
    }

    /// True once every watch has listed: the agent has seen everything it reads at least once (and was allowed to).
    public var isSynced: Bool { synced.withLock { $0.isSuperset(of: Self.watches) } }

    private func markSynced(_ what: String) { synced.withLock { _ = $0.insert(what) } }

    public init(client: KubeClient, nodeName: String, capacity: Int = 16_384, logger: Logger) {
        self.client = client
        self.nodeName = nodeName
        self.logger = logger
        self.queue = BoundedQueue(capacity: capacity, policy: .dropOldest)
        self.pods = ReflectorStore()
    }

    public func events() -> BoundedQueue<TapioEvent> {
        task.withLock { t in
            if t == nil { t = Task.detached { [self] in await self.run() } }
        }
        return queue
    }

    public func health() -> SourceHealth {
        let c = counters.withLock { $0 }
        return SourceHealth(state: c.state, lastEventNanos: c.last, events: c.events, errors: c.errors, shed: queue.shed)
    }

    public func stop() {
        task.withLock { $0?.cancel() }
        queue.finish()
    }

    private func run() async {
        counters.withLock { $0.state = .running }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.watchPods() }
            group.addTask { await self.watchNode() }
        }
        counters.withLock { $0.state = .stopped }
    }

    private func push(_ events: [ClusterEvent]) {
        for e in events where !queue.push(.cluster(e)) {
            // Something older was shed: perhaps a deletion (``PodDeletionLog``).
            deletions.markShed()
        }
        counters.withLock {
            $0.events &+= UInt64(events.count)
            $0.last = MonotonicClock.wallNanos()
        }
    }

    private func failed(_ what: String, _ error: any Error) {
        // Cancellation is how a graceful shutdown stops the watches, not a failure.
        if error is CancellationError || Task.isCancelled { return }
        counters.withLock { $0.errors &+= 1 }
        logger.warning("watch \(what) ended: \(error)")
    }

    private func watchPods() async {
        let config = WatcherConfig(fieldSelector: "spec.nodeName=\(nodeName)")
        do {
            try await pods.run(Watcher(client: client, Pod.self, config: config, logger: logger)) { [self] event in
                switch event {
                case .apply(let pod), .initApply(let pod):
                    let info = PodConversion.podInfo(pod)
                    directory.withLock { $0?.upsert(info) }
                    let old = known.withLock { k in
                        defer { k[info.pod.uid] = info }
                        return k[info.pod.uid]
                    }
                    push(PodEventDeriver.derive(old: old, new: info, at: MonotonicClock.wallNanos()))
                case .initDone:
                    markSynced("pods")
                    // A relist (after a 410, or a watch that could not resume) sends no deletions: pods that went
                    // away meanwhile are those not in the new list. Forget them here, or they would be kept forever.
                    let present = Set(pods.list().compactMap(\.metadata.uid))
                    let gone = known.withLock { k -> [PodInfo] in
                        let missing = k.filter { !present.contains($0.key) }
                        for uid in missing.keys { k[uid] = nil }
                        return Array(missing.values)
                    }
                    let seen = MonotonicClock.coarseNanos()
                    for info in gone { deletions.record(info.pod, at: seen) }
                    directory.withLock { d in for info in gone { d?.remove(info.pod) } }
                    let now = MonotonicClock.wallNanos()
                    push(gone.map { ClusterEvent(timestampNanos: now, kind: .podDeleted($0.pod)) })
                case .delete(let pod):
                    let info = PodConversion.podInfo(pod)
                    known.withLock { _ = $0.removeValue(forKey: info.pod.uid) }
                    deletions.record(info.pod, at: MonotonicClock.coarseNanos())
                    directory.withLock { $0?.remove(info.pod) }
                    push([ClusterEvent(timestampNanos: MonotonicClock.wallNanos(), kind: .podDeleted(info.pod))])
                case .initStart:
                    break
                }
            }
        } catch { failed("pods", error) }
    }

    private func watchNode() async {
        let config = WatcherConfig(fieldSelector: "metadata.name=\(nodeName)")
        do {
            var listed: Node?
            for try await event in Watcher(client: client, Node.self, config: config, logger: logger) {
                switch event {
                case .initStart: listed = nil
                case .initApply(let node): listed = node
                case .initDone:
                    // After the list, so that a Node that does not exist still says "no labels" once.
                    nodeLabels(listed?.metadata.labels ?? [:])
                    markSynced("node")
                case .apply(let node): nodeLabels(node.metadata.labels ?? [:])
                case .delete: break
                }
                guard case .apply(let node) = event.normalized else { continue }
                let new = (node.status?.conditions ?? []).map {
                    NodeConditionDeriver.Condition(type: $0.type, status: $0.status == "True", reason: $0.reason ?? "",
                                                   message: $0.message ?? "")
                }
                let old = conditions.withLock { c in
                    defer { c = new }
                    return c
                }
                push(NodeConditionDeriver.derive(node: nodeName, old: old, new: new, at: MonotonicClock.wallNanos()))
            }
        } catch { failed("node", error) }
    }
}

extension WatcherEvent {
    /// `initApply` and `apply` alike, for consumers that don't care whether a list or a watch delivered it.
    var normalized: WatcherEvent {
        if case .initApply(let k) = self { return .apply(k) }
        return self
    }
}

/// Kubernetes objects → the engine's typed values.
public enum PodConversion {
    /// `containerd://<id>` → `<id>`.
    public static func bareContainerID(_ id: String) -> String {
        guard let r = id.range(of: "://") else { return id }
        return String(id[r.upperBound...])
    }

    public static func podInfo(_ pod: Pod) -> PodInfo {
        let m = pod.metadata
        let ref = PodRef(namespace: m.namespace ?? "", name: m.name ?? "", uid: m.uid ?? "")
        let statuses = Dictionary((pod.status?.containerStatuses ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let containers = (pod.spec?.containers ?? []).map { c -> ContainerInfo in
            let s = statuses[c.name]
            return ContainerInfo(
                name: c.name, containerID: s?.containerID.map(bareContainerID), image: c.image ?? s?.image ?? "",
                restartCount: Int(s?.restartCount ?? 0), ready: s?.ready ?? false,
                // Capped at 1Pi: a pod spec may say 15Ei, and the advice's arithmetic (× 1.2, + 100Mi) must not overflow.
                memoryRequestBytes: c.resources?.requests?["memory"].flatMap { try? Quantity.parseBytes($0) }.map { min($0, TapioPolicySchema.maxBytes) },
                memoryLimitBytes: c.resources?.limits?["memory"].flatMap { try? Quantity.parseBytes($0) }.map { min($0, TapioPolicySchema.maxBytes) },
                lastTermination: s?.lastState?.terminated.map(termination),
                currentTermination: s?.state?.terminated.map(termination),
                waitingReason: s?.state?.waiting?.reason)
        }
        return PodInfo(pod: ref, node: pod.spec?.nodeName ?? "", owner: owner(of: pod), labels: m.labels ?? [:],
                       phase: pod.status?.phase ?? "Unknown", containers: containers, reason: pod.status?.reason,
                       message: pod.status?.message.map { String($0.prefix(1024)) }, deleting: m.deletionTimestamp != nil)
    }

    static func termination(_ t: ContainerState.Terminated) -> Termination {
        Termination(reason: t.reason ?? "", exitCode: t.exitCode, signal: t.signal ?? 0,
                    finishedAtNanos: t.finishedAt.flatMap(Formatting.parseRFC3339) ?? 0)
    }

    /// The workload to patch: a ReplicaSet's Deployment (the ReplicaSet's name minus its pod-template-hash),
    /// or the controller itself (StatefulSet, DaemonSet, Job).
    public static func owner(of pod: Pod) -> OwnerRef? {
        guard let c = pod.metadata.ownerReferences?.first(where: { $0.controller == true }) ?? pod.metadata.ownerReferences?.first
        else { return nil }
        if c.kind == "ReplicaSet" {
            if let hash = pod.metadata.labels?["pod-template-hash"], c.name.hasSuffix("-" + hash) {
                return OwnerRef(kind: "Deployment", name: String(c.name.dropLast(hash.count + 1)))
            }
            return OwnerRef(kind: "ReplicaSet", name: c.name)
        }
        return OwnerRef(kind: c.kind, name: c.name)
    }
}
