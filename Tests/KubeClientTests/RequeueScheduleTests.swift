import KubeRuntime
import Testing

/// A controller keeps one delayed requeue per key, the earliest: repeated requeues never pile up into extra cycles.
@Suite struct RequeueScheduleTests {
    @Test func aLaterRequeueOfAPendingKeyStartsNoTimer() {
        var s = RequeueSchedule()
        let r1 = s.schedule("p", at: 30)
        #expect(r1)
        // Reconciles caused by watch events ask for their own requeue 30 s later: the pending one serves.
        let r2 = s.schedule("p", at: 31)
        #expect(!r2)
        let r3 = s.schedule("p", at: 45)
        #expect(!r3)
        #expect(s.count == 1)
        let r4 = s.fire("p", at: 30)
        #expect(r4)
        #expect(s.count == 0)
        let r5 = s.schedule("p", at: 60)
        #expect(r5, "spent: the next requeue starts a timer")
    }

    @Test func anEarlierRequeueWinsAndTheLaterTimerIsIgnored() {
        var s = RequeueSchedule()
        let r6 = s.schedule("p", at: 30)
        #expect(r6)
        let r7 = s.schedule("p", at: 10)
        #expect(r7, "sooner than the pending one")
        let r8 = s.fire("p", at: 30)
        #expect(!r8, "superseded")
        let r9 = s.fire("p", at: 10)
        #expect(r9)
        let q = s.schedule("q", at: 30)
        #expect(q && s.count == 1)
    }

    @Test func aKeyRequeuedForeverKeepsOneCycle() {
        var s = RequeueSchedule()
        var timers = 0
        var now: UInt64 = 0
        // Every 30 s the timer fires and the reconcile requeues; every second a watch event's reconcile requeues too.
        for second in 0..<600 {
            now = UInt64(second)
            _ = s.fire("p", at: now)
            if s.schedule("p", at: now + 30) { timers += 1 }
        }
        #expect(timers == 20, "one timer per 30 s, not one per reconcile: \(timers)")
    }
}
