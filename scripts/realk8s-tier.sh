#!/usr/bin/env bash
# The real-cluster tier: Tapio on a real Kubernetes node, as a user deploys it. Needs the realk8s cluster of
# ../shared/realk8s running with its node (build.sh, start.sh, node/build-node.sh, node/start-node.sh) and KUBECONFIG
# pointing at it; run as root on the node's host (the image is imported into the node's containerd, and steps 5–6
# reach into containers and stop the API server).
#   1. the API test suites against the real kube-apiserver (TAPIO_TEST_KUBECONFIG; RBAC and admission included; the
#      CRDs applied first when the cluster has none, and removed at the end);
#   2.–3. the README's "Deploying to a cluster" block, run as written (the image built by scripts/image.sh and
#      imported, the my-tapio overlay, kubectl apply -k, the sample policy); the agent DaemonSet and the operator
#      Deployment must become Ready, the probes load in the container, no Forbidden;
#   4. real incidents in a namespace of its own, under a policy in Apply mode that requires approval: a Deployment
#      leaking toward its limit (an OOMPrediction on its pod before the kernel kills it, then OOMKilled), a container
#      that exits 3 (CrashLoop), each reported once;
#   5. remediation: the OOMKilled Insight waits for approval; approved, the operator patches the Deployment, the
#      controller-manager rolls out a pod with the raised limit, the leader is killed (SIGKILL) — the other replica
#      takes the Lease and applies nothing again —, the new pod grows past the old limit without an OOM kill, and the
#      Insight resolves with its remediation history;
#   (before 6) the agent's state file written in the hostPath, and read back by the DaemonSet's next pod once the
#      agent pod is deleted;
#   6. the kube-apiserver (and etcd) stopped while the kernel OOM-kills processes in three pods — kills only the
#      agent sees (a child process, the container lives on): every one becomes an Insight once the server is back;
#   7. kubectl get insights / describe insight / get events, saved under .build/realk8s-tier/ for the README;
#   8. everything it created is deleted, whatever the outcome (KEEP=1 keeps Tapio installed, for a look); what was
#      there before (the CRDs, tapio-system, a TapioPolicy "default", Leases) stays.
# SKIP_SUITE=1 skips step 1, SKIP_IMAGE=1 the image build (an image built before: localhost/tapio:dev).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KUBECONFIG:?set KUBECONFIG to the kubeconfig of the real cluster}"
export KUBECONFIG
REALK8S="${REALK8S:-$(cd ../shared/realk8s 2>/dev/null && pwd || echo /work/shared/realk8s)}"
suffix="$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ns="tapio-tier-$suffix"
out=.build/realk8s-tier
mkdir -p "$out"
t0=$SECONDS
fail() { echo "realk8s-tier: FAIL [$((SECONDS - t0)) s]: $*" >&2; exit 1; }
say() { echo "realk8s-tier [$((SECONDS - t0)) s]: $*" >&2; }
# (no `| grep -q`: with pipefail, grep's early exit can fail kubectl with SIGPIPE)
[[ $(kubectl get nodes -o json | jq '[.items[] | select(.status.conditions[]? | .type == "Ready" and .status == "True")] | length') -ge 1 ]] \
  || fail "no Ready node registered (node/start-node.sh)"
[[ $(id -u) -eq 0 ]] || fail "run as root: steps 5 and 6 reach into the node's containers and stop the API server"

# ---- what was there before stays ------------------------------------------------------------------------------
keep_kinds="^$"
had_crds=""; kubectl get crd insights.tapio.io >/dev/null 2>&1 && { had_crds=1; keep_kinds="^CustomResourceDefinition$"; }
had_ns=""; kubectl get namespace tapio-system >/dev/null 2>&1 && { had_ns=1; keep_kinds="$keep_kinds|^Namespace$"; }
had_sample=""; kubectl get tapiopolicy default >/dev/null 2>&1 && had_sample=1
had_mytapio=""; [[ -e my-tapio ]] && had_mytapio=1
# The agent's state directory on the node (this host): the DaemonSet's hostPath, created by the kubelet if missing.
had_state=""; [[ -e /var/lib/tapio ]] && had_state=1
before() { kubectl -n tapio-system get "$1" -o name 2>/dev/null | sort || true; }
leases_before=$(before leases); insights_before=$(before insights.tapio.io)
api_stopped=""
cleanup() {
  local rc=$?
  set +e
  if [[ -n $api_stopped ]]; then say "cleanup: starting the API server again"; bash "$REALK8S/start.sh" >/dev/null; fi
  kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1
  kubectl delete tapiopolicy "$ns" --ignore-not-found >/dev/null 2>&1
  [[ -z $had_sample ]] && kubectl delete tapiopolicy default --ignore-not-found >/dev/null 2>&1
  if [[ -z ${KEEP:-} ]]; then
    if [[ -f my-tapio/kustomization.yaml ]]; then
      kubectl kustomize my-tapio | KEEP_KINDS="$keep_kinds" python3 -c '
import os, re, sys
keep = re.compile(os.environ["KEEP_KINDS"])
docs = re.split(r"(?m)^---\s*$", sys.stdin.read())
print("\n---\n".join(d for d in docs if not ((m := re.search(r"(?m)^kind: *(\S+)", d)) and keep.search(m.group(1)))))
' | kubectl delete -f - --ignore-not-found --wait=false >/dev/null 2>&1
    fi
    # Its pods flush pending writes on SIGTERM: sweep after they are gone.
    kubectl -n tapio-system wait --for=delete pod -l app.kubernetes.io/name=tapio --timeout=90s >/dev/null 2>&1
    # What this run's Tapio wrote in its own namespace: the election Lease (unless it was there before), the agents'
    # heartbeat Leases and Insights about local subjects on this cluster's nodes (others' tests may write there too).
    nodes=$(kubectl get nodes -o jsonpath='{.items[*].metadata.name}')
    mine=$(for n in $nodes; do echo "lease.coordination.k8s.io/tapio-agent-$n"; done; echo lease.coordination.k8s.io/tapio-operator)
    comm -13 <(echo "$leases_before") <(before leases) | grep -Fx -f <(echo "$mine") \
      | xargs -r kubectl -n tapio-system delete --ignore-not-found >/dev/null 2>&1
    # (the operator's cluster-level findings carry no node label: another test's fake NotReady Nodes make one)
    for sel in $(for n in $nodes; do echo "tapio.io/node=$n"; done) '!tapio.io/node'; do
      comm -13 <(echo "$insights_before") <(kubectl -n tapio-system get insights.tapio.io -l "$sel" -o name | sort) \
        | xargs -r kubectl -n tapio-system delete --ignore-not-found >/dev/null 2>&1
    done
    if [[ -n $had_ns ]]; then
      kubectl annotate namespace tapio-system kubectl.kubernetes.io/last-applied-configuration- >/dev/null 2>&1
    fi
    [[ -z $had_mytapio ]] && rm -rf my-tapio
    # The state file the agent kept on the node (after its pod is gone: it writes it once more at SIGTERM).
    [[ -z $had_state ]] && rm -rf /var/lib/tapio
    # The CRDs this run installed for step 1 (the overlay's delete above takes them too, if step 2 got that far).
    [[ -z $had_crds ]] && kubectl delete -k crds/ --ignore-not-found --wait=false >/dev/null 2>&1
  fi
  if ((rc == 0)); then say "PASS"; else say "cleaned up after the failure above"; fi
}
trap cleanup EXIT

# ---- 1. the API suites ------------------------------------------------------------------------------------------
if [[ -z ${SKIP_SUITE:-} ]]; then
  say "1. the test suite against the real API server"
  # The suites need the CRDs on the server (README, Testing): on a cluster without them this run installs them
  # and removes them at the end.
  if [[ -z $had_crds ]]; then
    say "   the cluster has no Tapio CRDs: kubectl apply -k crds/ (removed again at the end)"
    kubectl apply -k crds/ >/dev/null
    kubectl wait --for condition=established --timeout=60s crd/insights.tapio.io crd/tapiopolicies.tapio.io >/dev/null
  fi
  bash scripts/setup.sh debug
  TAPIO_TEST_KUBECONFIG="$KUBECONFIG" swift test --skip-build --disable-xctest --no-parallel \
    --filter "KubeClientTests|TapioAgentTests|TapioCLITests|TapioModelTests"
fi

# ---- 2–3. the README's deployment block, as written ------------------------------------------------------------
say "2.-3. the README's \"Deploying to a cluster\" block, as written"
block=$(awk '/^<!-- scripts\/realk8s-tier.sh runs the next block/ {f=1; next} f && /^```sh/ {g=1; next} g && /^```/ {exit} g' README.md)
[[ -n $block ]] || fail "README.md has no block marked for scripts/realk8s-tier.sh under \"Deploying to a cluster\""
printf '%s\n' "$block" > "$out/readme-deploy.sh"
if [[ -n ${SKIP_IMAGE:-} ]]; then
  grep -q '^bash scripts/image.sh' "$out/readme-deploy.sh" || fail "the README block no longer builds the image with scripts/image.sh"
  sed -i 's|^bash scripts/image.sh|: SKIP_IMAGE bash scripts/image.sh|' "$out/readme-deploy.sh"
  ctr -n k8s.io images ls -q | grep -x localhost/tapio:dev >/dev/null || fail "SKIP_IMAGE=1, but containerd has no localhost/tapio:dev"
fi
deploy_start=$SECONDS
bash -euo pipefail "$out/readme-deploy.sh" > "$out/readme-deploy.out" 2>&1 \
  || fail "the README's deployment block failed: $(tail -20 "$out/readme-deploy.out")"
say "   ran as written in $((SECONDS - deploy_start)) s; its output: $out/readme-deploy.out"
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
agent_log | grep -i "polling /proc" >/dev/null && fail "the agent fell back to polling /proc: $(agent_log | grep -i 'polling' | head -3)"

# ---- 4. incidents ----------------------------------------------------------------------------------------------
say "4. a leak, a crash loop and three held OOMs in namespace $ns, policy $ns in Apply mode"
kubectl create namespace "$ns" >&2
sed "s/NAMESPACE/$ns/g" <<'YAML' | kubectl apply -f - >&2
apiVersion: tapio.io/v1alpha1
kind: TapioPolicy
metadata:
  name: NAMESPACE
spec:
  selector:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: NAMESPACE}
  insights: {resolveAfter: "1m"}
  remediation:
    mode: "Apply"
    requireApproval: true
    allowedActions: ["IncreaseMemoryLimit"]
    namespaces: ["NAMESPACE"]
    maxActionsPerHour: 5
    memoryCeiling: "512Mi"
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
          # Warms up a 140 MiB working set at about half a MiB a second, in separate shell variables (one growing
          # string would be copied at each step, doubling the peak), then keeps it: the kernel kills it at 128 MiB
          # (after about 4 minutes: a prediction needs 90 s of growth), and a limit raised the way Tapio advises
          # (max(peak + 100Mi, peak × 1.2)) holds it.
          command:
            - sh
            - -c
            - |
              c=$(head -c 524288 /dev/zero | tr '\000' a)
              i=0
              while [ $i -lt 280 ]; do eval "v$i=\$c"; i=$((i + 1)); sleep 1; done
              echo "holding $((i / 2)) MiB"
              while true; do sleep 3600; done
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
for i in 1 2 3; do
  sed "s/NAMESPACE/$ns/g; s/NAME/held-$i/g" <<'YAML' | kubectl apply -f - >&2
apiVersion: v1
kind: Pod
metadata: {name: NAME, namespace: NAMESPACE, labels: {app: held}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: localhost/busybox:1
      imagePullPolicy: Never
      # Waits for /tmp/go (step 6 puts it there from the host), then a child process blows through the limit: the
      # kernel kills the child, the container lives on, so only the kernel (and Tapio's probes) see the kill.
      command:
        - sh
        - -c
        - |
          mkdir -p /tmp
          while [ ! -e /tmp/go ]; do sleep 0.2; done
          sh -c 'x=a; while true; do x=$x$x; done'
          echo "the child was killed"
          while true; do sleep 3600; done
      resources: {requests: {memory: 16Mi}, limits: {memory: 32Mi}}
YAML
done
insights() { kubectl -n "$ns" get insights -o json; }
count() { insights | jq --arg t "$1" --arg p "${2:-}" '[.items[] | select(.spec.type == $t and (.spec.subject.name | startswith($p)))] | length'; }
wait_for() {  # TYPE SECONDS [SUBJECT-PREFIX]
  local end=$((SECONDS + $2))
  while ((SECONDS < end)); do [[ $(count "$1" "${3:-}") -ge 1 ]] && return 0; sleep 2; done
  return 1
}
first_seen() { insights | jq -r --arg t "$1" --arg p "$2" '[.items[] | select(.spec.type == $t and (.spec.subject.name | startswith($p)))][0].status.firstSeen'; }
epoch() { date -d "$1" +%s.%N; }
leak_start=$SECONDS
wait_for OOMPrediction 330 leaky- || fail "no OOMPrediction for the leaking pod: $(kubectl -n "$ns" get insights 2>&1)"
say "   OOMPrediction $((SECONDS - leak_start)) s after the leak started"
insights | jq -e '[.items[] | select(.spec.type == "OOMPrediction") | .spec.subject] | all(.kind == "Pod" and (.name | startswith("leaky-")) and .container == "app")' >/dev/null \
  || fail "the OOMPrediction is not about the leaking pod's container"
wait_for OOMKilled 300 leaky- || fail "no OOMKilled Insight for the leaking pod"
old_pod=$(insights | jq -r '[.items[] | select(.spec.type == "OOMKilled" and (.spec.subject.name | startswith("leaky-")))][0].spec.subject.name')
lead=$(python3 -c "print(round($(epoch "$(first_seen OOMKilled leaky-)") - $(epoch "$(first_seen OOMPrediction leaky-)"), 1))")
say "   OOMKilled $((SECONDS - leak_start)) s after the start; the prediction came $lead s before the kill's Insight"
python3 -c "import sys; sys.exit(0 if $lead > 0 else 1)" || fail "the prediction ($lead s) did not come before the kill"
wait_for CrashLoop 300 crasher || fail "no CrashLoop Insight for the crashing pod"
insights | jq -e '[.items[] | select(.spec.type == "CrashLoop")][0] | (.spec.summary + .spec.title) | test("exit code 3|exited with 3|code 3")' >/dev/null \
  || fail "the CrashLoop Insight does not give its cause (exit code 3): $(insights | jq -r '[.items[] | select(.spec.type == "CrashLoop")][0].spec.summary')"
for t in OOMPrediction OOMKilled CrashLoop; do
  n=$(count "$t"); [[ $n -eq 1 ]] || fail "$n $t Insights in $ns (one per finding and pod expected)"
done
# The kubelet's own pod-level (and QoS) cgroups have limits too: they must not become subjects of their own. (Other
# limited cgroups on the host, e.g. a test suite's, are local subjects, reported in tapio-system as they should be.)
if kubectl get insights -n tapio-system -o json | jq -e '[.items[] | select(.spec.subject.kind == "Cgroup" and (.spec.subject.name | test("kubepods")))] | length > 0' >/dev/null; then
  fail "Insights about the kubelet's pod-level cgroups in tapio-system: $(kubectl get insights -n tapio-system | grep -i kubepods)"
fi

# ---- 5. remediation, and the leader killed ---------------------------------------------------------------------
say "5. remediation of $old_pod: approval, patch, rollout; the leading operator killed"
killed_name=$(insights | jq -r '[.items[] | select(.spec.type == "OOMKilled" and .spec.subject.name == "'"$old_pod"'")][0].metadata.name')
remediation_state() { kubectl -n "$ns" get insight "$killed_name" -o jsonpath='{.status.remediation.state}'; }
history() { kubectl -n "$ns" get insight "$killed_name" -o json | jq -c '[.status.remediation.history[]? | {outcome, gate}]'; }
history_times() { kubectl -n "$ns" get insight "$killed_name" -o json | jq -c '[.status.remediation.history[]? | {outcome, time}]'; }
end=$((SECONDS + 60))
until [[ $(remediation_state) == AwaitingApproval ]]; do
  ((SECONDS < end)) || fail "$killed_name is not AwaitingApproval (state '$(remediation_state)', history $(history)): is another TapioPolicy selecting $ns in a lower mode? $(kubectl get tapiopolicies 2>&1)"
  sleep 1
done
patch=$(kubectl -n "$ns" get insight "$killed_name" -o json | jq -r '[.spec.remediation.actions[] | select(.patch != null)][0].patch.body')
new_limit=$(jq -r '.spec.template.spec.containers[0].resources.limits.memory' <<<"$patch")
say "   $killed_name: AwaitingApproval; its patch raises the limit to $new_limit; approving"
leader_before=$(kubectl -n tapio-system get lease tapio-operator -o jsonpath='{.spec.holderIdentity}')
kubectl -n "$ns" annotate insight "$killed_name" tapio.io/approve=true >&2
approved=$SECONDS
end=$((SECONDS + 60))
until history | jq -e 'any(.[]; .outcome == "Applied")' >/dev/null; do
  ((SECONDS < end)) || fail "the operator did not apply the approved remediation within 60 s: state $(remediation_state), history $(history); operator: $(kubectl -n tapio-system logs deployment/tapio-operator --tail=10 2>&1)"
  sleep 0.5
done
applied=$SECONDS
generation=$(kubectl -n "$ns" get deployment leaky -o jsonpath='{.metadata.generation}')
limit_now=$(kubectl -n "$ns" get deployment leaky -o jsonpath='{.spec.template.spec.containers[0].resources.limits.memory}')
[[ $limit_now == "$new_limit" ]] || fail "the Deployment's limit is $limit_now, not the patch's $new_limit"
say "   Applied $((applied - approved)) s after the approval; Deployment leaky at generation $generation, limit $limit_now"

# Kill the leader without letting it release the Lease: SIGKILL from the host, then force-delete its pod so that it
# does not come back under the same name (the Deployment replaces it with a new one).
leader=$(kubectl -n tapio-system get lease tapio-operator -o jsonpath='{.spec.holderIdentity}')
operators=$(kubectl -n tapio-system get pods -l app.kubernetes.io/component=operator -o jsonpath='{.items[*].metadata.name}')
[[ " $operators " == *" $leader "* ]] || fail "the Lease tapio-operator is held by '$leader', not one of this run's operators ($operators)"
leader_uid=$(kubectl -n tapio-system get pod "$leader" -o jsonpath='{.metadata.uid}')
pods_pids() {  # POD-UID COMM: the pids of COMM in that pod's containers
  local p
  for p in /proc/[0-9]*; do
    grep -qs "pod$1/" "$p/cgroup" && [[ $(cat "$p/comm" 2>/dev/null) == "$2" ]] && echo "${p#/proc/}"
  done
  return 0
}
pids=($(pods_pids "$leader_uid" tapio)); pid=${pids[0]:-}
[[ -n $pid ]] || fail "no tapio process of the leader $leader (pod uid $leader_uid) on this host"
renewed=$(kubectl -n tapio-system get lease tapio-operator -o jsonpath='{.spec.renewTime}')
kill -KILL "$pid"
killed_at=$(date +%s.%N)
kubectl -n tapio-system delete pod "$leader" --grace-period=0 --force >/dev/null 2>&1 || true
holder="$leader"
end=$((SECONDS + 40))
while [[ $holder == "$leader" || -z $holder ]]; do
  ((SECONDS < end)) || fail "nobody took the Lease within 40 s of killing the leader $leader"
  sleep 0.25
  holder=$(kubectl -n tapio-system get lease tapio-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
done
took=$(date +%s.%N)
acquired=$(kubectl -n tapio-system get lease tapio-operator -o jsonpath='{.spec.acquireTime}')
lease_gap=$(python3 -c "print(round($(epoch "$acquired") - $(epoch "$renewed"), 1))")
takeover=$(python3 -c "print(round($took - $killed_at, 1))")
say "   leader $leader killed; $holder took the Lease $takeover s later ($lease_gap s after the dead leader's last renewal; lease 15 s, retry 2 s)"
[[ " $operators " == *" $holder "* ]] || say "   (the new holder is the replacement pod, not the standby)"
python3 -c "import sys; sys.exit(0 if $lease_gap <= 15 + 2 * 2 else 1)" \
  || fail "the takeover came $lease_gap s after the last renewal: more than the lease duration (15 s) and two retries"
# The new leader judges every Insight again at start: the applied action must not be applied a second time.
sleep 20
applied_count=$(insights | jq '[.items[].status.remediation.history[]? | select(.outcome == "Applied")] | length')
[[ $applied_count -eq 1 ]] || fail "$applied_count Applied entries in $ns after the fail-over (one expected): $(history)"
[[ $(kubectl -n "$ns" get deployment leaky -o jsonpath='{.metadata.generation}') == "$generation" ]] \
  || fail "Deployment leaky was changed again after the fail-over (generation $(kubectl -n "$ns" get deployment leaky -o jsonpath='{.metadata.generation}'), was $generation)"
holder_ip=$(kubectl -n tapio-system get pod "$holder" -o jsonpath='{.status.podIP}')
curl -s --max-time 5 "http://$holder_ip:9464/metrics" | grep '^tapio_remediation_attempts_total{outcome="applied"}' >/dev/null \
  && fail "the new leader $holder applied a remediation too: $(curl -s "http://$holder_ip:9464/metrics" | grep remediation)"
say "   after the fail-over: still one Applied entry, Deployment generation $generation, the new leader applied nothing"
kubectl -n "$ns" rollout status deployment/leaky --timeout=120s >&2 || fail "the Deployment did not roll out the raised limit"
# From the patch (the Applied entry) to the rollout's end (the Deployment's Progressing condition says so).
applied_time=$(history_times | jq -r 'map(select(.outcome == "Applied"))[0].time')
rolled_time=$(kubectl -n "$ns" get deployment leaky -o json | jq -r '.status.conditions[] | select(.type == "Progressing" and .reason == "NewReplicaSetAvailable") | .lastUpdateTime')
rollout=$(python3 -c "print(round($(epoch "$rolled_time") - $(epoch "$applied_time"), 1))")
new_pod=$(kubectl -n "$ns" get pods -l app=leaky -o json | jq -r '[.items[] | select(.metadata.deletionTimestamp == null and .spec.containers[0].resources.limits.memory == "'"$new_limit"'")][0].metadata.name')
[[ -n $new_pod && $new_pod != null && $new_pod != "$old_pod" ]] || fail "no new leaky pod with the limit $new_limit: $(kubectl -n "$ns" get pods -o wide)"
say "   rolled out $rollout s after the patch ($applied_time → $rolled_time): $new_pod (limit $new_limit) replaces $old_pod"

# Checked before step 6: a kube-apiserver that has just started refuses ServiceAccounts (403) for a few seconds,
# until its RBAC caches are filled — the agent logged Forbidden for every call then and retried.
for c in tapio-agent:daemonset tapio-operator:deployment; do
  kubectl -n tapio-system logs "${c#*:}/${c%:*}" 2>&1 | grep -i 'forbidden' && fail "${c%:*} was refused a call"
done

# The agent keeps its engine's memory in the hostPath /var/lib/tapio (--state-file): minutes in, it has written it,
# as the container's uid 0 with every capability but the four dropped, and never failed to.
state=$(curl -s --max-time 5 "http://$agent_ip:9464/metrics" | grep '^tapio_state_file_writes' || true)
say "   the agent's state file: $(tr '\n' ' ' <<<"$state")"
[[ $state == *'result="written"} '[1-9]* && $state == *'result="failed"} 0'* ]] \
  || fail "the agent's state file was not written, or a write failed: $state $(agent_log | grep -i 'engine memory' | tail -3)"
[[ -s /var/lib/tapio/engine-memory ]] || fail "no /var/lib/tapio/engine-memory on the node"
# ... and its next pod reads it back (an upgrade, a drain or a crash replaces the pod; the hostPath stays): the
# pod is deleted as a rollout deletes it (SIGTERM, a last write), and the DaemonSet's replacement must restore the
# node's containers' minute histories, with its probes loaded again before step 6 needs them.
old_agent=$(kubectl -n tapio-system get pod -l app.kubernetes.io/component=agent -o jsonpath='{.items[0].metadata.name}')
kubectl -n tapio-system delete pod "$old_agent" --timeout=90s >/dev/null || fail "the agent pod $old_agent was not deleted within 90 s"
read_back=""
end=$((SECONDS + 120))
until [[ $read_back == *'tapio_state_file_read{outcome="restored"} 1'* && $read_back == *'tapio_source_up{source="ebpf"} 1'* ]]; do
  ((SECONDS < end)) || fail "the agent's next pod did not restore its state file within 120 s: ${read_back:-no metrics} $(agent_log | grep -i 'engine memory' | tail -3)"
  sleep 1
  # (a failed get while the pod is replaced is one more try, not the script's end: pipefail)
  agent_ip=$(kubectl -n tapio-system get pods -l app.kubernetes.io/component=agent -o json \
    | jq -r '[.items[] | select(.metadata.deletionTimestamp == null and .metadata.name != "'"$old_agent"'" and .status.podIP != null)][0].status.podIP' || true)
  [[ -n $agent_ip && $agent_ip != null ]] || continue
  read_back=$(curl -s --max-time 5 "http://$agent_ip:9464/metrics" | grep -E '^tapio_state_file_(read|restored)|^tapio_source_up\{source="ebpf"\}' || true)
done
restored=$(grep -o 'what="containers"} [0-9]*' <<<"$read_back" | awk '{print $2}' || true)
say "   $old_agent deleted; the next agent ($agent_ip) restored ${restored:-no} containers' minute histories: $(agent_log | grep -i 'engine memory restored' | tail -1)"
[[ ${restored:-0} -ge 1 ]] || fail "the agent's next pod restored no container's history from the state file: $read_back"

# ---- 6. the API server stopped while the agent has Insights to write --------------------------------------------
say "6. the kube-apiserver stopped while the kernel OOM-kills in held-1..3"
held_cgroups=(); held_uids=()
for i in 1 2 3; do
  uid=$(kubectl -n "$ns" get pod "held-$i" -o jsonpath='{.metadata.uid}')
  cid=$(kubectl -n "$ns" get pod "held-$i" -o jsonpath='{.status.containerStatuses[0].containerID}')
  cg=$(find /sys/fs/cgroup/memory/kubepods -maxdepth 3 -type d -name "${cid#containerd://}" -print -quit)
  [[ -n $cg ]] || fail "no memory cgroup for held-$i ($cid)"
  held_cgroups+=("$cg")
  held_uids[$i]=$uid
done
oom_kills() { awk '/^oom_kill / {print $2}' "$1/memory.oom_control"; }
stop_start=$SECONDS
bash "$REALK8S/stop.sh" >&2
api_stopped=1
stopped_at=$(date -u +%FT%TZ)
for i in 1 2 3; do
  for pid in $(pods_pids "${held_uids[$i]}" sh); do touch "/proc/$pid/root/tmp/go" 2>/dev/null || true; done
done
end=$((SECONDS + 20))
for cg in "${held_cgroups[@]}"; do
  until [[ $(oom_kills "$cg") -ge 1 ]]; do ((SECONDS < end)) || fail "no OOM kill in $cg within 20 s"; sleep 0.2; done
done
say "   three kernel OOM kills while the API server was down; starting it again"
bash "$REALK8S/start.sh" >/dev/null
api_stopped=""
down=$((SECONDS - stop_start))
say "   the API server was down for $down s"
end=$((SECONDS + 120))
until [[ $(count OOMKilled held-) -ge 3 ]]; do
  ((SECONDS < end)) || fail "only $(count OOMKilled held-) of the 3 OOM kills made while the API server was down became Insights within 120 s of its return"
  sleep 1
done
held_after=$((SECONDS - stop_start - down))
say "   all three became Insights $held_after s after the API server's return (first seen: $(insights | jq -r '[.items[] | select(.spec.type == "OOMKilled" and (.spec.subject.name | startswith("held-"))) | .status.firstSeen] | join(", ")'); stopped at $stopped_at)"

# ---- back to 5: the new pod holds its working set, the Insight resolves ------------------------------------------
say "5. (cont.) $new_pod must grow past the old limit (128Mi) without an OOM kill"
new_cid=$(kubectl -n "$ns" get pod "$new_pod" -o jsonpath='{.status.containerStatuses[0].containerID}')
new_cg=$(find /sys/fs/cgroup/memory/kubepods -maxdepth 3 -type d -name "${new_cid#containerd://}" -print -quit)
[[ -n $new_cg ]] || fail "no memory cgroup for $new_pod"
end=$((SECONDS + 420))
until (($(cat "$new_cg/memory.max_usage_in_bytes") > 128 * 1024 * 1024)) && [[ $(kubectl -n "$ns" logs "$new_pod" 2>/dev/null) == *holding* ]]; do
  ((SECONDS < end)) || fail "$new_pod did not reach its working set within 7 minutes (peak $(($(cat "$new_cg/memory.max_usage_in_bytes") >> 20)) MiB)"
  restarts=$(kubectl -n "$ns" get pod "$new_pod" -o jsonpath='{.status.containerStatuses[0].restartCount}')
  [[ $restarts -eq 0 ]] || fail "$new_pod restarted ($restarts): $(kubectl -n "$ns" get pod "$new_pod" -o jsonpath='{.status.containerStatuses[0].lastState}')"
  sleep 5
done
sleep 15
restarts=$(kubectl -n "$ns" get pod "$new_pod" -o jsonpath='{.status.containerStatuses[0].restartCount}')
[[ $restarts -eq 0 && $(cat "$new_cg/memory.oom_control" | awk '/^oom_kill / {print $2}') -eq 0 ]] \
  || fail "$new_pod was OOM-killed under the raised limit (restarts $restarts)"
[[ $(count OOMKilled "$new_pod") -eq 0 ]] || fail "an OOMKilled Insight for $new_pod"
say "   $new_pod holds $(($(cat "$new_cg/memory.usage_in_bytes") >> 20)) MiB (peak $(($(cat "$new_cg/memory.max_usage_in_bytes") >> 20)) MiB) under $new_limit: no OOM kill, no restart"
# ---- 7. what a person sees --------------------------------------------------------------------------------------
say "7. kubectl get / describe / events, saved in $out"
kubectl get insights -A > "$out/get-insights.txt" 2>&1
kubectl -n "$ns" describe insight "$killed_name" > "$out/describe-insight.txt" 2>&1
kubectl -n "$ns" get events > "$out/get-events.txt" 2>&1
kubectl get tapiopolicy "$ns" > "$out/get-tapiopolicy.txt" 2>&1
sed "s/$ns/NS/g" "$out/get-insights.txt" >&2
phase=$(kubectl -n "$ns" get insight "$killed_name" -o jsonpath='{.status.phase}')
[[ $phase == Remediated ]] || fail "$killed_name is $phase after its pod was replaced by the patched Deployment (Remediated expected)"
history | jq -e 'any(.[]; .outcome == "Applied") and any(.[]; .gate == "Approval")' >/dev/null \
  || fail "$killed_name's history does not record the wait for approval and the patch: $(history)"
say "   $killed_name: phase $phase, remediation $(remediation_state), history $(history)"


say "timings: prediction ${lead} s before the kill; remediation applied $((applied - approved)) s after approval, rolled out in $rollout s; lease taken over $takeover s after the kill ($lease_gap s after the last renewal); API server down $down s, its held Insights written $held_after s after its return"
