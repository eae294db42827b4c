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
    /// An ADDED, MODIFIED or DELETED event whose object did not decode as `K` (already counted and logged by the
    /// client). The stream goes on; its resourceVersion, if readable, is where to resume after it.
    case undecodable(type: String, UndecodableObject)
}

/// The chunked body of one watch request, decoded line by line (`WatchLineSplitter`, `WatchEvent.decode`). It ends
/// when the server closes the stream; a cut transfer throws `KubeError.transport`, a line longer than
/// `ResponseLimits.maxWatchLineBytes` throws `.responseTooLarge`, and either way the connection is dropped (the
/// iterator is finished). Each such failure, and each `ERROR` event, is reported to the client's observer.
public struct WatchStream<K: KubeResource>: AsyncSequence {
    public typealias Element = WatchEvent<K>
    let body: HTTPClientResponse.Body
    let client: KubeClient
    let what: String
    let resource: String

    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: HTTPClientResponse.Body.AsyncIterator?
        var lines: WatchLineSplitter
        let client: KubeClient
        let what: String
        let resource: String

        public mutating func next() async throws -> WatchEvent<K>? {
            do {
                while true {
                    if let line = try lines.nextLine() { return try decode(line) }
                    guard var body = inner else {
                        guard let rest = try lines.finish() else { return nil }
                        return try decode(rest)
                    }
                    let chunk: ByteBuffer?
                    do {
                        chunk = try await body.next()
                    } catch {
                        throw client.mapTransportError(error, "\(what) stream")
                    }
                    // A body iterator can end quietly when the task is cancelled: that is not the server's end.
                    try Task.checkCancellation()
                    if let chunk {
                        inner = body
                        lines.append(chunk.readableBytesView)
                        // A server that always has more bytes ready never makes `next()` suspend: give the other
                        // tasks (the shutdown among them) their turn on the cooperative threads.
                        await Task.yield()
                    } else {
                        inner = nil
                    }
                }
            } catch let e as KubeError {
                // Dropping the body iterator cancels the request, which closes the connection.
                inner = nil
                client.observeStreamFailure()
                throw e
            }
        }

        mutating func decode(_ line: ArraySlice<UInt8>) throws(KubeError) -> WatchEvent<K> {
            let event = try WatchEvent<K>.decode(line: line)
            switch event {
            case .error: client.observeStreamFailure()
            case .undecodable(let type, let object):
                client.reportUndecodable([object], count: 1, verb: "WATCH", in: "\(what) (\(type))", resource: resource)
            default: break
            }
            return event
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: body.makeAsyncIterator(), lines: WatchLineSplitter(maxLineBytes: client.limits.maxWatchLineBytes),
                      client: client, what: what, resource: resource)
    }
}

extension KubeClient {
    /// Opens one watch. Throws for a non-2xx answer (410 → `.gone`); the returned stream ends when the server
    /// closes it. Resuming, relisting and backoff belong to `KubeRuntime`'s watcher.
    public func watch<K: KubeResource>(_ type: K.Type, namespace: String? = nil, options: WatchOptions = .init()) async throws -> WatchStream<K> {
        let t = ResourceType(K.self)
        let auth: Authentication
        do { auth = try await authentication() } catch {
            if !(error is CancellationError) { record("WATCH", .failed) }
            throw error
        }
        let req = makeRequest(method: .GET, path: t.path(namespace: K.namespaced ? namespace : nil), query: options.query,
                              body: nil, contentType: nil, auth: auth)
        let response: HTTPClientResponse
        do {
            // The server ends the watch after timeoutSeconds; the deadline is a margin beyond, for a silent server.
            response = try await http.execute(req, timeout: .seconds(Int64(options.clampedTimeoutSeconds) + 30))
        } catch {
            let mapped = mapTransportError(error, "watch \(t.plural)")
            if !(mapped is CancellationError) { record("WATCH", .failed) }
            throw mapped
        }
        let code = Int(response.status.code)
        let path = t.path(namespace: K.namespaced ? namespace : nil)
        guard (200..<300).contains(code) else {
            record("WATCH", .failed)
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
            let error = KubeError.from(statusCode: code, body: body, retryAfterHeader: response.headers.first(name: "Retry-After"))
            // A refused plugin credential is run for again on the watcher's next attempt.
            if code == 401, let run = auth.execRun { exec?.refused(run: run) }
            noteAccess(verb: "WATCH", path: path, error: error)
            throw error
        }
        record("WATCH", .succeeded)
        noteAccess(verb: "WATCH", path: path, error: nil)
        return WatchStream(body: response.body, client: self, what: "watch \(t.plural)", resource: t.plural)
    }
}
