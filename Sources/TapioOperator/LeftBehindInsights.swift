import Foundation
import KubeClient
import TapioCorrelation
import TapioInsightWriter
import TapioKube
import TapioModel
import KubeRuntime

/// Agents' Active Insights that no agent will ever resolve, for the leading operator to resolve instead.
///
/// An agent resolves what its engine holds. Two things leave an Insight Active with no engine holding it:
/// - **The agent restarted** (an upgrade rolls every node's agent): its new engine starts empty. What it detects again
///   it announces, and its writer turns that into an update of the Active Insight — written again, `lastSeen` after the
///   start. What it does not detect again stayed Active for good (a prediction whose leak stopped meanwhile, a
///   process that is gone). So: written before the node's current agent started (its heartbeat Lease's
///   `acquireTime`) and not since, once that agent has run for the node's `window` + `resolveAfter` — the time to
///   gather the evidence again, and the time the agent itself waits before calling a finding clear — and has said,
///   in a heartbeat since, that everything it held by then is written (`tapio.io/insights-written-through`): a
///   backlog of writes (a throttling server) must not pass for a finding it no longer holds. Only while that agent is
///   alive (its Lease not expired) and reports no problem: an agent that crashed, or whose watches are refused,
///   re-detects nothing, and its findings are unverified, not cleared.
///   The grace counts from the later of the agent's start and its engine's last start (`tapio.io/engine-started`:
///   a policy change starts the engine afresh, and its evidence with it).
/// - **The node is gone** (scaled down, replaced): nobody runs there. So: a node no Node object names, once its
///   agent's Lease has expired and its last heartbeat is as old as that same grace (without a Lease: once this leader
///   has missed the node that long).
enum LeftBehindInsights {
    /// A node's agent as its heartbeat Lease says (keyed by the Insight label value of the node's name).
    struct Agent: Sendable, Equatable {
        var started: Date?
        var lastBeat: Date?
        /// Every Insight update the agent had by then was written (``HeartbeatAnnotations/insightsWrittenThrough``).
        var writtenThrough: Date?
        /// When its engine last started afresh (``HeartbeatAnnotations/engineStarted``): a policy change restarts it,
        /// and its evidence with it.
        var engineStarted: Date?
        /// Its Lease has not expired, and it reports no problem.
        var healthy = false
        /// How long its Lease lasts after a renewal (`leaseDurationSeconds`).
        var leaseDuration: TimeInterval = 360
    }

    /// The Insights to resolve at `now`, with why, oldest `lastSeen` first. `nodes`: the label values of the Nodes
    /// that exist; `missingSince`: when this leader first saw each missing node's Insights; `grace`: the node's
    /// `window` + `resolveAfter`, by label value.
    static func find(_ insights: [InsightObject], nodes: Set<String>, agents: [String: Agent],
                     missingSince: [String: Date], grace: (String) -> Duration, now: Date) -> [(InsightObject, String)] {
        var out: [(InsightObject, String, Double)] = []
        // The node's checks first, the Insight's own time last: at 50,000 Insights a pass parses only the candidates'.
        var waits: [String: Double] = [:]
        for i in insights where (i.status?.phase ?? .active) == .active {
            guard let node = i.metadata.labels?["tapio.io/node"], !node.isEmpty else { continue }
            let wait = waits[node] ?? grace(node).inSeconds
            waits[node] = wait
            let agent = agents[node]
            let why: String
            var before: Date?
            if nodes.contains(node) {
                // The grace counts from the later of the agent's start and its engine's.
                guard let agent, agent.healthy, let started = agent.started, let through = agent.writtenThrough,
                      through.timeIntervalSince(max(started, agent.engineStarted ?? started)) >= wait else { continue }
                why = "node \(node)'s agent restarted at \(MicroTime.string(started)) and has not seen it since"
                before = started
            } else if let agent, let beat = agent.lastBeat {
                // Its agent must be gone too: a Node object missing for a while (deleted before its pods, a kubelet
                // registering again) while the agent still runs is no reason.
                guard now.timeIntervalSince(beat) > max(wait, agent.leaseDuration) else { continue }
                why = "node \(node) is gone"
            } else {
                guard let since = missingSince[node], now.timeIntervalSince(since) >= wait else { continue }
                why = "node \(node) is gone"
            }
            guard let seenNanos = i.status?.lastSeen.flatMap(Formatting.parseRFC3339) else { continue }
            let seen = Double(seenNanos) / 1e9
            if let before, seen >= before.timeIntervalSince1970 { continue }
            out.append((i, why, seen))
        }
        return out.sorted { $0.2 < $1.2 }.map { ($0.0, $0.1) }
    }

    /// The agents of `leases` (the heartbeat Leases) at `now`, by the label value of their node. Two nodes whose
    /// names share that value (longer than 63 characters) cannot be told apart: neither counts as healthy.
    static func agents(_ leases: [Lease], now: Date) -> [String: Agent] {
        var out: [String: Agent] = [:]
        var seen: Set<String> = []
        for l in leases {
            guard let node = l.metadata.labels?[HeartbeatAnnotations.nodeLabel] else { continue }
            let beat = Formatting.parseDate(l.spec?.renewTime)
            let annotations = l.metadata.annotations ?? [:]
            let lasts = TimeInterval(l.spec?.leaseDurationSeconds ?? 360)
            let problems = !(annotations[HeartbeatAnnotations.problems] ?? "").isEmpty
            var agent = Agent(started: Formatting.parseDate(l.spec?.acquireTime), lastBeat: beat,
                              writtenThrough: Formatting.parseDate(annotations[HeartbeatAnnotations.insightsWrittenThrough]),
                              engineStarted: Formatting.parseDate(annotations[HeartbeatAnnotations.engineStarted]))
            agent.healthy = !problems && beat.map { now.timeIntervalSince($0) <= lasts } == true
            agent.leaseDuration = lasts
            let key = InsightDocument.labelValue(node)
            if !seen.insert(key).inserted, let other = out[key] {
                agent.healthy = false
                // Either node's agent may still run: the later beat and the longer lease decide.
                if let b = other.lastBeat { agent.lastBeat = max(agent.lastBeat ?? b, b) }
                agent.leaseDuration = max(agent.leaseDuration, other.leaseDuration)
            }
            out[key] = agent
        }
        return out
    }
}
