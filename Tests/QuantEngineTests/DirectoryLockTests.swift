import Foundation
import XCTest
import QuantEngine
import TestSupport

/// Output directories are locked while a run writes them: a second run refuses with the holder named,
/// the lock goes with its holder, and temporary files of dead processes are cleaned up.
final class DirectoryLockTests: XCTestCase {
    func testSecondLockIsRefusedUntilTheFirstIsReleased() throws {
        let directory = NSTemporaryDirectory() + "sonoquant-lock-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var first: DirectoryLock? = try DirectoryLock(directory: directory, purpose: "train D-all seed 0")
        assertSonoQuantError(try DirectoryLock(directory: directory, purpose: "bench"), subject: directory,
                             contains: "in use by another sonoquant process (pid \(getpid()): train D-all seed 0)")
        XCTAssertNotNil(first)
        first = nil
        XCTAssertNoThrow(try DirectoryLock(directory: directory, purpose: "bench"))
    }

    func testTemporaryFilesOfDeadProcessesAreRemoved() throws {
        let directory = NSTemporaryDirectory() + "sonoquant-lock-tmp-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // No process has a pid above Linux's largest pid_max (2^22); this process's own file stays.
        let stale = directory + "/.resume.safetensors.tmp-99999999", own = directory + "/.model.safetensors.tmp-\(getpid())"
        let unrelated = directory + "/notes.tmp-1"
        for path in [stale, own, unrelated] { XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data([1]))) }
        let lock = try DirectoryLock(directory: directory, purpose: "train")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        XCTAssertTrue(FileManager.default.fileExists(atPath: own))
        XCTAssertTrue(FileManager.default.fileExists(atPath: unrelated))
        withExtendedLifetime(lock) {}
    }
}
