#!/usr/bin/env bash
# One whole `sonoquant train` epoch (the process: start-up, loading and squashing the 999 frames, 80 augmented
# steps on the paper split's 799 training frames, evaluating the 200 test frames, writing the checkpoints)
# against PyTorch CPU's 80 training steps of compute alone (scripts/peers/bench_train.py: synthetic frames,
# no data loading, no evaluation, no checkpoint), interleaved round by round in one run.
# PyTorch's side is counted as 80 x its median step (its first steps after the warm-up are slower, so this
# is the smaller, stricter figure) and, for reference, its whole process.
#
#   scripts/bench-epoch.sh                        # ROUNDS=3 STRATEGY=full-ft THREADS=2
#   STRATEGY=D-all ROUNDS=5 scripts/bench-epoch.sh
#
# Needs ../shared/hc18 and the peer Python environment (PEER_PYTHON, default /work/peer/venv/bin/python):
#   python3 -m venv /work/peer/venv && /work/peer/venv/bin/pip install torch segmentation-models-pytorch
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PEER_PYTHON:-/work/peer/venv/bin/python}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
STRATEGY=${STRATEGY:-full-ft}
DATA=${DATA:-../shared/hc18/training_set}
SPLIT=${SPLIT:-../shared/hc18/splits/paper_split.csv}
INIT=${INIT:-../shared/weights/mobilenet_v2_imagenet.safetensors}
source scripts/lib/release-build.sh
release_build
RUNS=$(mktemp -d /tmp/sonoquant-bench-epoch.XXXXXX)
trap 'rm -rf "$RUNS"' EXIT
echo "== $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), cpu family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs)$(grep -qw avx512_vnni /proc/cpuinfo && echo ' (AVX-512 VNNI)'), torch $("$PY" -c 'import torch; print(torch.__version__)')"
echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $STRATEGY, 192x128, batch 10, $THREADS threads"
ours=(); theirs=(); theirprocess=()
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round: $OURS train --data $DATA --split $SPLIT --strategy $STRATEGY --size 192x128 --epochs 1 --batch 10 --lr 1e-4 --seed 0 --init $INIT --out RUN --threads $THREADS"
    /usr/bin/time -f "sonoquant process: %e s wall, %U s user, %S s sys, peak RSS %M KB" -o "$RUNS/time" \
        "$OURS" train --data "$DATA" --split "$SPLIT" --strategy "$STRATEGY" --size 192x128 --epochs 1 --batch 10 --lr 1e-4 \
        --seed 0 --init "$INIT" --out "$RUNS/round-$round" --threads "$THREADS"
    cat "$RUNS/time"
    ours+=("$(sed -E 's/.*process: ([0-9.]+) s wall.*/\1/' "$RUNS/time")")
    rm -rf "$RUNS/round-$round"
    echo "== round $round: scripts/peers/bench_train.py --steps 80 --strategy $STRATEGY --size 192x128 --batch 10 --threads $THREADS"
    line=$(/usr/bin/time -f "pytorch process: %e s wall, %U s user, %S s sys, peak RSS %M KB" -o "$RUNS/time" \
        "$PY" scripts/peers/bench_train.py --steps 80 --strategy "$STRATEGY" --size 192x128 --batch 10 --threads "$THREADS")
    echo "$line"; cat "$RUNS/time"
    theirs+=("$(echo "$line" | sed -E 's/.*median step ([0-9.]+) s.*/\1/' | awk '{printf "%.2f", $1 * 80}')")
    theirprocess+=("$(sed -E 's/.*process: ([0-9.]+) s wall.*/\1/' "$RUNS/time")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
o=$(median "${ours[@]}"); t=$(median "${theirs[@]}"); p=$(median "${theirprocess[@]}")
echo "== summary (median over $ROUNDS rounds)"
echo "sonoquant whole epoch process:      $o s   (rounds: ${ours[*]})"
echo "pytorch 80 steps (80 x median step): $t s   (rounds: ${theirs[*]})"
echo "pytorch whole process:               $p s   (rounds: ${theirprocess[*]})"
awk -v o="$o" -v t="$t" -v p="$p" 'BEGIN { printf "sonoquant epoch / pytorch compute: %.3f   sonoquant epoch / pytorch process: %.3f\n", o / t, o / p }'
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
