#include "CPUFeatures.h"

#if defined(__x86_64__)
#include <cpuid.h>

/// XCR0: which register states the operating system saves on a context switch.
static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

unsigned sonoquant_cpu_features(void) {
    unsigned int eax, ebx, ecx, edx, features = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const int osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1, fma = (ecx >> 12) & 1;
    if (!osxsave || !avx) return 0;
    const unsigned long long xcr0 = read_xcr0();
    const int ymm_state = (xcr0 & 0x6) == 0x6;     // SSE and AVX registers
    const int zmm_state = (xcr0 & 0xE6) == 0xE6;   // plus opmask and both halves of zmm0-31
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const int avx2 = (ebx >> 5) & 1;
    const int avx512f = (ebx >> 16) & 1, avx512bw = (ebx >> 30) & 1, avx512vl = (ebx >> 31) & 1;
    const int avx512vnni = (ecx >> 11) & 1;
    if (ymm_state && avx2 && fma) features |= SONOQUANT_CPU_AVX2_FMA;
    if ((features & SONOQUANT_CPU_AVX2_FMA) && zmm_state && avx512f && avx512bw && avx512vl && avx512vnni)
        features |= SONOQUANT_CPU_AVX512_VNNI;
    return features;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

unsigned sonoquant_cpu_features(void) {
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) ? SONOQUANT_CPU_ASIMD_DOTPROD : 0;
}

#else
unsigned sonoquant_cpu_features(void) { return 0; }
#endif
