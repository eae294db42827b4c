import Foundation
import KubeClient

/// The kube-apiserver's own view of its load, from its `/metrics`: requests by verb and resource, watch events sent
/// by kind, and open watches by resource. Counters are diffed between two scrapes.
struct APIServerScrape: Sendable {
    /// `apiserver_request_total`, summed over codes and scopes: "VERB resource[/subresource]" → count.
    var requests: [String: Double] = [:]
    /// `apiserver_watch_events_total` by kind.
    var watchEvents: [String: Double] = [:]
    /// `apiserver_longrunning_requests{verb="WATCH"}` by resource: watches open now (a gauge).
    var watches: [String: Double] = [:]

    static func take(_ client: KubeClient) async throws -> APIServerScrape {
        let text = String(decoding: try await client.send(method: .GET, path: "/metrics").body, as: UTF8.self)
        var out = APIServerScrape()
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"),
                  let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)) else { continue }
            let name = line[..<open]
            let labels = Self.labels(line[line.index(after: open)..<close])
            switch name {
            case "apiserver_request_total":
                let sub = labels["subresource"].flatMap { $0.isEmpty ? nil : "/" + $0 } ?? ""
                out.requests["\(labels["verb"] ?? "?") \(labels["resource"] ?? "?")\(sub)", default: 0] += value
            case "apiserver_watch_events_total":
                out.watchEvents[labels["kind"] ?? labels["resource"] ?? "?", default: 0] += value
            case "apiserver_longrunning_requests" where labels["verb"] == "WATCH":
                out.watches[labels["resource"] ?? "?", default: 0] += value
            default: continue
            }
        }
        return out
    }

    /// `a="x",b="y"` → ["a": "x", "b": "y"] (label values here hold no quotes or commas).
    static func labels(_ s: Substring) -> [String: String] {
        var out: [String: String] = [:]
        for pair in s.split(separator: ",") {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            out[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return out
    }

    /// Writes to TapioPolicies (the operator's status writes, and any change of a spec): each one is sent to every
    /// agent's policy watch.
    var tapioPolicyWrites: Double {
        requests.filter { $0.key.hasSuffix(" tapiopolicies/status") || $0.key.hasSuffix(" tapiopolicies") }
            .filter { !["WATCH", "LIST", "GET"].contains(String($0.key.prefix { $0 != " " })) }
            .values.reduce(0, +)
    }

    /// TapioPolicy watch events sent, bookmarks included (about one a minute per watch).
    var tapioPolicyEvents: Double {
        watchEvents.filter { $0.key.lowercased().hasPrefix("tapiopolic") }.values.reduce(0, +)
    }

    /// Counter increases since `earlier` (the watch gauge is this scrape's).
    func since(_ earlier: APIServerScrape) -> APIServerScrape {
        var d = APIServerScrape()
        for (k, v) in requests { let x = v - (earlier.requests[k] ?? 0); if x > 0 { d.requests[k] = x } }
        for (k, v) in watchEvents { let x = v - (earlier.watchEvents[k] ?? 0); if x > 0 { d.watchEvents[k] = x } }
        d.watches = watches
        return d
    }
}

/// CPU and memory of another process, from /proc.
struct ProcessSample: Sendable {
    var cpuTicks: UInt64
    var rssKiB: UInt64
    var at: ContinuousClock.Instant

    static func take(_ pid: Int32) -> ProcessSample {
        ProcessSample(cpuTicks: AgentBench.cpuTicks(pid), rssKiB: AgentBench.statusKiB(pid, "VmRSS"), at: .now)
    }

    /// Average millicores between `earlier` and this sample.
    func millicores(since earlier: ProcessSample) -> Double {
        let seconds = (at - earlier.at).inSeconds
        guard seconds > 0 else { return 0 }
        let ticks = Double(cpuTicks &- earlier.cpuTicks) / Double(sysconf(Int32(_SC_CLK_TCK)))
        return ticks / seconds * 1000
    }
}
