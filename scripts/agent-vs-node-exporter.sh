#!/bin/bash
# Issue 14, part 3: the agent at rest beside prometheus-node-exporter, in one run. Starts node_exporter (Debian's
# prometheus-node-exporter) on 127.0.0.1:19100, scrapes it every 15 s, runs `tapio-bench agent.at-rest-100-pods`
# (release builds: swift build -c release --product tapio-bench, then --product tapio), reads
# node_exporter's CPU over the benchmark's measuring window and breaks the agent's RSS down from /proc/PID/smaps.
# Root (the benchmark makes real cgroups). Usage: bash scripts/agent-vs-node-exporter.sh LABEL; output in /tmp/side.LABEL.*
# TAPIO_BENCH_DIR: where tapio-bench and tapio are (default .build/release); for the image's binary:
#   bash scripts/build-image-binary.sh .build-image/bench/tapio && cp .build/release/tapio-bench .build-image/bench/
#   TAPIO_BENCH_DIR=.build-image/bench bash scripts/agent-vs-node-exporter.sh image
set -u
label=${1:-run}
command -v prometheus-node-exporter >/dev/null || { echo "install prometheus-node-exporter (apt-get install prometheus-node-exporter)" >&2; exit 2; }
cd "$(dirname "$0")/.."
dir=${TAPIO_BENCH_DIR:-.build/release}
[ -x "$dir/tapio-bench" ] && [ -x "$dir/tapio" ] || { echo "build first: swift build -c release --product tapio-bench && swift build -c release --product tapio" >&2; exit 2; }
ticks=$(getconf CLK_TCK)
prometheus-node-exporter --web.listen-address=127.0.0.1:19100 > /tmp/ne.log 2>&1 &
ne=$!
sleep 3
( while kill -0 $ne 2>/dev/null; do curl -s 127.0.0.1:19100/metrics > /dev/null; sleep 15; done ) &
scr=$!
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
# The benchmark's window: 60 s unless TAPIO_AT_REST_SECONDS says otherwise (at least 30 here).
secs=${TAPIO_AT_REST_SECONDS:-60}
[ "$secs" -ge 30 ] 2>/dev/null || secs=30
TAPIO_AT_REST_SECONDS=$secs "$dir/tapio-bench" agent.at-rest-100-pods > /tmp/side.$label.out 2> /tmp/side.$label.err &
b=$!
sleep 20
c0=$(cpu $ne); w0=$(date +%s.%N)
# The RSS breakdown 20 s before the end of the benchmark's window (TAPIO_AT_REST_SECONDS, default 60).
sleep $((secs - 20))
a=$(pgrep -f "tapio agent" | head -1)
echo "== agent pid $a" > /tmp/side.$label.mem
grep -E "VmRSS|RssAnon|RssFile|RssShmem" /proc/$a/status >> /tmp/side.$label.mem
cat /proc/$a/smaps_rollup >> /tmp/side.$label.mem 2>/dev/null
# biggest file mappings by Rss
awk '/^[0-9a-f]+-[0-9a-f]+ /{f=$6} /^Rss:/{r[f]+=$2} END{for(k in r) if(r[k]>500) print r[k], k}' /proc/$a/smaps | sort -rn | head -12 >> /tmp/side.$label.mem
sleep 20
c1=$(cpu $ne); w1=$(date +%s.%N)
wait $b
echo "node_exporter: $(echo "($c1-$c0)/$ticks/($w1-$w0)*1000" | bc -l | cut -c1-6) mCPU, $(awk '/VmRSS/{print $2/1024}' /proc/$ne/status) MiB RSS" >> /tmp/side.$label.mem
kill $scr $ne 2>/dev/null
wait 2>/dev/null
cat /tmp/side.$label.out; cat /tmp/side.$label.mem
