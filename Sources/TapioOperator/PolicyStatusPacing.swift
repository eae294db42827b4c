import Synchronization
import TapioModel

/// When a changed TapioPolicy status is written.
///
/// Every agent watches every TapioPolicy, so each status write is sent to all N agents. The status is written only
/// when it changed, but a write is itself a change of the policy, which the controller reconciles at once: while
/// nodes join or leave (a scale-up of a thousand nodes), every reconcile would find another node counted and write
/// again, as fast as the API server answers, each write reaching every agent. So what follows from the nodes and
/// their heartbeats (counts, failed nodes, `Ready`, `Degraded`) is written at most once per ``interval(nodes:cap:)``;
/// what follows from the spec — a new generation, or the `Accepted` verdict — is written at once, because agents and
/// users wait for it.
enum PolicyStatusPacing {
    /// Policy watch events a second that one policy's status writes may cost while nodes churn: each write is sent
    /// to every node's agent, so writes are spaced by nodes / 100 seconds. A small cluster sees its status at once
    /// (1 s); at 1,000 nodes every 10 s; from 3,000 nodes the cap (the status refresh, 30 s) holds, and the cost
    /// is at most nodes / 30 a second — below the agents' own bookmarks at rest (three watches each, one a minute:
    /// nodes / 20 a second).
    static let fanOutPerSecond = 100.0

    /// How long after one status write the next node-driven one may follow, with `nodes` agents watching.
    static func interval(nodes: Int, cap: Duration) -> Duration {
        let seconds = Double(max(nodes, 0)) / fanOutPerSecond
        return min(max(.seconds(1), .milliseconds(Int64(min(seconds, 1e9) * 1000))), max(cap, .seconds(1)))
    }

    enum Decision: Equatable {
        case write
        /// Not yet: reconcile again after this long.
        case wait(Duration)
    }

    static func decide(old: TapioPolicyStatus?, new: TapioPolicyStatus, lastWrite: ContinuousClock.Instant?,
                       now: ContinuousClock.Instant, interval: Duration) -> Decision {
        guard let old else { return .write }
        if old.observedGeneration != new.observedGeneration { return .write }
        let a = old.condition("Accepted"), b = new.condition("Accepted")
        if a?.status != b?.status || a?.reason != b?.reason || a?.message != b?.message { return .write }
        guard let lastWrite else { return .write }
        let elapsed = now - lastWrite
        return elapsed >= interval ? .write : .wait(interval - elapsed)
    }
}

/// When this operator last wrote each policy's status (policy name → instant). A new leader starts empty: its
/// first write of each policy is not held back.
final class PolicyStatusWrites: Sendable {
    private let last = Mutex<[String: ContinuousClock.Instant]>([:])
    func lastWrite(_ policy: String) -> ContinuousClock.Instant? { last.withLock { $0[policy] } }
    func wrote(_ policy: String, at instant: ContinuousClock.Instant) { last.withLock { $0[policy] = instant } }
    /// Forgets deleted policies, so the map holds no more entries than there are policies.
    func retain(_ policies: Set<String>) { last.withLock { $0 = $0.filter { policies.contains($0.key) } } }
}
