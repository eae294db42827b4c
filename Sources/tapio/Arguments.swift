import ArgumentParser
import TapioModel

/// A Go-style duration flag value ("100ms", "5m", "1h30m").
struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    var duration: Duration
    init(_ duration: Duration) { self.duration = duration }
    init?(argument: String) {
        guard let d = try? GoDuration.parse(argument), d > .zero else { return nil }
        duration = d
    }
    var description: String { GoDuration.format(duration) }
    var defaultValueDescription: String { description }
}

/// `host:port` to listen on.
struct ListenAddress: ExpressibleByArgument, Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":") else { return nil }
        var host = String(argument[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let port = Int(argument[argument.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }
    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    var defaultValueDescription: String { description }
}

extension Severity: ExpressibleByArgument {
    public init?(argument: String) {
        guard let s = Severity.allCases.first(where: { $0.rawValue.lowercased() == argument.lowercased() }) else {
            return nil
        }
        self = s
    }
    public static var allValueStrings: [String] { allCases.map { $0.rawValue.lowercased() } }
}
