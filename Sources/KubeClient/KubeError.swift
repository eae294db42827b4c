import Foundation

/// The API server's `Status` object (`kind: Status`), returned with every failed request and in watch `ERROR` events.
public struct KubeStatus: Codable, Sendable, Hashable {
    public struct Cause: Codable, Sendable, Hashable {
        /// `FieldValueInvalid`, `FieldValueRequired`, … (`metav1.CauseType`).
        public var reason: String?
        public var message: String?
        /// The dotted field path (`spec.probes.memory.samplingHz`).
        public var field: String?
        public init(reason: String? = nil, message: String? = nil, field: String? = nil) {
            self.reason = reason; self.message = message; self.field = field
        }
    }
    public struct Details: Codable, Sendable, Hashable {
        public var name: String?
        public var group: String?
        public var kind: String?
        public var causes: [Cause]?
        public var retryAfterSeconds: Int?
    }
    public var status: String?
    public var message: String?
    public var reason: String?
    public var details: Details?
    public var code: Int?
}

/// Every failure of a `KubeClient` call. Each case keeps what a caller needs to decide what to do next:
/// `conflict` → re-read and retry, `gone` → relist, `tooManyRequests` → wait `retryAfter`, `invalid` → show `causes`.
public enum KubeError: Error, Sendable, CustomStringConvertible {
    /// 404: the object (or its namespace) does not exist.
    case notFound(message: String)
    /// 409: a stale `resourceVersion`, an object that already exists, or an apply conflict.
    case conflict(reason: String, message: String)
    /// 410 / `Expired`: the requested resourceVersion was compacted; a watcher must relist.
    case gone(message: String)
    /// 401: the credentials were rejected.
    case unauthorized(message: String)
    /// 403: `verb` on `resource` is not allowed (parsed from the server's message where it says so).
    case forbidden(verb: String?, resource: String?, message: String)
    /// 422: the object failed validation; `causes` name the fields.
    case invalid(message: String, causes: [KubeStatus.Cause])
    /// 400: the request itself is malformed.
    case badRequest(message: String)
    /// 429: the server asks to come back after `retryAfter`.
    case tooManyRequests(retryAfter: Duration?, message: String)
    /// 504 or a request that outlived its deadline.
    case timeout(message: String)
    /// Any other status the server returned.
    case server(code: Int, reason: String?, message: String)
    /// The request never got an HTTP answer (connection refused, TLS failure, connection reset).
    case transport(String)
    /// The answer could not be decoded into the expected type.
    case decoding(type: String, message: String)
    /// The client was misconfigured (bad kubeconfig, missing namespace).
    case configuration(String)
    /// The server sent more than the client accepts (`ResponseLimits`): a body or a watch line past its limit.
    /// The connection was dropped.
    case responseTooLarge(limit: Int, message: String)
    /// The server redirected more often than `ResponseLimits.maxRedirects`, or in a cycle.
    case tooManyRedirects(String)
    /// A list page's `continue` token was the one the client had just sent, or a list went past
    /// `ResponseLimits.maxListObjects` or `maxListPages`: following it would never end.
    case pagingLoop(String)
    /// The kubeconfig's exec credential plugin gave no token (not found, failed, timed out, printed no credential);
    /// the message says which and carries the end of what the plugin wrote to standard error.
    case credentials(String)

    /// A list of `resource` whose paging repeats itself.
    public static func continueRepeated(_ resource: String) -> KubeError {
        .pagingLoop("listing \(resource): the server answered a continue token with the same token")
    }

    public var description: String {
        switch self {
        case .notFound(let m): "not found: \(m)"
        case .conflict(let r, let m): "conflict (\(r)): \(m)"
        case .gone(let m): "gone: \(m)"
        case .unauthorized(let m): "unauthorized: \(m)"
        case .forbidden(let v, let r, let m): "forbidden (verb \(v ?? "?"), resource \(r ?? "?")): \(m)"
        case .invalid(let m, let c):
            "invalid: \(m)" + (c.isEmpty ? "" : " [" + c.map { "\($0.field ?? ""): \($0.message ?? "")" }.joined(separator: "; ") + "]")
        case .badRequest(let m): "bad request: \(m)"
        case .tooManyRequests(let ra, let m): "too many requests (retry after \(ra.map { "\($0)" } ?? "?")): \(m)"
        case .timeout(let m): "timeout: \(m)"
        case .server(let c, let r, let m): "server error \(c) \(r ?? ""): \(m)"
        case .transport(let m): "transport: \(m)"
        case .decoding(let t, let m): "decoding \(t): \(m)"
        case .configuration(let m): "configuration: \(m)"
        case .responseTooLarge(_, let m): "response too large: \(m)"
        case .tooManyRedirects(let m): "too many redirects: \(m)"
        case .pagingLoop(let m): "paging loop: \(m)"
        case .credentials(let m): "credentials: \(m)"
        }
    }

    /// The HTTP status code the error stands for, where there is one.
    public var code: Int? {
        switch self {
        case .notFound: 404
        case .conflict: 409
        case .gone: 410
        case .unauthorized: 401
        case .forbidden: 403
        case .invalid: 422
        case .badRequest: 400
        case .tooManyRequests: 429
        case .timeout: 504
        case .server(let c, _, _): c
        default: nil
        }
    }

    /// Builds the error for an HTTP status and its body (a `Status` when the server sent one).
    public static func from(statusCode: Int, body: Data, retryAfterHeader: String? = nil) -> KubeError {
        let status = try? JSONDecoder().decode(KubeStatus.self, from: body)
        return from(status: status ?? KubeStatus(message: String(decoding: body.prefix(512), as: UTF8.self), code: statusCode),
                    statusCode: statusCode, retryAfterHeader: retryAfterHeader)
    }

    /// Builds the error for a decoded `Status` (also used for watch `ERROR` events).
    public static func from(status: KubeStatus, statusCode: Int? = nil, retryAfterHeader: String? = nil) -> KubeError {
        let code = statusCode ?? status.code ?? 500
        let message = status.message ?? ""
        switch (code, status.reason) {
        case (410, _), (_, "Expired"), (_, "Gone"): return .gone(message: message)
        case (404, _): return .notFound(message: message)
        case (409, _): return .conflict(reason: status.reason ?? "Conflict", message: message)
        case (401, _): return .unauthorized(message: message)
        case (403, _):
            let (verb, resource) = parseForbidden(message)
            return .forbidden(verb: verb, resource: resource, message: message)
        case (422, _): return .invalid(message: message, causes: status.details?.causes ?? [])
        case (400, _): return .badRequest(message: message)
        case (429, _):
            let seconds = retryAfterHeader.flatMap(parseRetryAfter) ?? status.details?.retryAfterSeconds.map(clampRetryAfter)
            return .tooManyRequests(retryAfter: seconds.map { .seconds($0) }, message: message)
        case (504, _), (_, "Timeout"): return .timeout(message: message)
        default: return .server(code: code, reason: status.reason, message: message)
        }
    }

    /// The longest Retry-After taken at its word (one hour); larger values, from a confused or hostile server, are
    /// read as this, and callers give up at their own, smaller `RetryPolicy.maxRetryAfter`.
    public static let maxRetryAfterSeconds = 3600

    /// `Retry-After` in its delay-seconds form (RFC 9110); an HTTP date or anything unparsable is nil.
    static func parseRetryAfter(_ header: String) -> Int? {
        let t = header.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, t.utf8.count <= 32, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        // All digits: only too many of them fails to convert, and that is "very long".
        return clampRetryAfter(Int(t) ?? Int.max)
    }

    static func clampRetryAfter(_ seconds: Int) -> Int { min(max(seconds, 0), maxRetryAfterSeconds) }

    /// The API server words RBAC denials as
    /// `pods "x" is forbidden: User "u" cannot get resource "pods" in API group "" in the namespace "n"`.
    static func parseForbidden(_ message: String) -> (String?, String?) {
        guard let r = message.range(of: "cannot ") else { return (nil, nil) }
        let rest = message[r.upperBound...]
        let verb = rest.split(separator: " ").first.map(String.init)
        var resource: String?
        if let rr = rest.range(of: "resource \"") {
            resource = rest[rr.upperBound...].split(separator: "\"").first.map(String.init)
        }
        return (verb, resource)
    }

    /// True for failures worth retrying for a request that is safe to repeat.
    public var isRetryable: Bool {
        switch self {
        case .tooManyRequests, .timeout, .transport: true
        case .server(let c, _, _): c == 500 || c == 502 || c == 503
        default: false
        }
    }
}
