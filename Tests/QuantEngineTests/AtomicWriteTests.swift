import Foundation
import XCTest
import QuantEngine

/// `writeFileAtomically`: the file holds exactly the bytes, a second write replaces it whole, no temporary is
/// left behind, and a target that cannot be written gives an error naming that target (not its temporary).
final class AtomicWriteTests: XCTestCase {
    func testWritesReplacesAndLeavesNoTemporary() throws {
        let dir = NSTemporaryDirectory() + "sonoquant-atomic-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.safetensors"
        let large = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try writeFileAtomically(path: path, bytes: large)
        XCTAssertEqual(FileManager.default.contents(atPath: path).map { [UInt8]($0) }, large)
        try writeFileAtomically(path: path, bytes: [1, 2, 3])
        XCTAssertEqual(FileManager.default.contents(atPath: path).map { [UInt8]($0) }, [1, 2, 3])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.safetensors"])
    }

    func testUnwritableTargetIsNamedInTheError() throws {
        let file = NSTemporaryDirectory() + "sonoquant-atomic-file-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try writeFileAtomically(path: file, bytes: [0])
        let target = file + "/out.safetensors"  // its parent is a regular file: nothing can be created there
        XCTAssertThrowsError(try writeFileAtomically(path: target, bytes: [1, 2])) { error in
            guard let error = error as? SonoQuantError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.subject, target)
            XCTAssertTrue(error.problem.hasPrefix("cannot create file"), error.problem)
        }
    }
}
