import ArgumentParser
import Foundation

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
    var file: String

    @Option(help: ArgumentHelp("A TapioPolicy manifest whose correlation settings apply.", valueName: "file"))
    var policy: String?

    func validate() throws {
        if file != "-", !FileManager.default.isReadableFile(atPath: file) {
            throw ValidationError("\(file): no readable file there.")
        }
        if let p = policy, !FileManager.default.isReadableFile(atPath: p) {
            throw ValidationError("--policy \(p): no readable file there.")
        }
    }

    func run() async throws {
        LoggingSetup.bootstrap(global)
        try ReplayRunner(command: self).run()
    }
}
