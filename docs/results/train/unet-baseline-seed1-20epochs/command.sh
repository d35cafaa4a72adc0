#!/usr/bin/env bash
# unet-baseline (the paper's plain U-Net, 31,037,633 parameters, all trained from scratch), seed 1, 20
# epochs in one run on the paper split, 192x128, batch 10, Adam lr 1e-4, the paper's augmentation, 2 threads.
# The release build of commit c58fba4 (avx512-vnni kernel path). It took 1 h 53 min (the first four epochs
# shared the cores with builds; alone an epoch took 284-295 s including the 200-frame evaluation).
# The run directory is outside git (per-epoch checkpoints are not committed); `--resume` on the same
# --out continues a cut run from its last finished epoch.
sonoquant train \
  --data ../shared/hc18/training_set --split ../shared/hc18/splits/paper_split.csv \
  --strategy unet-baseline --size 192x128 --epochs 20 --batch 10 --lr 1e-4 --seed 1 --threads 2 \
  --out /work/runs/unet-baseline-seed1-c58fba4/run
# The int8 model and the measurement beside the shipped models: docs/results/bench/sizes-and-baseline/command.sh
