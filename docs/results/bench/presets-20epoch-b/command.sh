#!/usr/bin/env bash
# Six presets, 20 epochs, paper split, 192x128, seed 0 (2026-11-27), then measured.
# Machine: 2-core AMD EPYC VM. Binary: /work/runs/bin/sonoquant-avx2-0c2d139 (AVX2+FMA build of commit 0c2d139,
# scripts/lib/simd-build.sh) for training; the measurement at the end used the day's last build
# commit (same trainer; int8 Winograd in the engine: accuracy bit-identical, latency lower).
# Two harness processes side by side, one training thread each, disjoint strategy lists, one --out.
# All eight finished (about 3 h 20 min by the epoch logs; train.log), then all were measured on the idle machine:
export OPENBLAS_NUM_THREADS=1
common="--data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv --size 192x128 --epochs 20 --seeds 0
  --init /work/shared/weights/mobilenet_v2_imagenet.safetensors --threads 1 --rounds 1 --runs-per-round 1 --out /work/full-run/presets"
nice sonoquant bench $common --strategies D234,D012,D01,D0 &
nice sonoquant bench $common --strategies E,rand-frozen-E,full-scratch,rand-frozen-D &
wait
# Then, with both stopped and nothing else running, every finished run measured again at 1 and 2 threads:
sonoquant bench --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv \
  --size 192x128 --epochs 20 --seeds 0 --strategies D234,D012,D01,D0,E,rand-frozen-E,full-scratch,rand-frozen-D --measure-only \
  --threads 1,2 --rounds 3 --runs-per-round 2 --out /work/full-run/presets
