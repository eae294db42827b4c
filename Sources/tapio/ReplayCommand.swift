import ArgumentParser
import Foundation
import TapioCorrelation

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a recorded scenario (JSON lines of node and cluster events) through the correlation engine.",
        discussion: """
            Runs at full speed on the scenario's virtual time and prints each insight update as one JSON line. \
            The file format is documented in Tests/Scenarios/FORMAT.md.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The scenario file (.jsonl); - reads standard input.", valueName: "file"))
    var file: String?

    @Option(help: ArgumentHelp(
        "Score the OOM predictions on every labelled scenario in this directory (e.g. Tests/Scenarios/quality) and print the table.",
        valueName: "dir"))
    var score: String?

    @Option(help: ArgumentHelp("A TapioPolicy manifest whose correlation settings apply.", valueName: "file"))
    var policy: String?

    func validate() throws {
        if let d = score {
            guard file == nil, policy == nil else { throw ValidationError("--score takes no scenario file and no --policy.") }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: d, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("--score \(d): no directory there.")
            }
            return
        }
        guard let file else { throw ValidationError("Missing expected argument '<file>' (or --score DIR).") }
        if file != "-", !FileManager.default.isReadableFile(atPath: file) {
            throw ValidationError("\(file): no readable file there.")
        }
        if let p = policy, !FileManager.default.isReadableFile(atPath: p) {
            throw ValidationError("--policy \(p): no readable file there.")
        }
    }

    func run() async throws {
        LoggingSetup.bootstrap(global)
        if let d = score {
            do {
                let summary = try PredictionScore.scoreDirectory(URL(fileURLWithPath: d))
                print(PredictionScore.report(summary))
            } catch let e as PredictionScore.FileError {
                throw ExitMessage("\(d)/\(e)")
            }
            return
        }
        try ReplayRunner(command: self).run()
    }
}
