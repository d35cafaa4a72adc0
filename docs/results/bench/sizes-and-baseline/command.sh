#!/usr/bin/env bash
# One table and one plot across input sizes and architectures: the shipped 192x128 models, full-ft at
# 288x192 (docs/results/bench/size-288x192-full-ft, with its own HC factors) and the baseline U-Net after
# 20 epochs (docs/results/train/unet-baseline-seed1-20epochs), float and int8, on the paper split's 200 test
# frames, each at the size its file records, latency interleaved across all eight models in one run.
# Run from the repository root with the release build; R = where the run directories live (outside git).
set -euo pipefail
R=${R:-/work/runs}
SQ=${SQ:-.build/release/sonoquant}
B=$R/unet-baseline-seed1-c58fba4/run
# The baseline's int8 model: as make-models.sh calibrates the shipped ones (minmax, 64 training frames,
# portable kernel path).
SONOQUANT_KERNELS=portable $SQ calibrate --model $B/model.safetensors --data ../shared/hc18/training_set \
    --split ../shared/hc18/splits/paper_split.csv --images 64 --observer minmax --threads 2 --out $R/unet-baseline-seed1.int8.safetensors
$SQ bench compare \
    --model D-all-192x128-float=models/D-all.f16.safetensors --model D-all-192x128-int8=models/D-all.int8.safetensors \
    --model full-ft-192x128-float=models/full-ft.f16.safetensors --model full-ft-192x128-int8=models/full-ft.int8.safetensors \
    --model full-ft-288x192-float=$R/ft288.hc.safetensors --model full-ft-288x192-int8=$R/ft288.hc.int8.safetensors \
    --model unet-baseline-float=$B/model.safetensors --model unet-baseline-int8=$R/unet-baseline-seed1.int8.safetensors \
    --data ../shared/hc18/training_set --split ../shared/hc18/splits/paper_split.csv \
    --threads 1,2 --rounds 5 --runs-per-round 3 --out $R/sizes-and-baseline
