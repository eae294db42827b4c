import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How the client reaches the API server: through the kubeconfig cluster's `proxy-url`, through the environment's
/// proxy (`HTTPS_PROXY` and `NO_PROXY`, client-go's default), or directly.
public enum ProxySetting: Sendable, Equatable {
    /// `HTTPS_PROXY`/`https_proxy` for an `https` server (`HTTP_PROXY`/`http_proxy` for `http`), unless `NO_PROXY`
    /// names the server or it is on a loopback address — the rules of Go's `http.ProxyFromEnvironment`.
    case environment
    /// A kubeconfig's `proxy-url`, as written there (``ProxyEndpoint/parse(_:)`` reads it): every request goes
    /// through it.
    case url(String)
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
        return .success(ProxyEndpoint(kind: kind, host: ServerURL.unbracketed(host), port: port, username: comps.user,
                                      password: comps.password))
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
        let bare = ServerURL.unbracketed(host)
        if bare == "localhost" || isLoopback(bare) { return nil }
        let port = server.port ?? (secure ? 443 : 80)
        if let noProxy = any("NO_PROXY", "no_proxy")?.1, bypasses(host: bare, port: port, noProxy: noProxy) { return nil }
        return proxy
    }

    static func isLoopback(_ host: String) -> Bool {
        guard let ip = IP(host) else { return false }
        return ip.v4.map { $0[0] == 127 } ?? (ip.bytes == [UInt8](repeating: 0, count: 15) + [1])
    }

    /// Whether `NO_PROXY` names the host (Go's `httpproxy` rules): `*`; an IP or a CIDR, IPv4 or IPv6; a domain
    /// (`example.com` covers it and its subdomains, `.example.com` and `*.example.com` only the subdomains); any of
    /// them with `:port` (`[fd00::1]:6443` for an IPv6 address).
    static func bypasses(host: String, port: Int, noProxy: String) -> Bool {
        let hostIP = IP(host)
        for raw in noProxy.split(separator: ",") {
            var entry = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            if entry.isEmpty { continue }
            if entry == "*" { return true }
            if let slash = entry.firstIndex(of: "/") {
                if let net = IP(String(entry[..<slash])), let bits = Int(entry[entry.index(after: slash)...]),
                   let ip = hostIP, ip.contains(in: net, prefix: bits) { return true }
                continue
            }
            // An address (IPv6 in brackets when it has a port), or a name, with an optional port.
            var entryPort: Int?
            if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
                let rest = entry[entry.index(after: close)...]
                if rest.hasPrefix(":") { entryPort = Int(rest.dropFirst()) }
                entry = String(entry[entry.index(after: entry.startIndex)..<close])
            } else if entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") {
                entryPort = Int(entry[entry.index(after: colon)...])
                entry = String(entry[..<colon])
            }
            let portMatches = entryPort.map { $0 == port } ?? true
            if let ip = IP(entry) {
                if let h = hostIP, h.bytes == ip.bytes, portMatches { return true }
                continue
            }
            if entry.hasPrefix("*.") { entry.removeFirst() }
            let subdomainsOnly = entry.hasPrefix(".")
            let suffix = subdomainsOnly ? entry : "." + entry
            if host.hasSuffix(suffix) || (!subdomainsOnly && host == entry), portMatches { return true }
        }
        return false
    }

    /// An IPv4 or IPv6 address as 16 bytes (IPv4 mapped), as `inet_pton` reads it.
    struct IP {
        var bytes: [UInt8]
        /// The IPv4 address, for one written as IPv4 or mapped (`::ffff:127.0.0.1`).
        var v4: [UInt8]? { bytes.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] ? Array(bytes.suffix(4)) : nil }
        let writtenAsV4: Bool

        init?(_ text: String) {
            var v4 = in_addr(), v6 = in6_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + withUnsafeBytes(of: &v4) { Array($0) }
                writtenAsV4 = true
            } else if inet_pton(AF_INET6, text, &v6) == 1 {
                bytes = withUnsafeBytes(of: &v6) { Array($0) }
                writtenAsV4 = false
            } else {
                return nil
            }
        }

        /// Whether this address is in `net`/`prefix` (a prefix counts IPv4 bits for an IPv4 network).
        func contains(in net: IP, prefix: Int) -> Bool {
            // Checked before the sum: a prefix near Int.max from NO_PROXY overflowed it and killed the process.
            guard (net.writtenAsV4 ? 0...32 : 0...128).contains(prefix) else { return false }
            let bits = net.writtenAsV4 ? prefix + 96 : prefix
            var left = bits
            for i in 0..<16 where left > 0 {
                let take = min(8, left)
                let mask: UInt8 = take == 8 ? 0xff : ~UInt8(0xff >> take)
                if bytes[i] & mask != net.bytes[i] & mask { return false }
                left -= take
            }
            return true
        }
    }
}

/// Why a proxy setting cannot be used.
public struct ProxyProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
