#!/usr/bin/env bash
# Training speed: `sonoquant train-speed` vs PyTorch CPU (scripts/peers/bench_train.py), same
# model, batch, size, strategy and thread count, interleaved round by round in one run so that load from
# other processes hits both alike. Each side reports the median step of STEPS steps after one warm-up, and
# its process CPU time per step (all threads): on a machine shared with other work, wall-clock images/s
# depends on how much CPU the scheduler gave each side; CPU seconds per step measure the work itself.
#
# STEPS is 20: PyTorch's first steps after its one warm-up step are still slow (with 5 steps its per-round
# median was up to 2x its 20-step median), so short runs flattered us (docs/PERFORMANCE.md).
#
#   scripts/bench-train.sh                         # ROUNDS=3 STEPS=20 SIZE=192x128 BATCH=10 THREADS=2 STRATEGY=full-ft
#   STRATEGY=D-all ROUNDS=2 scripts/bench-train.sh
#   STRATEGY=unet-baseline ROUNDS=3 STEPS=3 scripts/bench-train.sh   # the paper's plain U-Net (31M, ~15x the compute)
#
# Needs the peer Python environment (PEER_PYTHON, default /work/peer/venv/bin/python):
#   python3 -m venv /work/peer/venv && /work/peer/venv/bin/pip install torch segmentation-models-pytorch
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PEER_PYTHON:-/work/peer/venv/bin/python}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-20}
SIZE=${SIZE:-192x128}
BATCH=${BATCH:-10}
THREADS=${THREADS:-2}
STRATEGY=${STRATEGY:-full-ft}
echo "== building: swift build -c release"
swift build -c release --product sonoquant 2>&1 | tail -1
OURS=.build/release/sonoquant
echo "== $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)$(grep -qw avx512_vnni /proc/cpuinfo && echo ' (AVX-512 VNNI)'), torch $("$PY" -c 'import torch; print(torch.__version__)')"
echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
ours=(); theirs=(); ourcpu=(); theircpu=()
for round in $(seq 1 "$ROUNDS"); do
    line=$("$OURS" train-speed --steps "$STEPS" --strategy "$STRATEGY" --size "$SIZE" --batch "$BATCH" --threads "$THREADS")
    echo "round $round: $line"
    ours+=("$(echo "$line" | sed -E 's/.*= ([0-9.]+) images\/s.*/\1/')")
    ourcpu+=("$(echo "$line" | sed -E 's/.*CPU ([0-9.]+) s\/step.*/\1/')")
    line=$("$PY" scripts/peers/bench_train.py --steps "$STEPS" --strategy "$STRATEGY" --size "$SIZE" --batch "$BATCH" --threads "$THREADS")
    echo "round $round: $line"
    theirs+=("$(echo "$line" | sed -E 's/.*= ([0-9.]+) images\/s.*/\1/')")
    theircpu+=("$(echo "$line" | sed -E 's/.*CPU ([0-9.]+) s\/step.*/\1/')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "== summary ($STRATEGY, $SIZE, batch $BATCH, $THREADS threads, median over $ROUNDS rounds of per-round medians)"
echo "sonoquant: $(median "${ours[@]}") images/s (wall), $(median "${ourcpu[@]}") CPU s/step"
echo "pytorch:   $(median "${theirs[@]}") images/s (wall), $(median "${theircpu[@]}") CPU s/step"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
