#!/usr/bin/env bash
# unet-baseline, seed 1: epochs 5-7 (2026-11-27; the trainer counts them 1-3).
# One `sonoquant train` run started from the epoch-4 checkpoint (float16, commit 3e442b2 of this directory)
# with --init: Adam's moments start fresh at epoch 5 and then carry across epochs 5-7 (one process); the
# shuffling/augmentation stream restarts at seed 1. Machine: 2-vCPU Intel Xeon (AVX-512) VM, 2 threads,
# the AVX2+FMA build of 3e442b2 (scripts/lib/simd-build.sh); 0.36-0.47 images/s (29-38 min per epoch;
# epoch 5 shared the cores with a profiler and a debootstrap). Stopped by hand (SIGTERM) at the start of
# epoch 8 to leave time for the int8 model, the aarch64 check and the docs;
# --resume on the same --out would have continued. Progress log: train-epochs5-7.log.
OPENBLAS_NUM_THREADS=2 nice -n 5 /work/runs/bin/sonoquant-avx2-3e442b2 train \
  --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv \
  --strategy unet-baseline --size 192x128 --epochs 16 --batch 10 --lr 1e-4 --seed 1 --threads 2 \
  --init /work/main/docs/results/train/unet-baseline-seed1/model_epoch04_f16.safetensors \
  --out /work/full-run/unet-baseline-seed1-ep5on
# Then: the epoch-7 checkpoint (epoch-03.safetensors of the run, float16) -> model_epoch07_f16.safetensors,
# its int8 model (minmax, 24 train-split frames, as the bench harness calibrates) and both evaluated on the
# 200 test frames (evaluation-epoch7.json is the trainer's own, evaluation-epoch7-int8.json the int8 one):
B=/work/runs/bin/sonoquant-avx2-3e442b2
$B calibrate --model model_epoch07_f16.safetensors --data /work/shared/hc18/training_set \
  --split /work/shared/hc18/splits/paper_split.csv --size 192x128 --images 24 --observer minmax --threads 2 \
  --out unet-baseline-epoch07.int8.safetensors
for m in model_epoch07_f16 unet-baseline-epoch07.int8; do
  $B evaluate --model $m.safetensors --data /work/shared/hc18/training_set \
    --split /work/shared/hc18/splits/paper_split.csv --size 192x128 --threads 2 --out evaluation-$m.json
done
