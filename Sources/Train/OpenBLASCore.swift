import COpenBLAS
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
    /// without AVX2 while the CPU's flags (/proc/cpuinfo) have AVX2 and FMA. SkylakeX needs AVX-512 F, BW,
    /// DQ and VL; Haswell needs AVX2 and FMA.
    public static func override(chosen: String, cpuFlags: Set<String>) -> String? {
        guard withoutAVX2.contains(chosen.lowercased()), cpuFlags.contains("avx2"), cpuFlags.contains("fma") else { return nil }
        return ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(cpuFlags.contains) ? "SkylakeX" : "Haswell"
    }

    /// Starts this program again with `OPENBLAS_CORETYPE` set when `override` says OpenBLAS chose kernels
    /// below the CPU's. Does nothing when `OPENBLAS_CORETYPE` is already set (the user's choice, or the
    /// second start), off x86-64 Linux, or when the CPU flags cannot be read; if the restart itself fails,
    /// the program carries on with OpenBLAS's choice.
    public static func useTheCPUsKernels() {
        #if arch(x86_64) && os(Linux)
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let flags = flagsLine.split(separator: ":", maxSplits: 1).last,
              let core = override(chosen: chosen, cpuFlags: Set(flags.split(separator: " ").map(String.init)))
        else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        #endif
    }
}
