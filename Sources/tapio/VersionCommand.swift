import ArgumentParser

enum TapioVersion {
    /// Bumped by hand with each release; `tapio version` prints it with the API version it serves.
    static let string = "0.1.0"
    static let apiVersion = "tapio.io/v1alpha1"
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print Tapio's version and the API version it serves.")

    @Option(name: .shortAndLong, help: "Output format: text or json.")
    var output: VersionFormat = .text

    enum VersionFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

    func run() {
        switch output {
        case .text: print("tapio \(TapioVersion.string) (\(TapioVersion.apiVersion))")
        case .json: print(#"{"version":"\#(TapioVersion.string)","apiVersion":"\#(TapioVersion.apiVersion)"}"#)
        }
    }
}
