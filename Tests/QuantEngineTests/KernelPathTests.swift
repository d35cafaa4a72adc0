import XCTest
import QuantEngine
import TestSupport

/// The run-time choice of kernel path: the CPU's best by default, SONOQUANT_KERNELS to force one, and a
/// one-line error (never a crash) for a path that does not exist or that this CPU cannot run.
final class KernelPathTests: XCTestCase {
    func testDefaultIsTheFastestSupportedPath() throws {
        let supported = KernelPath.supported
        XCTAssertFalse(supported.isEmpty)
        XCTAssertEqual(supported.first, KernelPath.built.first, "the baseline path runs on every CPU of the architecture")
        XCTAssertTrue(supported.allSatisfy(KernelPath.built.contains))
        XCTAssertEqual(try KernelPath.select(environment: [:]), supported.last)
        XCTAssertEqual(try KernelPath.select(environment: [KernelPath.environmentVariable: ""]), supported.last)
    }

    func testEnvironmentForcesAPath() throws {
        for path in KernelPath.supported {
            XCTAssertEqual(try KernelPath.select(environment: [KernelPath.environmentVariable: path.rawValue]), path)
        }
    }

    func testUnknownOrUnsupportedPathIsAnError() {
        XCTAssertThrowsError(try KernelPath.select(environment: [KernelPath.environmentVariable: "avx9000"])) { error in
            XCTAssertEqual("\(error)".split(separator: "\n").count, 1)
            XCTAssertTrue("\(error)".hasPrefix("SONOQUANT_KERNELS=avx9000: not a kernel path of this binary (one of: "), "\(error)")
        }
        for path in KernelPath.allCases where !KernelPath.supported.contains(path) {
            XCTAssertThrowsError(try KernelPath.select(environment: [KernelPath.environmentVariable: path.rawValue]), path.rawValue)
        }
    }
}
