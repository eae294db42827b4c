import ArgumentParser
import Logging

/// Flags every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Path to a kubeconfig file. Default: $KUBECONFIG (a :-separated list is merged as kubectl merges it), then ~/.kube/config, then the in-cluster service account.",
        valueName: "path"))
    var kubeconfig: String?

    @Option(help: ArgumentHelp("The kubeconfig context to use instead of its current-context.", valueName: "name"))
    var context: String?

    @Option(help: "Minimum level of log messages: trace, debug, info, notice, warning, error or critical.")
    var logLevel: LogLevelArgument = .info

    @Option(help: "Log line format on stderr: text (for people) or json (one object per line, for log collectors).")
    var logFormat: LogFormat = .text
}

enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

struct LogLevelArgument: ExpressibleByArgument, Sendable {
    var level: Logger.Level
    init(level: Logger.Level) { self.level = level }
    init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument.lowercased()) else { return nil }
        self.level = level
    }
    static let info = LogLevelArgument(level: .info)
    static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }
    var defaultValueDescription: String { level.rawValue }
}
