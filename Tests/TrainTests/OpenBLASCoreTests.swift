import Train
import XCTest

/// When `sonoquant` restarts itself with OPENBLAS_CORETYPE set (OpenBLASCore.useTheCPUsKernels).
final class OpenBLASCoreTests: XCTestCase {
    let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"]
    let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]

    func testFallbackKernelsOnAnAVX2CPUAreReplaced() {
        // Debian's OpenBLAS 0.3.21 on a Sapphire Rapids VM: "Prescott".
        XCTAssertEqual(OpenBLASCore.override(chosen: "Prescott", cpuFlags: avx512), "SkylakeX")
        XCTAssertEqual(OpenBLASCore.override(chosen: "Prescott", cpuFlags: avx2), "Haswell")
        XCTAssertEqual(OpenBLASCore.override(chosen: "Sandybridge", cpuFlags: avx2), "Haswell")
    }

    func testAGoodChoiceOrAnOldCPUIsLeftAlone() {
        XCTAssertNil(OpenBLASCore.override(chosen: "Haswell", cpuFlags: avx512))
        XCTAssertNil(OpenBLASCore.override(chosen: "Zen", cpuFlags: avx2))
        XCTAssertNil(OpenBLASCore.override(chosen: "Cooperlake", cpuFlags: avx512))
        XCTAssertNil(OpenBLASCore.override(chosen: "Prescott", cpuFlags: ["sse3", "avx"]), "no AVX2: Prescott is right")
        XCTAssertNil(OpenBLASCore.override(chosen: "Prescott", cpuFlags: ["avx2"]), "AVX2 without FMA")
    }
}
