import Foundation
import Testing
import TapioTestTraits
import TapioModel
@testable import TapioCorrelation

/// What an OOM prediction's probability and severity must do as evidence comes and goes (issue 12), on series fed
/// straight into the engine. Each test compares the engine with itself on two series that differ in one respect.
@Suite("OOM prediction quality", .cpuBound, .timeLimit(.minutes(3)))
struct PredictionQualityTests {
    static let mi = 1_048_576.0
    static let t0: UInt64 = 1_795_000_000 * 1_000_000_000

    /// Feeds one sample a second (`value` in bytes at second k, until it returns nil) into a fresh engine and
    /// returns the OOM prediction visible at each second, as the engine holds it (nil: none active).
    static func run(seconds: Int, limit: UInt64, value: (Int) -> Double?) -> [Prediction?] {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var seen: [Prediction?] = []
        for k in 0...seconds {
            let t = t0 + UInt64(k) * 1_000_000_000
            if let v = value(k) {
                engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(max(0, v)), limit: limit, at: t), now: t, into: &out)
            } else {
                engine.tick(now: t, into: &out)
            }
            seen.append(engine.activeInsights.first { $0.identity.type == .oomPrediction }?.spec.prediction)
        }
        return seen
    }

    @Test("probability grows with evidence: a young climb is not sure, the same climb later is surer")
    func growsWithEvidence() throws {
        // 100Mi + 1Mi/s into a 400Mi limit: the kill would come at 300 s.
        let seen = Self.run(seconds: 280, limit: 400 << 20) { 100 * Self.mi + Self.mi * Double($0) }
        let first = try #require(seen.firstIndex { $0 != nil }, "no prediction at all")
        let early = try #require(seen[first]?.probability)
        let late = try #require(seen[270]?.probability)
        #expect(early < late, "first (at \(first) s) \(early), at 270 s \(late)")
        // A series a minute old cannot be near-certain.
        if let p60 = seen[60]?.probability { #expect(p60 < 0.9) }
        #expect(early < 0.9)
    }

    @Test("probability falls when the time to the limit recedes: the same climb toward a higher limit")
    func fallsWhenTimeToOOMRecedes() throws {
        let climb: (Int) -> Double? = { 100 * Self.mi + Self.mi * Double($0) }
        let near = Self.run(seconds: 200, limit: 400 << 20, value: climb)
        let far = Self.run(seconds: 200, limit: 900 << 20, value: climb)
        let pNear = try #require(near[200]?.probability)
        let pFar = far[200]?.probability ?? 0
        #expect(pFar < pNear, "limit 900Mi: \(pFar), limit 400Mi: \(pNear)")
    }

    @Test("probability falls when the curve bends over, and a curve levelling off below the limit is no OOM")
    func fallsWhenTheCurveBends() throws {
        // Both start alike: 100Mi + 1.5Mi/s. One keeps going; one decelerates (exponential approach).
        let L: UInt64 = 700 << 20
        let straight = Self.run(seconds: 240, limit: L) { 100 * Self.mi + 1.5 * Self.mi * Double($0) }
        // Approaches 800Mi (above the limit) with τ = 400 s: the same initial slope, bending.
        let bending = Self.run(seconds: 240, limit: L) { k in
            800 * Self.mi - 700 * Self.mi * exp(-Double(k) / (700.0 / 1.5))
        }
        let pStraight = try #require(straight[240]?.probability)
        let pBending = bending[240]?.probability ?? 0
        #expect(pBending < pStraight, "bending \(pBending), straight \(pStraight)")
        // Levels off at 500Mi under the 700Mi limit (τ 150 s): nothing to predict once the bend is clear.
        let saturating = Self.run(seconds: 900, limit: L) { k in 500 * Self.mi - 400 * Self.mi * exp(-Double(k) / 150) }
        #expect(saturating[600...].allSatisfy { $0 == nil }, "still predicting at \(saturating[600...].firstIndex { $0 != nil } ?? -1) s")
    }

    @Test("a periodic ramp seen before is not predicted again")
    func periodicRampIsRecognised() throws {
        // Every 8 minutes: 6 minutes of climbing 150 → 420Mi of a 512Mi limit, then back to 150Mi. Period longer
        // than the window, so inside the window each ramp looks like a leak.
        let period = 480, ramp = 360.0
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0...(6 * period) {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            let phase = Double(k % period)
            let ws = 150 * Self.mi + (phase < ramp ? 270 * Self.mi * phase / ramp : 0)
            engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(ws), limit: 512 << 20, at: t), now: t, into: &out)
        }
        let said = out.filter { $0.identity.type == .oomPrediction && $0.change != .resolved }
        // From the third ramp on (after two drops), nothing new is said.
        let late = said.filter { $0.observedAt >= Self.t0 + UInt64(2 * period) * 1_000_000_000 }
        #expect(late.isEmpty, "\(late.map { "\(($0.observedAt - Self.t0) / 1_000_000_000) s: \($0.spec.title)" })")
    }

    @Test("a leak that grows across cycles is still caught before the kill")
    func leakAcrossCyclesIsCaught() throws {
        // The same 8-minute ramps, but each peak 40Mi higher: 420, 460, 500… the fourth reaches the 560Mi limit.
        let period = 480, ramp = 360.0
        let limit: UInt64 = 560 << 20
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        var killedAt: Int?
        for k in 0...(8 * period) {
            let t = Self.t0 + UInt64(k) * 1_000_000_000
            let cycle = Double(k / period), phase = Double(k % period)
            let base = 150 * Self.mi + 40 * Self.mi * cycle
            let ws = base + (phase < ramp ? 270 * Self.mi * phase / ramp : 0)
            if ws >= Double(limit) { killedAt = k; break }
            engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(ws), limit: limit, at: t), now: t, into: &out)
        }
        let kill = try #require(killedAt)
        let warned = out.filter {
            $0.identity.type == .oomPrediction && $0.change != .resolved && ($0.spec.severity >= .warning)
                && $0.observedAt >= Self.t0 + UInt64(2 * period) * 1_000_000_000
        }
        #expect(!warned.isEmpty, "no Warning in the cycles before the kill at \(kill) s")
    }

    /// 8-minute cycles: 6 minutes of climbing 270Mi from a floor 40Mi higher each cycle (peaks 420, 460, 500…),
    /// then back to the floor; from cycle `stopAfter` on, memory stays at the last floor.
    static func growingCycles(_ k: Int, stopAfter: Int = .max) -> Double {
        let period = 480, ramp = 360.0
        let cycle = min(k / period, stopAfter), phase = k / period >= stopAfter ? ramp : Double(k % period)
        let base = 150 * mi + 40 * mi * Double(cycle)
        return base + (phase < ramp ? 270 * mi * phase / ramp : 0)
    }

    @Test("a leak across cycles keeps one prediction from its third climb to the kill, between climbs too")
    func leakAcrossCyclesKeepsOnePrediction() throws {
        let limit: UInt64 = 560 << 20
        // The fifth climb (from 1,920 s) reaches the limit at 1,920 + 333 s.
        let kill = try #require((0...3000).first { Self.growingCycles($0) >= Double(limit) })
        let out = Self.updates(seconds: kill - 1, limit: limit) { Self.growingCycles($0) }
        let predictions = out.filter { $0.identity.type == .oomPrediction }
        // Two drops (at 360 and 840 s) make the peaks a trend; from the third climb on there is one prediction.
        let late = predictions.filter { Self.second($0) >= 960 }
        let raised = late.filter { $0.change == .new }
        #expect(raised.count <= 1, "raised again at \(raised.map(Self.second)) s")
        #expect(!late.contains { $0.change == .resolved }, "settled at \(late.filter { $0.change == .resolved }.map { "\(Self.second($0)) s: \($0.spec.summary)" })")
        let last = try #require(late.last, "no prediction after the second drop")
        #expect(last.spec.severity >= .warning)
        // Between the fourth drop (1,800 s) and the last climb (1,920 s) it stands, saying why.
        let between = try #require(late.last { (1800..<1920).contains(Self.second($0)) }, "nothing said between climbs")
        #expect(between.spec.evidence.contains { $0.description.hasPrefix("Between climbs") },
                "\(between.spec.evidence.map(\.description))")
        // Its time-to-OOM points at the climb that gets there, not where the peaks' line crosses the limit (~1 min
        // before that climb's start): within a fifth of the time left.
        let tte = try #require(PredictionScore.seconds(goDuration: between.spec.prediction?.timeToEvent))
        let left = Double(kill - Self.second(between))
        #expect(abs(tte - left) <= 0.2 * left, "said \(tte) s at \(Self.second(between)) s, \(left) s before the kill")
        // And after the peaks' line has crossed the limit (~2,040 s), while the last climb is still on its way: not
        // "0s" then, but that climb's own time.
        for u in late where Self.second(u) >= 1800 && kill - Self.second(u) >= 60 && u.change != .resolved {
            let said = try #require(PredictionScore.seconds(goDuration: u.spec.prediction?.timeToEvent))
            let truth = Double(kill - Self.second(u))
            #expect(abs(said - truth) <= 0.25 * truth, "said \(said) s at \(Self.second(u)) s, \(truth) s before the kill")
        }
    }

    @Test("a cycling leak that stops cycling is settled: the peaks' line alone does not hold its prediction")
    func cyclesThatStopAreSettled() throws {
        let limit: UInt64 = 560 << 20
        // Three growing cycles (drops at 360, 840, 1320 s), then flat at 270Mi from 1,440 s.
        let out = Self.updates(seconds: 4000, limit: limit) { Self.growingCycles($0, stopAfter: 3) }
        let predictions = out.filter { $0.identity.type == .oomPrediction }
        #expect(predictions.contains { Self.second($0) >= 960 && $0.change != .resolved }, "the growing cycles were not predicted")
        // The rhythm is broken 1.5 periods after the last peak (1,320 + 720 s); resolveAfter (300 s) at most after.
        let last = try #require(predictions.last)
        #expect(last.change == .resolved, "still standing at the end: \(last.spec.title)")
        #expect(Self.second(last) <= 1320 + 720 + 300 + 60, "settled at \(Self.second(last)) s")
    }

    @Test("a straight leak under noise is not settled as levelling off and raised again: one leak, one prediction")
    func noiseDoesNotFlapALeak() throws {
        // `oom-linear-1`'s shape: 300Mi + 0.5Mi/s toward 1Gi, white noise of 0.3 % of the limit and an offset that
        // wanders (0.05 % steps, pulled back 2 % a second). Its first minutes bend either way by chance; read as
        // levelling off at once, such a bend settled the prediction and the straight climb raised it again.
        let limit: UInt64 = 1 << 30
        var flaps: [String] = []
        var settledAsLevelling = 0
        for seed in 1...24 {
            var noise = TestNoise(state: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15)
            var offset = 0.0
            let out = Self.updates(seconds: 1300, limit: limit) { k in
                offset = 0.98 * offset + noise.gauss() * 0.0005 * Double(limit)
                return 300 * Self.mi + 0.5 * Self.mi * Double(k) + noise.gauss() * 0.003 * Double(limit) + offset
            }
            let predictions = out.filter { $0.identity.type == .oomPrediction }
            settledAsLevelling += predictions.filter { $0.change == .resolved && $0.spec.summary.contains("levels off") }.count
            let raised = predictions.filter { $0.change == .new }
            if raised.count > 1 { flaps.append("seed \(seed): raised at \(raised.map(Self.second)) s") }
        }
        #expect(flaps.isEmpty, "\(flaps)")
        #expect(settledAsLevelling == 0)
    }

    @Test("a slow leak's Warning stands to the kill: minutes whose noise hides the growth do not end it")
    func slowLeakKeepsItsWarning() throws {
        // `oom-slow-1`'s shape: 200Mi toward 1Gi in three hours (4.6Mi/min), a sample every 5 s, white noise of
        // 0.3 % of the limit and an offset wandering 0.03 % a step. In five minutes it rises 23Mi, about seven
        // noise widths: now and then the window's own reading loses it.
        let limit: UInt64 = 1 << 30
        let rate = (1024.0 - 200.0) * Self.mi / (3 * 3600)
        var lapses: [String] = []
        var warned = 0
        var carried = 0
        for seed in 1...6 {
            var noise = TestNoise(state: UInt64(seed) &* 0xD1B5_4A32_D192_ED03)
            var offset = 0.0
            var engine = CorrelationEngine()
            var out: [InsightUpdate] = []
            var kill: Int?
            for k in stride(from: 0, through: 4 * 3600, by: 5) {
                offset = 0.98 * offset + noise.gauss() * 0.0003 * Double(limit)
                let v = 200 * Self.mi + rate * Double(k) + noise.gauss() * 0.003 * Double(limit) + offset
                if v >= Double(limit) { kill = k; break }
                let t = Self.t0 + UInt64(k) * 1_000_000_000
                engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(max(0, v)), limit: limit, at: t), now: t, into: &out)
            }
            let predictions = out.filter { $0.identity.type == .oomPrediction }
            carried += predictions.filter { $0.spec.evidence.contains { $0.description.hasPrefix("The last minutes are too noisy") } }.count
            // Once the kill is within the prediction horizon (an hour): farther out, a time-to-OOM that noise moves
            // across the horizon comes and goes by design, and so does a bend read early in the leak's life.
            let end = try #require(kill, "seed \(seed): no kill in four hours")
            guard let first = predictions.firstIndex(where: {
                $0.change != .resolved && $0.spec.severity >= .warning && Self.second($0) >= end - 3600
            }) else { continue }
            warned += 1
            let after = predictions[first...]
            if let r = after.first(where: { $0.change == .resolved }) {
                lapses.append("seed \(seed): Warning at \(Self.second(predictions[first])) s, resolved at \(Self.second(r)) s "
                    + "(\(r.spec.evidence.last?.description ?? "")), kill at \(end) s")
            }
        }
        #expect(warned == 6, "only \(warned) of 6 slow leaks were warned")
        // The long line did carry predictions through such minutes (else this test shows nothing).
        #expect(carried > 0)
        #expect(lapses.isEmpty, "\(lapses)")
    }

    /// A slow leak from `base` to the limit in `hours`, sampled every 5 s under white noise of 0.3 % of the limit and
    /// an offset wandering 0.03 % of it a step (the corpus's slow leaks), for `runFor` seconds or until the kill;
    /// returns the updates and the kill's second (nil: none).
    static func slowLeak(seed: UInt64, limit: UInt64, base: Double, hours: Double,
                         runFor: Int) -> (updates: [InsightUpdate], kill: Int?) {
        let rate = (Double(limit) - base) / (hours * 3600)
        return longClimb(seed: seed, limit: limit, runFor: runFor) { base + rate * Double($0) }
    }

    /// `shape` (bytes at second k) sampled every 5 s under the slow leaks' noise, for `runFor` seconds or until
    /// the kill; returns the updates and the kill's second (nil: none).
    static func longClimb(seed: UInt64, limit: UInt64, runFor: Int,
                          shape: (Int) -> Double) -> (updates: [InsightUpdate], kill: Int?) {
        SyntheticClimb.run(noise: TestNoise(state: seed &* 0xD1B5_4A32_D192_ED03), limit: limit, step: 5, white: 0.003,
                           wander: 0.0003, runFor: runFor, start: t0, shape: shape)
    }

    /// |said − true| / true time-to-OOM of every standing prediction's update made in the last hour before the kill
    /// at second `end`, up to five minutes before it (closer, a few MiB of noise are a large share of what is left);
    /// `each` sees those updates.
    static func lastHourErrors(_ predictions: [InsightUpdate], kill end: Int,
                               _ each: (InsightUpdate) -> Void) -> [Double] {
        var errors: [Double] = []
        for u in predictions where u.change != .resolved {
            let left = Double(end - second(u))
            guard left <= 3600, left >= 300,
                  let said = PredictionScore.seconds(goDuration: u.spec.prediction?.timeToEvent) else { continue }
            errors.append(abs(said - left) / left)
            each(u)
        }
        return errors
    }

    @Test("a straight climb of twenty minutes or more is read on all of it: a slow leak's time-to-OOM holds within 15 %")
    func slowLeakIsReadOnItsWholeClimb() throws {
        // `oom-slow-0`'s and `oom-slow-1`'s shapes and noise: 1Gi toward 4Gi in two hours, 200Mi toward 1Gi in three.
        // The window's five minutes see a slow leak rise about as much as its noise: their slope ran at 0.73–1.26 of
        // the whole climb's (1st–99th percentile over eight noise seeds of the corpus's slow leaks), and the
        // time-to-OOM with it; on the corpus `oom-slow-1` was raised 75 minutes before its kill saying 59, lapsed, and was raised
        // again. Over an hour, the halves of such a climb can also differ by four standard errors, which read as
        // slowing put the time-to-OOM 40–60 % late (the 3-hour leak, seeds 2–4). Scored: every update made in the
        // last hour before the kill, up to five minutes before it (closer, a few MiB of noise are a large share of
        // what is left). The 90th percentile of each draw's |error| is held to 15 %, the worst single update to 35 %:
        // a window out of the line's band (0.74 of it on the 3-hour leak) spoke for the climb, 39–50 % off on five of
        // its six draws, until it also had to differ from the line by more than noise explains (`windowAgrees`).
        var p90s: [String] = []
        var worst: [String] = []
        var raisedAgain: [String] = []
        var lines = 0
        var slowing: [String] = []
        for (limit, base, hours) in [(UInt64(4) << 30, 1024 * Self.mi, 2.0), (UInt64(1) << 30, 200 * Self.mi, 3.0)] {
            for seed in UInt64(1)...6 {
                let run = Self.slowLeak(seed: seed, limit: limit, base: base, hours: hours, runFor: Int(hours + 1) * 3600)
                let end = try #require(run.kill, "no kill in \(hours + 1) hours")
                let predictions = run.updates.filter { $0.identity.type == .oomPrediction }
                // Raised more than once in the last 90 minutes: lapsed near the horizon and raised again. (Earlier, a
                // chance bend in the first minutes can raise a prediction that the straight climb then settles.)
                let raised = predictions.filter { $0.change == .new && Self.second($0) >= end - 5400 }
                if raised.count > 1 { raisedAgain.append("\(hours) h, seed \(seed): raised at \(raised.map(Self.second)) s, kill at \(end) s") }
                let errors = Self.lastHourErrors(predictions, kill: end) { u in
                    // Read on the line while the window shows the growth (not the carry through noisy minutes).
                    if u.spec.evidence.contains(where: { $0.description.contains("minute maxima") }),
                       !u.spec.evidence.contains(where: { $0.description.hasPrefix("The last minutes are too noisy") }) {
                        lines += 1
                    }
                    if u.spec.evidence.contains(where: { $0.description.hasPrefix("Growth is slowing") }) {
                        slowing.append("\(hours) h, seed \(seed), \(end - Self.second(u)) s before the kill")
                    }
                }
                let p90 = try #require(PredictionScore.quantile(errors, 0.9), "\(hours) h, seed \(seed): no prediction in the last hour")
                p90s.append(String(format: "%.0f %%", p90 * 100))
                worst.append(String(format: "%.0f %%", (errors.max() ?? 0) * 100))
                #expect(p90 <= 0.15, "\(hours) h, seed \(seed): time-to-OOM off by \(Int(p90 * 100)) % (90th percentile) in the last hour")
                #expect((errors.max() ?? 0) <= 0.35, "\(hours) h, seed \(seed): one update off by \(Int((errors.max() ?? 0) * 100)) %")
            }
        }
        print("slow leaks' time-to-OOM error in their last hour (2 h, then 3 h; seeds 1–6): 90th percentile \(p90s), worst \(worst)")
        #expect(raisedAgain.isEmpty, "\(raisedAgain)")
        #expect(lines > 0, "no prediction was read on the whole climb while the window showed the growth")
        // Nor, in its last hour, is a straight climb read as slowing down (its halves apart by chance, the parabola no
        // better than a line).
        #expect(slowing.isEmpty, "read as slowing: \(slowing.count) updates, first \(slowing.first ?? "")")
    }

    @Test("a climb that slows down is not read on its long line: the corpus's logarithmic one is not predicted at 20 minutes")
    func slowingClimbIsNotReadOnItsLine() throws {
        // `quiet-logarithmic-1`: 60Mi + 55Mi × ln(1 + t/20 s) under a 512Mi limit. From twenty minutes on, its line
        // over the climb's minutes runs at about twice what the window sees now (the window's slope is 0.27–0.60 of
        // it over eight noise seeds, where a straight climb's is 0.63–1.41), and put the limit 39 minutes away: with
        // the line taken whatever the window said, this scenario was raised at 20 minutes (an Info at 0.19) and stood
        // for 20 more. Without that reading it was never predicted; `slowLeakIsReadOnItsWholeClimb` shows the reading
        // runs. Since slowing climbs are judged over the whole climb (``ClimbCurve/judgeSlowing(x:y:)``), this one is
        // read as a logarithm, not a line, and stays quiet with the band's lower bound removed too: the test now
        // guards both readings, either of which keeps it quiet.
        let url = PredictionCorpusTests.directory.appendingPathComponent("quiet-logarithmic-1.jsonl")
        let file = try FileHandle(forReadingFrom: url)
        defer { try? file.close() }
        var replay = ScenarioReplayer()
        var predicted: [String] = []
        let collect: (InsightUpdate) -> Void = { u in
            if u.identity.type == .oomPrediction, u.change != .resolved { predicted.append("\(u.change): \(u.spec.title)") }
        }
        while let chunk = try file.read(upToCount: 1 << 16), !chunk.isEmpty {
            try chunk.withUnsafeBytes { raw in try replay.feed(raw.bindMemory(to: UInt8.self), emit: collect) }
        }
        _ = try replay.finish(emit: collect)
        #expect(predicted.isEmpty, "\(predicted)")
    }

    @Test("a logarithmic climb is read as one: no prediction while the limit is hours away, at most two in its last 90 minutes")
    func logarithmicClimbIsReadAsOne() throws {
        // A cache keyed by ever new values: 150Mi + 140Mi × ln(1 + t/20 s) reaches 1Gi after 2.7 hours, 300Mi +
        // 110Mi × ln(1 + t/20 s) after 3.7. Read as a line while its halves' errors hid the bend, then as an
        // approach to a level ("levels off" just above where it was, pass after pass, until that level crossed the
        // limit), the first one was raised 32–72 minutes in (the kill 1.5–2.2 hours away) on each of these four
        // draws, and three to six times in its last 90 minutes; its time-to-OOM in the last hour was off by 45–64 %
        // (90th percentile). Read as a logarithm: 1–9 % (median), 5–56 % (90th percentile: the last hour's line
        // takes over where two hours of history no longer show the logarithm's bend). The 3.7-hour climb's last hour
        // is read on that line in both (24–45 % median, printed, not held).
        var early: [String] = []
        var raisedAgain: [String] = []
        var p90s: [String] = []
        var late: [String] = []
        var read = 0
        var carried = 0
        for (base, scale) in [(150.0, 140.0), (300.0, 110.0)] {
            for seed in UInt64(1)...4 {
                let run = Self.longClimb(seed: seed, limit: 1 << 30, runFor: 5 * 3600) { k in
                    (base + scale * log1p(Double(k) / 20)) * Self.mi
                }
                let end = try #require(run.kill, "no kill in 5 hours")
                let predictions = run.updates.filter { $0.identity.type == .oomPrediction }
                // Until 90 minutes before the kill: nothing to say — also not in its first ten minutes, while only the
                // window's bend reads the curve (levelling off, until one noisy evaluation read it straight).
                for u in predictions where u.change == .new {
                    let at = Self.second(u)
                    if at < end - 5400 { early.append("\(scale)Mi, seed \(seed): raised at \(at) s, kill at \(end) s") }
                }
                let raised = predictions.filter { $0.change == .new && Self.second($0) >= end - 5400 }
                if raised.count > 2 { raisedAgain.append("\(scale)Mi, seed \(seed): raised at \(raised.map(Self.second)) s, kill at \(end) s") }
                let errors = Self.lastHourErrors(predictions, kill: end) { u in
                    if u.spec.evidence.contains(where: { $0.description.hasPrefix("Growth slows but does not level off") }) {
                        read += 1
                    }
                    if u.spec.evidence.contains(where: { $0.description.hasSuffix("still follow the curve") }) { carried += 1 }
                }
                let median = try #require(PredictionScore.quantile(errors, 0.5), "\(scale)Mi, seed \(seed): no prediction in the last hour")
                let p90 = PredictionScore.quantile(errors, 0.9) ?? 0
                p90s.append(String(format: "%.0f / %.0f %%", median * 100, p90 * 100))
                // The first climb is read on its logarithm to the end (the second, past two hours, on its last hour's
                // line: printed, not held).
                if scale == 140, median > 0.15 { late.append("seed \(seed): \(Int(median * 100)) % (median)") }
            }
        }
        print("logarithmic climbs' time-to-OOM error in their last hour (140Mi, then 110Mi; seeds 1–4), median / 90th percentile: \(p90s)")
        #expect(early.isEmpty, "\(early)")
        #expect(raisedAgain.isEmpty, "\(raisedAgain)")
        #expect(read > 0, "no update was read on the logarithm")
        #expect(carried > 0, "no prediction was carried on the logarithm through noisy minutes")
        #expect(late.isEmpty, "the 2.7-hour climb's time-to-OOM in its last hour: \(late)")
    }

    @Test("a logarithmic climb's first twenty minutes raise no prediction, while the window still reads it levelling off")
    func logarithmicClimbsFirstMinutesAreQuiet() throws {
        // The two climbs of `logarithmicClimbIsReadAsOne`, their first twenty minutes on 16 noise draws each. The
        // window reads them as levelling off for minutes on end, then now and then straight on one evaluation (its
        // bend's z wanders around the bar of 3), which raised "OOM in 21m" hours before the kill; from ten minutes
        // of history the long climb reads the logarithm. A new prediction waits two minutes after the levelling-off
        // reading last held (``CorrelationEngine/Forecast/levelsOffHoldSeconds``).
        var raised: [String] = []
        for (base, scale) in [(150.0, 140.0), (300.0, 110.0)] {
            for seed in UInt64(1)...16 {
                let run = Self.longClimb(seed: seed, limit: 1 << 30, runFor: 1200) { k in
                    (base + scale * log1p(Double(k) / 20)) * Self.mi
                }
                for u in run.updates where u.identity.type == .oomPrediction && u.change == .new {
                    raised.append("\(scale)Mi, seed \(seed): at \(Self.second(u)) s, \(u.spec.prediction?.timeToEvent ?? "")")
                }
            }
        }
        #expect(raised.isEmpty, "\(raised)")
    }

    @Test("a fast leak right after a heap levelled off is warned at least 30 s before its kill: the wait is not for it")
    func fastLeakAfterALevellingOffIsWarned() throws {
        // 200Mi + 400Mi × (1 − e^(−t/120 s)) toward 1Gi, read as levelling off, then from seven minutes on a leak of
        // 3Mi/s on top: killed about 140 s later. Its prediction is due within ten minutes
        // (``CorrelationEngine/Forecast/urgentSeconds``), so the wait after a levelling-off reading does not hold it.
        var wrong: [String] = []
        var leads: [Int] = []
        for seed in UInt64(1)...8 {
            let run = Self.longClimb(seed: seed, limit: 1 << 30, runFor: 1800) { k in
                (200 + 400 * (1 - exp(-Double(k) / 120)) + 3 * Double(max(0, k - 420))) * Self.mi
            }
            let end = try #require(run.kill, "no kill")
            let warned = run.updates.first {
                $0.identity.type == .oomPrediction && $0.change != .resolved && $0.spec.severity >= .warning
                    && Self.second($0) >= 420
            }
            guard let warned else { wrong.append("seed \(seed): not warned (kill at \(end) s)"); continue }
            leads.append(end - Self.second(warned))
            if end - Self.second(warned) < 30 { wrong.append("seed \(seed): warned \(end - Self.second(warned)) s ahead") }
        }
        print("fast leak after a levelling off: warned \(leads) s before the kill (seeds 1–8)")
        #expect(wrong.isEmpty, "\(wrong)")
    }

    @Test("a leak that starts while the curve still levels off is raised once that reading is gone")
    func leakAfterALevellingOffIsRaised() throws {
        // 200Mi + 400Mi × (1 − e^(−t/240 s)), a heap filling toward 600Mi of a 1Gi limit, read as levelling off; from
        // eight minutes on, a leak of 20Mi/min on top, killed about 21 minutes later. A new prediction waits two
        // minutes after the levelling-off reading last held (``CorrelationEngine/Forecast/levelsOffHoldSeconds``):
        // the leak must still be raised with ten minutes or more to spare (20 without the wait, 12–17 with it). (The
        // fill's first, steep minute may get a low prediction of its own, settled as it levels off: not this test's
        // subject.)
        var wrong: [String] = []
        var raisedAt: [String] = []
        for seed in UInt64(1)...4 {
            let run = Self.longClimb(seed: seed, limit: 1 << 30, runFor: 2 * 3600) { k in
                (200 + 400 * (1 - exp(-Double(k) / 240)) + 20 * Double(max(0, k - 480)) / 60) * Self.mi
            }
            let end = try #require(run.kill, "no kill in 2 hours")
            let raised = run.updates.filter {
                $0.identity.type == .oomPrediction && $0.change == .new && Self.second($0) >= 480
            }
            raisedAt.append("\(raised.map(Self.second)) s, kill at \(end) s")
            guard let first = raised.first else { wrong.append("seed \(seed): the leak was never raised"); continue }
            if end - Self.second(first) < 600 { wrong.append("seed \(seed): raised \(end - Self.second(first)) s before the kill") }
        }
        print("leak after a levelling off, raised (seeds 1–4): \(raisedAt)")
        #expect(wrong.isEmpty, "\(wrong)")
    }

    @Test("a warm-up ramp and then a straight leak is read on the leak's line, not as a logarithm through both")
    func rampThenLeakIsNotALogarithm() throws {
        // 200Mi + 300Mi × (1 − e^(−t/600 s)) + 3Mi/min toward 1Gi: a cache warming up in its first half hour, then a
        // leak, killed after about three hours. The whole held climb bends down (the ramp) as a logarithm's does, and a
        // logarithm through both rises at three quarters of the leak's speed by the last hour, and ever slower: read
        // so, its time-to-OOM was three times the truth 57 minutes before the kill (a review's sketch), and the
        // prediction was raised 41–45 minutes before the kill instead of 59–62 (these draws, the first version).
        var wrong: [String] = []
        var medians: [String] = []
        for seed in UInt64(1)...4 {
            let run = Self.longClimb(seed: seed, limit: 1 << 30, runFor: 5 * 3600) { k in
                (200 + 300 * (1 - exp(-Double(k) / 600)) + 3 * Double(k) / 60) * Self.mi
            }
            let end = try #require(run.kill, "no kill in 5 hours")
            let predictions = run.updates.filter { $0.identity.type == .oomPrediction }
            var logarithm = 0
            let errors = Self.lastHourErrors(predictions, kill: end) { u in
                if u.spec.evidence.contains(where: { $0.description.hasPrefix("Growth slows but does not level off") }) {
                    logarithm += 1
                }
            }
            let median = try #require(PredictionScore.quantile(errors, 0.5), "seed \(seed): no prediction in the last hour")
            // Raised about an hour ahead, as a straight leak is (the horizon): not once the ramp has left the history.
            let first = try #require(predictions.first { $0.change == .new && Self.second($0) >= end - 5400 })
            let lead = end - Self.second(first)
            medians.append(String(format: "%.0f %%, raised %d min ahead", median * 100, lead / 60))
            if logarithm > 0 || median > 0.15 || lead < 3300 {
                wrong.append("seed \(seed): \(logarithm) updates read as a logarithm, median error \(Int(median * 100)) %, raised \(lead) s before the kill")
            }
        }
        print("ramp then leak: time-to-OOM error in the last hour, median per draw: \(medians)")
        #expect(wrong.isEmpty, "\(wrong)")
    }

    /// Feeds one sample a second (and, at second k, `extra(k)` if any) and returns every update the engine sent.
    static func updates(seconds: Int, limit: UInt64, value: (Int) -> Double,
                        extra: (Int, UInt64) -> AttributedEvent? = { _, _ in nil }) -> [InsightUpdate] {
        var engine = CorrelationEngine()
        var out: [InsightUpdate] = []
        for k in 0...seconds {
            let t = t0 + UInt64(k) * 1_000_000_000
            if let e = extra(k, t) { engine.ingest(e, now: t, into: &out) }
            engine.ingest(TestEvents.memory(pod: "p", ws: UInt64(max(0, value(k))), limit: limit, at: t), now: t, into: &out)
        }
        return out
    }

    static func second(_ u: InsightUpdate) -> Int { Int((u.observedAt - t0) / 1_000_000_000) }

    @Test("a climb that stops is settled within two minutes, saying so, not left standing for resolveAfter")
    func aClimbThatStopsIsSettled() throws {
        // 150Mi, then 4Mi/s from 120 s to 180 s (to 390Mi of a 512Mi limit), then flat.
        let out = Self.updates(seconds: 700, limit: 512 << 20) { k in
            150 * Self.mi + 4 * Self.mi * Double(min(max(k - 120, 0), 60))
        }
        let predictions = out.filter { $0.identity.type == .oomPrediction }
        let raised = try #require(predictions.first { $0.change == .new }, "the steep climb was not predicted")
        let settled = try #require(predictions.first { $0.change == .resolved }, "the prediction was never settled")
        #expect(Self.second(raised) <= 180)
        // resolveAfter (5 min) would end it at ~480 s at the earliest.
        #expect(Self.second(settled) <= 180 + 120, "settled at \(Self.second(settled)) s")
        #expect(settled.spec.summary.contains("stopped growing"), "\(settled.spec.summary)")
        #expect(!predictions.contains { $0.change == .new && Self.second($0) > Self.second(settled) }, "raised again on the plateau")
    }

    @Test("memory gone flat just under the limit keeps its prediction: that is reclaim holding it, not safety")
    func flatAtTheLimitIsNotAStop() throws {
        // The same climb into a 400Mi limit: flat at 390Mi, 97.5 % of it.
        let out = Self.updates(seconds: 400, limit: 400 << 20) { k in
            150 * Self.mi + 4 * Self.mi * Double(min(max(k - 120, 0), 60))
        }
        let predictions = out.filter { $0.identity.type == .oomPrediction }
        #expect(predictions.contains { $0.change == .new }, "the climb was not predicted")
        #expect(!predictions.contains { $0.change == .resolved && $0.spec.summary.contains("stopped growing") },
                "\(predictions.filter { $0.change == .resolved }.map(\.spec.summary))")
    }

    @Test("a restart ends the prediction about the old container at once: settled when it was not an OOM kill")
    func aRestartSettlesThePrediction() throws {
        // 100Mi + 1Mi/s into a 512Mi limit; the container restarts at 300 s (at ~400Mi), memory starts over.
        for reason in ["Completed", "OOMKilled"] {
            let out = Self.updates(seconds: 400, limit: 512 << 20, value: { k in
                k < 300 ? 100 * Self.mi + Self.mi * Double(k) : 50 * Self.mi
            }, extra: { k, t in k == 300 ? TestEvents.restart(pod: "p", count: 1, reason: reason, at: t) : nil })
            let predictions = out.filter { $0.identity.type == .oomPrediction }
            #expect(predictions.contains { $0.change == .new && Self.second($0) < 300 }, "\(reason): no prediction before the restart")
            let ended = try #require(predictions.first { $0.change == .resolved }, "\(reason): the prediction never ended")
            #expect(Self.second(ended) == 300, "\(reason): ended at \(Self.second(ended)) s")
            if reason == "OOMKilled" {
                #expect(!ended.spec.summary.contains("restarted"), "a kill fulfils the prediction: \(ended.spec.summary)")
            } else {
                #expect(ended.spec.summary.contains("The container restarted (Completed)"), "\(ended.spec.summary)")
            }
        }
    }

    @Test("the least-squares parabola reads a bend's level, slope and acceleration, and calls a noisy line straight")
    func theParabolaReadsABendAndCallsALineStraight() throws {
        let t = (0..<14).map { Double($0) * 10 }
        // y = 200 + 0.5 t + 0.003 t² (MiB): at t = 140 the level is 328.8, the slope 1.34, the acceleration 0.006.
        let curve = try #require(MemoryAnalysis.fitParabola(t: t, y: t.map { 200 + 0.5 * $0 + 0.003 * $0 * $0 }, at: 140))
        #expect(abs(curve.level - 328.8) < 1e-6 && abs(curve.slope - 1.34) < 1e-9 && abs(curve.accel - 0.006) < 1e-12)
        #expect(curve.z > 3)
        // A line with alternating noise of ±2: no bend worth three standard errors.
        let line = try #require(MemoryAnalysis.fitParabola(t: t, y: t.enumerated().map { 200 + 0.5 * $1 + ($0 % 2 == 0 ? 2 : -2) }, at: 140))
        #expect(abs(line.z) < 3)
        #expect(abs(line.slope - 0.5) < 0.1)
        // Too few points, or all at one instant: no parabola.
        #expect(MemoryAnalysis.fitParabola(t: [0, 10, 20, 30, 40], y: [1, 2, 3, 4, 5], at: 40) == nil)
        #expect(MemoryAnalysis.fitParabola(t: Array(repeating: 5, count: 8), y: (0..<8).map(Double.init), at: 5) == nil)
    }

    @Test("severity follows probability and time-to-OOM together")
    func severityTable() {
        typealias E = CorrelationEngine
        #expect(E.predictionSeverity(probability: 0.9, timeToOOM: 300) == .critical)
        #expect(E.predictionSeverity(probability: 0.9, timeToOOM: 1800) == .warning)
        #expect(E.predictionSeverity(probability: 0.45, timeToOOM: 45) == .critical)
        #expect(E.predictionSeverity(probability: 0.35, timeToOOM: 200) == .warning)
        #expect(E.predictionSeverity(probability: 0.35, timeToOOM: 900) == .info)
        #expect(E.predictionSeverity(probability: 0.2, timeToOOM: 30) == .info)
        // A standing prediction keeps its severity until clearly below its bar: 0.05 of probability, a tenth of time.
        #expect(E.predictionSeverity(probability: 0.77, timeToOOM: 603) == .warning)
        #expect(E.predictionSeverity(probability: 0.77, timeToOOM: 603, standing: .critical) == .critical)
        #expect(E.predictionSeverity(probability: 0.66, timeToOOM: 300, standing: .critical) == .critical)
        #expect(E.predictionSeverity(probability: 0.77, timeToOOM: 700, standing: .critical) == .warning)
        #expect(E.predictionSeverity(probability: 0.64, timeToOOM: 300, standing: .critical) == .warning)
        #expect(E.predictionSeverity(probability: 0.47, timeToOOM: 1800) == .info)
        #expect(E.predictionSeverity(probability: 0.47, timeToOOM: 1800, standing: .warning) == .warning)
        #expect(E.predictionSeverity(probability: 0.47, timeToOOM: 1800, standing: .critical) == .warning)
        #expect(E.predictionSeverity(probability: 0.44, timeToOOM: 1800, standing: .warning) == .info)
        #expect(E.predictionSeverity(probability: 0.27, timeToOOM: 320, standing: .warning) == .warning)
        // Standing lower, nothing is held: the bars are the bars.
        #expect(E.predictionSeverity(probability: 0.66, timeToOOM: 300, standing: .warning) == .warning)
        #expect(E.predictionSeverity(probability: 0.47, timeToOOM: 1800, standing: .info) == .info)
    }

    @Test("a staircase whose time-to-OOM steps around ten minutes stays Critical once it is")
    func severityIsHeldAtItsBar() {
        // `oom-staircase-1`'s shape: 40Mi steps every 60 s from 300Mi into 1Gi (killed at ~1,080 s), white noise of
        // 0.4 % of the limit. Its time-to-OOM crosses ten minutes a tread at a time.
        var flaps: [String] = []
        var critical = 0
        for seed in UInt64(1)...8 {
            var noise = TestNoise(state: seed &* 0x9E37_79B9_7F4A_7C15 | 1)
            let out = TestEvents.replayMemory(seconds: 1075, limit: 1 << 30) { t in
                300 * Self.mi + 40 * Self.mi * (t / 60).rounded(.down) + noise.gauss() * 0.004 * 1024 * Self.mi
            }
            var last: Severity?
            for p in out where p.identity.type == .oomPrediction && p.change != .resolved {
                if p.spec.severity == .critical { critical += 1 }
                if last == .critical, p.spec.severity < .critical {
                    flaps.append("seed \(seed) at \((p.observedAt - TestEvents.memoryStart) / 1_000_000_000) s")
                }
                last = p.spec.severity
            }
        }
        #expect(critical > 0)
        #expect(flaps.isEmpty, "\(flaps)")
    }

    @Test("a fast leak gets an early prediction at least 30 s before its kill, escalating as it goes")
    func fastLeakEarlyWarning() throws {
        // 10Mi + 3.6Mi/s into 300Mi: killed at ~80 s.
        let seen = Self.run(seconds: 79, limit: 300 << 20) { 10 * Self.mi + 3.625 * Self.mi * Double($0) }
        let first = try #require(seen.firstIndex { $0 != nil }, "no prediction before the kill")
        #expect(first <= 50, "first prediction at \(first) s")
        let probabilities = seen[first...].compactMap { $0?.probability }
        #expect(probabilities.last! > probabilities.first!, "\(probabilities)")
    }

    @Test("the long history holds a fixed number of minutes, whatever the series' length")
    func historyIsBounded() {
        var h = MemoryHistory()
        for k in 0..<(10 * 3600) { h.add(at: Self.t0 + UInt64(k) * 1_000_000_000, value: UInt64(k) << 20) }
        #expect(h.minutes.count == MemoryHistory.capacity)
        #expect(MemoryLayout<MemoryHistory.Minute>.stride == 8)
        // A gap longer than the history starts it afresh.
        h.add(at: Self.t0 + 20 * 3600 * 1_000_000_000, value: 1)
        #expect(h.minutes.count == 1)
    }
}
