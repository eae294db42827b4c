import Foundation

/// How the client reaches the API server: through the kubeconfig cluster's `proxy-url`, through the environment's
/// proxy (`HTTPS_PROXY` and `NO_PROXY`, client-go's default), or directly.
public enum ProxySetting: Sendable, Equatable {
    /// `HTTPS_PROXY`/`https_proxy` for an `https` server (`HTTP_PROXY`/`http_proxy` for `http`), unless `NO_PROXY`
    /// names the server or it is on a loopback address — the rules of Go's `http.ProxyFromEnvironment`.
    case environment
    /// A kubeconfig's `proxy-url`: every request goes through it.
    case url(URL)
    /// Directly.
    case none
}

/// A proxy Tapio can use: an HTTP proxy (`CONNECT`, with basic auth from the URL's user and password) or SOCKS5.
public struct ProxyEndpoint: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case http, socks5 }
    public var kind: Kind
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?

    /// Reads a proxy URL (`http://proxy:3128`, `socks5://proxy:1080`; without a scheme, `http` as Go assumes);
    /// nil and the reason when Tapio cannot use it. `source` names where it came from, for the reason.
    public static func parse(_ text: String) -> Result<ProxyEndpoint, ProxyProblem> {
        let withScheme = text.contains("://") ? text : "http://" + text
        guard let comps = URLComponents(string: withScheme), let scheme = comps.scheme?.lowercased(),
              let host = comps.host, !host.isEmpty else {
            return .failure(ProxyProblem("not a proxy URL: \(text.prefix(256))"))
        }
        let kind: Kind
        switch scheme {
        case "http": kind = .http
        case "socks5", "socks5h": kind = .socks5
        case "https": return .failure(ProxyProblem("an https:// proxy (TLS to the proxy) is not supported; use http:// (CONNECT) or socks5://"))
        default: return .failure(ProxyProblem("proxy scheme \"\(scheme.prefix(20))\" is not supported; use http:// or socks5://"))
        }
        let port = comps.port ?? (kind == .http ? 80 : 1080)
        guard (1...65535).contains(port) else { return .failure(ProxyProblem("proxy port \(port) is out of range (1–65535)")) }
        if kind == .socks5 && comps.user != nil {
            return .failure(ProxyProblem("a SOCKS5 proxy with a user name and password is not supported"))
        }
        // IPv6 literals come back bracketed from URLComponents.
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return .success(ProxyEndpoint(kind: kind, host: bare, port: port, username: comps.user, password: comps.password))
    }

    /// The environment's proxy for `server`, or nil to go directly (Go's `httpproxy.Config.ProxyFunc`): none for
    /// loopback hosts or a `NO_PROXY` match; the upper-case variable before the lower-case one.
    public static func fromEnvironment(for server: URL, environment: [String: String]) -> (variable: String, value: String)? {
        func any(_ names: String...) -> (String, String)? {
            for n in names { if let v = environment[n], !v.isEmpty { return (n, v) } }
            return nil
        }
        let secure = server.scheme?.lowercased() == "https"
        guard let proxy = secure ? any("HTTPS_PROXY", "https_proxy") : any("HTTP_PROXY", "http_proxy"),
              let host = server.host?.lowercased() else { return nil }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare == "localhost" || isLoopback(bare) { return nil }
        let port = server.port ?? (secure ? 443 : 80)
        if let noProxy = any("NO_PROXY", "no_proxy")?.1, bypasses(host: bare, port: port, noProxy: noProxy) { return nil }
        return proxy
    }

    static func isLoopback(_ host: String) -> Bool {
        if let v4 = IPv4(host) { return v4.octets[0] == 127 }
        return host == "::1" || host == "0:0:0:0:0:0:0:1"
    }

    /// Whether `NO_PROXY` names the host: `*`; an IP or an IPv4 CIDR; a domain (`example.com` covers it and its
    /// subdomains, `.example.com` and `*.example.com` only the subdomains), optionally with `:port`.
    static func bypasses(host: String, port: Int, noProxy: String) -> Bool {
        for raw in noProxy.split(separator: ",") {
            var entry = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if entry.isEmpty { continue }
            if entry == "*" { return true }
            if let slash = entry.firstIndex(of: "/") {
                // A CIDR: IPv4 only here (IPv6 ranges are matched as exact addresses below when written as one).
                if let net = IPv4(String(entry[..<slash])), let bits = Int(entry[entry.index(after: slash)...]),
                   (0...32).contains(bits), let ip = IPv4(host) {
                    let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
                    if ip.value & mask == net.value & mask { return true }
                }
                continue
            }
            if entry == host { return true }
            // host:port
            var entryPort: Int?
            if let colon = entry.lastIndex(of: ":"), !entry.hasPrefix("["), entry.filter({ $0 == ":" }).count == 1,
               let p = Int(entry[entry.index(after: colon)...]) {
                entryPort = p
                entry = String(entry[..<colon])
            }
            if IPv4(entry) != nil || entry.contains(":") {
                if entry.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) == host, entryPort.map({ $0 == port }) ?? true { return true }
                continue
            }
            if entry.hasPrefix("*.") { entry.removeFirst() }
            let subdomainsOnly = entry.hasPrefix(".")
            let suffix = subdomainsOnly ? entry : "." + entry
            if host.hasSuffix(suffix) || (!subdomainsOnly && host == entry) {
                if entryPort.map({ $0 == port }) ?? true { return true }
            }
        }
        return false
    }

    struct IPv4 {
        var octets: [UInt8]
        var value: UInt32 { octets.reduce(0) { $0 << 8 | UInt32($1) } }
        init?(_ text: String) {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var o: [UInt8] = []
            for p in parts {
                guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let v = UInt8(p) else { return nil }
                o.append(v)
            }
            octets = o
        }
    }
}

/// Why a proxy setting cannot be used.
public struct ProxyProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
