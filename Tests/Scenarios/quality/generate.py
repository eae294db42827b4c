#!/usr/bin/env python3
"""Writes the labelled prediction-quality corpus in this directory (format: ../FORMAT.md, header field `truth`).

Every scenario is one container's memory with the truth in its header: `"truth": {"oomAt": SECONDS, "shape": …}`
when the kernel kills it (the first sample that reaches the limit; the kill, the exit and the restart follow at
once), `"oomAt": null` when it never reaches the limit. `tapio replay --score Tests/Scenarios/quality` scores the
engine's OOM predictions against these labels.

Deterministic: each scenario draws its noise from its own seeded generator (TAPIO_CORPUS_SEED shifts every seed,
for robustness sweeps; TAPIO_CORPUS_DIR writes elsewhere). The noise varies on purpose: white noise from 0.1 % to
3 % of the limit, and some series with a slowly wandering offset as well, so no rule can lean on one noise level.
The shapes and their parameters were chosen to look like real workloads before the engine was changed, and are
not adjusted to its results.

Run: python3 Tests/Scenarios/quality/generate.py
"""
import json
import math
import os
import random

HERE = os.environ.get("TAPIO_CORPUS_DIR") or os.path.dirname(os.path.abspath(__file__))
SEED = int(os.environ.get("TAPIO_CORPUS_SEED", "0"))
MI = 1 << 20
GI = 1 << 30

written = []


class Noise:
    """White noise of σ = `white` × limit plus, with `wander`, an offset that wanders slowly (a random walk pulled
    back to zero), as page cache and allocator slack do."""

    def __init__(self, seed, limit, white, wander=0.0):
        self.r = random.Random(seed * 7919 + SEED)
        self.limit = limit
        self.white = white
        self.wander = wander
        self.offset = 0.0

    def __call__(self):
        if self.wander:
            self.offset = 0.98 * self.offset + self.r.gauss(0, self.wander * self.limit)
        return self.r.gauss(0, self.white * self.limit) + self.offset


def scenario(name, shape, description, limit, f, end, step=1.0, noise=None, extra=None, seed=0, request=None,
             stop_at_limit=True):
    """Samples f(t) (+ noise) every `step` s up to `end`. With `stop_at_limit`, the first sample at or above the
    limit is the kill: the series ends there with the kernel's OOM kill, the victim's exit and the restart."""
    noise = noise or Noise(seed, limit, 0.005)
    pod = name
    ev = [{"t": 0, "type": "pod", "pod": f"quality/{pod}", "owner": f"Deployment/{pod}", "node": "node-1",
           "containers": [{"name": "app", "image": f"registry.example/{pod}:1", "request": request or limit // 2,
                           "limit": limit}]}]
    extra = sorted(extra or [], key=lambda e: e["t"])
    oom = None
    k = 0
    cur_limit = limit
    while True:
        t = round(k * step, 3)
        if t > end:
            break
        while extra and extra[0]["t"] <= t:
            e = extra.pop(0)
            if e["type"] == "pod":
                cur_limit = e["containers"][0]["limit"]
            ev.append(e)
        ws = max(0.0, f(t) + noise())
        if ws >= cur_limit:
            if stop_at_limit:
                oom = t
                ws = cur_limit - 4096
            else:
                ws = cur_limit - 4096
        ev.append({"t": t, "type": "memory", "pod": f"quality/{pod}", "container": "app", "workingSet": int(ws)})
        if oom is not None:
            break
        k += 1
    ev.extend(extra)
    if oom is not None:
        ev.append({"t": oom, "type": "oomKill", "pod": f"quality/{pod}", "container": "app", "pid": 4242,
                   "comm": "app", "anon": int(cur_limit - 8 * MI), "file": 1 * MI})
        ev.append({"t": round(oom + 0.2, 3), "type": "exit", "pod": f"quality/{pod}", "container": "app",
                   "pid": 4242, "comm": "app", "signal": 9, "exitCode": 137})
        ev.append({"t": round(oom + 1, 3), "type": "restart", "pod": f"quality/{pod}", "container": "app",
                   "restarts": 1, "reason": "OOMKilled", "exitCode": 137, "finishedAt": oom + 0.1})
    duration = (oom + 30) if oom is not None else end
    header = {"tapioScenario": 1, "name": name, "description": description, "start": "2026-11-29T10:00:00Z",
              "duration": duration, "truth": {"oomAt": oom, "shape": shape}}
    with open(os.path.join(HERE, name + ".jsonl"), "w") as out:
        out.write(json.dumps(header) + "\n")
        for e in ev:
            out.write(json.dumps(e, separators=(",", ":")) + "\n")
    written.append((name, oom))


def restart(t, n):
    return {"t": t, "type": "restart", "pod": None, "container": "app", "restarts": n, "reason": "Completed",
            "exitCode": 0, "finishedAt": t}


def saw(t, period, height):
    """A ramp from 0 to `height` over each period, dropping back at its end."""
    return height * ((t % period) / period)


# ---------------------------------------------------------------------------------------------------------------
# Scenarios that end in an OOM kill.

def oom_scenarios():
    # Linear leaks toward limits of 256Mi–2Gi at different rates; noise from 0.2 % to 2 % of the limit.
    for i, (limit, base, rate, white, wander) in enumerate([
            (512 * MI, 200 * MI, 1.0 * MI, 0.004, 0.0),        # ~5 min to the kill
            (1 * GI, 300 * MI, 0.5 * MI, 0.003, 0.0005),       # ~24 min
            (256 * MI, 64 * MI, 0.25 * MI, 0.02, 0.0),         # ~13 min, very noisy
            (2 * GI, 800 * MI, 2.0 * MI, 0.002, 0.001)]):      # ~10 min
        scenario(f"oom-linear-{i}", "linear", "a steady leak toward the limit", limit,
                 lambda t, b=base, r=rate: b + r * t, 3 * 3600, noise=Noise(100 + i, limit, white, wander))
    # Slow leaks: hours to the kill (sampled every 5 s to keep the files small).
    for i, (limit, base, hours) in enumerate([(4 * GI, 1 * GI, 2.0), (1 * GI, 200 * MI, 3.0)]):
        rate = (limit - base) / (hours * 3600)
        scenario(f"oom-slow-{i}", "slow", f"a slow leak, ~{hours:g} h to the kill", limit,
                 lambda t, b=base, r=rate: b + r * t, 5 * 3600, step=5, noise=Noise(200 + i, limit, 0.003, 0.0003))
    # Accelerating: quadratic and exponential growth.
    # y = base + (limit − base) × (0.2 u + 0.8 u²), u = t / T: the rate at the kill is nine times the first one.
    for i, (limit, base, T, white) in enumerate([(1 * GI, 200 * MI, 480, 0.003),
                                                  (512 * MI, 100 * MI, 1600, 0.005),
                                                  (2 * GI, 400 * MI, 1260, 0.002)]):
        scenario(f"oom-accelerating-{i}", "accelerating", f"growth that speeds up (quadratic, ~{T} s)", limit,
                 lambda t, b=base, L=limit, T=T: b + (L - b) * (0.2 * t / T + 0.8 * (t / T) ** 2), 3 * 3600,
                 noise=Noise(300 + i, limit, white))
    scenario("oom-accelerating-exp", "accelerating", "exponential growth (doubling every 5 min)", 1 * GI,
             lambda t: 60 * MI * math.exp(t * math.log(2) / 300), 3 * 3600, noise=Noise(310, 1 * GI, 0.003))
    # Staircase: steps of growth with flat treads.
    for i, (limit, base, step_h, every, white) in enumerate([
            (512 * MI, 150 * MI, 12 * MI, 30, 0.003),
            (1 * GI, 300 * MI, 40 * MI, 60, 0.004),
            (2 * GI, 500 * MI, 64 * MI, 45, 0.002)]):
        scenario(f"oom-staircase-{i}", "staircase", f"a step of {step_h // MI}Mi every {every} s", limit,
                 lambda t, b=base, h=step_h, e=every: b + h * math.floor(t / e), 3 * 3600,
                 noise=Noise(400 + i, limit, white))
    # Leaks under a GC sawtooth: the floor and peaks climb.
    for i, (limit, base, tooth, period, rate) in enumerate([
            (1 * GI, 300 * MI, 60 * MI, 30, 0.5 * MI),
            (2 * GI, 600 * MI, 300 * MI, 45, 1.0 * MI),
            (512 * MI, 150 * MI, 40 * MI, 20, 0.3 * MI)]):
        scenario(f"oom-gc-leak-{i}", "gc-leak", f"a GC sawtooth ({period} s) with a floor rising", limit,
                 lambda t, b=base, h=tooth, p=period, r=rate: b + r * t + saw(t, p, h), 3 * 3600,
                 noise=Noise(500 + i, limit, 0.003))
    # Leaks that start after a plateau.
    for i, (limit, base, plateau, rate) in enumerate([(512 * MI, 250 * MI, 600, 1.0 * MI),
                                                       (1 * GI, 400 * MI, 1200, 0.8 * MI)]):
        scenario(f"oom-after-plateau-{i}", "after-plateau", f"flat for {plateau} s, then a leak", limit,
                 lambda t, b=base, p=plateau, r=rate: b + r * max(0.0, t - p), 3 * 3600,
                 noise=Noise(600 + i, limit, 0.004))
    # Fast leaks: 1–3 min from the start to the kill.
    for i, (limit, base, seconds) in enumerate([(300 * MI, 10 * MI, 80), (300 * MI, 20 * MI, 100),
                                                 (512 * MI, 50 * MI, 120), (1 * GI, 100 * MI, 170)]):
        rate = (limit - base) / seconds
        scenario(f"oom-fast-{i}", "fast", f"a fast leak, ~{seconds} s from the start to the kill", limit,
                 lambda t, b=base, r=rate: b + r * t, 600, noise=Noise(700 + i, limit, 0.003))
    # Big limits.
    scenario("oom-big-0", "linear", "a leak into a 16Gi limit", 16 * GI, lambda t: 4 * GI + 16 * MI * t, 3 * 3600,
             noise=Noise(800, 16 * GI, 0.002, 0.0002))
    scenario("oom-big-1", "accelerating", "accelerating growth into a 32Gi limit", 32 * GI,
             lambda t: 8 * GI + 4 * MI * t + 0.05 * MI * t * t, 3 * 3600, noise=Noise(801, 32 * GI, 0.001))
    # Periodic ramps whose peaks climb from cycle to cycle until one reaches the limit.
    for i, (limit, period, base, height, climb) in enumerate([(1 * GI, 240, 300 * MI, 250 * MI, 60 * MI),
                                                               (512 * MI, 600, 100 * MI, 150 * MI, 35 * MI)]):
        scenario(f"oom-periodic-growing-{i}", "periodic-growing",
                 f"ramps every {period} s whose peaks climb {climb // MI}Mi a cycle", limit,
                 lambda t, p=period, b=base, h=height, c=climb: b + c * math.floor(t / p)
                 + h * min(1.0, (t % p) / (0.8 * p)) * (1 if (t % p) < 0.8 * p else 0),
                 6 * 3600, noise=Noise(900 + i, limit, 0.004))


# ---------------------------------------------------------------------------------------------------------------
# Scenarios that never OOM.

def quiet_scenarios():
    for i, (limit, base, tooth, period, white) in enumerate([(1 * GI, 300 * MI, 350 * MI, 40, 0.004),
                                                              (2 * GI, 800 * MI, 900 * MI, 120, 0.003),
                                                              (512 * MI, 200 * MI, 150 * MI, 15, 0.01)]):
        scenario(f"quiet-gc-sawtooth-{i}", "gc-sawtooth", f"a bounded GC sawtooth every {period} s", limit,
                 lambda t, b=base, h=tooth, p=period: b + saw(t, p, h), 1800, noise=Noise(1000 + i, limit, white))
    for i, (limit, low, high, at, ramp) in enumerate([(512 * MI, 150 * MI, 380 * MI, 120, 60),
                                                       (1 * GI, 300 * MI, 850 * MI, 200, 120)]):
        scenario(f"quiet-step-plateau-{i}", "step-plateau", "a step up, then a plateau", limit,
                 lambda t, lo=low, hi=high, a=at, r=ramp: lo + (hi - lo) * min(1.0, max(0.0, (t - a) / r)), 1800,
                 noise=Noise(1100 + i, limit, 0.004))
    for i, (limit, level, white, wander) in enumerate([(512 * MI, 400 * MI, 0.03, 0.0),
                                                        (1 * GI, 600 * MI, 0.01, 0.002)]):
        scenario(f"quiet-noisy-flat-{i}", "noisy-flat", "a flat, noisy series", limit, lambda t, l=level: l, 1800,
                 noise=Noise(1200 + i, limit, white, wander))
    for i, (limit, frac) in enumerate([(512 * MI, 0.93), (2 * GI, 0.96)]):
        scenario(f"quiet-flat-near-limit-{i}", "flat-near-limit", f"flat at {int(frac * 100)} % of the limit",
                 limit, lambda t, l=limit, f=frac: l * f, 1800, noise=Noise(1300 + i, limit, 0.004))
    for i, (limit, level, spike, at) in enumerate([(512 * MI, 300 * MI, 200 * MI, 400),
                                                    (1 * GI, 500 * MI, 480 * MI, 700)]):
        scenario(f"quiet-spike-{i}", "spike", "one spike toward the limit on a flat series", limit,
                 lambda t, l=level, s=spike, a=at: l + (s if a <= t < a + 3 else 0), 1800,
                 noise=Noise(1400 + i, limit, 0.003))
    # Saturating growth: an exponential approach to a level below the limit (a heap filling to -Xmx, a cache).
    for i, (limit, start, top, tau) in enumerate([(1 * GI, 100 * MI, 900 * MI, 300),
                                                   (512 * MI, 50 * MI, 470 * MI, 600),
                                                   (2 * GI, 200 * MI, 1800 * MI, 150)]):
        scenario(f"quiet-saturating-exp-{i}", "saturating", f"approaches {top // MI}Mi of {limit // MI}Mi (τ {tau} s)",
                 limit, lambda t, s=start, a=top, T=tau: a - (a - s) * math.exp(-t / T), 3600,
                 noise=Noise(1500 + i, limit, 0.003))
    # Logarithmic growth (a cache warming up): still rising slowly at the end, far from the limit's reach.
    for i, (limit, start, k) in enumerate([(1 * GI, 150 * MI, 110 * MI), (512 * MI, 60 * MI, 55 * MI)]):
        scenario(f"quiet-logarithmic-{i}", "logarithmic", "logarithmic growth", limit,
                 lambda t, s=start, k=k: s + k * math.log1p(t / 20), 3600, noise=Noise(1600 + i, limit, 0.003))
    # Periodic ramps: climb for ~3/4 of the period, drop back; periods from 1 to 60 minutes.
    for i, (limit, period, base, height, step) in enumerate([(512 * MI, 60, 150 * MI, 200 * MI, 1),
                                                              (512 * MI, 240, 150 * MI, 250 * MI, 1),
                                                              (1 * GI, 600, 300 * MI, 500 * MI, 1),
                                                              (2 * GI, 1800, 600 * MI, 900 * MI, 2),
                                                              (4 * GI, 3600, 1 * GI, 2 * GI, 5)]):
        scenario(f"quiet-periodic-{period // 60}m", "periodic",
                 f"ramps for 3/4 of every {period // 60} min, then drops back", limit,
                 lambda t, p=period, b=base, h=height: b + (h * (t % p) / (0.75 * p) if (t % p) < 0.75 * p else 0),
                 max(5 * period, 1800), step=step, noise=Noise(1700 + i, limit, 0.004))
    # Restarts mid-series: memory grows toward the limit, but a rollout restarts the container first each time.
    for i, (limit, base, rate, every) in enumerate([(512 * MI, 100 * MI, 0.5 * MI, 600),
                                                     (1 * GI, 300 * MI, 1.2 * MI, 420)]):
        name = f"quiet-restarts-{i}"
        extra = [dict(restart(k * every, k), pod=f"quality/{name}") for k in range(1, 6)]
        scenario(name, "restarts", f"growth reset by a restart every {every} s, before the limit", limit,
                 lambda t, b=base, r=rate, e=every: b + r * (t % e), 6 * every - 1, noise=Noise(1800 + i, limit, 0.004),
                 extra=extra)
    # A limit raised mid-series: the growth that would have hit the old limit levels off under the new one.
    for i, (limit, new, base, rate, at, top) in enumerate([(512 * MI, 2 * GI, 200 * MI, 0.6 * MI, 300, 700 * MI),
                                                            (1 * GI, 4 * GI, 500 * MI, 1.0 * MI, 360, 1400 * MI)]):
        name = f"quiet-limit-raised-{i}"
        extra = [{"t": at, "type": "pod", "pod": f"quality/{name}", "owner": f"Deployment/{name}", "node": "node-1",
                  "containers": [{"name": "app", "image": f"registry.example/{name}:1", "request": limit // 2,
                                  "limit": new}]}]
        scenario(name, "limit-raised", f"the limit raised to {new // MI}Mi at {at} s; growth then levels off",
                 limit, lambda t, b=base, r=rate, tp=top: min(tp, b + r * t), 1800,
                 noise=Noise(1900 + i, limit, 0.003), extra=extra)


if __name__ == "__main__":
    for f in os.listdir(HERE):
        if f.endswith(".jsonl"):
            os.remove(os.path.join(HERE, f))
    oom_scenarios()
    quiet_scenarios()
    ooms = sum(1 for _, o in written if o is not None)
    for name, oom in written:
        print(f"{name:32s} {'OOM at %.0f s' % oom if oom is not None else 'never'}")
    print(f"{len(written)} scenarios, {ooms} OOM, {len(written) - ooms} never")
