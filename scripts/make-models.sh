#!/usr/bin/env bash
# Makes the deployable int8 models from the float ones in models/ and writes models/MANIFEST.md: for
# each model its size, sha256, how it was made and its accuracy on the paper split's 200 test frames
# (needs ../shared/hc18). Then the other files over 1 MB that git holds (test fixtures), each with why.
#
#   scripts/make-models.sh
#
# The float models are the epoch-20 checkpoints of the 20-epoch runs in docs/results/train/ (their
# command.txt says how they were trained), with the HC factor `sonoquant hc-scale` fits on the training frames. int8: `sonoquant calibrate`, minmax observer, 64 frames of the
# paper split's training side, on the portable kernel path so that the file does not depend on the CPU
# that made it (docs/QUANTIZATION.md, "Calibration and kernel paths").
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:/opt/swift/bin:$PATH"
swift build -c release --product sonoquant 2>&1 | tail -1
SQ=.build/release/sonoquant
DATA=../shared/hc18/training_set
SPLIT=fixtures/hc18/paper_split.csv
[ -d "$DATA" ] || { echo "error: $DATA: the HC18 training set is needed to calibrate and to measure the models" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

declare -A made_by
for strategy in D-all full-ft; do
    # The HC factor, fitted on the paper split's training frames (docs/DATA.md, "HC bias"); refitting a file
    # that has one gives the same factor, so a rerun changes nothing.
    $SQ hc-scale --model "models/$strategy.f16.safetensors" --data "$DATA" --split "$SPLIT" \
        --out "models/.$strategy.f16.hc.safetensors" > "$work/$strategy.hc.txt"
    mv "models/.$strategy.f16.hc.safetensors" "models/$strategy.f16.safetensors"
    hc_fit=$(sed -E 's/ -> .*//' "$work/$strategy.hc.txt")
    command="SONOQUANT_KERNELS=portable sonoquant calibrate --model models/$strategy.f16.safetensors --data ../shared/hc18/training_set --split fixtures/hc18/paper_split.csv --images 64 --observer minmax --out models/$strategy.int8.safetensors"
    SONOQUANT_KERNELS=portable $SQ calibrate --model "models/$strategy.f16.safetensors" --data "$DATA" --split "$SPLIT" \
        --images 64 --observer minmax --out "models/$strategy.int8.safetensors" 2>/dev/null
    made_by[$strategy.int8]="\`$command\`"
    made_by[$strategy.f16]="epoch 20 of docs/results/train/$strategy-seed0 (\`sonoquant train --strategy $strategy --size 192x128 --epochs 20 --batch 10 --lr 1e-4 --seed 0\` on the paper split; its command.txt), then \`sonoquant hc-scale --model models/$strategy.f16.safetensors --data ../shared/hc18/training_set --split fixtures/hc18/paper_split.csv\` ($hc_fit; the int8 model carries the same factor)"
done

{
    echo "# Models"
    echo
    echo "The models a user deploys: the paper's best strategy (D-all: frozen ImageNet encoder, trained decoder)"
    echo "and full fine-tuning, each as a float checkpoint (float16 on disk, runs in float32) and an int8 model."
    echo "All run at 192x128 (recorded in the files). \`sonoquant segment FRAME --model models/D-all.int8.safetensors"
    echo "--pixel-size MM --out DIR\` measures a head with one of them. Made by \`scripts/make-models.sh\`, which"
    echo "also measured each on the paper split's 200 test frames (\`sonoquant evaluate --model M --data"
    echo "../shared/hc18/training_set --split fixtures/hc18/paper_split.csv\`)."
    echo
    echo "| file | bytes | sha256 | made by | Dice | HC error mean / median (mm) | frames to check |"
    echo "|---|---|---|---|---|---|---|"
    for model in D-all.f16 D-all.int8 full-ft.f16 full-ft.int8; do
        file=models/$model.safetensors
        $SQ evaluate --model "$file" --data "$DATA" --split "$SPLIT" --out "$work/$model.json" > "$work/$model.txt"
        read -r dice mean median flagged < <(python3 - "$work/$model.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['meanDice']:.4f} {r['meanHCErrorMM']:.2f} {r['medianHCErrorMM']:.2f} {sum(1 for row in r['rows'] if not row['headFound'] or row.get('reviewReasons'))}")
PY
)
        echo "| \`$file\` | $(stat -c %s "$file") | \`$(sha256sum "$file" | cut -c1-64)\` | ${made_by[$model]} | $dice | $mean / $median | $flagged of 200 |"
    done
    echo
    echo "## Other files over 1 MB in git"
    echo
    echo "Each is a test fixture; nothing over 1 MB goes into git without a line here (\`scripts/check-large-files.sh\`,"
    echo "part of the test command, checks it)."
    echo
    echo "| file | bytes | sha256 | why |"
    echo "|---|---|---|---|"
    echo "| \`fixtures/pytorch_D-all_192x128.safetensors\` | $(stat -c %s fixtures/pytorch_D-all_192x128.safetensors) | \`$(sha256sum fixtures/pytorch_D-all_192x128.safetensors | cut -c1-64)\` | the PyTorch reference's trained D-all (float16): forward-equality and int8 tests, the library example |"
    echo "| \`fixtures/mobilenet_v2_imagenet_f16.safetensors\` | $(stat -c %s fixtures/mobilenet_v2_imagenet_f16.safetensors) | \`$(sha256sum fixtures/mobilenet_v2_imagenet_f16.safetensors | cut -c1-64)\` | the ImageNet encoder (float16), so training tests and the demo run without ../shared |"
} > models/MANIFEST.md.tmp
mv models/MANIFEST.md.tmp models/MANIFEST.md
cat models/MANIFEST.md
