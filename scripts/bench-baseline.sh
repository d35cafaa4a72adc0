#!/usr/bin/env bash
# The baseline U-Net (unet-baseline, 31M parameters) beside the MobileNetV2 U-Net: float32 and int8 latency
# of one 192x128 frame, 1 and 2 threads, interleaved in one run (model by model within each round, so load
# from other processes hits all alike), ONNX Runtime fp32 of the baseline beside ours; then file sizes and
# the peak RSS of a one-frame run. Prints every measurement and a summary (median of the round medians).
#
#   scripts/bench-baseline.sh                                # ROUNDS=3 RUNS=5 (baseline) SMALL_RUNS=20 (MobileNetV2)
#   BASELINE=runs/baseline/checkpoint.safetensors scripts/bench-baseline.sh
#
# BASELINE defaults to a checkpoint with PyTorch's default random init (scripts/peers/unet_baseline.py
# random): latency does not depend on the values. Both int8 models are calibrated (minmax) on the 24 train
# frames of the bundled fixture split, so the script needs no ../shared. Peer environment: PEER_PYTHON,
# default /work/peer/venv/bin/python (torch, onnx, onnxruntime).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PEER_PYTHON:-/work/peer/venv/bin/python}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-5}
SMALL_RUNS=${SMALL_RUNS:-20}
SIZE=192x128
PEERS=${PEERS:-.build/peers}
BASELINE=${BASELINE:-$PEERS/unet_baseline_random.safetensors}
MOBILENET=fixtures/pytorch_D-all_192x128.safetensors
DATA=fixtures/hc18/training_set
SPLIT=fixtures/hc18/split.csv
name=$(basename "$BASELINE" .safetensors)
BASELINE_INT8=$PEERS/${name}_minmax_192x128.int8.safetensors
MOBILENET_INT8=$PEERS/dall_fixture-calibrated_192x128.int8.safetensors
BASELINE_ONNX=$PEERS/${name}_fp32_192x128.onnx
mkdir -p "$PEERS"

source scripts/lib/release-build.sh
release_build

[ -f "$BASELINE" ] || "$PY" scripts/peers/unet_baseline.py random --out "$BASELINE"
[ -f "$BASELINE_INT8" ] || "$OURS" calibrate --model "$BASELINE" --data "$DATA" --split "$SPLIT" --size "$SIZE" --images 24 --out "$BASELINE_INT8"
[ -f "$MOBILENET_INT8" ] || "$OURS" calibrate --model "$MOBILENET" --data "$DATA" --split "$SPLIT" --size "$SIZE" --images 24 --out "$MOBILENET_INT8"
[ -f "$BASELINE_ONNX" ] || "$PY" scripts/peers/unet_baseline.py onnx --checkpoint "$BASELINE" --out "$BASELINE_ONNX"
BASELINE_ONNX=$(realpath "$BASELINE_ONNX")  # bench_float.py runs in scripts/peers

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
LOG=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
    for threads in 1 2; do
        echo "-- round $round, $threads thread(s)"
        "$OURS" latency --model "$BASELINE" --size "$SIZE" --threads "$threads" --runs "$RUNS" --warmup 2 | sed 's/^/baseline-float /' | tee -a "$LOG"
        "$OURS" latency --model "$BASELINE_INT8" --size "$SIZE" --threads "$threads" --runs "$RUNS" --warmup 2 | sed 's/^/baseline-int8 /' | tee -a "$LOG"
        (cd scripts/peers && "$PY" bench_float.py --engine ort --onnx "$BASELINE_ONNX" --threads "$threads" --runs "$RUNS" --warmup 2) | sed 's/^onnxruntime/baseline-ort /' | tee -a "$LOG"
        "$OURS" latency --model "$MOBILENET" --size "$SIZE" --threads "$threads" --runs "$SMALL_RUNS" | sed 's/^/mobilenet-float /' | tee -a "$LOG"
        "$OURS" latency --model "$MOBILENET_INT8" --size "$SIZE" --threads "$threads" --runs "$SMALL_RUNS" | sed 's/^/mobilenet-int8 /' | tee -a "$LOG"
    done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== summary: median over $ROUNDS rounds of each round's median (wall), and of each round's process CPU time"
echo "   per run (all threads; robust to sharing the cores), ms, $SIZE, batch 1, gray input (ORT: RGB)"
python3 - "$LOG" <<'PY'
import re, sys, statistics
rows, cpu = {}, {}
names = {"baseline-float": "unet-baseline, sonoquant float32", "baseline-int8": "unet-baseline, sonoquant int8",
         "baseline-ort": "unet-baseline, ONNX Runtime fp32", "mobilenet-float": "unet-mobilenet_v2 (D-all), sonoquant float32",
         "mobilenet-int8": "unet-mobilenet_v2 (D-all), sonoquant int8"}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) .*threads=(\d+): median ([\d.]+) ms.*?cpu ([\d.]+) ms/run$", line.strip())
    if m:
        engine = names[m.group(1)]
        rows.setdefault(engine, {}).setdefault(int(m.group(2)), []).append(float(m.group(3)))
        cpu.setdefault(engine, {}).setdefault(int(m.group(2)), []).append(float(m.group(4)))
med = lambda d, t: f"{statistics.median(d[t]):.1f}" if t in d else ""
print("| model, engine | wall, 1 thread | wall, 2 threads | CPU per frame, 1 thread | CPU per frame, 2 threads |\n|---|---|---|---|---|")
for engine in names.values():
    if engine in rows:
        print(f"| {engine} | {med(rows[engine], 1)} | {med(rows[engine], 2)} | {med(cpu[engine], 1)} | {med(cpu[engine], 2)} |")
PY
rm -f "$LOG"

echo "== sizes (bytes)"
float32() { "$PY" -c "
from safetensors import safe_open
import math
with safe_open('$1', 'np') as f:
    print(sum(4 * math.prod(f.get_slice(k).get_shape()) for k in f.keys()))"; }
for pair in "unet-baseline $BASELINE $BASELINE_INT8" "unet-mobilenet_v2 $MOBILENET $MOBILENET_INT8"; do
    set -- $pair
    f32=$(float32 "$2"); int8=$(stat -c %s "$3")
    echo "$1: float32 tensors $f32; int8 model file $int8 ($(python3 -c "print(f'{100 * $int8 / $f32:.1f}')")%)"
done
echo "ONNX fp32 of the baseline: $(stat -c %s "$BASELINE_ONNX")"
echo "== peak RSS of a one-frame run (sonoquant latency --size $SIZE --runs 1 --warmup 0 --threads 1)"
for model in "$BASELINE" "$BASELINE_INT8" "$MOBILENET" "$MOBILENET_INT8"; do
    /usr/bin/time -f "%M KB max RSS, %e s wall (load + plan + 1 frame): $model" "$OURS" latency --model "$model" --size "$SIZE" --threads 1 --runs 1 --warmup 0 >/dev/null
done
