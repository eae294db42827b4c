import Foundation

/// Paths of files in the repository, found from this source file so tests run from any working directory.
enum RepoFiles {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TapioModelTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repo root

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func text(_ relative: String) throws -> String { try String(contentsOfFile: path(relative), encoding: .utf8) }

    static let policyCRD = "crds/tapio.io_tapiopolicies.yaml"
    static let insightCRD = "crds/tapio.io_insights.yaml"
}
