/// One problem with one field of an API object, shaped like the Kubernetes API server's `field.Error` so that
/// people read the same kind of message from `tapio`, the operator's status and `kubectl apply`:
///
///     spec.remediation.mode: Unsupported value: "Sometimes": supported values: "Off", "Suggest", "DryRun", "Apply"
///
/// `path` is the dotted field path (`spec.probes.memory.samplingHz`, list items as `spec.x[2]`).
public struct FieldError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem; the raw value is the API server's wording.
    public enum ErrorType: String, Sendable, Hashable, CaseIterable {
        case required = "Required value"
        case invalid = "Invalid value"
        case unsupported = "Unsupported value"
        case forbidden = "Forbidden"
        case tooLong = "Too long"
        case tooMany = "Too many"
        case duplicate = "Duplicate value"

        /// The `StatusCause.reason` the API server reports for this type (`FieldValueNotSupported`, …).
        public var statusCauseReason: String {
            switch self {
            case .required: "FieldValueRequired"
            case .invalid: "FieldValueInvalid"
            case .unsupported: "FieldValueNotSupported"
            case .forbidden: "FieldValueForbidden"
            case .tooLong: "FieldValueTooLong"
            case .tooMany: "FieldValueTooMany"
            case .duplicate: "FieldValueDuplicate"
            }
        }
    }

    /// Errors make an object unacceptable; warnings are accepted but probably not what the author meant
    /// (the API server's "warnings" in a response).
    public enum Level: String, Sendable, Hashable {
        case error
        case warning
    }

    public var path: String
    public var type: ErrorType
    /// The offending value, already rendered the way the API server renders it (strings quoted, numbers bare);
    /// nil where the type carries no value (`Required value`, `Forbidden`).
    public var value: String?
    /// What is wrong and what is allowed.
    public var detail: String
    public var level: Level

    public init(path: String, type: ErrorType, value: String? = nil, detail: String = "", level: Level = .error) {
        self.path = path
        self.type = type
        self.value = value
        self.detail = detail
        self.level = level
    }

    /// The message without the path: `Unsupported value: "Sometimes": supported values: …` (a StatusCause message).
    public var message: String {
        var s = type.rawValue
        if let value { s += ": " + value }
        if !detail.isEmpty { s += ": " + detail }
        return s
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }

    // MARK: Convenience constructors mirroring k8s.io/apimachinery/pkg/util/validation/field.

    public static func required(_ path: String, _ detail: String = "") -> FieldError {
        FieldError(path: path, type: .required, detail: detail)
    }
    public static func invalid(_ path: String, _ value: String, _ detail: String) -> FieldError {
        FieldError(path: path, type: .invalid, value: value, detail: detail)
    }
    public static func unsupported(_ path: String, _ value: String, supported: [String]) -> FieldError {
        FieldError(path: path, type: .unsupported, value: value,
                   detail: "supported values: " + supported.map(quoted).joined(separator: ", "))
    }
    public static func forbidden(_ path: String, _ detail: String) -> FieldError {
        FieldError(path: path, type: .forbidden, detail: detail)
    }

    /// Renders a string value the way Go's `%q` does for plain text: in double quotes, with `"` and `\` escaped.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for ch in s {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.append(ch)
            }
        }
        return out + "\""
    }
}

extension [FieldError] {
    /// Only the problems that make the object unacceptable.
    public var errors: [FieldError] { filter { $0.level == .error } }
    /// Only the warning-level problems.
    public var warnings: [FieldError] { filter { $0.level == .warning } }
}
