#!/usr/bin/env bash
# unet-baseline, seed 1: epoch 5, one more epoch from model_epoch04_f16.safetensors (Adam state and data stream restart); stopped after training (the trainer evaluated it: metrics-epoch5.csv), before the harness measured int8/latency
# whole machine (2 threads), the AVX2 build of 9605cad.
nice -n 5 /work/runs/bin/sonoquant-avx2-9605cad bench --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv \
  --size 192x128 --epochs 1 --seeds 1 --strategies unet-baseline \
  --init /work/main/docs/results/train/unet-baseline-seed1/model_epoch04_f16.safetensors \
  --threads 1,2 --rounds 3 --runs-per-round 2 --images 24 --out /work/full-run/baseline-cont5
echo "exit $?"
