#!/usr/bin/env bash
# Every remaining preset for ONE epoch (issue 7's table needs a row per preset; 20 epochs each did not fit the time available).
nice -n 10 /work/runs/bin/sonoquant-bench-4ff8a8b bench --data /work/shared/hc18/training_set --split /work/shared/hc18/splits/paper_split.csv \
  --size 192x128 --epochs 1 --seeds 0 --strategies E,D234,D4+H,D4,D012,D01,D0,rand-frozen-E,rand-frozen-D,full-scratch \
  --init /work/shared/weights/mobilenet_v2_imagenet.safetensors --threads 1,2 --rounds 3 --runs-per-round 2 --out /work/full-run-1epoch \
  > /work/full-run-1epoch/bench.log 2>&1
echo "exit $?" >> /work/full-run-1epoch/bench.log
