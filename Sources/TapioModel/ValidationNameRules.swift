/// Kubernetes name and label syntax (k8s.io/apimachinery/pkg/util/validation), each returning nil when valid or a
/// sentence saying what is allowed.
public enum NameRules {
    /// The CRD pattern of an RFC 1123 label (namespace names).
    public static let dns1123LabelPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    /// The CRD pattern of a label value (``labelValueProblem(_:)``; the length, 63, is the CRD's `maxLength`).
    public static let labelValuePattern = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
    /// The CRD pattern of a label key (``labelKeyProblem(_:)``): an optional DNS-subdomain prefix and a slash, then a
    /// name of 1–63 characters. A pattern cannot bound the prefix to 253 characters; validation does, and the CRD's
    /// `maxLength` (317) bounds the whole.
    public static let labelKeyPattern = #"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"#

    static func isAlnum(_ u: Unicode.Scalar) -> Bool { (u >= "a" && u <= "z") || (u >= "0" && u <= "9") }
    static func isAlnumMixed(_ u: Unicode.Scalar) -> Bool { isAlnum(u) || (u >= "A" && u <= "Z") }

    /// RFC 1123 label (namespace names): ≤ 63, lower-case alphanumerics and '-', alphanumeric at both ends.
    public static func dns1123LabelProblem(_ s: String) -> String? {
        let u = Array(s.unicodeScalars)
        if u.isEmpty || u.count > 63 { return "must be 1 to 63 characters" }
        if !u.allSatisfy({ isAlnum($0) || $0 == "-" }) || !isAlnum(u.first!) || !isAlnum(u.last!) {
            return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')"
        }
        return nil
    }

    /// RFC 1123 subdomain (most object names): ≤ 253, dot-separated labels.
    public static func dns1123SubdomainProblem(_ s: String) -> String? {
        if s.isEmpty || s.unicodeScalars.count > 253 { return "must be 1 to 253 characters" }
        let ok = s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let u = Array(label.unicodeScalars)
            return !u.isEmpty && u.allSatisfy { isAlnum($0) || $0 == "-" } && isAlnum(u.first!) && isAlnum(u.last!)
        }
        return ok ? nil : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
    }

    /// Label or annotation key: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63 of `[A-Za-z0-9_.-]` starting and
    /// ending alphanumeric.
    public static func labelKeyProblem(_ k: String) -> String? {
        let parts = k.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        var name = Substring(k)
        if parts.count == 2 {
            if let why = dns1123SubdomainProblem(String(parts[0])) { return "prefix part \(why)" }
            name = parts[1]
        }
        if name.isEmpty || name.unicodeScalars.count > 63 { return "name part must be 1 to 63 characters" }
        if !qualifiedNameChars(name) {
            return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', 'my.name', or '123-abc')"
        }
        return nil
    }

    /// Label value: empty, or ≤ 63 of `[A-Za-z0-9_.-]` starting and ending alphanumeric.
    public static func labelValueProblem(_ v: String) -> String? {
        if v.isEmpty { return nil }
        if v.unicodeScalars.count > 63 { return "must be no more than 63 characters" }
        if !qualifiedNameChars(Substring(v)) {
            return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        }
        return nil
    }

    static func qualifiedNameChars(_ s: Substring) -> Bool {
        let u = Array(s.unicodeScalars)
        guard let f = u.first, let l = u.last else { return false }
        return isAlnumMixed(f) && isAlnumMixed(l) && u.allSatisfy { isAlnumMixed($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }
}
