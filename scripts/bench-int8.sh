#!/usr/bin/env bash
# int8 and float32 latency of one frame, side by side with ONNX Runtime, on the build the README gives a user
# (`swift build -c release`, kernels chosen at run time), same D-all weights, 192x128, 1 and 2 threads,
# interleaved in one run (engine by engine within each round) so that load from other processes hits all alike:
#   - sonoquant int8 on the path it picks for this CPU, and forced to the AVX2 path (SONOQUANT_KERNELS=avx2;
#     on CPUs without AVX2 that row is skipped), so the AVX2 machines' gap is known too;
#   - ONNX Runtime int8 (QDQ, per-channel, static, 64 calibration frames; MLAS picks its own kernels from CPUID);
#   - sonoquant float32 and ONNX Runtime fp32.
# Prints every measurement, a summary (median of the round medians) with the ratios, the model sizes and
# the peak RSS of a one-frame int8 run and the binary size.
#
#   scripts/bench-int8.sh                   # ROUNDS=5 RUNS=30 OBSERVER=minmax by default
#   ROUNDS=3 RUNS=20 scripts/bench-int8.sh
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

source scripts/lib/release-build.sh
release_build

[ -f "$INT8" ] || "$OURS" calibrate --model "$CHECKPOINT" --data "$DATA" --split "$SPLIT" --size 192x128 --images 64 --observer "$OBSERVER" --out "$INT8"
[ -f "$ONNX_FP32" ] || "$PY" scripts/peers/export_onnx.py --checkpoint "$CHECKPOINT" --out "$ONNX_FP32"
[ -f "$ONNX_INT8" ] || "$PY" scripts/peers/quantize_onnx.py --fp32 "$ONNX_FP32" --out "$ONNX_INT8" --data "$DATA" --split "$SPLIT" --images 64

AVX2=no
SONOQUANT_KERNELS=avx2 "$OURS" latency --model "$INT8" --size 64x64 --threads 1 --runs 1 --warmup 0 >/dev/null 2>&1 && AVX2=yes
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
LOG=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
    for threads in 1 2; do
        echo "-- round $round, $threads thread(s)"
        "$OURS" latency --model "$INT8" --threads "$threads" --runs "$RUNS" | sed 's/^/sonoquant-int8 /' | tee -a "$LOG"
        if [ "$AVX2" = yes ]; then
            SONOQUANT_KERNELS=avx2 "$OURS" latency --model "$INT8" --threads "$threads" --runs "$RUNS" | sed 's/^/sonoquant-int8-avx2 /' | tee -a "$LOG"
        fi
        (cd scripts/peers && "$PY" bench_float.py --engine ort --onnx "../../$ONNX_INT8" --threads "$threads" --runs "$RUNS") | sed 's/^onnxruntime/onnxruntime-int8/' | tee -a "$LOG"
        "$OURS" latency --model "$CHECKPOINT" --size 192x128 --threads "$threads" --runs "$RUNS" | sed 's/^/sonoquant-float /' | tee -a "$LOG"
        (cd scripts/peers && "$PY" bench_float.py --engine ort --onnx "../../$ONNX_FP32" --threads "$threads" --runs "$RUNS") | sed 's/^onnxruntime/onnxruntime-fp32/' | tee -a "$LOG"
    done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== summary: median over $ROUNDS rounds of each round's median of $RUNS runs (wall), and of each round's"
echo "   process CPU time per run (all threads; robust to sharing the cores), ms (192x128, batch 1);"
echo "   ratio = ours / ONNX Runtime of the same precision, wall (below 1: ours is faster)"
python3 scripts/peers/latency_summary.py "$LOG"
rm -f "$LOG"

echo "== sizes (bytes)"
f32=$("$PY" -c "
from safetensors import safe_open
import math
with safe_open('$CHECKPOINT', 'np') as f:
    print(sum(4 * math.prod(f.get_slice(k).get_shape()) for k in f.keys()))")
int8=$(stat -c %s "$INT8")
echo "float32 checkpoint (same tensors as F32): $f32; int8 model: $int8 ($(python3 -c "print(f'{100 * $int8 / $f32:.1f}')")%); ONNX fp32 $(stat -c %s "$ONNX_FP32"), ONNX int8 $(stat -c %s "$ONNX_INT8")"
echo "sonoquant binary: $(stat -c %s "$OURS") bytes"
echo "== peak RSS of a one-frame run (sonoquant latency --runs 1 --warmup 0 --threads 1)"
/usr/bin/time -f "int8 model:    %M KB max RSS, %e s wall (load + plan + 1 frame)" "$OURS" latency --model "$INT8" --threads 1 --runs 1 --warmup 0 >/dev/null
/usr/bin/time -f "float32 model: %M KB max RSS, %e s wall (load + plan + 1 frame)" "$OURS" latency --model "$CHECKPOINT" --size 192x128 --threads 1 --runs 1 --warmup 0 >/dev/null
