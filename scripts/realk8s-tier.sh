#!/usr/bin/env bash
# The real-cluster tier: Tapio on a real Kubernetes node, as a user deploys it. Needs the realk8s cluster of
# ../shared/realk8s running with its node (build.sh, start.sh, node/build-node.sh, node/start-node.sh) and KUBECONFIG
# pointing at it; run as root (the image is imported into the node's containerd).
#   1. the API test suites against the real kube-apiserver (TAPIO_TEST_KUBECONFIG; RBAC and admission included);
#   2. the image, built here without Docker (scripts/image.sh), imported into the node's containerd;
#   3. the manifests, unmodified but for the image (a kustomize overlay), applied with kubectl apply -k; the agent
#      DaemonSet and the operator Deployment must become Ready, the probes load in the container, no Forbidden;
#   4. real incidents in a namespace of its own: a Deployment leaking toward its limit (an OOMPrediction on its pod
#      before the kernel kills it, then OOMKilled), a container that exits 3 (CrashLoop), each reported once;
#   5. everything it created is deleted, whatever the outcome (KEEP=1 keeps Tapio installed, for a look).
# SKIP_SUITE=1 skips step 1, SKIP_IMAGE=1 step 2 (an image built before).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KUBECONFIG:?set KUBECONFIG to the kubeconfig of the real cluster}"
export KUBECONFIG
image=localhost/tapio:tier
ns="tapio-tier-$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
fail() { echo "realk8s-tier: FAIL: $*" >&2; exit 1; }
say() { echo "realk8s-tier: $*" >&2; }
kubectl get nodes -o name | grep -q . || fail "no node registered (node/start-node.sh)"

if [[ -z ${SKIP_SUITE:-} ]]; then
  say "1. the test suite against the real API server"
  bash scripts/setup.sh debug
  TAPIO_TEST_KUBECONFIG="$KUBECONFIG" swift test --skip-build --disable-xctest --no-parallel \
    --filter "KubeClientTests|TapioAgentTests|TapioCLITests|TapioModelTests"
fi

say "2. the image"
if [[ -z ${SKIP_IMAGE:-} ]]; then bash scripts/image.sh "$image" .build/image/tapio-tier.tar; fi

say "3. the manifests, image set by an overlay"
overlay=.build/realk8s-overlay
rm -rf "$overlay"; mkdir -p "$overlay"
cat > "$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../config/overlays/remediation
images:
  - name: ghcr.io/tapio-io/tapio
    newName: ${image%:*}
    newTag: ${image##*:}
YAML
# What was there before stays: deleting the CRDs would delete every Insight in the cluster with them.
keep_kinds="^$"
kubectl get crd insights.tapio.io >/dev/null 2>&1 && keep_kinds="^CustomResourceDefinition$"
kubectl get namespace tapio-system >/dev/null 2>&1 && keep_kinds="$keep_kinds|^Namespace$"
cleanup() {
  kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  kubectl delete tapiopolicy "$ns" --ignore-not-found >/dev/null 2>&1 || true
  if [[ -z ${KEEP:-} ]]; then
    kubectl kustomize "$overlay" | KEEP_KINDS="$keep_kinds" python3 -c '
import os, re, sys
keep = re.compile(os.environ["KEEP_KINDS"])
docs = re.split(r"(?m)^---\s*$", sys.stdin.read())
out = []
for d in docs:
    m = re.search(r"(?m)^kind: *(\S+)", d)
    if m and not keep.search(m.group(1)):
        out.append(d)
print("\n---\n".join(out))
' | kubectl delete -f - --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
kubectl apply -k "$overlay" >&2
kubectl -n tapio-system rollout status daemonset/tapio-agent --timeout=180s >&2 || fail "the agent DaemonSet did not become Ready"
kubectl -n tapio-system rollout status deployment/tapio-operator --timeout=180s >&2 || fail "the operator did not become Ready"
agent_log() { kubectl -n tapio-system logs daemonset/tapio-agent 2>&1; }
agent_ip=$(kubectl -n tapio-system get pod -l app.kubernetes.io/component=agent -o jsonpath='{.items[0].status.podIP}')
ebpf=""
for _ in $(seq 60); do
  ebpf=$(curl -s --max-time 5 "http://$agent_ip:9464/metrics" | grep '^tapio_source_up{source="ebpf"}' || true)
  [[ -n $ebpf ]] && break
  sleep 1
done
say "   agent $agent_ip: ${ebpf:-no tapio_source_up for ebpf}"
[[ $ebpf == *" 1"* ]] || fail "the probes did not load in the agent container (${ebpf:-no metric}): $(agent_log | tail -20)"
agent_log | grep -qi 'polling /proc' && fail "the agent fell back to polling /proc: $(agent_log | grep -i 'polling' | head -3)"

say "4. a leak and a crash loop in namespace $ns"
kubectl create namespace "$ns" >&2
kubectl label namespace "$ns" tapio.io/watch=true >&2
sed "s/NAMESPACE/$ns/g" <<'YAML' | kubectl apply -f - >&2
apiVersion: tapio.io/v1alpha1
kind: TapioPolicy
metadata:
  name: NAMESPACE
spec:
  selector:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: NAMESPACE}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: leaky, namespace: NAMESPACE}
spec:
  replicas: 1
  selector: {matchLabels: {app: leaky}}
  template:
    metadata: {labels: {app: leaky}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: app
          image: localhost/busybox:1
          imagePullPolicy: Never
          # About half a MiB a second, held by the shell, until the kernel kills it at 128 MiB (about 4 minutes:
          # a prediction needs 90 s of growth, so faster leaks get none yet).
          command:
            - sh
            - -c
            - |
              c=$(head -c 524288 /dev/zero | tr '\000' a)
              x=
              while true; do x=$x$c; sleep 1; done
          resources: {requests: {memory: 64Mi}, limits: {memory: 128Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: crasher, namespace: NAMESPACE}
spec:
  containers:
    - name: app
      image: localhost/busybox:1
      imagePullPolicy: Never
      command: ["sh", "-c", "echo starting; exit 3"]
YAML
insight() { kubectl -n "$ns" get insights -o json | jq -r --arg t "$1" '[.items[] | select(.spec.type == $t)] | length'; }
wait_for() {  # TYPE SECONDS
  local end=$((SECONDS + $2))
  while ((SECONDS < end)); do [[ $(insight "$1") -ge 1 ]] && return 0; sleep 2; done
  return 1
}
wait_for OOMPrediction 300 || fail "no OOMPrediction for the leaking pod: $(kubectl -n "$ns" get insights 2>&1)"
predicted=$(date +%s)
kubectl -n "$ns" get insights -o json | jq -e '[.items[] | select(.spec.type == "OOMPrediction") | .spec.subject] | all(.kind == "Pod" and (.name | startswith("leaky-")) and .container == "app")' >/dev/null \
  || fail "the OOMPrediction is not about the leaking pod's container"
wait_for OOMKilled 300 || fail "no OOMKilled Insight"
say "   predicted $(( $(date +%s) - predicted )) s or more before the kill was reported"
wait_for CrashLoop 300 || fail "no CrashLoop Insight for the crashing pod"
for t in OOMPrediction OOMKilled CrashLoop; do
  n=$(insight "$t"); [[ $n -eq 1 ]] || fail "$n $t Insights in $ns (one per finding and pod expected)"
done
# The kubelet's own pod-level (and QoS) cgroups have limits too: they must not become subjects of their own. (Other
# limited cgroups on the host, e.g. a test suite's, are local subjects, reported in tapio-system as they should be.)
if kubectl get insights -n tapio-system -o json | jq -e '[.items[] | select(.spec.subject.kind == "Cgroup" and (.spec.subject.name | test("kubepods")))] | length > 0' >/dev/null; then
  fail "Insights about the kubelet's pod-level cgroups in tapio-system: $(kubectl get insights -n tapio-system | grep -i kubepods)"
fi
for c in tapio-agent:daemonset tapio-operator:deployment; do
  kubectl -n tapio-system logs "${c#*:}/${c%:*}" 2>&1 | grep -i 'forbidden' && fail "${c%:*} was refused a call"
done
kubectl get insights -n "$ns" >&2
say "PASS"
