# Sourced by the benchmark scripts: the release build they measure.
#
# On x86-64: AVX2 + FMA (x86-64-v3; Swift toolchains whose clang rejects that name, such as 6.3.1, get
# haswell, the same instruction set level), plus -DSONOQUANT_FMA so the float kernels use fused
# multiply-add (Sources/QuantEngine/FloatKernels/SIMDMath.swift). In its own scratch path, so the portable
# default build in .build is left alone. On aarch64: the plain release build (NEON is baseline there).
#
#   source scripts/lib/simd-build.sh; simd_build    # sets OURS to the sonoquant binary
simd_build() {
    local flags=() scratch=.build cpu probe
    if [ "$(uname -m)" = x86_64 ]; then
        cpu=x86-64-v3
        probe=$(mktemp -d)
        echo 'let x = 1' > "$probe/probe.swift"
        swiftc -target-cpu x86-64-v3 -typecheck "$probe/probe.swift" 2>/dev/null || cpu=haswell
        rm -rf "$probe"
        flags=(-Xswiftc -target-cpu -Xswiftc "$cpu" -Xswiftc -DSONOQUANT_FMA)
        scratch=.build/avx2
    fi
    echo "== building: swift build -c release --scratch-path $scratch ${flags[*]} --product sonoquant"
    swift build -c release --scratch-path "$scratch" "${flags[@]}" --product sonoquant 2>&1 | tail -1
    OURS="$scratch/release/sonoquant"
}
