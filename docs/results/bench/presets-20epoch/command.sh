#!/usr/bin/env bash
# D4 and D4+H, 20 epochs, paper split, 192x128, seed 0 (2026-11-27), then measured.
# Trained as two harness processes side by side, one training thread each (the machine has 2 cores);
# both wrote into the same --out with disjoint strategy lists. What ran, in order (RUNLOG.md has the why):
#   epoch 1:      /work/runs/bin/sonoquant-57f1b0e (portable release build of 57f1b0e), glibc malloc defaults
#   epochs 2-10:  the same binary with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=536870912
#   epochs 11-20: /work/runs/bin/sonoquant-avx2-9605cad (AVX2+FMA build of 9605cad, scripts/lib/simd-build.sh,
#                 which sets the same malloc behaviour itself: Sources/Train/HeapReuse.swift)
# Each restart resumed from the run directory's resume.safetensors (--resume is implied by the harness).
export OPENBLAS_NUM_THREADS=1
sonoquant bench --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv \
  --size 192x128 --epochs 20 --seeds 0 --strategies D4,D0,D01,D012,D234 \
  --init /work/shared/weights/mobilenet_v2_imagenet.safetensors --threads 1 --rounds 1 --runs-per-round 1 --out /work/full-run/presets &
sonoquant bench --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv \
  --size 192x128 --epochs 20 --seeds 0 --strategies D4+H,rand-frozen-D,rand-frozen-E,E,full-scratch \
  --init /work/shared/weights/mobilenet_v2_imagenet.safetensors --threads 1 --rounds 1 --runs-per-round 1 --out /work/full-run/presets &
wait
# Both were stopped once D4 and D4+H had 20 epochs (the machine went to the baseline U-Net); the other
# strategies of these lists had not started. Then, on the otherwise idle machine, measured:
/work/runs/bin/sonoquant-avx2-9605cad bench --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv \
  --size 192x128 --epochs 20 --seeds 0 --strategies D4,D4+H --measure-only \
  --threads 1,2 --rounds 3 --runs-per-round 2 --out /work/full-run/presets
