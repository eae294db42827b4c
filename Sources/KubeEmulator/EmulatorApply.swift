import Foundation
import TapioModel

extension EmulatorStore {
    /// Server-side apply, simplified but honest: the applied document's leaf fields (lists count as one field) are
    /// owned by its field manager, recorded in `metadata.managedFields`. Applying a different value to a field another
    /// `Apply` manager owns is a 409 conflict unless `force=true`, which moves ownership. Fields the manager owned
    /// before and no longer applies are removed when nobody else owns them. Updates by PUT/merge patch do not take
    /// ownership here (the real server tracks them as `Update` managers).
    func apply(_ r: Route, _ name: String, _ req: EmulatorRequest, old: JSONValue?) -> EmulatorResponse {
        guard let manager = req.query["fieldManager"], !manager.isEmpty else {
            return Self.status(400, reason: "BadRequest", message: "PATCH, application/apply-patch+yaml requires fieldManager")
        }
        guard let applied = Self.parseBody(req, allowYAML: true), applied.objectValue != nil else {
            return Self.status(400, reason: "BadRequest", message: "error decoding YAML: invalid apply configuration")
        }
        if let bad = checkTypeMeta(r.kind, applied) { return bad }
        guard applied["metadata"]?["name"]?.stringValue == name else {
            return Self.status(400, reason: "BadRequest", message: "the name of the object does not match the name on the URL (\(name))")
        }
        let force = req.query["force"] == "true"
        let fieldsOf: (JSONValue) -> Set<String> = { doc in
            var d = doc
            d["apiVersion"] = nil; d["kind"] = nil
            var meta = d["metadata"]?.objectValue ?? [:]
            meta = meta.filter { ["labels", "annotations"].contains($0.key) }
            d["metadata"] = meta.isEmpty ? nil : .object(meta)
            if r.subresource == "status" { d = .object(["status": d["status"] ?? .object([:])]) }
            else if r.kind.hasStatus { d["status"] = nil }
            return Set(d.leafPaths().keys.filter { !$0.isEmpty })
        }
        let appliedFields = fieldsOf(applied)
        let now = Self.timestamp()
        func entry(_ m: String, _ fields: Set<String>) -> JSONValue {
            .object(["manager": .string(m), "operation": "Apply", "apiVersion": .string(r.kind.apiVersion), "time": .string(now),
                     "fieldsType": "FieldsV1", "fieldsV1": JSONValue.fieldsV1(fields.sorted())]
                .merging(r.subresource.map { ["subresource": JSONValue.string($0)] } ?? [:]) { a, _ in a })
        }
        guard let old else {
            var obj = applied
            if r.kind.namespaced { obj["metadata"]?["namespace"] = .string(r.namespace ?? "") }
            if r.kind.hasStatus { obj["status"] = nil }
            return commit(r, name: name, new: obj, old: nil, req: req, subresource: nil,
                          managedFields: .array([entry(manager, appliedFields)]))
        }
        // Ownership as recorded on the object.
        var owners: [(manager: String, fields: Set<String>, raw: JSONValue)] = (old["metadata"]?["managedFields"]?.arrayValue ?? []).map {
            ($0["manager"]?.stringValue ?? "", Set($0["fieldsV1"]?.fieldsV1Paths() ?? []), $0)
        }
        func overlaps(_ a: String, _ b: String) -> Bool { a == b || a.hasPrefix(b + ".") || b.hasPrefix(a + ".") }
        var conflicts: [(String, String)] = []
        let appliedLeaves = applied.leafPaths()
        for i in owners.indices where owners[i].manager != manager && owners[i].raw["operation"]?.stringValue == "Apply" {
            for f in appliedFields {
                guard let owned = owners[i].fields.first(where: { overlaps($0, f) }) else { continue }
                if old.value(at: f) != appliedLeaves[f] {
                    if force { owners[i].fields.remove(owned) } else { conflicts.append((owners[i].manager, f)) }
                }
            }
        }
        if !conflicts.isEmpty {
            let causes = conflicts.map { JSONValue.object(["reason": "FieldManagerConflict", "message": .string("conflict with \"\($0.0)\""),
                                                           "field": .string("." + $0.1)]) }
            let list = conflicts.map { "conflict with \"\($0.0)\": .\($0.1)" }.joined(separator: "\n- ")
            return Self.status(409, reason: "Conflict",
                               message: "Apply failed with \(conflicts.count) conflict\(conflicts.count == 1 ? "" : "s"): \(list)",
                               details: ["name": .string(name), "group": .string(r.kind.group), "kind": .string(r.kind.plural),
                                         "causes": .array(causes)])
        }
        var obj = old
        // Fields this manager applied before but no longer does, and no one else owns, are removed.
        let previous = owners.first(where: { $0.manager == manager })?.fields ?? []
        for f in previous.subtracting(appliedFields)
        where !owners.contains(where: { $0.manager != manager && $0.fields.contains(where: { overlaps($0, f) }) }) {
            obj.remove(path: f.split(separator: ".").map(String.init))
        }
        var patch = applied
        patch["metadata"] = applied["metadata"].map { m in
            .object((m.objectValue ?? [:]).filter { ["labels", "annotations"].contains($0.key) })
        }
        obj = obj.mergePatched(with: Self.withoutNulls(patch))
        var entries = owners.filter { $0.manager != manager && !$0.fields.isEmpty }.map { o -> JSONValue in
            var e = o.raw
            e["fieldsV1"] = JSONValue.fieldsV1(o.fields.sorted())
            return e
        }
        // Like the real server, an apply that changes nothing keeps the manager's entry as it was (its time too),
        // so the object, and its resourceVersion, stay the same.
        var unchanged = obj, before = old
        unchanged["metadata"]?["managedFields"] = nil
        before["metadata"]?["managedFields"] = nil
        if let mine = owners.first(where: { $0.manager == manager }), mine.fields == appliedFields, unchanged == before {
            entries.append(mine.raw)
        } else {
            entries.append(entry(manager, appliedFields))
        }
        // A resourceVersion in the applied document is a precondition, as on the real server: 409 when the object
        // has been written since (ignored when the apply creates it, as there).
        let expected = applied["metadata"]?["resourceVersion"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        return commit(r, name: name, new: obj, old: old, req: req, subresource: r.subresource, expectedRV: expected,
                      managedFields: .array(entries))
    }

    static func withoutNulls(_ v: JSONValue) -> JSONValue {
        guard case .object(let o) = v else { return v }
        return .object(o.filter { if case .null = $0.value { return false } else { return true } }.mapValues(withoutNulls))
    }
}

/// The few checks the real server makes on built-in kinds that tests can trip over (Events: `EventValidation`).
enum BuiltinValidation {
    static func validate(_ kind: EmulatedKind, _ o: JSONValue, old: JSONValue?) -> [FieldError] {
        var errs: [FieldError] = []
        switch (kind.group, kind.kind) {
        case ("", "Pod"):
            let containers = o["spec"]?["containers"]?.arrayValue ?? []
            if containers.isEmpty { errs.append(.required("spec.containers", "")) }
            for (i, c) in containers.enumerated() {
                if (c["name"]?.stringValue ?? "").isEmpty { errs.append(.required("spec.containers[\(i)].name", "")) }
                if (c["image"]?.stringValue ?? "").isEmpty { errs.append(.required("spec.containers[\(i)].image", "")) }
            }
            if let old, old["spec"]?["containers"]?.arrayValue?.map({ $0["name"] }) != containers.map({ $0["name"] }) {
                errs.append(.forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"))
            }
        case ("apps", "Deployment"), ("apps", "StatefulSet"):
            if o["spec"]?["selector"] == nil { errs.append(.required("spec.selector", "")) }
            let sel = o["spec"]?["selector"]?["matchLabels"]?.objectValue ?? [:]
            let labels = o["spec"]?["template"]?["metadata"]?["labels"]?.objectValue ?? [:]
            if !sel.allSatisfy({ labels[$0.key] == $0.value }) {
                errs.append(.invalid("spec.template.metadata.labels", "", "`selector` does not match template `labels`"))
            }
        default: break
        }
        return errs
    }
}
