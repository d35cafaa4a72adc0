#!/usr/bin/env bash
# The main job on the bundled default, in a few minutes on 2 cores: which fine-tuning strategy to deploy?
# `sonoquant bench` (harness mode) fine-tunes two strategies on the 24 bundled HC18 training frames --
# D-all (the paper's best: frozen ImageNet MobileNetV2 encoder, decoder + head trained) and full-ft
# (everything trained) -- quantizes each to int8 (minmax observer, the training frames as calibration set),
# and measures float vs int8 on the 8 bundled test frames: Dice, IoU, pixel accuracy, HC error with
# bootstrap intervals, size, latency at 1 and 2 threads, peak memory; plus plots and frames with ellipses.
# Everything it needs is in fixtures/; output goes to runs/demo/ (override: OUT=dir scripts/demo.sh).
# Run it again and it reuses what is done (trained runs, measurements); delete runs/demo to start over.
# Tiny data and few epochs: the numbers show the pipeline works, not what a full run reaches
# (docs/TRAINING.md has the paper-split runs); the second step measures the shipped 20-epoch models on the
# same test frames (report in $OUT/shipped/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo}
EPOCHS=${EPOCHS:-3}
SIZE=${SIZE:-96x64}
STRATEGIES=${STRATEGIES:-D-all,full-ft}
echo "== the report will be at $OUT/REPORT.md"
scripts/install-deps.sh
echo "== building (release)"
swift build -c release --product sonoquant
echo "== bench: train $STRATEGIES at $SIZE for $EPOCHS epochs, calibrate int8, measure float vs int8"
.build/release/sonoquant bench run --strategies "$STRATEGIES" --seeds 0 --epochs "$EPOCHS" --size "$SIZE" \
    --data fixtures/hc18/training_set --split fixtures/hc18/split.csv \
    --init fixtures/mobilenet_v2_imagenet_f16.safetensors --batch 4 --lr 1e-3 \
    --images 24 --threads 1,2 --rounds 5 --runs-per-round 2 --out "$OUT"
echo "== report: $OUT/REPORT.md"
# What the short runs cannot show: the shipped models (models/MANIFEST.md: 20 epochs on the paper split),
# float and int8, on the same 8 bundled test frames (all 8 are on the paper split's test side, so these
# models never trained on them).
echo "== the shipped models (models/): D-all and full-ft, float and int8, on the 8 bundled test frames"
.build/release/sonoquant bench compare --model D-all-float=models/D-all.f16.safetensors --model D-all-int8=models/D-all.int8.safetensors \
    --model full-ft-float=models/full-ft.f16.safetensors --model full-ft-int8=models/full-ft.int8.safetensors \
    --data fixtures/hc18/training_set --split fixtures/hc18/split.csv --size 192x128 \
    --threads 1,2 --rounds 3 --runs-per-round 2 --out "$OUT/shipped"
echo "== reports: $OUT/REPORT.md (the short runs), $OUT/shipped/REPORT.md (the shipped models)"
