import Foundation
import KubeClient
import Synchronization

/// A cache of one kind fed by a watcher: one writer (`apply(_:)`/`run(_:)`), any number of cheap concurrent readers.
/// Readers take a short lock and copy out what they ask for. Indexes map a custom key (node name, container id…) to
/// object keys. `waitUntilReady()` returns once the first list has been swapped in.
///
/// A `transform` shrinks each object before it is stored (the idea of client-go's informer transform): a cache of
/// tens of thousands of objects whose readers need a few fields of each should not hold the rest.
public final class ReflectorStore<K: KubeResource>: Sendable {
    /// Computes index keys for an object (e.g. `[pod.spec?.nodeName ?? ""]`).
    public typealias IndexFunction = @Sendable (K) -> [String]
    /// What the store keeps of an object it is given (from a list, a watch event, or `apply(_:)`).
    public typealias Transform = @Sendable (K) -> K

    struct State {
        var objects: [String: K] = [:]
        var indexes: [String: [String: Set<String>]] = [:]
        var buffer: [String: K]?
        var ready = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }
    let state = Mutex(State())
    let indexers: [String: IndexFunction]
    let transform: Transform?

    public init(indexers: [String: IndexFunction] = [:], transform: Transform? = nil) {
        self.indexers = indexers
        self.transform = transform
    }

    // MARK: Readers

    /// The object with `key` (`namespace/name`, or `name` for cluster-scoped kinds).
    public func get(_ key: String) -> K? { state.withLock { $0.objects[key] } }

    public func get(namespace: String?, name: String) -> K? {
        get(namespace.map { "\($0)/\(name)" } ?? name)
    }

    /// Every object (unordered).
    public func list() -> [K] { state.withLock { Array($0.objects.values) } }

    public var count: Int { state.withLock { $0.objects.count } }

    public var isReady: Bool { state.withLock { $0.ready } }

    /// Objects whose index function `index` returned `value`.
    public func byIndex(_ index: String, _ value: String) -> [K] {
        state.withLock { s in (s.indexes[index]?[value] ?? []).compactMap { s.objects[$0] } }
    }

    /// Waits until the first complete list is in the store, or until the task is cancelled (a shutting-down
    /// controller must not hang on a list that will never come).
    public func waitUntilReady() async {
        let id = state.withLock { s -> Int in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.ready || Task.isCancelled { return true }
                    s.waiters[id] = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    // MARK: Writer

    /// Applies one watcher event.
    public func apply(_ event: WatcherEvent<K>) {
        var wake: [CheckedContinuation<Void, Never>] = []
        // Outside the lock: readers need not wait for it.
        var event = event
        if let transform {
            switch event {
            case .initApply(let o): event = .initApply(transform(o))
            case .apply(let o): event = .apply(transform(o))
            case .initStart, .initDone, .delete: break
            }
        }
        state.withLock { s in
            switch event {
            case .initStart:
                s.buffer = [:]
            case .initApply(let o):
                s.buffer?[o.key] = o
            case .initDone:
                // Swap the whole list in at once: readers never see a half-listed store.
                s.objects = s.buffer ?? [:]
                s.buffer = nil
                s.indexes = [:]
                for (k, o) in s.objects { index(&s, key: k, object: o, add: true) }
                if !s.ready {
                    s.ready = true
                    wake = Array(s.waiters.values)
                    s.waiters = [:]
                }
            case .apply(let o):
                let k = o.key
                if let old = s.objects[k] { index(&s, key: k, object: old, add: false) }
                s.objects[k] = o
                index(&s, key: k, object: o, add: true)
            case .delete(let o):
                let k = o.key
                if let old = s.objects.removeValue(forKey: k) { index(&s, key: k, object: old, add: false) }
            }
        }
        for w in wake { w.resume() }
    }

    private func index(_ s: inout State, key: String, object: K, add: Bool) {
        for (name, fn) in indexers {
            for v in fn(object) {
                if add {
                    s.indexes[name, default: [:]][v, default: []].insert(key)
                } else {
                    s.indexes[name]?[v]?.remove(key)
                    if s.indexes[name]?[v]?.isEmpty == true { s.indexes[name]?[v] = nil }
                }
            }
        }
    }

    /// Feeds the store from `events` until cancelled, calling `onEvent` after each applied event (for triggers).
    public func run<S: AsyncSequence>(_ events: S, onEvent: (@Sendable (WatcherEvent<K>) async -> Void)? = nil) async throws
    where S.Element == WatcherEvent<K> {
        for try await e in events {
            apply(e)
            await onEvent?(e)
        }
    }
}
