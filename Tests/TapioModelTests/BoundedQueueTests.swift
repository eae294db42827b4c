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
        let batch = await q.nextBatch(max: 4, timeout: .seconds(10))
        #expect(ContinuousClock.now - start < .seconds(5), "the push did not wake the consumer")
        _ = await pusher.value
        var all = batch ?? []
        if all.count < 2, let rest = await q.nextBatch(max: 4, timeout: .milliseconds(100)) { all += rest }
        #expect(all == [1, 2])
        // The cancelled timer must not leave a wake behind: this wait lasts its whole timeout.
        let again = ContinuousClock.now
        #expect(await q.nextBatch(max: 4, timeout: .milliseconds(150)) == [])
        #expect(ContinuousClock.now - again >= .milliseconds(140))
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
