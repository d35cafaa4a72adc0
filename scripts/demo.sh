#!/usr/bin/env bash
# The main job on the bundled default, in minutes: fine-tune the paper's best strategy (D-all: frozen
# ImageNet MobileNetV2 encoder, trained decoder + head) on the 24 bundled HC18 training frames, quantize it
# to int8 with the bundled frames as calibration set, then benchmark float vs int8 (Dice, IoU, pixel
# accuracy, HC error, size, latency, memory) on the 8 bundled test frames.
# Everything it needs is in fixtures/; output goes to runs/demo/ (override: OUT=dir scripts/demo.sh).
# Tiny data and few epochs: the numbers show the pipeline works, not what a full run reaches
# (docs/TRAINING.md has the paper-split runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
OUT=${OUT:-runs/demo}
EPOCHS=${EPOCHS:-3}
SIZE=${SIZE:-96x64}
swift build -c release --product sonoquant
BIN=.build/release/sonoquant
DATA=fixtures/hc18/training_set
SPLIT=fixtures/hc18/split.csv

echo "== 1/3 train D-all at $SIZE for $EPOCHS epochs on the bundled frames"
RESUME=""; [ -f "$OUT/train/resume.safetensors" ] && RESUME="--resume"
$BIN train --data $DATA --split $SPLIT --strategy D-all --size $SIZE --epochs $EPOCHS --batch 4 \
    --lr 1e-3 --seed 0 --init fixtures/mobilenet_v2_imagenet_f16.safetensors --out "$OUT/train" $RESUME

echo "== 2/3 calibrate to int8 (minmax observer, the 24 training frames)"
$BIN calibrate --model "$OUT/train/model.safetensors" --data $DATA --split $SPLIT --size $SIZE \
    --images 24 --observer minmax --out "$OUT/D-all.int8.safetensors"

echo "== 3/3 bench float vs int8 on the bundled test frames"
$BIN bench --model "D-all-float=$OUT/train/model.safetensors" --model "D-all-int8=$OUT/D-all.int8.safetensors" \
    --data $DATA --split $SPLIT --size $SIZE --out "$OUT/bench"
echo "report: $OUT/bench/REPORT.md"
