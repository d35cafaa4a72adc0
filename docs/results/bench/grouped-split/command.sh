#!/usr/bin/env bash
# D-all and full-ft, seed 0, 20 epochs, patient-grouped split (fixtures/hc18/grouped_split.csv), 192x128 (2026-11-27).
# Machine: 2-core AMD EPYC VM (Zen 4: AVX-512, VNNI). Training binary: /work/runs/bin/sonoquant-17567e2 (AVX2+FMA
# build of commit 17567e2, scripts/lib/simd-build.sh). Beside it: seed 1 on the paper split (../paper-split-seed1), one
# training thread each, both at nice 10, plus the day's builds, benchmarks and an aarch64 check at nice 19.
# Training: D-all 58.2 min (epochs 133-259 s), full-ft 59.8 min (155-298 s), per results.json.
export OPENBLAS_NUM_THREADS=1
nice sonoquant bench --data /work/shared/hc18/training_set --size 192x128 --epochs 20 \
  --init /work/shared/weights/mobilenet_v2_imagenet.safetensors --threads 1 --rounds 1 --runs-per-round 1 \
  --strategies D-all,full-ft --split /work/main/fixtures/hc18/grouped_split.csv --seeds 0 --out /work/full-run/s2/grouped
# Then, both trainings done and the aarch64 check stopped (kill -STOP), on the idle machine, measured
# again at 1 and 2 threads with the build of commit 96aa5a1 (the day's int8 kernels; accuracy bit-identical),
# from the repository directory so that the PyTorch reference is found (measure.log):
cd /work/main
.build/avx2/release/sonoquant bench --data /work/shared/hc18/training_set --size 192x128 --epochs 20 \
  --init /work/shared/weights/mobilenet_v2_imagenet.safetensors --strategies D-all,full-ft --measure-only \
  --threads 1,2 --rounds 3 --runs-per-round 2 --split /work/main/fixtures/hc18/grouped_split.csv --seeds 0 --out /work/full-run/s2/grouped
