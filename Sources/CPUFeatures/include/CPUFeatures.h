#ifndef SONOQUANT_CPU_FEATURES_H
#define SONOQUANT_CPU_FEATURES_H

/// What the CPU running this process can execute, as the instruction set extensions the int8 and float
/// kernels are built for. A bit is set only when the CPU has the instructions AND the operating system
/// saves their registers (x86-64: XGETBV), i.e. when code using them runs.
enum {
    SONOQUANT_CPU_AVX2_FMA = 1 << 0,     ///< x86-64: AVX, AVX2 and FMA3 (the "haswell" level)
    SONOQUANT_CPU_AVX512_VNNI = 1 << 1,  ///< x86-64: AVX-512 F, BW, VL and VNNI with zmm state enabled
    SONOQUANT_CPU_ASIMD_DOTPROD = 1 << 2 ///< arm64: the ARMv8.2 dot product (SDOT, "asimddp")
};

/// The bits above that this CPU and kernel support. Read from CPUID (x86-64) or the ELF auxiliary
/// vector (arm64), not /proc/cpuinfo: under an emulator such as qemu-user they describe the emulated CPU.
unsigned sonoquant_cpu_features(void);

#endif
