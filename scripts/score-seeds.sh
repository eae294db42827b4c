#!/bin/bash
# Issue 12: the prediction-quality corpus scored over several noise seeds, so a figure that holds on the committed
# corpus (seed 0) by luck shows as such. Generates Tests/Scenarios/quality's scenarios with TAPIO_CORPUS_SEED =
# 0 … N-1 (same shapes and parameters, different noise) into a temporary directory, scores each with
# `tapio replay --score`, and prints one line per seed and, for the shapes whose time-to-OOM has a goal (linear,
# accelerating, staircase, big limits), the TTE error at the first Warning per scenario and seed.
# Usage: bash scripts/score-seeds.sh [N=12]   (TAPIO=path/to/tapio; default .build/release/tapio, else debug)
set -eu
n=${1:-12}
cd "$(dirname "$0")/.."
tapio=${TAPIO:-}
[ -n "$tapio" ] || for b in .build/release/tapio .build/debug/tapio; do [ -x "$b" ] && { tapio=$b; break; }; done
[ -n "$tapio" ] || { echo "build tapio first: swift build -c release --product tapio" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for s in $(seq 0 $((n - 1))); do
    mkdir -p "$work/c$s"
    TAPIO_CORPUS_SEED=$s TAPIO_CORPUS_DIR="$work/c$s" python3 Tests/Scenarios/quality/generate.py > /dev/null
    "$tapio" replay --score "$work/c$s" > "$work/score.$s"
done
python3 - "$work" "$n" <<'PY'
import re, sys
work, n = sys.argv[1], int(sys.argv[2])
errors, briers, rels = {}, [], []
print("| seed | recall | false positives | highest never-OOM probability | worst TTE error (linear, accelerating, staircase) | TTE error over the predictions' life, median / p90: all; accelerating | predictions raised: OOM scenarios (most on one); never-OOM | Brier | reliability − resolution + uncertainty |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for s in range(n):
    t = open(f"{work}/score.{s}").read()
    get = lambda pattern: re.search(pattern, t).group(1)
    briers.append(float(get(r"Brier score: ([0-9.]+)")))
    worst = re.search(r"worst for linear, accelerating, staircase: ([0-9]+) %", t)
    recall = get(r"recall at Warning or above: ([0-9/]+)")
    fp = get(r"false positives \(Warning or above, never OOM\): ([0-9]+)")
    top = get(r"highest probability on a never-OOM scenario: ([0-9.]+)")
    worst_text = worst.group(1) + " %" if worst else "–"
    parts = re.search(r"reliability ([0-9.]+) \(calibration error\) − resolution ([0-9.]+) \+ uncertainty ([0-9.]+)", t)
    rels.append(float(parts.group(1)))
    life = re.search(r"life .*?: all ([^;]+);.*?accelerating ([^,]+),", t)
    life_text = f"{life.group(1)}; {life.group(2)}" if life else "–"
    raised = re.search(r"predictions raised before the kill: ([0-9]+) on [0-9]+ OOM scenarios \(at most ([0-9]+) on one\); on never-OOM scenarios ([0-9]+)", t)
    raised_text = f"{raised.group(1)} ({raised.group(2)}); {raised.group(3)}" if raised else "–"
    print(f"| {s} | {recall} | {fp} | {top} | {worst_text} | {life_text} | {raised_text} | {briers[-1]:.3f} | {parts.group(1)} − {parts.group(2)} + {parts.group(3)} |")
    for line in t.splitlines():
        c = [x.strip() for x in line.split("|")]
        if len(c) > 8 and re.match(r"oom-(linear|accelerating|staircase|big)", c[1]):
            errors.setdefault(c[1], []).append(c[7].replace(" %", ""))
print(f"\nmean Brier over {n} seeds: {sum(briers) / n:.3f}; reliability (calibration error) {min(rels):.3f}–{max(rels):.3f}\n")
print(f"TTE error at the first Warning (%), seeds 0 … {n - 1}:")
for name, e in sorted(errors.items()):
    worst = max((abs(int(x)) for x in e if x.lstrip("+-").isdigit()), default=None)
    print(f"  {name:22s} {' '.join(f'{x:>4s}' for x in e)}   worst {worst} %")
PY
