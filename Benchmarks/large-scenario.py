#!/usr/bin/env python3
"""Writes a large scenario (Tests/Scenarios/FORMAT.md) to stdout, for measuring `tapio replay` on big inputs.

    python3 Benchmarks/large-scenario.py 50 > /tmp/large.jsonl      # about 50 MB
    /usr/bin/time -v .build/release/tapio replay /tmp/large.jsonl > /dev/null

200 pods sampled once a second — most flat with noise, some leaking, some in a GC sawtooth — and every ten minutes
a quarter of them replaced by new pods (deleted, recreated under new names), so subjects come and go the way they do
in a cluster. Deterministic (fixed seed).
"""
import json
import random
import sys

MI = 1 << 20


def main():
    target = int(float(sys.argv[1] if len(sys.argv) > 1 else "50") * 1_000_000)
    r = random.Random(16)
    out = sys.stdout
    written = 0

    def emit(obj):
        nonlocal written
        line = json.dumps(obj, separators=(",", ":")) + "\n"
        out.write(line)
        written += len(line)

    emit({"tapioScenario": 1, "name": "large", "start": "2026-11-29T10:00:00Z",
          "description": "200 pods for as long as it takes to reach the size asked for."})
    generation = [0] * 200

    def name(i):
        return f"default/app-{i}-{generation[i]}"

    def create(i, t):
        emit({"t": t, "type": "pod", "pod": name(i), "owner": f"Deployment/app-{i % 20}", "node": f"node-{i % 10}",
              "containers": [{"name": "app", "image": f"registry.example/app:{i % 3}", "request": "256Mi",
                              "limit": "1Gi"}]})

    for i in range(200):
        create(i, 0)
    t = 0
    while written < target:
        t += 1
        if t % 600 == 0:
            for i in r.sample(range(200), 50):
                emit({"t": t, "type": "podDeleted", "pod": name(i)})
                generation[i] += 1
                create(i, t)
        for i in range(200):
            age = t % 600
            if i % 10 == 0:
                ws = 200 * MI + age * MI // 2          # a leak
            elif i % 10 == 1:
                ws = 300 * MI + (age % 40) * 8 * MI    # a GC sawtooth
            else:
                ws = 400 * MI
            ws += int(r.gauss(0, 2 * MI))
            emit({"t": t, "type": "memory", "pod": name(i), "container": "app", "workingSet": max(ws, 0)})


if __name__ == "__main__":
    main()
