import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One event of a raw watch stream.
public enum WatchEvent<K: KubeResource>: Sendable {
    case added(K)
    case modified(K)
    case deleted(K)
    /// The server has sent everything up to `resourceVersion`; resume from here.
    case bookmark(resourceVersion: String)
    /// An `ERROR` event (410 `Expired` is the usual one); the stream ends after it.
    case error(KubeError)
}

private struct EnvelopeType: Decodable { var type: String }
private struct Envelope<T: Decodable>: Decodable { var object: T }
private struct BookmarkObject: Decodable { var metadata: ListMeta }

/// The chunked body of one watch request, decoded line by line. It ends when the server closes the stream
/// (timeout or dropped connection: throws `KubeError.transport` for the latter when the transfer was cut).
public struct WatchStream<K: KubeResource>: AsyncSequence {
    public typealias Element = WatchEvent<K>
    let body: HTTPClientResponse.Body

    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: HTTPClientResponse.Body.AsyncIterator
        /// Bytes received but not yet decoded; `start` skips consumed lines without copying the rest each time.
        var buffer: [UInt8] = []
        var start = 0
        var finished = false

        public mutating func next() async throws -> WatchEvent<K>? {
            while true {
                if let nl = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    let line = buffer[start..<nl]
                    start = nl + 1
                    if line.allSatisfy({ $0 == 32 || $0 == 13 }) { continue }
                    return try Self.decode(Data(line))
                }
                if finished {
                    guard start < buffer.count else { return nil }
                    let rest = Data(buffer[start...])
                    start = buffer.count
                    return try Self.decode(rest)
                }
                do {
                    if let chunk = try await inner.next() {
                        if start > 0 {
                            buffer.removeFirst(start)
                            start = 0
                        }
                        buffer.append(contentsOf: chunk.readableBytesView)
                    } else {
                        finished = true
                    }
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    if Task.isCancelled { throw CancellationError() }
                    throw KubeError.transport("watch stream: \(error)")
                }
            }
        }

        static func decode(_ line: Data) throws -> WatchEvent<K> {
            let d = KubeClient.decoder
            do {
                let t = try d.decode(EnvelopeType.self, from: line).type
                switch t {
                case "ADDED": return .added(try d.decode(Envelope<K>.self, from: line).object)
                case "MODIFIED": return .modified(try d.decode(Envelope<K>.self, from: line).object)
                case "DELETED": return .deleted(try d.decode(Envelope<K>.self, from: line).object)
                case "BOOKMARK":
                    return .bookmark(resourceVersion: try d.decode(Envelope<BookmarkObject>.self, from: line).object.metadata.resourceVersion ?? "")
                case "ERROR":
                    return .error(KubeError.from(status: try d.decode(Envelope<KubeStatus>.self, from: line).object))
                default:
                    throw KubeError.decoding(type: "WatchEvent", message: "unknown event type \(t)")
                }
            } catch let e as KubeError {
                throw e
            } catch {
                throw KubeError.decoding(type: "WatchEvent<\(K.kind)>", message: "\(error)")
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inner: body.makeAsyncIterator()) }
}

extension KubeClient {
    /// Opens one watch. Throws for a non-2xx answer (410 → `.gone`); the returned stream ends when the server
    /// closes it. Resuming, relisting and backoff belong to `KubeRuntime`'s watcher.
    public func watch<K: KubeResource>(_ type: K.Type, namespace: String? = nil, options: WatchOptions = .init()) async throws -> WatchStream<K> {
        let t = ResourceType(K.self)
        let req = makeRequest(method: .GET, path: t.path(namespace: K.namespaced ? namespace : nil), query: options.query,
                              body: nil, contentType: nil)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(req, timeout: .seconds(Int64(options.timeoutSeconds) + 30))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw KubeError.transport("watch \(t.plural): \(error)")
        }
        let code = Int(response.status.code)
        guard (200..<300).contains(code) else {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
            throw KubeError.from(statusCode: code, body: body, retryAfterHeader: response.headers.first(name: "Retry-After"))
        }
        return WatchStream(body: response.body)
    }
}
