import ArgumentParser
import TapioModel

/// A Go-style duration flag value ("100ms", "5m", "1h30m"). Every duration flag has its own range, checked while
/// parsing (`@Option(transform: DurationArgument.parser(…))`), so the error names the flag, the value and the range:
/// `The value '2562047.9h' is invalid for '--window <duration>': must be between 1m and 24h`.
struct DurationArgument: Sendable, CustomStringConvertible {
    var duration: Duration
    init(_ duration: Duration) { self.duration = duration }
    var description: String { GoDuration.format(duration) }

    /// Longest `--duration`: a year (a sleep far beyond it would overflow the clock's arithmetic).
    static let runRange: ClosedRange<Duration> = .milliseconds(1) ... .seconds(365 * 86_400)
    /// Leader-election timings: a lease of a second to an hour, retries of 100 ms to 10 minutes.
    static let leaseRange: ClosedRange<Duration> = .seconds(1) ... .seconds(3_600)
    static let retryRange: ClosedRange<Duration> = .milliseconds(100) ... .seconds(600)
    /// When the agent releases its start-up pages: at once to an hour after start-up.
    static let startupReleaseRange: ClosedRange<Duration> = .zero ... .seconds(3_600)

    static func parser(_ range: ClosedRange<Duration>) -> @Sendable (String) throws -> DurationArgument {
        { text in
            let d: Duration
            do { d = try GoDuration.parse(text) } catch let e as GoDuration.ParseError { throw ArgumentProblem(e.reason) }
            guard range.contains(d) else { throw ArgumentProblem("must be between \(TapioPolicySchema.describe(range))") }
            return DurationArgument(d)
        }
    }
}

/// Why a flag's value was refused (ArgumentParser prints it after "The value 'x' is invalid for '--flag'").
struct ArgumentProblem: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
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
