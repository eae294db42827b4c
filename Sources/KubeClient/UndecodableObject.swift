import Foundation

/// An object in a list or watch that the client could not decode into its Swift type — written by a newer or older
/// version of a controller, by hand, or by a server whose schema differs. One such object must not hide every other
/// object of its kind: lists and watches skip it, and the client counts it (`RequestOutcome.undecodableObject`) and
/// says so in its log (rate-limited), naming the object and the decoder's complaint.
public struct UndecodableObject: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String?
    public var name: String?
    public var resourceVersion: String?
    /// What the decoder said, cut to 512 characters.
    public var message: String

    public var description: String {
        let who = [namespace, name].compactMap { $0.flatMap { $0.isEmpty ? nil : $0 } }.joined(separator: "/")
        return "\(who.isEmpty ? "an object without a name" : who): \(message)"
    }

    init(identity: Identity, error: any Error) {
        namespace = identity.namespace
        name = identity.name
        resourceVersion = identity.resourceVersion
        message = String(String(describing: error).prefix(512))
    }

    /// The names an undecodable object still has, each read on its own so that a bad field elsewhere (or a
    /// malformed `metadata`) cannot stop it. Decoding it never fails, whatever the value, and so always advances an
    /// unkeyed container past the value.
    struct Identity: Decodable {
        var namespace: String?
        var name: String?
        var resourceVersion: String?

        private enum Keys: String, CodingKey { case metadata }
        private enum MetaKeys: String, CodingKey { case namespace, name, resourceVersion }

        init(from decoder: any Decoder) throws {
            guard let object = try? decoder.container(keyedBy: Keys.self),
                  let meta = try? object.nestedContainer(keyedBy: MetaKeys.self, forKey: .metadata) else { return }
            namespace = try? meta.decodeIfPresent(String.self, forKey: .namespace)
            name = try? meta.decodeIfPresent(String.self, forKey: .name)
            resourceVersion = try? meta.decodeIfPresent(String.self, forKey: .resourceVersion)
        }
    }
}
