#!/usr/bin/env bash
# Float32 latency of one frame: our engine vs ONNX Runtime fp32 vs PyTorch CPU, same D-all weights,
# 1 and 2 threads, interleaved in one run (engine by engine within each round) so that load from other
# processes hits all of them alike. Prints each measurement and a summary (median of the round medians).
#
#   scripts/bench-float.sh                  # ROUNDS=5 RUNS=30 SIZE=192x128 by default
#   ROUNDS=3 RUNS=20 scripts/bench-float.sh
#
# Needs the peer Python environment (PEER_PYTHON, default /work/peer/venv/bin/python):
#   python3 -m venv /work/peer/venv && /work/peer/venv/bin/pip install torch segmentation-models-pytorch onnx onnxruntime
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PEER_PYTHON:-/work/peer/venv/bin/python}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-30}
# PyTorch with 2 threads takes up to seconds per run when the cores are shared (its OpenMP threads spin).
TORCH_RUNS=${TORCH_RUNS:-10}
SIZE=${SIZE:-192x128}
WIDTH=${SIZE%x*}
HEIGHT=${SIZE#*x}
CHECKPOINT=fixtures/pytorch_D-all_192x128.safetensors
ONNX=.build/peers/dall_fp32_${SIZE}.onnx

source scripts/lib/release-build.sh
release_build

[ -f "$ONNX" ] || "$PY" scripts/peers/export_onnx.py --checkpoint "$CHECKPOINT" --out "$ONNX" --width "$WIDTH" --height "$HEIGHT"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
LOG=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
    for threads in 1 2; do
        echo "-- round $round, $threads thread(s)"
        "$OURS" latency --model "$CHECKPOINT" --size "$SIZE" --threads "$threads" --runs "$RUNS" --channels 3 | sed 's/^/sonoquant /' | tee -a "$LOG"
        "$OURS" latency --model "$CHECKPOINT" --size "$SIZE" --threads "$threads" --runs "$RUNS" --channels 1 | sed 's/^/sonoquant-gray /' | tee -a "$LOG"
        (cd scripts/peers && "$PY" bench_float.py --engine ort --onnx "../../$ONNX" --threads "$threads" --runs "$RUNS" --width "$WIDTH" --height "$HEIGHT") | tee -a "$LOG"
        (cd scripts/peers && "$PY" bench_float.py --engine torch --checkpoint "../../$CHECKPOINT" --threads "$threads" --runs "$TORCH_RUNS" --width "$WIDTH" --height "$HEIGHT") | tee -a "$LOG"
    done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== summary ($SIZE, batch 1, ms): median = median over $ROUNDS rounds of each round's median of $RUNS runs;"
echo "   best = fastest single run seen (the least disturbed by other processes);"
echo "   cpu = median over rounds of process CPU time per run, all threads (spinning threads count too)"
python3 - "$LOG" <<'PY'
import re, sys, statistics
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) .*threads=(\d+): median ([\d.]+) ms .*min ([\d.]+)\).*cpu ([\d.]+) ms/run", line)
    if m:
        engine = {"sonoquant": "sonoquant float32 (RGB input)", "sonoquant-gray": "sonoquant float32 (gray input)",
                  "onnxruntime": "ONNX Runtime fp32", "pytorch": "PyTorch CPU"}[m.group(1)]
        rows.setdefault(engine, {}).setdefault(int(m.group(2)), []).append((float(m.group(3)), float(m.group(4)), float(m.group(5))))
print("| engine | 1 thread: median | best | cpu | 2 threads: median | best | cpu |\n|---|---|---|---|---|---|---|")
for engine, by_threads in rows.items():
    cells = []
    for t in (1, 2):
        runs = by_threads.get(t, [])
        cells += [f"{statistics.median(r[0] for r in runs):.1f}", f"{min(r[1] for r in runs):.1f}",
                  f"{statistics.median(r[2] for r in runs):.1f}"] if runs else ["", "", ""]
    print(f"| {engine} | " + " | ".join(cells) + " |")
PY
rm -f "$LOG"
