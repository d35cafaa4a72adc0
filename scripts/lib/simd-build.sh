# Sourced by the benchmark scripts: the release build they measure.
#
# On x86-64: AVX2 + FMA (x86-64-v3; Swift toolchains whose clang rejects that name, such as 6.3.1, get
# haswell, the same instruction set level), plus -DSONOQUANT_FMA so the float kernels use fused
# multiply-add (Sources/QuantEngine/FloatKernels/SIMDMath.swift). In its own scratch path, so the portable
# default build in .build is left alone. On aarch64: the plain release build (NEON is baseline there).
#
# SIMD_CPU=cascadelake (x86-64 CPUs with AVX-512 VNNI: Intel Cascade Lake and later, AMD Zen 4 and later)
# builds for that level instead, in .build/vnni, with -DSONOQUANT_VNNI: LLVM then fuses the int8 kernels'
# vpmaddwd + vpaddd into one vpdpwssd, same results bit for bit. Measured on the AMD EPYC (Zen 4) machine,
# idle: int8 1.29x faster (20.7 -> 16.1 ms), float32 9% slower (26.3 -> 28.6 ms) (docs/PERFORMANCE.md,
# "Fifth session", bench-int8.sh logs); so it is the build for deploying int8 on such a CPU, not the default.
#
#   source scripts/lib/simd-build.sh; simd_build    # sets OURS to the sonoquant binary
simd_build() {
    local flags=() scratch=.build cpu probe
    if [ "$(uname -m)" = x86_64 ]; then
        if [ -n "${SIMD_CPU:-}" ]; then
            cpu=$SIMD_CPU
            scratch=.build/$cpu
        else
            cpu=x86-64-v3
            probe=$(mktemp -d)
            echo 'let x = 1' > "$probe/probe.swift"
            swiftc -target-cpu x86-64-v3 -typecheck "$probe/probe.swift" 2>/dev/null || cpu=haswell
            rm -rf "$probe"
            scratch=.build/avx2
        fi
        flags=(-Xswiftc -target-cpu -Xswiftc "$cpu" -Xswiftc -DSONOQUANT_FMA)
        if [ "$cpu" = cascadelake ]; then
            # VNNI's in-place multiply-add frees the register that sets the int8 microkernel's tile on AVX2
            # (microkernelPixels in Sources/QuantEngine/Int8Kernels/Int8DenseConv.swift).
            flags+=(-Xswiftc -DSONOQUANT_VNNI)
            scratch=.build/vnni
        fi
    fi
    echo "== building: swift build -c release --scratch-path $scratch ${flags[*]} --product sonoquant"
    swift build -c release --scratch-path "$scratch" "${flags[@]}" --product sonoquant 2>&1 | tail -1
    OURS="$scratch/release/sonoquant"
}
