#!/usr/bin/env python3
"""Issue 14: brings a scale cluster up to N Nodes, each with a kubelet-like status and an agent heartbeat Lease, for
measuring the operator at 5,000 nodes (README, "The operator at 5,000 nodes and 50,000 Insights, measured").

The `scale` benchmark creates the Nodes of its simulated agents (scale-node-0 … scale-node-{AGENTS-1}); this adds
scale-node-{FROM} … scale-node-{N-1} the same way a kubelet would show them (4 conditions, capacity, allocatable,
30 images) and a heartbeat Lease for each as its agent writes it. Idempotent: existing objects are left as they are.

Talks plain HTTP to `kubectl proxy` (start it first: kubectl --kubeconfig K proxy --port 8901 &):
    python3 Benchmarks/scale-fill-nodes.py --from 200 --to 5000 [--proxy http://127.0.0.1:8901] [--namespace tapio-system]
Never against a shared cluster: it creates thousands of Nodes.
"""
import argparse
import concurrent.futures
import datetime
import json
import urllib.error
import urllib.request


def request(base, method, path, body=None, content_type="application/json"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def node(i, now):
    name = f"scale-node-{i}"
    conditions = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    resources = {"cpu": "8", "memory": "32863332Ki", "pods": "110", "ephemeral-storage": "203056560Ki"}
    images = [{"names": [f"registry.example/team-{k}/service-{k}@sha256:{k:064x}", f"registry.example/team-{k}/service-{k}:v1.{k}.0"],
               "sizeBytes": 50_000_000 + k * 1_000_000} for k in range(30)]
    return name, {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                              "node.kubernetes.io/instance-type": "m5.2xlarge",
                                              "topology.kubernetes.io/zone": f"zone-{i % 3}"}},
    }, {"status": {
        "conditions": [{"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": now,
                        "lastTransitionTime": now} for t, s, r, m in conditions],
        "capacity": resources, "allocatable": resources, "images": images,
        "nodeInfo": {"kubeletVersion": "v1.36.2", "containerRuntimeVersion": "containerd://1.7.24",
                     "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-28-amd64",
                     "operatingSystem": "linux", "architecture": "amd64", "machineID": f"{i:032x}",
                     "systemUUID": f"{i:032x}", "bootID": f"{i:032x}", "kubeProxyVersion": ""},
    }}


def lease(i, namespace, now):
    name = f"scale-node-{i}"
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": f"tapio-agent-{name}", "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "tapio", "tapio.io/node": name},
                     "annotations": {"tapio.io/applied-policies": "", "tapio.io/policy-errors": "",
                                     "tapio.io/node-problems": ""}},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 360, "renewTime": now},
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--from", dest="first", type=int, required=True)
    p.add_argument("--to", dest="last", type=int, required=True)
    p.add_argument("--proxy", default="http://127.0.0.1:8901")
    p.add_argument("--namespace", default="tapio-system")
    a = p.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    micro = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def one(i):
        name, obj, status = node(i, now)
        codes = [request(a.proxy, "POST", "/api/v1/nodes", obj)]
        codes.append(request(a.proxy, "PATCH", f"/api/v1/nodes/{name}/status", status, "application/merge-patch+json"))
        codes.append(request(a.proxy, "POST", f"/apis/coordination.k8s.io/v1/namespaces/{a.namespace}/leases",
                             lease(i, a.namespace, micro)))
        return codes

    failed = 0
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for codes in pool.map(one, range(a.first, a.last)):
            if any(c not in (200, 201, 409) for c in codes):
                failed += 1
    print(f"nodes {a.first}..{a.last - 1}: {a.last - a.first - failed} ok, {failed} with an error")


if __name__ == "__main__":
    main()
