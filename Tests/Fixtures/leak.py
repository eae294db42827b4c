#!/usr/bin/env python3
"""A steady memory leak for Tapio's tests: a real process whose RSS grows at a known rate.

usage: leak.py RATE_MIB_PER_S [MAX_MIB] [--wait]

Allocates RATE MiB every second in 10 slices (touching every page so it is resident) until MAX MiB
(default: forever), then sleeps. With --wait it first blocks until a line arrives on stdin, so the caller
can move it into a cgroup before it allocates anything.
"""
import sys, time

rate = float(sys.argv[1])
limit = float(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else float("inf")
if "--wait" in sys.argv:
    sys.stdin.readline()
print("leaking", flush=True)
held = []
total = 0.0
step = rate / 10.0
while True:
    if total + step <= limit:
        chunk = bytearray(int(step * 1024 * 1024))
        for i in range(0, len(chunk), 4096):
            chunk[i] = 1
        held.append(chunk)
        total += step
    time.sleep(0.1)
