#!/usr/bin/env bash
# The baseline U-Net as trained so far (1 epoch of 20), measured by the harness without training.
nice -n 10 /work/runs/bin/sonoquant-bench-4ff8a8b bench --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv \
  --size 192x128 --epochs 1 --seeds 1 --strategies unet-baseline --measure-only --images 24 \
  --threads 1,2 --rounds 3 --runs-per-round 1 --frames 2 --out /work/full-run-baseline > /work/full-run-baseline/bench.log 2>&1
echo "exit $?" >> /work/full-run-baseline/bench.log
