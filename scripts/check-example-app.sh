#!/usr/bin/env bash
# Builds Examples/SegmentApp (an outside package that depends on this one by path and imports only the
# SonoQuantDeploy library product) and checks that it gives `sonoquant segment`'s HC for a bundled frame,
# to the last digit, and that building the app (`--product`, as `swift run` does) compiles no
# swift-argument-parser. Part of the test command (scripts/test.sh); needs the release sonoquant built.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:/opt/swift/bin:$PATH"
model=fixtures/pytorch_D-all_192x128.safetensors
frame=fixtures/hc18/training_set/002_HC.png
pixel=0.0620
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== example app: build Examples/SegmentApp (depends on this package by path, imports SonoQuantDeploy only)"
swift build -c release --package-path Examples/SegmentApp --product SegmentApp 2>&1 | tail -1
# SwiftPM makes a folder per target of the whole graph; a compiled target has object files in it.
if ls Examples/SegmentApp/.build/release/ArgumentParser.build/*.o >/dev/null 2>&1; then
    echo "FAIL: the example app compiled swift-argument-parser (a library user should not)"; exit 1
fi
app=$(Examples/SegmentApp/.build/release/SegmentApp "$model" "$frame" "$pixel" 192x128)
.build/release/sonoquant segment "$frame" --model "$model" --size 192x128 --pixel-size "$pixel" --out "$out" >/dev/null
cli=$(python3 -c "import json,sys; print(repr(json.load(open(sys.argv[1]))['hcMM']))" "$out/002_HC.json")
echo "example app: $app; segment: HC $cli mm"
case "$app" in
    "HC $cli mm"*) echo "example app OK: the same HC as segment" ;;
    *) echo "FAIL: the example app's HC differs from segment's"; exit 1 ;;
esac
