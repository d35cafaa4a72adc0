#!/usr/bin/env bash
# The paper split's 200 test frames written as DICOM (one ultrasound region each, holding the CSV's pixel
# size; scripts/make-dicom-fixtures.sh, pydicom) and segmented beside the PNGs with the CSV: every frame's HC
# must agree to 1e-6 mm and every DICOM result must name the ultrasound region as its pixel-size source.
#   scripts/dicom-testset-check.sh [MODEL]     (default models/D-all.int8.safetensors; needs ../shared/hc18)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/D-all.int8.safetensors}
data=../shared/hc18/training_set
split=../shared/hc18/splits/paper_split.csv
work=${WORK:-$(mktemp -d /tmp/sonoquant-dicom-check.XXXXXX)}
swift build -c release --product sonoquant >/dev/null
scripts/make-dicom-fixtures.sh testset "$work/dicom" --data "$data" --split "$split"
mkdir -p "$work/png"
grep ',test$' "$split" | cut -d, -f1 | while read -r name; do ln -sf "$(realpath "$data/$name")" "$work/png/$name"; done
.build/release/sonoquant segment "$work/png" --model "$model" --pixel-csv "$data/training_set_pixel_size_and_HC.csv" --out "$work/out-png" | tail -1
.build/release/sonoquant segment "$work/dicom" --model "$model" --out "$work/out-dicom" | tail -1
jq -r '.results[] | [(.frame | split("/") | last | rtrimstr(".png")), .hcMM] | @tsv' "$work/out-png/summary.json" | sort > "$work/hc-png.tsv"
jq -r '.results[] | [(.frame | split("/") | last | rtrimstr(".dcm")), .hcMM, .pixelSizeSource] | @tsv' "$work/out-dicom/summary.json" | sort > "$work/hc-dicom.tsv"
join -t $'\t' "$work/hc-png.tsv" "$work/hc-dicom.tsv" | awk -F'\t' '
    { n++; d = $2 - $3; if (d < 0) d = -d; if ($2 == "null" || $3 == "null") { if ($2 != $3) bad++; nulls++ } else if (d > max) max = d
      if ($4 != "dicom-ultrasound-region") wrong++ }
    END { printf "frames compared: %d (no head in both: %d); max |HC(DICOM) - HC(PNG + CSV)| = %.3g mm; source not the ultrasound region: %d; mismatched no-head: %d\n", n, nulls, max, wrong, bad
          exit !(n == 200 && max <= 1e-6 && wrong == 0 && bad == 0) }'
echo "dicom-testset-check: OK ($work)"
