#!/usr/bin/env bash
# unet-baseline, seed 1: epochs 2-4. Three more epochs (the harness counts them 1-3) started from the epoch-1
# checkpoint committed under docs/results/train/unet-baseline-seed1 (float16; `git show
# 57f1b0e:docs/results/train/unet-baseline-seed1/model_epoch01_f16.safetensors`), so Adam's moments start
# fresh and the shuffling/augmentation stream restarts at seed 1 (an uninterrupted run would continue both).
# Whole machine (2 threads, nothing else running), the AVX2+FMA build of 9605cad
# 2026-11-27 (3 x ~19 min training + evaluation, then ~3 min of measurement). Log: bench.log.
# The epoch-4 checkpoint was docs/results/train/unet-baseline-seed1/model_epoch04_f16.safetensors (in git history at
# 3e442b2; epochs 5-7 continued from it: command-epochs5-7.sh there): continue
# from it the same way (--init) with --out pointing at a new directory.
nice -n 5 /work/runs/bin/sonoquant-avx2-9605cad bench --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv \
  --size 192x128 --epochs 3 --seeds 1 --strategies unet-baseline \
  --init /work/main/docs/results/train/unet-baseline-seed1/model_epoch01_f16.safetensors \
  --threads 1,2 --rounds 3 --runs-per-round 2 --images 24 --out /work/full-run/baseline-cont
echo "exit $?"
