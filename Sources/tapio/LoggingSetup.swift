import Foundation
import Logging
import Synchronization
import TapioModel

/// Installs the process-wide log handler once, from the common flags.
enum LoggingSetup {
    private static let done = Atomic<Bool>(false)

    static func bootstrap(_ options: GlobalOptions) {
        guard !done.exchange(true, ordering: .relaxed) else { return }
        let level = options.logLevel.level
        switch options.logFormat {
        case .text:
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var h = JSONLogHandler(label: label)
                h.logLevel = level
                return h
            }
        }
    }
}

/// One JSON object per log line on stderr: `{"ts":…,"level":…,"logger":…,"msg":…, …metadata}`.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var object: [String: String] = [
            "ts": Date().formatted(.iso8601),
            "level": event.level.rawValue,
            "logger": label,
            "msg": "\(event.message)",
        ]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { object[k] = "\(v)" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(object) else { return }
        data.append(0x0A)
        StandardStream.error.write(Array(data))
    }
}
