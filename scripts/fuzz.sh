#!/usr/bin/env bash
# Coverage-guided fuzzing of SonoQuant's input loaders with libFuzzer + AddressSanitizer.
#
#   scripts/fuzz.sh safetensors [RUNS]   # SafeTensorsFile, its readers, ModelWeights, loadSegmentationModel
#   scripts/fuzz.sh images [RUNS]        # PNG and JPEG decoding from bytes (ImageCodecs over libpng/libjpeg)
#   scripts/fuzz.sh int8model [RUNS]     # structure-aware: edits of a valid int8 model -> Int8Model(file:) -> Int8UNet
#   scripts/fuzz.sh dicom [RUNS]         # DICOM files from bytes (Sources/DICOM over ImageCodecs' JPEG decoder)
#
# RUNS defaults to 1,000,000. The harness and the engine's modules are compiled with swiftc straight from the
# package's sources, with the sanitizers, so no package build is involved.
# Seeds come from fuzz/corpus/<target>/ (kept small, committed); new interesting inputs go to
# .build-fuzz/corpus-<target>/ (not committed); a crashing input is written to .build-fuzz/crash-<target>-*
# and should become a regression test in Tests/.
# Runs at nice 19 so it never starves a build. SWIFT_BACKTRACE=enable=no: the Swift backtracer can keep a
# crashed run's pipe open and hang libFuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh safetensors|images|int8model|dicom [RUNS] [libFuzzer flags...]}"
runs="${2:-1000000}"
shift $(( $# >= 2 ? 2 : 1 ))
export PATH="/opt/swift/usr/bin:$PATH"
export SWIFT_BACKTRACE=enable=no

out=.build-fuzz
mkdir -p "$out/corpus-$target"
binary="$out/fuzz-$target"
flags=(-O -sanitize=fuzzer,address -parse-as-library -g)
# The engine as the package builds it: QuantEngine on its kernel modules (one per instruction set on x86-64
# with Swift 6.3, as Package.swift) and the CPUFeatures C module, each compiled with the sanitizers into
# $out/modules; the harness then imports QuantEngine.
mkdir -p "$out/modules"
module_objects=()
build_module() {  # NAME SOURCE_DIR [swiftc flags...]
    local name="$1" dir="$2"; shift 2
    echo "building $out/$name.o"
    swiftc "${flags[@]}" -wmo -module-name "$name" -I "$out/modules" -emit-module -emit-module-path "$out/modules/$name.swiftmodule" \
        "$@" -c $(find "$dir" -name "*.swift" | sort) -o "$out/$name.o"
    module_objects+=("$out/$name.o")
}
build_engine() {
    printf 'module CPUFeatures {\n  header "%s/Sources/CPUFeatures/include/CPUFeatures.h"\n  export *\n}\n' "$PWD" \
        > "$out/modules/module.modulemap"
    printf 'module CJPEGShim {\n  header "%s/Sources/CJPEGShim/include/cjpegshim.h"\n  export *\n}\n' "$PWD" \
        >> "$out/modules/module.modulemap"
    clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CPUFeatures/include -c Sources/CPUFeatures/CPUFeatures.c -o "$out/cpufeatures.o"
    module_objects=("$out/cpufeatures.o")
    build_module FloatMicrokernels Sources/FloatMicrokernels
    build_module Int8Microkernels Sources/Int8Microkernels
    if [ "$(uname -m)" = x86_64 ] && swiftc -typecheck -target-cpu haswell - <<< "" 2>/dev/null \
        && swift --version 2>&1 | grep -qE "Swift version 6\.([3-9]|[1-9][0-9])"; then
        build_module FloatMicrokernelsAVX2 Sources/FloatMicrokernelsAVX2 -DSONOQUANT_FMA -target-cpu haswell
        build_module Int8MicrokernelsAVX2 Sources/Int8MicrokernelsAVX2 -target-cpu haswell
        build_module X86DotProductIntrinsics Sources/X86DotProductIntrinsics -parse-stdlib -target-cpu cascadelake
        build_module Int8MicrokernelsAVX512VNNI Sources/Int8MicrokernelsAVX512VNNI -DSONOQUANT_VNNI -target-cpu cascadelake
    fi
    build_module QuantEngine Sources/QuantEngine
}
case "$target" in
    safetensors)
        build_engine
        echo "building $binary"
        swiftc "${flags[@]}" -module-name "Fuzz_$target" -I "$out/modules" fuzz/SafeTensorsFuzz.swift fuzz/ModelLoadersFuzz.swift \
            "${module_objects[@]}" -o "$binary"
        dict=fuzz/safetensors.dict; maxlen=8192 ;;
    images)
        # ImageCodecs imports QuantEngine (for SonoQuantError and atomic writes) and the two C modules.
        build_engine
        clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CJPEGShim/include -c Sources/CJPEGShim/cjpegshim.c \
            -o "$out/cjpegshim.o"
        echo "building $binary"
        swiftc "${flags[@]}" -module-name "Fuzz_$target" -I "$out/modules" -I Sources/CImageCodecs \
            $(find Sources/ImageCodecs -name "*.swift" | sort) fuzz/ImageFuzz.swift \
            "${module_objects[@]}" "$out/cjpegshim.o" -lpng16 -ljpeg -o "$binary"
        dict=fuzz/images.dict; maxlen=65536 ;;
    int8model)
        build_engine
        echo "building $binary"
        swiftc "${flags[@]}" -module-name "Fuzz_$target" -I "$out/modules" fuzz/Int8ModelFuzz.swift "${module_objects[@]}" -o "$binary"
        # The input is a list of edits, not a file: no dictionary; short inputs suffice.
        dict=""; maxlen=128
        ;;
    dicom)
        # DICOM imports ImageCodecs (JPEG frames) and QuantEngine (SonoQuantError), built as modules here.
        build_engine
        clang -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CJPEGShim/include -c Sources/CJPEGShim/cjpegshim.c \
            -o "$out/cjpegshim.o"
        build_module ImageCodecs Sources/ImageCodecs -I Sources/CImageCodecs
        echo "building $binary"
        swiftc "${flags[@]}" -module-name "Fuzz_$target" -I "$out/modules" -I Sources/CImageCodecs \
            $(find Sources/DICOM -name "*.swift" | sort) fuzz/DICOMFuzz.swift \
            "${module_objects[@]}" "$out/cjpegshim.o" -lpng16 -ljpeg -o "$binary"
        dict=fuzz/dicom.dict; maxlen=16384 ;;
    *) echo "unknown target $target (safetensors|images|int8model|dicom)" >&2; exit 2 ;;
esac

echo "fuzzing $target for $runs runs (seeds: fuzz/corpus/$target)"
nice -n 19 "$binary" -runs="$runs" -max_len="$maxlen" ${dict:+-dict="$dict"} -print_final_stats=1 \
    -artifact_prefix="$out/crash-$target-" "$@" "$out/corpus-$target" "fuzz/corpus/$target"
