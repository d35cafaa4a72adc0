#!/usr/bin/env bash
# D-all at 288x192, 20 epochs, paper split, seed 0 (binary: release build of commit 2455af2; trainer as at 37205bd).
sonoquant bench --data /work/shared/hc18/training_set --size 288x192 --epochs 20 --init /work/shared/weights/mobilenet_v2_imagenet.safetensors --threads 1,2 --rounds 5 --runs-per-round 3 --strategies D-all --split /work/shared/hc18/splits/paper_split.csv --seeds 0 --out /work/runs/size288
# int8 latency of both sizes, alternated 5 rounds (latency-interleaved.log):
for r in 1 2 3 4 5; do sonoquant latency --model models/D-all.int8.safetensors --size 192x128 --threads 1,2 --runs 30; sonoquant latency --model /work/runs/size288/D-all-seed0/model.int8.safetensors --size 288x192 --threads 1,2 --runs 30; done
