import Foundation
import TapioAgent
import TapioCorrelation
import TapioSinks

/// `tapio replay FILE`: a scenario through the engine at full speed, each insight update as one JSON line.
struct ReplayRunner {
    let command: ReplayCommand

    func run() throws {
        var config: CorrelationConfig?
        if let p = command.policy {
            config = EffectiveConfig.merge([try PolicyFile.load(p)]).correlation
            // A scenario may span nodes: group systemic failures by image and namespace too, as the engine's default.
            config?.clusterHealthByNodeOnly = false
        }
        let updates: [InsightUpdate]
        do {
            if command.file == "-" {
                let data = FileHandle.standardInput.readDataToEndOfFile()
                updates = try ScenarioReplay.run(text: String(decoding: data, as: UTF8.self), config: config)
            } else {
                updates = try ScenarioReplay.run(fileURL: URL(fileURLWithPath: command.file), config: config)
            }
        } catch {
            throw ExitMessage("\(command.file): \(error)")
        }
        var out = ""
        for u in updates { out += JSONLines.encode(u, replay: true) + "\n" }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
