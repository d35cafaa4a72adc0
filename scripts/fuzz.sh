#!/usr/bin/env bash
# Coverage-guided fuzzing of SonoQuant's input loaders with libFuzzer + AddressSanitizer.
#
#   scripts/fuzz.sh safetensors [RUNS]   # SafeTensorsFile, its readers, ModelWeights, loadSegmentationModel
#   scripts/fuzz.sh images [RUNS]        # PNG and JPEG decoding from bytes (ImageCodecs over libpng/libjpeg)
#
# RUNS defaults to 1,000,000. The harness is compiled with swiftc straight from the package's sources
# (one module: the sources plus fuzz/<Target>Fuzz.swift), so no package build is involved.
# Seeds come from fuzz/corpus/<target>/ (kept small, committed); new interesting inputs go to
# .build-fuzz/corpus-<target>/ (not committed); a crashing input is written to .build-fuzz/crash-<target>-*
# and should become a regression test in Tests/.
# Runs at nice 19 so it never starves a build. SWIFT_BACKTRACE=enable=no: the Swift backtracer can keep a
# crashed run's pipe open and hang libFuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh safetensors|images [RUNS] [libFuzzer flags...]}"
runs="${2:-1000000}"
shift $(( $# >= 2 ? 2 : 1 ))
export PATH="/opt/swift/usr/bin:$PATH"
export SWIFT_BACKTRACE=enable=no

out=.build-fuzz
mkdir -p "$out/corpus-$target"
binary="$out/fuzz-$target"
flags=(-O -sanitize=fuzzer,address -parse-as-library -g)
case "$target" in
    safetensors)
        sources=($(find Sources/QuantEngine -name "*.swift" | sort) fuzz/SafeTensorsFuzz.swift fuzz/ModelLoadersFuzz.swift)
        dict=fuzz/safetensors.dict; maxlen=8192
        echo "building $binary"
        swiftc "${flags[@]}" -module-name "Fuzz_$target" "${sources[@]}" -o "$binary" ;;
    images)
        # ImageCodecs imports QuantEngine (for SonoQuantError and atomic writes) and the two C modules:
        # build QuantEngine as its own module first, the JPEG shim with clang, then the harness module.
        mkdir -p "$out/modules"
        printf 'module CJPEGShim {\n  header "%s/Sources/CJPEGShim/include/cjpegshim.h"\n  export *\n}\n' "$PWD" \
            > "$out/modules/module.modulemap"
        echo "building $out/QuantEngine.o"
        swiftc "${flags[@]}" -wmo -module-name QuantEngine -emit-module -emit-module-path "$out/modules/QuantEngine.swiftmodule" \
            -c $(find Sources/QuantEngine -name "*.swift" | sort) -o "$out/QuantEngine.o"
        clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CJPEGShim/include -c Sources/CJPEGShim/cjpegshim.c \
            -o "$out/cjpegshim.o"
        echo "building $binary"
        swiftc "${flags[@]}" -module-name "Fuzz_$target" -I "$out/modules" -I Sources/CImageCodecs \
            $(find Sources/ImageCodecs -name "*.swift" | sort) fuzz/ImageFuzz.swift \
            "$out/QuantEngine.o" "$out/cjpegshim.o" -lpng16 -ljpeg -o "$binary"
        dict=fuzz/images.dict; maxlen=65536 ;;
    *) echo "unknown target $target (safetensors|images)" >&2; exit 2 ;;
esac

echo "fuzzing $target for $runs runs (seeds: fuzz/corpus/$target)"
nice -n 19 "$binary" -runs="$runs" -max_len="$maxlen" -dict="$dict" -print_final_stats=1 \
    -artifact_prefix="$out/crash-$target-" "$@" "$out/corpus-$target" "fuzz/corpus/$target"
