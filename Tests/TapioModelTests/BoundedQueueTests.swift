import Foundation
import TapioModel
import Testing

@Suite("BoundedQueue timed waits", .timeLimit(.minutes(2)))
struct BoundedQueueTests {
    @Test("a timed wait with nothing queued returns an empty batch after about its timeout")
    func timesOut() async {
        let q = BoundedQueue<Int>(capacity: 8)
        let start = ContinuousClock.now
        let batch = await q.nextBatch(max: 4, timeout: .milliseconds(200))
        let waited = ContinuousClock.now - start
        #expect(batch == [])
        #expect(waited >= .milliseconds(190), "returned after \(waited)")
    }

    @Test("elements pushed during a timed wait end it early, and the next wait is not woken by the old timer")
    func elementsEndTheWait() async {
        let q = BoundedQueue<Int>(capacity: 8)
        let pusher = Task {
            try? await Task.sleep(for: .milliseconds(50))
            q.push(1)
            q.push(2)
        }
        let start = ContinuousClock.now
        // A timeout far beyond any scheduling delay of a loaded machine: returning well before it is the push's doing.
        let batch = await q.nextBatch(max: 4, timeout: .seconds(60))
        #expect(ContinuousClock.now - start < .seconds(45), "the push did not wake the consumer")
        _ = await pusher.value
        var all = batch ?? []
        if all.count < 2, let rest = await q.nextBatch(max: 4, timeout: .milliseconds(100)) { all += rest }
        #expect(all == [1, 2])
        // The cancelled timer must not leave a wake behind: this wait lasts its whole timeout.
        let again = ContinuousClock.now
        #expect(await q.nextBatch(max: 4, timeout: .milliseconds(150)) == [])
        #expect(ContinuousClock.now - again >= .milliseconds(140))
    }

    @Test("with a minimum, fewer elements do not end a timed wait; enough of them, or an urgent one, do")
    func minimumAndUrgent() async {
        let q = BoundedQueue<Int>(capacity: 64)
        // Fewer than the minimum: the wait runs its whole timeout, then hands over what is there.
        q.push(1)
        let start = ContinuousClock.now
        #expect(await q.nextBatch(max: 10, timeout: .milliseconds(200), minimum: 3) == [1])
        #expect(ContinuousClock.now - start >= .milliseconds(190), "woken before the minimum was queued")

        // Pushes during the wait: one below the minimum does not wake it, the one that reaches it does.
        let reached = Task {
            q.push(2)
            try? await Task.sleep(for: .milliseconds(50))
            q.push(contentsOf: [3, 4])
        }
        let waitStart = ContinuousClock.now
        var got = await q.nextBatch(max: 10, timeout: .seconds(30), minimum: 3) ?? []
        #expect(ContinuousClock.now - waitStart < .seconds(20), "reaching the minimum did not wake the consumer")
        _ = await reached.value
        while got.count < 3, let more = await q.nextBatch(max: 10, timeout: .seconds(10), minimum: 3 - got.count) {
            got += more
        }
        #expect(got == [2, 3, 4])

        // An urgent element wakes a wait far below its minimum, and one already queued ends the next at once.
        let urgent = Task {
            try? await Task.sleep(for: .milliseconds(50))
            q.push(5, urgent: true)
        }
        let urgentStart = ContinuousClock.now
        var woken = await q.nextBatch(max: 10, timeout: .seconds(30), minimum: 50) ?? []
        #expect(ContinuousClock.now - urgentStart < .seconds(20), "the urgent element did not wake the consumer")
        _ = await urgent.value
        if woken.isEmpty { woken = await q.nextBatch(max: 10, timeout: .seconds(10), minimum: 50) ?? [] }
        #expect(woken == [5])
        q.push(contentsOf: [6, 7], urgent: true)
        let queuedStart = ContinuousClock.now
        #expect(await q.nextBatch(max: 10, timeout: .seconds(30), minimum: 50) == [6, 7])
        #expect(ContinuousClock.now - queuedStart < .seconds(20))
        // Drained: the urgency is spent, and the next wait honours its minimum again.
        q.push(8)
        let spent = ContinuousClock.now
        #expect(await q.nextBatch(max: 10, timeout: .milliseconds(150), minimum: 2) == [8])
        #expect(ContinuousClock.now - spent >= .milliseconds(140))
    }

    @Test("a finished, drained queue answers nil at once, a zero timeout answers what is there")
    func finishedAndZero() async {
        let q = BoundedQueue<Int>(capacity: 8)
        #expect(await q.nextBatch(max: 4, timeout: .zero) == [])
        q.push(7)
        #expect(await q.nextBatch(max: 4, timeout: .zero) == [7])
        q.finish()
        let start = ContinuousClock.now
        #expect(await q.nextBatch(max: 4, timeout: .seconds(10)) == nil)
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test("the ring grows as elements wait and keeps their order across wrap-around, growth, shedding and draining")
    func growthKeepsOrder() {
        for policy in [BoundedQueue<Int>.OverflowPolicy.dropOldest, .dropNewest] {
            let q = BoundedQueue<Int>(capacity: 1_000, policy: policy)
            var expected: [Int] = []  // a model of what the queue holds
            var next = 0
            var rng = SystemRandomNumberGenerator()
            for round in 0..<400 {
                let n = Int.random(in: 0...120, using: &rng)
                let items = Array(next..<(next + n))
                next += n
                if round % 2 == 0 { q.push(contentsOf: items) } else { for i in items { q.push(i) } }
                for i in items {
                    if expected.count == 1_000 {
                        if policy == .dropNewest { continue }
                        expected.removeFirst()
                    }
                    expected.append(i)
                }
                let take = Int.random(in: 0...100, using: &rng)
                if take > 0, let got = q.takeBatch(max: take) {
                    #expect(got == Array(expected.prefix(take)), "round \(round), \(policy)")
                    expected.removeFirst(got.count)
                }
                #expect(q.count == expected.count)
            }
            let rest = q.takeBatch(max: 10_000) ?? []
            #expect(rest == expected)
            #expect(q.shed > 0, "the test never filled the queue (\(policy))")
        }
    }
}
