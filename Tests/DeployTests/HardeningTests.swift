import Deploy
import Foundation
import HC18
import ImageCodecs
import QuantEngine
import XCTest
import TestSupport

/// Bad frames never crash `segment`: each case gets a clear error naming the file, or a documented result.
/// (Bad model files: QuantEngineTests/ModelLoadingTests.)
final class HardeningTests: XCTestCase {
    // MARK: - Frames

    func testBadFramesAreListedAndTheRunGoesOn() throws {
        let dir = try temporaryDirectory(self, "frames")
        let png = [UInt8](FileManager.default.contents(atPath: DeployFixtures.frames + "/002_HC.png")!)
        let jpeg = [UInt8](FileManager.default.contents(atPath: Fixtures.path("codecs/rgb.jpg"))!)
        // A PNG whose IHDR claims 20000 x 20000 pixels (valid CRC): rejected before any allocation.
        var ihdr = Array("IHDR".utf8) + bigEndian(20000) + bigEndian(20000) + [8, 0, 0, 0, 0]
        ihdr += bigEndian(crc32(ihdr))
        var idat = Array("IDAT".utf8) + [0x78, 0x9C]
        idat += bigEndian(crc32(idat))
        let huge: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + bigEndian(13) + ihdr + bigEndian(2) + idat
        let cases: [(String, [UInt8], String)] = [
            ("a_empty.png", [], "empty"),
            ("b_truncated.png", Array(png.prefix(png.count / 3)), "truncated"),
            ("c_text.jpg", Array("not an image\n".utf8), "not a png or jpeg"),
            ("d_huge.png", huge, "larger than the limit"),
            ("e_truncated.jpg", Array(jpeg.prefix(jpeg.count / 2)), "jpeg"),
        ]
        for (name, bytes, _) in cases { try writeFileAtomically(path: dir + "/" + name, bytes: bytes) }
        try writeFileAtomically(path: dir + "/z_good.png", bytes: png)
        let segmenter = try Segmenter(model: StubModel(head: (0.5, 0.5, 0.3, 0.3)), modelName: "stub", size: InputSize(width: 64, height: 64), threads: 1)
        let out = try temporaryDirectory(self, "out")
        var lines: [String] = []
        let summary = try segmentFrames(try segmentationInputs(path: dir), with: segmenter, scale: { _ in (nil, nil) },
                                        outDirectory: out, log: { lines.append($0) })
        XCTAssertEqual(summary.frames, 6)
        XCTAssertEqual(summary.results.map { ($0.frame as NSString).lastPathComponent }, ["z_good.png"])
        XCTAssertEqual(summary.failures.count, 5)
        for ((name, _, words), failure) in zip(cases, summary.failures) {
            XCTAssertEqual(failure.frame, dir + "/" + name)
            XCTAssertTrue(failure.error.hasPrefix(dir + "/" + name + ": "), failure.error)
            XCTAssertTrue(failure.error.lowercased().contains(words), "\(failure.error) lacks \(words)")
        }
        XCTAssertEqual(lines.filter { $0.hasPrefix("error: ") }.count, 5)
        // The good frame's outputs and the summary are written.
        for file in ["z_good_mask.png", "z_good_overlay.png", "z_good.json", "summary.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), file)
        }
        XCTAssertEqual(try readGrayImage(path: out + "/z_good_mask.png").width, 800)
    }

    /// Other bit depths and colour types are converted to 8-bit gray (documented in ImageCodecs) and segment.
    func testOtherBitDepthsAndColourTypesSegment() throws {
        let segmenter = try Segmenter(model: StubModel(head: (0.5, 0.5, 0.3, 0.3)), modelName: "stub", size: InputSize(width: 64, height: 64), threads: 1)
        for name in ["bilevel.png", "gray16.png", "gray_alpha.png", "palette.png", "rgb8.png", "rgba8.png", "rgb.jpg", "progressive.jpg"] {
            let r = try segmenter.segment(path: Fixtures.path("codecs/" + name), scale: FrameScale(pixelSizeMM: 0.1)).result
            XCTAssertEqual([r.width, r.height], [4, 3], name)
        }
    }

    func testSameNameTwiceIsRefused() throws {
        let dir = try temporaryDirectory(self, "dupes")
        let png = [UInt8](FileManager.default.contents(atPath: Fixtures.path("codecs/gray8.png"))!)
        try writeFileAtomically(path: dir + "/a.png", bytes: png)
        try writeFileAtomically(path: dir + "/a.jpg", bytes: png)
        let segmenter = try Segmenter(model: StubModel(head: nil), modelName: "stub", size: InputSize(width: 64, height: 64), threads: 1)
        assertSonoQuantError(try segmentFrames(try segmentationInputs(path: dir), with: segmenter, scale: { _ in (nil, nil) },
                                               outDirectory: dir + "/out", log: { _ in }), contains: "same name")
    }

    /// A second `segment` into a directory another run is writing is refused before it writes anything.
    func testOutputDirectoryInUseIsRefused() throws {
        let dir = try temporaryDirectory(self, "frames"), out = try temporaryDirectory(self, "out")
        let png = [UInt8](FileManager.default.contents(atPath: Fixtures.path("codecs/gray8.png"))!)
        try writeFileAtomically(path: dir + "/a.png", bytes: png)
        let segmenter = try Segmenter(model: StubModel(head: nil), modelName: "stub", size: InputSize(width: 64, height: 64), threads: 1)
        let other = try DirectoryLock(directory: out, purpose: "segment")
        assertSonoQuantError(try segmentFrames(try segmentationInputs(path: dir), with: segmenter, scale: { _ in (nil, nil) },
                                               outDirectory: out, log: { _ in }), contains: "in use by another sonoquant process")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/a_mask.png"))
        withExtendedLifetime(other) {}
    }
}

func bigEndian(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }

/// CRC-32 (PNG's, ISO 3309), bit by bit: only for building small test files.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
    }
    return ~crc
}
