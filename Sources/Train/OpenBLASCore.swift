import COpenBLAS
import CPUFeatures
import Foundation

/// Which kernel set OpenBLAS runs the trainer's GEMMs with, and the fix when it picked a slow one.
///
/// Debian's OpenBLAS (0.3.21, built for every x86-64 CPU) chooses its kernels from the CPU model when the
/// library loads. For a model it does not know it falls back to "Prescott", plain SSE3 kernels. That
/// happened on this project's 2-vCPU Intel Xeon VM (AVX-512): D-all trained at 3.2 images/s instead of
/// 6.8 with the AVX-512 kernels (1 thread; docs/PERFORMANCE.md), and the float sums change order, too.
/// OpenBLAS reads `OPENBLAS_CORETYPE` only while it loads, so the fix is to set it and start the program
/// again: `useTheCPUsKernels()`, called first thing by `sonoquant`.
public enum OpenBLASCore {
    /// The kernel set OpenBLAS chose when it loaded, e.g. "Haswell", "SkylakeX", "Prescott".
    public static var chosen: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's kernel sets for x86-64 CPUs without AVX2 and FMA (its fallbacks for unknown models among them).
    static let withoutAVX2: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "sandybridge"]

    /// The `OPENBLAS_CORETYPE` to force, or nil to keep OpenBLAS's choice: only when it chose a kernel set
    /// without AVX2 while the CPU has AVX2 and FMA (`cpuFlags` in /proc/cpuinfo's names). SkylakeX needs
    /// AVX-512 F, BW, DQ and VL; Haswell needs AVX2 and FMA.
    public static func override(chosen: String, cpuFlags: Set<String>) -> String? {
        guard withoutAVX2.contains(chosen.lowercased()), cpuFlags.contains("avx2"), cpuFlags.contains("fma") else { return nil }
        return ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(cpuFlags.contains) ? "SkylakeX" : "Haswell"
    }

    /// The CPU's flags that `override` looks at, from CPUID (as the kernel paths read them), not from
    /// /proc/cpuinfo: under an emulator such as qemu-user /proc/cpuinfo describes the host, not the CPU the
    /// program runs on, and the restart below then escaped the emulator.
    static var cpuFlags: Set<String> {
        let features = sonoquant_cpu_features()
        var flags: Set<String> = []
        if features & UInt32(SONOQUANT_CPU_AVX2_FMA) != 0 { flags.formUnion(["avx2", "fma"]) }
        if features & UInt32(SONOQUANT_CPU_AVX512_SKX) != 0 { flags.formUnion(["avx512f", "avx512bw", "avx512dq", "avx512vl"]) }
        return flags
    }

    /// Starts this program again with `OPENBLAS_CORETYPE` set when `override` says OpenBLAS chose kernels
    /// below the CPU's. Does nothing when `OPENBLAS_CORETYPE` is already set (the user's choice, or the
    /// second start) or off x86-64 Linux; if the restart itself fails, the program carries on with
    /// OpenBLAS's choice.
    public static func useTheCPUsKernels() {
        #if arch(x86_64) && os(Linux)
        guard getenv("OPENBLAS_CORETYPE") == nil, let core = override(chosen: chosen, cpuFlags: cpuFlags) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        #endif
    }
}
