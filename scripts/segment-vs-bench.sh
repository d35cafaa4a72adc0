#!/usr/bin/env bash
# Shows that `segment` measures what `bench` scores: runs both on the paper split's test frames with one
# model and prints the two mean HC errors (they must be equal: same preprocessing, model call, region,
# ellipse fit and no-head policy).
#
#   scripts/segment-vs-bench.sh MODEL.safetensors [NAME] [WxH]
#
# Needs ../shared/hc18 (the 999 HC18 frames and the paper split). Writes into .build-segment-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:?usage: scripts/segment-vs-bench.sh MODEL.safetensors [NAME] [WxH]}"
name="${2:-model}"
size="${3:-192x128}"
data=../shared/hc18/training_set
split=../shared/hc18/splits/paper_split.csv
out=.build-segment-check
export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product sonoquant 2>&1 | tail -n 1
rm -rf "$out"; mkdir -p "$out/frames"
# The test frames of the split, as symlinks in one directory (segment takes a directory or a file).
tail -n +2 "$split" | awk -F, '$2 == "test" { print $1 }' | while read -r frame; do
    ln -s "$(realpath "$data/$frame")" "$out/frames/$frame"
done
echo "test frames: $(ls "$out/frames" | wc -l)"
.build/release/sonoquant segment "$out/frames" --model "$model" --size "$size" \
    --pixel-csv "$data/training_set_pixel_size_and_HC.csv" --out "$out/segment" | tail -n 1
.build/release/sonoquant bench compare --model "$name=$model" --data "$data" --split "$split" --size "$size" \
    --threads 1 --rounds 1 --runs-per-round 1 --out "$out/bench" > /dev/null 2>&1
.build/release/sonoquant evaluate --model "$model" --data "$data" --split "$split" --size "$size" \
    --out "$out/evaluate.json" > /dev/null 2>&1
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
s = json.load(open(f"{out}/segment/summary.json"))
b = json.load(open(f"{out}/bench/report.json"))["rows"][0]
e = {row["name"] + ".png": row for row in json.load(open(f"{out}/evaluate.json"))["rows"]}
print(f"segment: {s['framesWithReference']} frames, heads found {s['headsFound']}, mean |HC error| {s['meanHCErrorMM']:.6f} mm")
print(f"bench:   {b['images']} frames, no head {b['noHeadFound']}, HC MAE {b['hcMAEmm']:.6f} mm, Dice {b['dice']:.4f}")
# Per frame, segment's HC against evaluate's (the rows bench averages): bit-for-bit equal doubles.
same = sum(1 for r in s["results"] if r.get("hcMM") == e[r["frame"].split("/")[-1]].get("hcMM"))
print(f"per frame: segment HC == evaluate HC on {same} of {len(s['results'])} frames")
# The means differ at most in the last bits: the two sum the same 200 numbers in a different order.
print("EQUAL" if same == len(e) == len(s["results"]) and abs(s["meanHCErrorMM"] - b["hcMAEmm"]) < 1e-9
      else f"DIFFERENT by {abs(s['meanHCErrorMM'] - b['hcMAEmm']):.3g} mm")
PY
