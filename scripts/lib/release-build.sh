# Sourced by the benchmark scripts: the build they measure is the one the README gives a user,
# `swift build -c release`, with no flags: the kernels for the CPU are chosen at run time
# (SONOQUANT_KERNELS=<path> forces one; every `sonoquant latency` line names the path that ran).
#
#   source scripts/lib/release-build.sh; release_build    # sets OURS to the sonoquant binary
release_build() {
    echo "== building: swift build -c release --product sonoquant"
    swift build -c release --product sonoquant 2>&1 | tail -1
    OURS=.build/release/sonoquant
    echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); int8/float ISA flags:" \
         "$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512bw|avx512vl|avx512_vnni|avx_vnni)$' | tr '\n' ' ')"
}
