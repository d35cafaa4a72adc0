#!/usr/bin/env bash
# int8 latency of one frame: our int8 engine vs ONNX Runtime int8 (QDQ, per-channel, static, 64 calibration
# frames) vs our float engine, same D-all weights, 1 and 2 threads, interleaved in one run (engine by engine
# within each round) so that load from other processes hits all of them alike. Then the model sizes and the
# peak RSS of a one-frame int8 run. Prints every measurement and a summary (median of the round medians).
#
#   scripts/bench-int8.sh                   # ROUNDS=5 RUNS=30 OBSERVER=minmax by default
#   ROUNDS=3 RUNS=20 scripts/bench-int8.sh
#   SIMD_CPU=cascadelake scripts/bench-int8.sh   # our engine built for AVX-512 VNNI (scripts/lib/simd-build.sh)
#
# Needs ../shared/hc18 (calibration frames) and the peer Python environment (PEER_PYTHON, default
# /work/peer/venv/bin/python): python3 -m venv /work/peer/venv &&
#   /work/peer/venv/bin/pip install torch segmentation-models-pytorch onnx onnxruntime
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PEER_PYTHON:-/work/peer/venv/bin/python}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-30}
OBSERVER=${OBSERVER:-minmax}
DATA=${DATA:-../shared/hc18/training_set}
SPLIT=fixtures/hc18/paper_split.csv
CHECKPOINT=fixtures/pytorch_D-all_192x128.safetensors
PEERS=.build/peers
INT8=$PEERS/dall_${OBSERVER}_192x128.int8.safetensors
ONNX_FP32=$PEERS/dall_fp32_192x128.onnx
ONNX_INT8=$PEERS/dall_int8_192x128.onnx
mkdir -p "$PEERS"

source scripts/lib/simd-build.sh
simd_build
if [ "$(uname -m)" = x86_64 ]; then
    madds=$(objdump -d --no-show-raw-insn "$OURS" | awk '/<\$s11QuantEngine13Int8DenseConv.*>:$/{on=1} /^$/{on=0} on' | grep -c 'vpmaddwd.*%ymm' || true)
    fused=$(objdump -d --no-show-raw-insn "$OURS" | awk '/<\$s11QuantEngine13Int8DenseConv.*>:$/{on=1} /^$/{on=0} on' | grep -c 'vpdpwssd.*%ymm' || true)
    echo "== int8 dense conv: $madds vpmaddwd + $fused vpdpwssd (VNNI) ymm instructions in Int8DenseConv (0 and 0 would mean no AVX2)"
fi

[ -f "$INT8" ] || "$OURS" calibrate --model "$CHECKPOINT" --data "$DATA" --split "$SPLIT" --size 192x128 --images 64 --observer "$OBSERVER" --out "$INT8"
[ -f "$ONNX_FP32" ] || "$PY" scripts/peers/export_onnx.py --checkpoint "$CHECKPOINT" --out "$ONNX_FP32"
[ -f "$ONNX_INT8" ] || "$PY" scripts/peers/quantize_onnx.py --fp32 "$ONNX_FP32" --out "$ONNX_INT8" --data "$DATA" --split "$SPLIT" --images 64

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
LOG=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
    for threads in 1 2; do
        echo "-- round $round, $threads thread(s)"
        "$OURS" latency --model "$INT8" --threads "$threads" --runs "$RUNS" | sed 's/^/sonoquant-int8 /' | tee -a "$LOG"
        (cd scripts/peers && "$PY" bench_float.py --engine ort --onnx "../../$ONNX_INT8" --threads "$threads" --runs "$RUNS") | sed 's/^onnxruntime/onnxruntime-int8/' | tee -a "$LOG"
        "$OURS" latency --model "$CHECKPOINT" --threads "$threads" --runs "$RUNS" | sed 's/^/sonoquant-float /' | tee -a "$LOG"
    done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== summary: median over $ROUNDS rounds of each round's median of $RUNS runs (wall), and of each round's"
echo "   process CPU time per run (all threads; robust to sharing the cores), ms (192x128, batch 1)"
python3 - "$LOG" <<'PY'
import re, sys, statistics
rows, cpu = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) .*threads=(\d+): median ([\d.]+) ms.*?(?:cpu ([\d.]+) ms/run)?$", line.strip())
    if m:
        engine = {"sonoquant-int8": "sonoquant int8 (gray uint8 input)", "onnxruntime-int8": "ONNX Runtime int8 QDQ",
                  "sonoquant-float": "sonoquant float32 (gray input)"}[m.group(1)]
        rows.setdefault(engine, {}).setdefault(int(m.group(2)), []).append(float(m.group(3)))
        if m.group(4):
            cpu.setdefault(engine, {}).setdefault(int(m.group(2)), []).append(float(m.group(4)))
med = lambda d, t: f"{statistics.median(d[t]):.1f}" if t in d else ""
print("| engine | wall, 1 thread | wall, 2 threads | CPU per frame, 1 thread | CPU per frame, 2 threads |\n|---|---|---|---|---|")
for engine, by_threads in rows.items():
    c = cpu.get(engine, {})
    print(f"| {engine} | {med(by_threads, 1)} | {med(by_threads, 2)} | {med(c, 1)} | {med(c, 2)} |")
PY
rm -f "$LOG"

echo "== sizes (bytes)"
f32=$("$PY" -c "
from safetensors import safe_open
import math
with safe_open('$CHECKPOINT', 'np') as f:
    print(sum(4 * math.prod(f.get_slice(k).get_shape()) for k in f.keys()))")
int8=$(stat -c %s "$INT8")
echo "float32 checkpoint (same tensors as F32): $f32; int8 model: $int8 ($(python3 -c "print(f'{100 * $int8 / $f32:.1f}')")%); ONNX fp32 $(stat -c %s "$ONNX_FP32"), ONNX int8 $(stat -c %s "$ONNX_INT8")"
echo "== peak RSS of a one-frame run (sonoquant latency --runs 1 --warmup 0 --threads 1)"
/usr/bin/time -f "int8 model:    %M KB max RSS, %e s wall (load + plan + 1 frame)" "$OURS" latency --model "$INT8" --threads 1 --runs 1 --warmup 0 >/dev/null
/usr/bin/time -f "float32 model: %M KB max RSS, %e s wall (load + plan + 1 frame)" "$OURS" latency --model "$CHECKPOINT" --threads 1 --runs 1 --warmup 0 >/dev/null
