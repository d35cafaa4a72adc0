#!/usr/bin/env bash
# full-ft at 288x192, 20 epochs, paper split, seed 0 (2026-12-05; release build of commit c80deba, 2-core AMD EPYC Zen 4 with AVX-512 VNNI).
sonoquant bench run --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv --size 288x192 --epochs 20 --init /work/shared/weights/mobilenet_v2_imagenet.safetensors --threads 1,2 --rounds 5 --runs-per-round 3 --strategies full-ft --seeds 0 --out /work/runs/size288-fullft
# int8 latency of both sizes, alternated 5 rounds (latency-interleaved.log):
for r in 1 2 3 4 5; do sonoquant latency --model models/full-ft.int8.safetensors --size 192x128 --threads 1,2 --runs 30; sonoquant latency --model /work/runs/size288-fullft/full-ft-seed0/model.int8.safetensors --size 288x192 --threads 1,2 --runs 30; done
# The HC factor, as the shipped 192x128 models have one (fitted on the 799 training frames), then the test split:
R=/work/runs/size288-fullft/full-ft-seed0
sonoquant hc-scale --model $R/model.safetensors --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv --threads 2 --out /work/runs/ft288.hc.safetensors       # 0.996762
sonoquant hc-scale --model $R/model.int8.safetensors --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv --threads 2 --out /work/runs/ft288.hc.int8.safetensors  # 0.995596
sonoquant evaluate --model /work/runs/ft288.hc.safetensors --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv --threads 2 --out evaluation-hc-scale-float.json
sonoquant evaluate --model /work/runs/ft288.hc.int8.safetensors --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv --threads 2 --out evaluation-hc-scale-int8.json
