import Foundation

/// What a response is turned into before it is written, as negotiated from the `Accept` header the way
/// kube-apiserver does it (`as=…;g=…;v=…` media type parameters).
enum OutputTarget: Sendable, Equatable {
    /// The object or list as stored.
    case object
    /// `meta.k8s.io/<version>` `Table` (what `kubectl get` asks for).
    case table(version: String)
    /// `meta.k8s.io/<version>` `PartialObjectMetadata` (metadata-only clients, single objects and watch events).
    case partialObjectMetadata(version: String)
    /// `meta.k8s.io/<version>` `PartialObjectMetadataList` (metadata-only clients, lists).
    case partialObjectMetadataList(version: String)
}

/// `Accept` header negotiation. The emulator serialises JSON only: a client that accepts nothing JSON-compatible
/// gets 406 (a real server would also offer YAML, protobuf and CBOR; no Tapio client or kubectl path asks for them
/// without offering JSON as well).
enum Negotiation {
    static let supportedMediaTypes = ["application/json"]

    struct Clause {
        var type: String
        var subtype: String
        var params: [String: String]
        var q: Double
    }

    /// Parses an Accept header like goautoneg does: clauses ordered by quality, then by specificity; q=0 dropped.
    static func parseAccept(_ header: String) -> [Clause] {
        var clauses: [Clause] = []
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let mime = pieces.first, !mime.isEmpty else { continue }
            let typeParts = mime.split(separator: "/", maxSplits: 1).map(String.init)
            let type: String, subtype: String
            if typeParts.count == 2 {
                type = typeParts[0]; subtype = typeParts[1]
            } else if mime == "*" {
                type = "*"; subtype = "*"
            } else { continue }
            var params: [String: String] = [:]
            var q = 1.0
            for p in pieces.dropFirst() {
                let kv = p.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2 else { continue }
                if kv[0] == "q" { q = Double(kv[1]) ?? 0 } else { params[kv[0]] = kv[1] }
            }
            if q <= 0 { continue }
            clauses.append(Clause(type: type.lowercased(), subtype: subtype.lowercased(), params: params, q: q))
        }
        // Stable: equal clauses keep the client's order.
        return clauses.enumerated().sorted { a, b in
            if a.element.q != b.element.q { return a.element.q > b.element.q }
            let sa = (a.element.type != "*" ? 1 : 0) + (a.element.subtype != "*" ? 1 : 0)
            let sb = (b.element.type != "*" ? 1 : 0) + (b.element.subtype != "*" ? 1 : 0)
            if sa != sb { return sa > sb }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// The first acceptable clause's target, or nil (answer 406). `transforms` says whether the endpoint can convert
    /// (resource endpoints can; discovery cannot, so an `as=` clause there is skipped, which is how kubectl's request
    /// for aggregated discovery falls back to the legacy documents).
    static func negotiate(_ header: String?, transforms: Bool) -> OutputTarget? {
        guard let header, !header.trimmingCharacters(in: .whitespaces).isEmpty else { return .object }
        for c in parseAccept(header) {
            let jsonCompatible = (c.type == "application" && (c.subtype == "json" || c.subtype == "*"))
                || (c.type == "*" && c.subtype == "*")
            guard jsonCompatible else { continue }
            if let stream = c.params["stream"], !stream.isEmpty, stream != "watch" { continue }
            if let sv = c.params["sv"], !sv.isEmpty, !(transforms && sv == "v1") { continue }
            let kind = c.params["as"], group = c.params["g"], version = c.params["v"]
            if kind == nil && group == nil && version == nil { return .object }
            guard transforms, group == "meta.k8s.io", let version, version == "v1" || version == "v1beta1" else { continue }
            switch kind {
            case "Table": return .table(version: version)
            case "PartialObjectMetadata": return .partialObjectMetadata(version: version)
            case "PartialObjectMetadataList": return .partialObjectMetadataList(version: version)
            default: continue
            }
        }
        return nil
    }

    static func notAcceptable() -> EmulatorResponse {
        EmulatorStore.status(406, reason: "NotAcceptable",
                             message: "only the following media types are accepted: \(supportedMediaTypes.joined(separator: ", "))")
    }
}
