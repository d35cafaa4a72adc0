#!/usr/bin/env bash
# Checks that one binary's kernel paths stay apart (x86-64; on other architectures there is one path and
# nothing to check). Part of the test command (scripts/test.sh). Three checks on the release build:
#   1. No function outside the AVX2 / AVX-512 modules contains an AVX instruction (ymm/zmm registers or a
#      VEX/EVEX-only mnemonic): the portable path provably runs on any x86-64. A stdlib generic specialised
#      in an AVX2 module and kept by the linker for everyone would show up here.
#   2. No function of a kernel module calls code outside its own module (but the Swift runtime): an AVX2
#      kernel that ended up calling the portable copy of a specialisation would be slow, silently.
#   3. Under qemu-x86_64 emulating a CPU without AVX (Nehalem), the binary chooses the portable path by
#      itself (CPUID) and its int8 and float logits equal the natively forced portable path's, bit for bit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(uname -m)" = x86_64 ] || { echo "check-kernel-paths: one kernel path on $(uname -m), nothing to check"; exit 0; }
swift build -c release --product sonoquant 2>&1 | tail -1
BIN=.build/release/sonoquant
DIS=$(mktemp)
objdump -d --no-show-raw-insn "$BIN" > "$DIS"
python3 - "$DIS" <<'PY'
import re, sys
isa = ["FloatMicrokernelsAVX2", "FloatMicrokernelsAVX512", "Int8MicrokernelsAVX2", "Int8MicrokernelsAVX512VNNI", "X86DotProductIntrinsics"]
kernels = isa + ["FloatMicrokernels", "Int8Microkernels"]
def module(symbol, names):  # Swift mangles a module name as <length><name>
    return next((n for n in names if f"{len(n)}{n}" in symbol), None)
avx = re.compile(r"%[yz]mm|%k[0-7]\b|\bv(?:p[a-z]+|mov[a-z]*|add|sub|mul|div|fn?m(?:add|sub)[0-9a-z]*|broadcast[a-z0-9]*|perm[a-z0-9]*|"
                 r"insert[a-z0-9]*|extract[a-z0-9]*|zeroupper|xor|and|andn|or|cvt[a-z0-9]*|max|min|shuf[a-z]*|unpck[a-z]*|blend[a-z]*)")
leaks, calls, symbol, seen, inside = {}, {}, None, set(), set()
for line in open(sys.argv[1]):
    m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
    if m:
        symbol = m.group(1); seen.add(module(symbol, isa)); continue
    if symbol is None or "\t" not in line: continue
    instruction = line.split("\t", 1)[1]
    own = module(symbol, kernels)
    if avx.search(instruction):
        if own in isa: inside.add(symbol)
        else: leaks.setdefault(symbol, instruction.strip())
    c = re.search(r"\b(?:call|jmp)\w*\s+[0-9a-f]+ <([^>+]+)", instruction)
    if own and c and c.group(1) != symbol and module(c.group(1), kernels) != own and not c.group(1).startswith("swift_"):
        calls.setdefault(symbol, set()).add(c.group(1))
missing = [m for m in isa if m not in seen]
print(f"check 1: AVX instructions outside the AVX2/AVX-512 modules: {len(leaks)} functions (inside them: {len(inside)})")
for s, i in list(leaks.items())[:20]: print(f"   {s}: {i}")
print(f"check 2: kernel-module functions calling out of their module: {len(calls)}")
for s, t in list(calls.items())[:20]: print(f"   {s} -> {sorted(t)}")
if missing: print(f"modules with no code in the binary: {missing}")
sys.exit(1 if leaks or calls or missing or not inside else 0)
PY
rm -f "$DIS"

QEMU=$(command -v qemu-x86_64 || command -v qemu-x86_64-static || true)
if [ -z "$QEMU" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user >/dev/null
    QEMU=$(command -v qemu-x86_64)
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/input.safetensors" <<'PY'
# A 64x64 gray frame from the forward fixture as a safetensors `input` [1, 1, 64, 64] (no numpy needed).
import json, struct, sys
def read(path):
    data = open(path, "rb").read(); n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]
header, body = read("fixtures/forward_dall.safetensors")
start, _ = header["input_64x64"]["data_offsets"]
values = body[start:start + 4 * 64 * 64]
meta = json.dumps({"input": {"dtype": "F32", "shape": [1, 1, 64, 64], "data_offsets": [0, len(values)]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(meta)) + meta + values)
PY
FLOAT=fixtures/pytorch_D-all_192x128.safetensors
"$BIN" calibrate --model "$FLOAT" --data fixtures/hc18/training_set --split fixtures/hc18/split.csv --size 64x64 --images 4 \
    --observer minmax --out "$WORK/model.int8.safetensors" >/dev/null
status=0
for model in "$FLOAT" "$WORK/model.int8.safetensors"; do
    SONOQUANT_KERNELS=portable "$BIN" forward --model "$model" --input "$WORK/input.safetensors" --output "$WORK/native.safetensors" >/dev/null
    "$QEMU" -cpu Nehalem "$BIN" forward --model "$model" --input "$WORK/input.safetensors" --output "$WORK/emulated.safetensors" >/dev/null
    path=$("$QEMU" -cpu Nehalem "$BIN" latency --model "$model" --size 64x64 --threads 1 --runs 1 --warmup 0 | grep -o 'kernels=[a-z0-9-]*')
    if cmp -s "$WORK/native.safetensors" "$WORK/emulated.safetensors" && [ "$path" = kernels=portable ]; then
        echo "check 3: $(basename "$model") on an emulated CPU without AVX: $path, logits equal the native portable path's"
    else
        echo "check 3 FAILED: $(basename "$model") on an emulated CPU without AVX: $path, logits differ: $(! cmp -s "$WORK/native.safetensors" "$WORK/emulated.safetensors" && echo yes || echo no)"
        status=1
    fi
done
exit $status
