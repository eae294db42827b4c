import Foundation
import NIOSSL

/// Checks of a server URL that Foundation's parser lets through but the HTTP client cannot take: a port outside
/// 1–65535 traps in the socket layer, and a port of many digits made connections hang.
enum ServerURL {
    /// A URL's host without the brackets an IPv6 literal is written in (`[fd00::1]` → `fd00::1`).
    static func unbracketed(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    /// Why `text` is not a usable API server URL, or nil when it is.
    static func problem(_ text: String) -> String? {
        guard let schemeEnd = text.range(of: "://") else { return "not an http(s) URL: \(text.prefix(256))" }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "https" || scheme == "http" else { return "not an http(s) URL: \(text.prefix(256))" }
        let rest = text[schemeEnd.upperBound...]
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let host: Substring
        var port: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return "unterminated IPv6 address: \(authority.prefix(256))" }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { port = after.dropFirst() } else if !after.isEmpty {
                return "unexpected text after the IPv6 address: \(after.prefix(256))"
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { return "no host in \(text.prefix(256))" }
        if let port, !port.isEmpty {
            guard port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return "port \(port.prefix(32)) is not a number" }
            // At most 5 digits converts without overflow; anything longer is out of range anyway.
            guard port.utf8.count <= 5, let n = Int(port), (1...65535).contains(n) else {
                return "port \(port.prefix(32)) is out of range (1–65535)"
            }
        }
        guard let url = URL(string: normalized(text)), url.host != nil else { return "not an http(s) URL: \(text.prefix(256))" }
        return nil
    }

    /// Why `name` cannot be a TLS server name, or nil when it can: a DNS name (labels of 1–63 letters, digits and
    /// hyphens, not starting or ending with one, 253 characters at most) or an IP address.
    static func serverNameProblem(_ name: String) -> String? {
        let shown = "\"\(name.prefix(253))\""
        if ProxyEndpoint.IP(name) != nil { return nil }
        let name = canonicalName(name)
        guard name.utf8.count <= 253 else { return "\(shown)… is longer than a DNS name can be (253 characters)" }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            let ok = !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
            if !ok { return "\(shown) is not a DNS name or an IP address" }
        }
        return nil
    }

    /// Why a `tls-server-name` cannot be used (for an error that names its field).
    struct ServerNameProblem: Error { let message: String }

    /// What a cluster's `tls-server-name` asks of TLS over `server`: nil when nothing — the server's own host (case, a
    /// trailing dot and an address's spelling aside, as Go's client compares), or a plain-http server — else the name
    /// in canonical form. The TLS layer checks a certificate against a name it is given, but against an address only
    /// as the one it connected to: another IP address is refused, as is a name that is no DNS name.
    static func tlsServerName(_ name: String, server: URL) throws(ServerNameProblem) -> String? {
        guard server.scheme == "https", let host = server.host, !sameHost(name, unbracketed(host)) else { return nil }
        if let why = serverNameProblem(name) { throw ServerNameProblem(message: why) }
        guard ProxyEndpoint.IP(name) == nil else {
            throw ServerNameProblem(message: "\"\(name.prefix(64))\" is an IP address other than the server's host: "
                + "Tapio checks a certificate against another name only when it is a DNS name; point server at that address")
        }
        return canonicalName(name)
    }

    /// A DNS name as TLS compares it: lower case, without the trailing dot of a fully qualified name.
    static func canonicalName(_ name: String) -> String {
        var lower = name.lowercased()
        if lower.hasSuffix("."), lower.count > 1 { lower.removeLast() }
        return lower
    }

    /// Whether two hosts are one: the same IP address however written, or the same DNS name.
    static func sameHost(_ a: String, _ b: String) -> Bool {
        if let x = ProxyEndpoint.IP(a), let y = ProxyEndpoint.IP(b) { return x.bytes == y.bytes }
        return canonicalName(a) == canonicalName(b)
    }

    /// `text` with its scheme in lower case (`HTTPS://` → `https://`), as Go's URL parser reads it.
    static func normalized(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else { return text }
        return text[..<schemeEnd.lowerBound].lowercased() + text[schemeEnd.lowerBound...]
    }
}

/// PEM material as the TLS layer takes it; nil when the bytes hold no certificate (or key).
enum PEM {
    static func certificates(_ bytes: [UInt8]) -> [NIOSSLCertificate]? {
        // Only text with a PEM header reaches the parser: it is the one that must fail, not crash, on the rest.
        guard looksLikePEM(bytes), let certs = try? NIOSSLCertificate.fromPEMBytes(bytes), !certs.isEmpty else { return nil }
        return certs
    }

    static func privateKey(_ bytes: [UInt8]) -> NIOSSLPrivateKey? {
        guard looksLikePEM(bytes) else { return nil }
        return try? NIOSSLPrivateKey(bytes: bytes, format: .pem)
    }

    /// Whether `key` is the private key of the first certificate of `chain` (the one a TLS client presents): a TLS
    /// context takes the pair only then. Checked before use, so a mismatch is named where it was written rather than
    /// failing every connection.
    static func belongTogether(_ chain: [NIOSSLCertificate], _ key: NIOSSLPrivateKey) -> Bool {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([])  // not the system's: reading them is the slow part, and not checked here
        tls.certificateChain = chain.map { .certificate($0) }
        tls.privateKey = .privateKey(key)
        return (try? NIOSSLContext(configuration: tls)) != nil
    }

    static func looksLikePEM(_ bytes: [UInt8]) -> Bool {
        let marker = Array("-----BEGIN ".utf8)
        guard bytes.count >= marker.count else { return false }
        return (0...(bytes.count - marker.count)).contains { i in bytes[i..<(i + marker.count)].elementsEqual(marker) }
    }
}

/// Checks of a bearer token (the kubeconfig's, a token file's, an exec plugin's) before it goes in a header.
enum BearerToken {
    /// Why `token` cannot be sent, or nil when it can. A control character (a line break, a NUL, a tab) is no part of
    /// a token, and the HTTP client refuses the header with an error that quotes it — the whole token — into log
    /// lines. Says where, never what the token is.
    static func problem(_ token: String) -> String? {
        guard let i = token.utf8.firstIndex(where: { $0 < 0x20 || $0 == 0x7f }) else { return nil }
        let at = token.utf8.distance(from: token.utf8.startIndex, to: i)
        return "contains a control character (byte \(at + 1) of \(token.utf8.count)), which cannot be sent in a header"
    }

    /// A token file's text as it is sent: without the line break and spaces around it that editors and `echo` add.
    static func fromFile(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }
}
