import Foundation
import Logging
import Synchronization

/// The API calls the server refused with 401 or 403, by verb and resource, until the same call succeeds again.
///
/// A missing RBAC rule does not stop a controller: the calls that need it fail and everything else runs. That must
/// not stay quiet (logged at debug level it went unnoticed on the first real deployment), so each denial is logged
/// at warning (rate-limited) and kept here for `/readyz` and the policy status to report, and a later success of
/// the same call (the rule was granted) clears it.
public final class AccessDenials: Sendable {
    public struct Denial: Sendable, Hashable, CustomStringConvertible {
        /// `GET`, `LIST`, `WATCH`, `POST`, …
        public var verb: String
        /// The request path without object names where they can be told apart (`/apis/events.k8s.io/v1/events`).
        public var resource: String
        public var message: String
        public var description: String { "\(verb) \(resource): \(message)" }
    }

    /// Distinct denials kept; beyond it the oldest is dropped (they name resources, a bounded set in practice).
    static let capacity = 32
    private let denials = Mutex<[String: (Denial, UInt64)]>([:])
    private let sequence = Atomic<UInt64>(0)

    public init() {}

    /// The current denials, oldest first.
    public var current: [Denial] {
        denials.withLock { d in d.values.sorted { $0.1 < $1.1 }.map(\.0) }
    }

    /// Records a refusal. True when it is new (not already recorded for this verb and resource).
    @discardableResult
    func record(verb: String, path: String, message: String) -> Bool {
        let resource = Self.resource(of: path)
        let key = "\(verb) \(resource)"
        let n = sequence.add(1, ordering: .relaxed).newValue
        return denials.withLock { d in
            let isNew = d[key] == nil
            d[key] = (Denial(verb: verb, resource: resource, message: String(message.prefix(512))), isNew ? n : d[key]!.1)
            if d.count > Self.capacity, let oldest = d.min(by: { $0.value.1 < $1.value.1 })?.key { d[oldest] = nil }
            return isNew
        }
    }

    /// Clears the denial of this verb and resource, if any: the same call just succeeded.
    func succeeded(verb: String, path: String) {
        let key = "\(verb) \(Self.resource(of: path))"
        denials.withLock { d in if !d.isEmpty { d[key] = nil } }
    }

    /// `/api/v1/namespaces/ns/pods/name` → `/api/v1/namespaces/ns/pods`: RBAC grants by resource, and a denial of
    /// one object is a denial of its kind. Paths of a collection, or of a subresource, are kept as they are.
    static func resource(of path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        // /api/v1/<res>[/<name>[/<sub>]], /api/v1/namespaces/<ns>/<res>[/<name>[/<sub>]], /apis/<g>/<v>/… alike.
        let base = parts.first == "api" ? 2 : 3
        guard parts.count > base else { return path }
        var rest = parts[base...]
        var prefix = Array(parts[..<base])
        if rest.first == "namespaces", rest.count >= 3 {
            prefix += rest.prefix(2)
            rest = rest.dropFirst(2)
        }
        // rest: <res>, <res>/<name>, <res>/<name>/<sub>
        let kept: [Substring] = rest.count == 3 ? [rest[rest.startIndex], "*", rest[rest.startIndex + 2]] : [rest[rest.startIndex]]
        return "/" + (prefix + kept).joined(separator: "/")
    }
}

extension KubeClient {
    /// Notes the outcome of a call for `accessDenials`, and says so at warning level when the server refused it.
    func noteAccess(verb: String, path: String, error: (any Error)?) {
        guard let error else {
            accessDenials.succeeded(verb: verb, path: path)
            return
        }
        let message: String
        switch error {
        case KubeError.forbidden(_, _, let m): message = "forbidden: " + m
        case KubeError.unauthorized(let m): message = "unauthorized: " + m
        default: return
        }
        accessDenials.record(verb: verb, path: path, message: message)
        logLimiter.log(logger, .warning, key: "denied \(verb) \(AccessDenials.resource(of: path))",
                       "\(verb) \(path): \(message) — whatever needs this call is degraded until the role grants it; the rest runs")
    }
}
