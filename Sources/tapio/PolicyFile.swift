import Foundation
import TapioModel
import Yams

/// Loads a TapioPolicy manifest (YAML or JSON) for `--policy`, refusing it with every problem listed.
enum PolicyFile {
    static func load(_ path: String) throws -> TapioPolicy {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ExitMessage("--policy \(path): cannot read it: \(error.localizedDescription)")
        }
        let policy: TapioPolicy
        do {
            // YAMLDecoder reads JSON too (JSON is YAML's flow style).
            policy = try YAMLDecoder().decode(TapioPolicy.self, from: text)
        } catch {
            throw ExitMessage("--policy \(path): \(FieldError(decoding: error))")
        }
        guard policy.kind == TapioPolicy.kind else {
            throw ExitMessage("--policy \(path): kind is \(policy.kind), expected \(TapioPolicy.kind)")
        }
        let problems = TapioPolicyValidation.validate(policy).filter { $0.level == .error }
        guard problems.isEmpty else {
            throw ExitMessage("--policy \(path) is not valid: " + problems.map(\.description).joined(separator: "; "))
        }
        return policy
    }
}
