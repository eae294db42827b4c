import DequeModule
import TapioModel

/// The latest `pod` line of each pod a scenario mentions, which node events about the pod take their uid and
/// context from. Bounded like the engine's subjects: past `capacity` pods the one updated longest ago is
/// forgotten, so a replay's memory does not grow with the number of pods a long scenario goes through.
struct ScenarioPods {
    var capacity: Int
    private var entries: [String: (info: PodInfo, stamp: UInt64)] = [:]
    /// Keys in update order; entries whose stamp no longer matches are stale and skipped.
    private var order: Deque<(key: String, stamp: UInt64)> = []
    private var nextStamp: UInt64 = 0

    init(capacity: Int) { self.capacity = capacity }

    subscript(key: String) -> PodInfo? { entries[key]?.info }

    var count: Int { entries.count }

    mutating func set(_ key: String, _ info: PodInfo) {
        nextStamp &+= 1
        entries[key] = (info, nextStamp)
        order.append((key, nextStamp))
        while entries.count > max(1, capacity), let oldest = order.popFirst() {
            if entries[oldest.key]?.stamp == oldest.stamp { entries[oldest.key] = nil }
        }
        // Updates leave stale keys behind; drop them before they outnumber the live ones.
        if order.count > 2 * entries.count + 1024 {
            order = Deque(order.filter { entries[$0.key]?.stamp == $0.stamp })
        }
    }

    mutating func remove(_ key: String) { entries[key] = nil }
}
