import Foundation

/// Checks a `TapioPolicy` beyond what its CRD schema can say (parsable durations and quantities, known action
/// names, selector operator rules, cross-field sense) and reports every problem at once.
///
///     let problems = TapioPolicyValidation.validate(policy)
///     if !problems.errors.isEmpty { /* reject; each has .path and .description */ }
///
/// The operator writes these into the policy's `Accepted` condition; `tapio sniff --policy` prints them.
public enum TapioPolicyValidation {
    /// Every problem with the policy, errors and warnings, in field order.
    public static func validate(_ policy: TapioPolicy) -> [FieldError] {
        var errs: [FieldError] = []
        if policy.apiVersion != TapioPolicy.apiVersion {
            errs.append(.unsupported("apiVersion", FieldError.quoted(policy.apiVersion), supported: [TapioPolicy.apiVersion]))
        }
        if policy.kind != TapioPolicy.kind {
            errs.append(.unsupported("kind", FieldError.quoted(policy.kind), supported: [TapioPolicy.kind]))
        }
        if let name = policy.metadata.name, !name.isEmpty {
            if let why = NameRules.dns1123SubdomainProblem(name) {
                errs.append(.invalid("metadata.name", FieldError.quoted(name), why))
            }
        } else {
            errs.append(.required("metadata.name", "a TapioPolicy needs a name"))
        }
        if let ns = policy.metadata.namespace, !ns.isEmpty {
            errs.append(.forbidden("metadata.namespace", "TapioPolicy is cluster-scoped; remove namespace \(FieldError.quoted(ns))"))
        }
        errs += validate(policy.spec, path: "spec")
        return errs
    }

    /// Every problem with a spec; `path` prefixes the field paths.
    public static func validate(_ spec: TapioPolicySpec, path: String = "spec") -> [FieldError] {
        var errs: [FieldError] = spec.decodingProblems
        if let s = spec.selector.namespaceSelector { errs += validate(s, path: "\(path).selector.namespaceSelector") }
        if let s = spec.selector.podSelector { errs += validate(s, path: "\(path).selector.podSelector") }
        if let s = spec.nodeSelector { errs += validate(s, path: "\(path).nodeSelector") }

        // Probes.
        let m = spec.probes.memory
        let hz = MemoryProbe.samplingHzRange
        if !hz.contains(m.samplingHz) {
            errs.append(.invalid("\(path).probes.memory.samplingHz", String(m.samplingHz),
                                 "must be between \(hz.lowerBound) and \(hz.upperBound) samples per second (default \(MemoryProbe.defaultSamplingHz))"))
        }
        errs += quantity(m.leakThreshold, path: "\(path).probes.memory.leakThreshold", what: "growth per hour",
                         range: MemoryProbe.leakThresholdRange)
        let p = spec.probes
        if !p.memory.enabled && !p.oom.enabled && !p.process.enabled && !p.network.enabled {
            errs.append(FieldError(path: "\(path).probes", type: .invalid, value: "all disabled",
                                   detail: "every probe is disabled, so this policy can only produce insights from the Kubernetes API; enable at least one probe if that is not intended",
                                   level: .warning))
        }

        // Correlation.
        let c = spec.correlation
        let bs = CorrelationSettings.batchSizeRange
        if !bs.contains(c.batchSize) {
            errs.append(.invalid("\(path).correlation.batchSize", String(c.batchSize),
                                 "must be between \(bs.lowerBound) and \(bs.upperBound) events (default 100)"))
        }
        _ = duration(c.batchTimeout, path: "\(path).correlation.batchTimeout", range: CorrelationSettings.batchTimeoutRange,
                          into: &errs)
        // No cross-check is needed: the longest batch timeout (1m) is the shortest window, so no batch outlives one.
        _ = duration(c.window, path: "\(path).correlation.window", range: CorrelationSettings.windowRange, into: &errs)

        // Insights.
        _ = duration(spec.insights.resolveAfter, path: "\(path).insights.resolveAfter", range: InsightSettings.resolveAfterRange,
                     into: &errs)
        _ = duration(spec.insights.ttl, path: "\(path).insights.ttl", range: InsightSettings.ttlRange, into: &errs)

        // Remediation.
        let r = spec.remediation
        let rp = "\(path).remediation"
        errs += tooMany("\(rp).allowedActions", r.allowedActions.count, max: RemediationSettings.maxAllowedActions)
        errs += tooMany("\(rp).namespaces", r.namespaces.count, max: RemediationSettings.maxNamespaces)
        var seenActions = Set<String>()
        for (i, a) in r.allowedActions.prefix(RemediationSettings.maxAllowedActions).enumerated() {
            if !RemediationActionName.known.contains(a) {
                errs.append(.unsupported("\(rp).allowedActions[\(i)]", FieldError.quoted(a), supported: RemediationActionName.known))
            } else if !seenActions.insert(a).inserted {
                errs.append(FieldError(path: "\(rp).allowedActions[\(i)]", type: .duplicate, value: FieldError.quoted(a)))
            }
        }
        var seenNS = Set<String>()
        for (i, ns) in r.namespaces.prefix(RemediationSettings.maxNamespaces).enumerated() {
            if let why = NameRules.dns1123LabelProblem(ns) {
                errs.append(.invalid("\(rp).namespaces[\(i)]", FieldError.quoted(ns), "not a namespace name: \(why)"))
            } else if !seenNS.insert(ns).inserted {
                errs.append(FieldError(path: "\(rp).namespaces[\(i)]", type: .duplicate, value: FieldError.quoted(ns)))
            }
        }
        let mr = RemediationSettings.maxActionsPerHourRange
        if !mr.contains(r.maxActionsPerHour) {
            errs.append(.invalid("\(rp).maxActionsPerHour", String(r.maxActionsPerHour),
                                 "must be between \(mr.lowerBound) and \(mr.upperBound) (default 10)"))
        }
        if let ceiling = r.memoryCeiling {
            errs += quantity(ceiling, path: "\(rp).memoryCeiling", what: "memory limit", range: RemediationSettings.memoryCeilingRange)
        }
        // DryRun too sends only what allowedActions lists (a dry run still runs admission webhooks).
        if (r.mode == .apply || r.mode == .dryRun) && r.allowedActions.isEmpty {
            errs.append(FieldError(path: "\(rp).allowedActions", type: .required,
                                   detail: "mode is \(r.mode.rawValue) but no action is allowed, so nothing will be \(r.mode == .apply ? "applied" : "dry-run"); list actions from \(RemediationActionName.known.joined(separator: ", ")) or use mode Suggest",
                                   level: .warning))
        }
        if r.mode == .apply {
            if r.maxActionsPerHour == 0 {
                errs.append(FieldError(path: "\(rp).maxActionsPerHour", type: .invalid, value: "0",
                                       detail: "mode is Apply but the hourly cap is 0, so nothing will be applied",
                                       level: .warning))
            }
            if r.allowedActions.contains(RemediationActionName.increaseMemoryLimit.rawValue) && r.memoryCeiling == nil {
                errs.append(FieldError(path: "\(rp).memoryCeiling", type: .required,
                                       detail: "IncreaseMemoryLimit may be applied without a ceiling; set memoryCeiling (e.g. \"4Gi\") to bound it",
                                       level: .warning))
            }
        }
        return errs
    }

    /// Problems with a label selector: label key/value syntax and operator rules.
    public static func validate(_ s: PolicyLabelSelector, path: String) -> [FieldError] {
        var errs: [FieldError] = []
        // Sizes first: past them the entries are not looked at one by one (a 20,000-key selector gets one error).
        let labels = s.matchLabels ?? [:], expressions = s.matchExpressions ?? []
        errs += tooMany("\(path).matchLabels", labels.count, max: TapioPolicySchema.maxMatchLabels)
        errs += tooMany("\(path).matchExpressions", expressions.count, max: TapioPolicySchema.maxMatchExpressions)
        for (i, e) in expressions.prefix(TapioPolicySchema.maxMatchExpressions).enumerated() {
            errs += tooMany("\(path).matchExpressions[\(i)].values", e.values?.count ?? 0, max: TapioPolicySchema.maxSelectorValues)
        }
        guard errs.isEmpty else { return errs }
        for k in labels.keys.sorted() {
            if let why = NameRules.labelKeyProblem(k) {
                errs.append(.invalid("\(path).matchLabels", FieldError.quoted(k), why))
            }
            if let v = s.matchLabels?[k], let why = NameRules.labelValueProblem(v) {
                errs.append(.invalid("\(path).matchLabels.\(k)", FieldError.quoted(v), why))  // the API server's path
            }
        }
        for (i, e) in (s.matchExpressions ?? []).enumerated() {
            let ep = "\(path).matchExpressions[\(i)]"
            if let why = NameRules.labelKeyProblem(e.key) {
                errs.append(.invalid("\(ep).key", FieldError.quoted(e.key), why))
            }
            let values = e.values ?? []
            switch e.operator {
            case "In", "NotIn":
                if values.isEmpty {
                    errs.append(.required("\(ep).values", "must be specified when `operator` is 'In' or 'NotIn'"))
                }
                for (j, v) in values.enumerated() {
                    if let why = NameRules.labelValueProblem(v) {
                        errs.append(.invalid("\(ep).values[\(j)]", FieldError.quoted(v), why))
                    }
                }
            case "Exists", "DoesNotExist":
                if !values.isEmpty {
                    errs.append(.forbidden("\(ep).values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist' (got \(values.count) values)"))
                }
            default:
                errs.append(.unsupported("\(ep).operator", FieldError.quoted(e.operator), supported: LabelSelectorRequirement.operators))
            }
        }
        if errs.isEmpty, let why = s.contradiction {
            errs.append(FieldError(path: path, type: .invalid, value: "conflicting requirements", detail: why))
        }
        return errs
    }

    static func tooMany(_ path: String, _ count: Int, max: Int) -> [FieldError] {
        count > max ? [FieldError(path: path, type: .tooMany, value: String(count), detail: "must have at most \(max) items")] : []
    }

    static func tooLong(_ text: String, path: String) -> FieldError? {
        let max = TapioPolicySchema.maxScalarLength
        // Counted in characters (runes) but worded in bytes, exactly as the API server does for maxLength.
        guard text.unicodeScalars.count > max else { return nil }
        return FieldError(path: path, type: .tooLong, detail: "may not be more than \(max) bytes")
    }

    static func quantity(_ q: String, path: String, what: String, range: ClosedRange<UInt64>) -> [FieldError] {
        if let e = tooLong(q, path: path) { return [e] }
        if let why = Spelling.quantityProblem(q) { return [.invalid(path, FieldError.quoted(q), why)] }
        do {
            let b = try Quantity.parseBytes(q)
            if b == 0 { return [.invalid(path, FieldError.quoted(q), "must be greater than zero (a \(what))")] }
            if !range.contains(b) {
                return [.invalid(path, FieldError.quoted(q), "must be between \(TapioPolicySchema.describe(range)) (a \(what))")]
            }
            return []
        } catch let e as Quantity.ParseError {
            return [.invalid(path, FieldError.quoted(q), e.reason)]
        } catch {
            return [.invalid(path, FieldError.quoted(q), "\(error)")]
        }
    }

    static func duration(_ d: String, path: String, range: ClosedRange<Duration>, into errs: inout [FieldError]) -> Duration? {
        if let e = tooLong(d, path: path) {
            errs.append(e)
            return nil
        }
        if let why = Spelling.durationProblem(d) {
            errs.append(.invalid(path, FieldError.quoted(d), why))
            return nil
        }
        do {
            let v = try GoDuration.parse(d)
            if v <= .zero {
                errs.append(.invalid(path, FieldError.quoted(d), "must be a positive duration, e.g. \"100ms\", \"5m\", \"1h30m\""))
                return nil
            }
            if !range.contains(v) {
                errs.append(.invalid(path, FieldError.quoted(d), "must be between \(TapioPolicySchema.describe(range))"))
                return nil
            }
            return v
        } catch let e as GoDuration.ParseError {
            errs.append(.invalid(path, FieldError.quoted(d), e.reason))
        } catch {
            errs.append(.invalid(path, FieldError.quoted(d), "\(error)"))
        }
        return nil
    }

    /// What the parsers forgive and the CRD's patterns (`GoDuration.pattern`, `Quantity.pattern`) do not, so that a
    /// `--policy` file Tapio accepts is one the API server accepts too: Go's `ParseDuration` takes a sign and the
    /// Greek mu, and the quantity parser trims spaces, because values read back from the API server never have them.
    enum Spelling {
        static func durationProblem(_ d: String) -> String? {
            if let f = d.unicodeScalars.first, f == "+" || f == "-" {
                return "no sign is allowed (the CRD's pattern); write e.g. \"5m\""
            }
            if d.unicodeScalars.contains("\u{03BC}") {
                return "the unit is written \"us\" or \"µs\" (micro sign U+00B5), not with the Greek letter mu (U+03BC)"
            }
            return nil
        }

        static func quantityProblem(_ q: String) -> String? {
            if q.unicodeScalars.contains(where: { $0.properties.isWhitespace }) {
                return "must not contain spaces (the CRD's pattern); write e.g. \"10Mi\""
            }
            return nil
        }
    }

    // MARK: Decoding

    /// Decodes a TapioPolicy from JSON and validates it: a malformed manifest gives one `FieldError` with the
    /// failing path instead of a `DecodingError`.
    public static func decodeAndValidate(json: Data) -> (policy: TapioPolicy?, problems: [FieldError]) {
        do {
            let p = try JSONDecoder().decode(TapioPolicy.self, from: json)
            return (p, validate(p))
        } catch {
            return (nil, [FieldError(decoding: error)])
        }
    }
}

extension FieldError {
    /// Turns a `DecodingError` (from JSONDecoder, or Yams' YAMLDecoder) into a field error at the failing path;
    /// other errors become an error at the document root.
    public init(decoding error: any Error) {
        guard let d = error as? DecodingError else {
            self.init(path: "", type: .invalid, detail: "not a valid manifest: \(error)")
            return
        }
        switch d {
        case .keyNotFound(let key, let ctx):
            self.init(path: Self.path(ctx.codingPath + [key]), type: .required)
        case .typeMismatch(let t, let ctx):
            // Our own decoders phrase the whole rule ("must be an integer or a quantity string …").
            self.init(path: Self.path(ctx.codingPath), type: .invalid,
                      detail: ctx.debugDescription.hasPrefix("must be") ? ctx.debugDescription : "must be of type \(Self.jsonTypeName(t))")
        case .valueNotFound(let t, let ctx):
            self.init(path: Self.path(ctx.codingPath), type: .invalid,
                      detail: "must be of type \(Self.jsonTypeName(t)), not null")
        case .dataCorrupted(let ctx):
            let p = Self.path(ctx.codingPath)
            let prefix = "Unsupported value: "
            if ctx.debugDescription.hasPrefix(prefix) {
                // Our enums phrase their own message as `Unsupported value: "x": supported values: …`.
                let rest = ctx.debugDescription.dropFirst(prefix.count)
                if let r = rest.range(of: ": supported values: ") {
                    self.init(path: p, type: .unsupported, value: String(rest[..<r.lowerBound]),
                              detail: "supported values: " + rest[r.upperBound...])
                    return
                }
            }
            // A wrapped cause (the YAML parser's "line 3, column 7: …") says more than the wrapper.
            var detail = ctx.debugDescription
            if let cause = ctx.underlyingError { detail += ": \(cause)" }
            self.init(path: p, type: .invalid, detail: detail)
        @unknown default:
            self.init(path: "", type: .invalid, detail: "\(d)")
        }
    }

    static func path(_ keys: [any CodingKey]) -> String {
        var s = ""
        for k in keys {
            if let i = k.intValue, k.stringValue.hasPrefix("Index") || k.stringValue == String(i) {
                s += "[\(i)]"
            } else {
                s += s.isEmpty ? k.stringValue : "." + k.stringValue
            }
        }
        return s
    }

    static func jsonTypeName(_ t: Any.Type) -> String {
        let name = String(describing: t)
        switch t {
        case is String.Type: return "string"
        case is Bool.Type: return "boolean"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt64.Type, is UInt.Type: return "integer"
        case is Double.Type, is Float.Type: return "number"
        default:
            if name.hasPrefix("Array") || name.hasPrefix("[") && !name.contains(":") { return "array" }
            return "object"
        }
    }
}
