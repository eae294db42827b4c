import CTapioBPF
import Dispatch
import Foundation
import Synchronization
import TapioModel

/// The ring buffer's consumer side: libbpf calls ``handle(_:size:)`` for each record from whichever single
/// thread drains the ring (the reader thread, or the benchmark's thread when that one is off).
///
/// `@unchecked Sendable`: `decoder` and `lastTimestamp` are touched only by that draining thread; everything
/// read elsewhere is atomic or the (thread-safe) queue.
final class RingSink: @unchecked Sendable {
    let queue: BoundedQueue<TapioEvent>
    var decoder = EventDecoder()
    /// Records turned into events and handed to the queue (whether or not the queue kept them).
    let events = Atomic<UInt64>(0)
    /// Records that could not be decoded.
    let malformed = Atomic<UInt64>(0)
    let lastEventNanos = Atomic<UInt64>(0)
    private var pendingEvents: UInt64 = 0
    private var lastTimestamp: UInt64 = 0
    /// CLOCK_BOOTTIME when the decoder's boot-to-wall-clock offset was last taken (0: never, so the first flush
    /// takes it).
    var offsetTakenAt: UInt64 = 0
    /// Events decoded but not yet handed to the queue: handed over in batches, one lock per batch.
    private var batch: [TapioEvent] = []
    private static let batchSize = 1024

    init(queue: BoundedQueue<TapioEvent>) {
        self.queue = queue
        batch.reserveCapacity(RingSink.batchSize)
    }

    @inline(__always)
    func handle(_ data: UnsafeRawPointer, size: Int) {
        guard let event = decoder.decode(data, size: size) else {
            malformed.add(1, ordering: .relaxed)
            return
        }
        lastTimestamp = event.timestampNanos
        pendingEvents &+= 1
        batch.append(.node(event))
        if batch.count >= RingSink.batchSize { handOff() }
    }

    private func handOff() {
        queue.push(contentsOf: batch)
        batch.removeAll(keepingCapacity: true)
    }

    /// After each ring_buffer__consume: hands the partial batch over and publishes the counters (one atomic
    /// update per batch, not per record).
    func flushCounters() {
        if !batch.isEmpty { handOff() }
        // The records carry CLOCK_BOOTTIME; everything else in the agent reads the wall clock. A clock stepped after
        // the probes loaded (chrony's makestep at boot, `date -s`) would leave every kernel event off by the step —
        // outside the window, or an OOM kill not matched to its pod's status — so the offset is taken again every
        // second (two vDSO clock reads).
        let boot = EventDecoder.bootNanos()
        if boot &- offsetTakenAt >= 1_000_000_000 || offsetTakenAt == 0 {
            decoder.bootToEpochNanos = EventDecoder.currentBootToEpochOffset()
            offsetTakenAt = boot
        }
        guard pendingEvents > 0 else { return }
        events.add(pendingEvents, ordering: .relaxed)
        lastEventNanos.store(lastTimestamp, ordering: .relaxed)
        pendingEvents = 0
    }
}

/// Drains the ring buffer on a dedicated thread (ring_buffer__consume blocks nothing, but the wait does:
/// it must not sit on the cooperative pool). Records are committed mostly without a wakeup, so the loop
/// consumes on every iteration and sleeps at most `pollMilliseconds` between checks.
final class RingReaderThread: Sendable {
    private let ring: OpaquePointerBox
    private let sink: RingSink
    private let waitFD: Int32
    private let eventFD: Int32
    private let pollMilliseconds: Int32
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    let errors = Atomic<UInt64>(0)

    init(ring: OpaquePointer, sink: RingSink, waitFD: Int32, eventFD: Int32, pollMilliseconds: Int32) {
        self.ring = OpaquePointerBox(ring)
        self.sink = sink
        self.waitFD = waitFD
        self.eventFD = eventFD
        self.pollMilliseconds = pollMilliseconds
    }

    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "tapio-bpf-ring"
        thread.start()
    }

    private func run() {
        while !stopping.load(ordering: .acquiring) {
            drain()
            let woke = ctapio_wait_set_wait(waitFD, eventFD, pollMilliseconds)
            if woke < 0 { errors.add(1, ordering: .relaxed) }
        }
        drain() // what was committed before close()
        finished.signal()
    }

    private func drain() {
        let n = ring_buffer__consume(ring.pointer)
        if n < 0 { errors.add(1, ordering: .relaxed) }
        sink.flushCounters()
    }

    /// Stops the loop and waits for it to leave libbpf, so the ring buffer can be freed safely.
    func stop() {
        stopping.store(true, ordering: .releasing)
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(eventFD, $0.baseAddress, 8) }
        finished.wait()
    }
}

/// A C handle owned by a Sendable object whose lifecycle serialises its use.
struct OpaquePointerBox: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}
