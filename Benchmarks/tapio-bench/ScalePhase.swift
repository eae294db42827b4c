import Foundation
import KubeClient

extension ScaleBench {
    /// One measured phase: what the API server counted, what the agents sent, and what the processes used.
    struct Phase: Sendable {
        struct Start: Sendable {
            var scrape: APIServerScrape
            var byVerb: [String: UInt64]
            var perAgent: [UInt64]
            var writesPerAgent: [UInt64]
            var apiserver: ProcessSample?
            var etcd: ProcessSample?
            var operatorProcess: ProcessSample
            var harness: UInt64
            var at: ContinuousClock.Instant
        }

        let admin: KubeClient
        let requests: AgentRequests
        let agents: Int
        let apiserver: Int32?
        let etcd: Int32?
        let operatorPID: Int32

        init(admin: KubeClient, requests: AgentRequests, agents: Int, apiserver: Int32?, etcd: Int32?, operator: Int32) {
            self.admin = admin
            self.requests = requests
            self.agents = agents
            self.apiserver = apiserver
            self.etcd = etcd
            self.operatorPID = `operator`
        }

        func begin() async throws -> Start {
            let r = requests.snapshot
            return Start(scrape: try await APIServerScrape.take(admin), byVerb: r.byVerb, perAgent: r.perAgent,
                         writesPerAgent: r.writesPerAgent, apiserver: apiserver.map(ProcessSample.take),
                         etcd: etcd.map(ProcessSample.take), operatorProcess: ProcessSample.take(operatorPID),
                         harness: processCPUNanos(), at: .now)
        }

        func end(_ s: Start, name: String, note: (String, Double, String) -> Void) async throws {
            let scrape = try await APIServerScrape.take(admin).since(s.scrape)
            let r = requests.snapshot
            let minutes = (ContinuousClock.now - s.at).inSeconds / 60
            let n = Double(agents)
            let total = r.perAgent.reduce(0, +) &- s.perAgent.reduce(0, +)
            let writes = r.writesPerAgent.reduce(0, +) &- s.writesPerAgent.reduce(0, +)
            let busiest = zip(r.writesPerAgent, s.writesPerAgent).map { $0 &- $1 }.max() ?? 0
            note("\(name).minutes", minutes, "min")
            note("\(name).agent_requests_per_agent_per_min", Double(total) / n / minutes, "req/agent/min")
            note("\(name).agent_writes_per_agent_per_min", Double(writes) / n / minutes, "writes/agent/min")
            note("\(name).agent_writes_busiest_agent", Double(busiest), "writes")
            for (verb, count) in r.byVerb.sorted(by: { $0.key < $1.key }) {
                let d = count &- (s.byVerb[verb] ?? 0)
                if d > 0 { note("\(name).agent_\(verb)_per_agent_per_min", Double(d) / n / minutes, "req/agent/min") }
            }
            let all = scrape.requests.filter { !$0.key.hasPrefix("WATCH") }.values.reduce(0, +)
            note("\(name).apiserver_requests_per_s", all / (minutes * 60), "req/s")
            for (key, count) in scrape.requests.sorted(by: { $0.value > $1.value }).prefix(12) {
                note("\(name).apiserver[\(key)]_per_min", count / minutes, "req/min")
            }
            let events = scrape.watchEvents.values.reduce(0, +)
            note("\(name).watch_events_sent_per_min", events / minutes, "events/min")
            for (kind, count) in scrape.watchEvents.sorted(by: { $0.key < $1.key }) {
                note("\(name).watch_events[\(kind)]_per_min", count / minutes, "events/min")
            }
            // Every agent watches every TapioPolicy (the operator's one watch besides): the policy events one agent
            // received — the API server's bookmarks (about one a minute per watch, as on the pods and nodes watches)
            // and one per write of a policy, the operator's status writes included, which are counted apart.
            note("\(name).tapiopolicy_writes", scrape.tapioPolicyWrites, "writes")
            note("\(name).tapiopolicy_events_per_agent_per_min", scrape.tapioPolicyEvents / (n + 1) / minutes, "events/agent/min")
            note("\(name).watches_open", scrape.watches.values.reduce(0, +), "watches")
            for (resource, count) in scrape.watches.sorted(by: { $0.key < $1.key }) where count > 0 {
                note("\(name).watches_open[\(resource)]", count, "watches")
            }
            let op = ProcessSample.take(operatorPID)
            note("\(name).operator_cpu", op.millicores(since: s.operatorProcess), "mCPU")
            note("\(name).operator_rss", Double(op.rssKiB) / 1024, "MiB")
            if let pid = apiserver, let before = s.apiserver {
                let now = ProcessSample.take(pid)
                note("\(name).apiserver_cpu", now.millicores(since: before), "mCPU")
                note("\(name).apiserver_rss", Double(now.rssKiB) / 1024, "MiB")
            }
            if let pid = etcd, let before = s.etcd {
                let now = ProcessSample.take(pid)
                note("\(name).etcd_cpu", now.millicores(since: before), "mCPU")
                note("\(name).etcd_rss", Double(now.rssKiB) / 1024, "MiB")
            }
            let harness = Double(processCPUNanos() &- s.harness) / 1e6 / (minutes * 60)
            note("\(name).agents_cpu_per_agent", harness / n, "mCPU")
        }
    }
}
