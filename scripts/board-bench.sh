#!/usr/bin/env bash
# What a Raspberry Pi (or any Linux board or box) user runs to see SonoQuant's float32 and int8 latency beside
# ONNX Runtime int8 and fp32 on the board, same D-all model, 1 thread and all cores, interleaved round by round,
# with the ratios printed (ours / ONNX Runtime; below 1: ours is faster). Emulated timings are not results:
# run it on the board itself.
#
#   scripts/board-bench.sh MODELS_DIR          # ROUNDS=5 RUNS=30 THREADS="1 $(nproc)" by default
#
# MODELS_DIR holds the three files that scripts/bench-int8.sh makes on the desktop (in .build/peers/):
#   dall_minmax_192x128.int8.safetensors   our int8 model (sonoquant calibrate)
#   dall_fp32_192x128.onnx                 the same weights for ONNX Runtime (scripts/peers/export_onnx.py)
#   dall_int8_192x128.onnx                 ONNX Runtime's own int8 (QDQ per-channel; scripts/peers/quantize_onnx.py)
# so the board needs neither PyTorch nor the HC18 data. Our float32 model is fixtures/pytorch_D-all_192x128.safetensors.
# On the board it installs what is missing: the packages of scripts/install-deps.sh (needs sudo once), python3-venv,
# and onnxruntime + numpy from PyPI into .build/board-venv (aarch64 wheels exist); then builds `sonoquant` with
# `swift build -c release` (trixie's swiftlang 6.0.3 on arm64: the `neon` kernel path, docs/DEPLOY.md).
# TFLite/XNNPACK is not compared: turning this PyTorch model into a .tflite file needs TensorFlow converters
# that do not install on the board; ONNX Runtime is the peer.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${1:?usage: scripts/board-bench.sh MODELS_DIR (the .build/peers directory scripts/bench-int8.sh made)}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-30}
THREADS=${THREADS:-"1 $(nproc)"}
INT8=$MODELS/dall_minmax_192x128.int8.safetensors
ONNX_FP32=$MODELS/dall_fp32_192x128.onnx
ONNX_INT8=$MODELS/dall_int8_192x128.onnx
FLOAT=fixtures/pytorch_D-all_192x128.safetensors
for f in "$INT8" "$ONNX_FP32" "$ONNX_INT8"; do
    [ -f "$f" ] || { echo "error: $f: missing; make it on the desktop with scripts/bench-int8.sh and copy .build/peers here" >&2; exit 1; }
done

scripts/install-deps.sh
VENV=.build/board-venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" 2>/dev/null || {
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
        $SUDO apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$VENV"; }
fi
"$VENV/bin/python" -c "import onnxruntime, numpy" 2>/dev/null || "$VENV/bin/pip" install -q onnxruntime numpy
PY=$VENV/bin/python

source scripts/lib/release-build.sh
release_build

echo "== machine: $(uname -m), $(nproc) cores, $(grep -m1 -E '^(model name|Model)' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "ONNX Runtime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)'), load $(cut -d' ' -f1-3 /proc/loadavg)"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
for round in $(seq 1 "$ROUNDS"); do
    for threads in $THREADS; do
        echo "-- round $round, $threads thread(s)"
        "$OURS" latency --model "$INT8" --threads "$threads" --runs "$RUNS" | sed 's/^/sonoquant-int8 /' | tee -a "$LOG"
        "$PY" scripts/peers/bench_float.py --engine ort --onnx "$ONNX_INT8" --threads "$threads" --runs "$RUNS" | sed 's/^onnxruntime/onnxruntime-int8/' | tee -a "$LOG"
        "$OURS" latency --model "$FLOAT" --size 192x128 --threads "$threads" --runs "$RUNS" | sed 's/^/sonoquant-float /' | tee -a "$LOG"
        "$PY" scripts/peers/bench_float.py --engine ort --onnx "$ONNX_FP32" --threads "$threads" --runs "$RUNS" | sed 's/^onnxruntime/onnxruntime-fp32/' | tee -a "$LOG"
    done
done
echo "== summary (192x128, batch 1, ms): median over $ROUNDS rounds of each round's median of $RUNS runs; ratio = ours / ONNX Runtime"
"$PY" scripts/peers/latency_summary.py "$LOG"
