#!/usr/bin/env python3
"""Writes the generated scenario files in this directory (format: FORMAT.md). Deterministic: fixed seeds.

Run from anywhere: python3 Tests/Scenarios/generate.py. Hand-written scenarios live beside these; this script
only (re)writes the files it names below.
"""
import json
import os
import random

# TAPIO_SCENARIO_DIR / TAPIO_SCENARIO_SEED: write variants elsewhere with other noise (robustness sweeps).
HERE = os.environ.get("TAPIO_SCENARIO_DIR") or os.path.dirname(os.path.abspath(__file__))
SEED = int(os.environ.get("TAPIO_SCENARIO_SEED", "0"))
MI = 1 << 20


def write(name, header, events):
    header = {"tapioScenario": 1, "name": name, "start": "2026-11-29T10:00:00Z", **header}
    with open(os.path.join(HERE, name + ".jsonl"), "w") as f:
        f.write(json.dumps(header) + "\n")
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")


def pod(t, name, ns="default", owner=None, node="node-1", image="registry.example/app:1.0", limit="512Mi",
        request="256Mi", container="app", uid=None, **extra):
    e = {"t": t, "type": "pod", "pod": f"{ns}/{name}", "node": node,
         "containers": [{"name": container, "image": image, "request": request, "limit": limit, **extra}]}
    if owner:
        e["owner"] = owner
    if uid:
        e["uid"] = uid
    if limit is None:
        del e["containers"][0]["limit"]
    return e


def mem(t, name, ws, ns="default", container="app"):
    return {"t": round(t, 3), "type": "memory", "pod": f"{ns}/{name}", "container": container, "workingSet": int(ws)}


def steady_leak():
    # 200Mi + 1Mi/s with ±2Mi noise, limit 512Mi: the true OOM is at t = 312 s. The kernel kills it there.
    r = random.Random(1 + SEED)
    ev = [pod(0, "leaky-api-7d9f", owner="Deployment/leaky-api", image="registry.example/leaky-api:1.4")]
    t = 0.0
    while t < 312:
        ws = min(200 * MI + MI * t + r.uniform(-2, 2) * MI, 511 * MI)
        ev.append(mem(t, "leaky-api-7d9f", ws))
        t += 1
    ev.append({"t": 312, "type": "oomKill", "pod": "default/leaky-api-7d9f", "container": "app", "pid": 4242,
               "comm": "leaky-api", "anon": "510Mi", "file": "1Mi"})
    ev.append({"t": 312.2, "type": "exit", "pod": "default/leaky-api-7d9f", "container": "app", "pid": 4242,
               "comm": "leaky-api", "signal": 9, "exitCode": 137})
    ev.append({"t": 313, "type": "restart", "pod": "default/leaky-api-7d9f", "container": "app", "restarts": 1,
               "reason": "OOMKilled", "exitCode": 137, "finishedAt": 312.1})
    write("oom-prediction-steady-leak",
          {"description": "A container leaks 1Mi/s from 200Mi toward its 512Mi limit and is OOM-killed at t=312s "
                          "(predicted; not yet called a leak, which takes a quarter of an hour of growth).",
           "duration": 330, "expect": ["OOMPrediction", "OOMKilled"]}, ev)


def gc_leak():
    # A GC sawtooth (30 s period, 60Mi teeth) whose floor climbs 0.5Mi/s toward a 1Gi limit.
    ev = [pod(0, "batch-worker-0", owner="StatefulSet/batch-worker", limit="1Gi", request="512Mi")]
    # 18 minutes: a leak is called one once it has lasted a quarter of an hour.
    for i in range(0, 1081):
        t = float(i)
        floor = 300 * MI + 0.5 * MI * t
        ev.append(mem(t, "batch-worker-0", floor + 60 * MI * ((t % 30) / 30)))
    write("oom-prediction-gc-leak",
          {"description": "GC sawtooth with a rising floor: peaks and troughs both climb 0.5Mi/s toward 1Gi.",
           "duration": 1080, "expect": ["OOMPrediction", "MemoryLeak"]}, ev)


def local_cgroup_oom():
    ev = []
    for i in range(0, 150):
        ev.append({"t": i, "type": "memory", "cgroup": "/tapio-demo/leaker", "cgroupId": 91234,
                   "workingSet": int(100 * MI + MI * i), "limit": "256Mi"})
    write("oom-prediction-local-cgroup",
          {"description": "No Kubernetes: a process in a cgroup with a 256Mi limit grows 1Mi/s.",
           "duration": 150, "expect": ["OOMPrediction"]}, ev)


def slow_leak():
    r = random.Random(3 + SEED)
    ev = [pod(0, "cache-5c8b", owner="Deployment/cache", limit="4Gi", request="1Gi")]
    for i in range(0, 1201):
        t = float(i)
        ev.append(mem(t, "cache-5c8b", 1024 * MI + 60e6 / 3600 * t + r.uniform(-0.25, 0.25) * MI))
    write("memory-leak-slow",
          {"description": "60 MB/h of steady growth under a 4Gi limit for 20 minutes: a leak once it has lasted a "
                          "quarter of an hour, but no OOM within the horizon.",
           "duration": 1200, "expect": ["MemoryLeak"]}, ev)


def unbounded():
    ev = []
    for i in range(0, 121):
        ev.append({"t": i, "type": "rss", "pid": 777, "comm": "python3", "anon": int(50 * MI + 0.5 * MI * i)})
    write("unbounded-growth-local-process",
          {"description": "A local process with no memory limit grows 0.5Mi/s for two minutes.",
           "duration": 120, "expect": ["UnboundedMemoryGrowth"]}, ev)


def sawtooth_silent():
    r = random.Random(5 + SEED)
    ev = [pod(0, "jvm-app-0", owner="StatefulSet/jvm-app", limit="1Gi", request="768Mi")]
    # 25 minutes: past the quarter of an hour a leak must last.
    for i in range(0, 1501):
        t = float(i)
        ev.append(mem(t, "jvm-app-0", 300 * MI + 300 * MI * ((t % 40) / 40) + r.uniform(-3, 3) * MI))
    write("silent-sawtooth-gc",
          {"description": "A bounded GC sawtooth 300→600Mi every 40 s under a 1Gi limit: nothing to predict.",
           "duration": 1500, "expect": []}, ev)


def step_plateau():
    r = random.Random(6 + SEED)
    ev = [pod(0, "importer-0", owner="Deployment/importer", limit="512Mi")]
    for i in range(0, 1501):
        t = float(i)
        if t < 150:
            base = 200
        elif t < 160:
            base = 200 + (t - 150) * 18
        else:
            base = 380
        ev.append(mem(t, "importer-0", base * MI + r.uniform(-3, 3) * MI))
    write("silent-step-plateau",
          {"description": "Memory steps from 200Mi to 380Mi (a cache warming up) and stays there for 25 minutes.",
           "duration": 1500, "expect": []}, ev)


def noisy_flat():
    r = random.Random(7 + SEED)
    ev = [pod(0, "web-6f7", owner="Deployment/web", limit="512Mi")]
    for i in range(0, 1501):
        ev.append(mem(i, "web-6f7", 400 * MI + r.gauss(0, 15) * MI))
    write("silent-noisy-flat",
          {"description": "400Mi with ±15Mi noise (σ) under a 512Mi limit for 25 minutes.",
           "duration": 1500, "expect": []}, ev)


def rollout_restarts():
    ev = []
    for k in range(3):
        ev.append(pod(0, f"shop-old-{k}", owner="Deployment/shop", image="registry.example/shop:1.0",
                      uid=f"old-{k}"))
    for k in range(3):
        t = 10 + 20 * k
        name = f"shop-new-{k}"
        ev.append(pod(t, name, owner="Deployment/shop", image="registry.example/shop:1.1", uid=f"new-{k}",
                      ready=False))
        # The new pod starts before its config is mounted, exits once, then comes up.
        ev.append({"t": t + 3, "type": "exit", "pod": f"default/{name}", "container": "app", "pid": 100 + k,
                   "comm": "shop", "exitCode": 1})
        ev.append({"t": t + 4, "type": "restart", "pod": f"default/{name}", "container": "app", "restarts": 1,
                   "reason": "Error", "exitCode": 1})
        ev.append(pod(t + 8, name, owner="Deployment/shop", image="registry.example/shop:1.1", uid=f"new-{k}",
                      restarts=1))
        ev.append({"t": t + 12, "type": "podDeleted", "pod": f"default/shop-old-{k}", "uid": f"old-{k}"})
    for i in range(0, 300, 5):
        for k in range(3):
            if i > 10 + 20 * k + 8:
                ev.append(mem(i, f"shop-new-{k}", 150 * MI))
    ev.sort(key=lambda e: e["t"])
    write("silent-rollout-restarts",
          {"description": "A rollout: each new pod restarts once while starting, then runs; old pods go.",
           "duration": 300, "expect": []}, ev)


def pod_deleted():
    ev = [pod(0, "report-1", owner="Deployment/report", uid="r-1")]
    for i in range(0, 40):
        ev.append(mem(i, "report-1", 300 * MI + 4 * MI * i))
    ev.append({"t": 40, "type": "podDeleted", "pod": "default/report-1", "uid": "r-1"})
    # Late samples of the deleted pod still in flight, then its replacement (same name, new uid) runs flat.
    ev.append({"t": 41, "type": "memory", "pod": "default/report-1", "uid": "r-1", "container": "app",
               "workingSet": 470 * MI})
    ev.append(pod(45, "report-1", owner="Deployment/report", uid="r-2"))
    for i in range(46, 400):
        ev.append(mem(i, "report-1", 200 * MI))
    write("silent-pod-deleted",
          {"description": "A growing pod is deleted mid-window; late samples arrive; its replacement is flat.",
           "duration": 400, "expect": []}, ev)


def crash_loop():
    ev = [pod(0, "api-old", owner="Deployment/api", image="registry.example/api:2.3", uid="api-old")]
    ev.append(pod(30, "api-7c4", owner="Deployment/api", image="registry.example/api:2.4", uid="api-new"))
    for k in range(1, 5):
        t = 30 + 15 * k * k
        ev.append({"t": t - 0.5, "type": "exit", "pod": "default/api-7c4", "container": "app", "pid": 500 + k,
                   "comm": "api", "signal": 11, "exitCode": 139})
        ev.append({"t": t, "type": "restart", "pod": "default/api-7c4", "container": "app", "restarts": k,
                   "reason": "Error", "exitCode": 139})
        if k >= 3:
            ev.append({"t": t + 1, "type": "crashLoop", "pod": "default/api-7c4", "container": "app", "restarts": k,
                       "reason": "Error", "exitCode": 139})
    write("crash-loop-after-rollout",
          {"description": "A new image segfaults on start: restarts back off into CrashLoopBackOff.",
           "duration": 320, "expect": ["CrashLoop"]}, ev)


def network():
    ev = [pod(0, "orders-5d", owner="Deployment/orders", image="registry.example/orders:3.0")]
    for i in range(5, 65, 3):
        ev.append({"t": i, "type": "tcp", "pod": "default/orders-5d", "container": "app", "pid": 321, "comm": "orders",
                   "kind": "connectFailed", "src": "10.244.1.17:40000", "dst": "10.96.14.2:5432", "errno": 111})
    for i in (20, 30, 40):
        ev.append({"t": i + 0.5, "type": "probeFailed", "pod": "default/orders-5d", "container": "app",
                   "probe": "Readiness", "message": "HTTP probe failed with statuscode: 503"})
    ev.append({"t": 61, "type": "restart", "pod": "default/orders-5d", "container": "app", "restarts": 1,
               "reason": "Error", "exitCode": 1})
    ev.sort(key=lambda e: e["t"])
    write("network-issue",
          {"description": "Connections to the database service are refused while readiness fails and the pod restarts.",
           "duration": 90, "expect": ["NetworkIssue"]}, ev)


def node_pressure():
    ev = []
    for k in range(4):
        ev.append(pod(0, f"svc-{k}", owner=f"Deployment/svc-{k}", node="node-2", limit="2Gi"))
    for i in range(0, 60, 5):
        for k in range(4):
            ev.append(mem(i, f"svc-{k}", (300 + 200 * k) * MI))
    ev.append({"t": 30, "type": "nodeCondition", "node": "node-2", "condition": "MemoryPressure", "status": True,
               "reason": "KubeletHasInsufficientMemory", "message": "kubelet has insufficient memory available"})
    ev.append({"t": 40, "type": "evicted", "pod": "default/svc-0",
               "message": "The node was low on resource: memory."})
    ev.sort(key=lambda e: e["t"])
    write("node-pressure",
          {"description": "node-2 reports MemoryPressure and evicts a pod.",
           "duration": 90, "expect": ["NodePressure"]}, ev)


def cluster_health():
    ev = []
    for k in range(7):
        ev.append(pod(0, f"pay-{k}", ns="payments", owner=f"Deployment/pay-{k}", node=f"node-{k % 3}",
                      image="registry.example/pay:3.1"))
    for k in range(7):
        t = 20 + 3 * k
        ev.append({"t": t, "type": "crashLoop", "pod": f"payments/pay-{k}", "container": "app", "restarts": 4,
                   "reason": "Error", "exitCode": 1})
    write("cluster-health",
          {"description": "Seven pods of one image crash-loop within half a minute: one systemic problem.",
           "duration": 60, "expect": ["ClusterHealth", "CrashLoop"]}, ev)


def oom_killed_child():
    ev = [pod(0, "renderer-0", owner="StatefulSet/renderer", limit="1Gi")]
    for i in range(0, 60, 5):
        ev.append(mem(i, "renderer-0", 700 * MI))
    ev.append({"t": 33, "type": "oomKill", "pod": "default/renderer-0", "container": "app", "pid": 9001,
               "comm": "chromium", "anon": "650Mi"})
    ev.append({"t": 33.1, "type": "exit", "pod": "default/renderer-0", "container": "app", "pid": 9001,
               "comm": "chromium", "signal": 9, "exitCode": 137})
    ev.sort(key=lambda e: e["t"])
    write("oom-killed-child",
          {"description": "The kernel OOM-kills a child process; the container itself keeps running.",
           "duration": 60, "expect": ["OOMKilled"]}, ev)


def oom_killed_status():
    ev = [pod(0, "etl-0", owner="StatefulSet/etl", limit="256Mi")]
    ev.append({"t": 10, "type": "oomKill", "pod": "default/etl-0", "container": "app", "pid": 77, "comm": "etl",
               "anon": "255Mi"})
    ev.append({"t": 11, "type": "restart", "pod": "default/etl-0", "container": "app", "restarts": 1,
               "reason": "OOMKilled", "exitCode": 137, "finishedAt": 10.2})
    # The same termination seen again in a later pod status (a relist): not a new OOM.
    ev.append(pod(20, "etl-0", owner="StatefulSet/etl", limit="256Mi", restarts=1,
                  lastTermination={"reason": "OOMKilled", "exitCode": 137, "at": 10.2}))
    write("oom-killed-status",
          {"description": "A container is OOM-killed; kernel and pod status report it, and a relist repeats it: one OOM.",
           "duration": 40, "expect": ["OOMKilled"]}, ev)


if __name__ == "__main__":
    for f in (steady_leak, gc_leak, local_cgroup_oom, slow_leak, unbounded, sawtooth_silent, step_plateau, noisy_flat,
              rollout_restarts, pod_deleted, crash_loop, network, node_pressure, cluster_health, oom_killed_child,
              oom_killed_status):
        f()
