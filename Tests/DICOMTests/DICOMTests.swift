import DICOM
import Deploy
import Foundation
import ImageCodecs
import QuantEngine
import XCTest
import TestSupport

/// fixtures/dicom/ is written by `scripts/make-dicom-fixtures.sh fixtures fixtures/dicom` from one HC18 test
/// frame (020_HC.png shrunk 4x: frame.png, pixel size 4 x 0.054483698762 mm) in every layout segment reads.
final class DICOMTests: XCTestCase {
    static func dicom(_ name: String) -> String { Fixtures.path("dicom/" + name) }
    static let png = dicom("frame.png")
    static let pixelMM = 0.054483698762 * 4

    func testEveryLosslessLayoutDecodesToThePNGsPixels() throws {
        let reference = try readGrayImage(path: Self.png)
        XCTAssertEqual([reference.width, reference.height], [200, 135])
        for name in ["one_region.dcm", "implicit_vr.dcm", "rle.dcm", "rgb.dcm", "ybr_full.dcm", "two_regions.dcm",
                     "pixel_spacing_only.dcm", "no_spacing.dcm", "non_cm_units.dcm"] {
            let image = try readDICOM(path: Self.dicom(name))
            XCTAssertEqual(image.frames.count, 1, name)
            XCTAssertEqual(image.frames[0], reference, name)
        }
        XCTAssertEqual(try readDICOM(path: Self.dicom("implicit_vr.dcm")).transferSyntax, .implicitLittleEndian)
        XCTAssertEqual(try readDICOM(path: Self.dicom("rle.dcm")).transferSyntax, .rleLossless)
        // The loops: the frame, the frame rolled 3 pixels right, the frame rolled 2 pixels up.
        let (w, h) = (reference.width, reference.height)
        let right = (0..<h).flatMap { y in (0..<w).map { x in reference[(x - 3 + w) % w, y] } }
        let up = (0..<h).flatMap { y in (0..<w).map { x in reference[x, (y + 2) % h] } }
        for name in ["cine_loop.dcm", "rle_loop.dcm"] {
            let frames = try readDICOM(path: Self.dicom(name)).frames
            XCTAssertEqual(frames.map(\.pixels), [reference.pixels, right, up], name)
        }
    }

    func testJPEGFramesAreLibjpegsDecode() throws {
        let reference = try readGrayImage(path: Self.png)
        for name in ["jpeg_baseline.dcm", "jpeg_color.dcm"] {
            let image = try readDICOM(path: Self.dicom(name))
            XCTAssertEqual(image.transferSyntax, .jpegBaseline)
            let frame = image.frames[0]
            XCTAssertEqual([frame.width, frame.height], [200, 135])
            let meanError = zip(frame.pixels, reference.pixels).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(frame.pixels.count)
            XCTAssertLessThan(meanError, 1.5, "\(name): quality-95 JPEG of the frame")
        }
    }

    func testPixelSizeComesFromTheRegionHoldingTheHeadThenPixelSpacing() throws {
        var notes: [String] = []
        let one = try XCTUnwrap(try readDICOM(path: Self.dicom("one_region.dcm")).pixelSize(atX: 96, y: 75, notes: &notes))
        XCTAssertEqual(one.source, .ultrasoundRegion)
        XCTAssertEqual(one.regionIndex, 0)
        XCTAssertEqual(one.millimetres, Self.pixelMM, accuracy: 1e-12)
        // Region 0 is a strip at the bottom (rows 123-134) at twice the pixel size; the head is in region 1.
        let two = try readDICOM(path: Self.dicom("two_regions.dcm"))
        XCTAssertEqual(two.regions.map { [$0.minY0, $0.maxY1] }, [[123, 134], [0, 122]])
        XCTAssertEqual(try two.pixelSize(atX: 96, y: 75, notes: &notes)?.regionIndex, 1)
        XCTAssertEqual(try XCTUnwrap(try two.pixelSize(atX: 96, y: 75, notes: &notes)).millimetres, Self.pixelMM, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(try two.pixelSize(atX: 96, y: 130, notes: &notes)).millimetres, 2 * Self.pixelMM, accuracy: 1e-12)
        let spacing = try XCTUnwrap(try readDICOM(path: Self.dicom("pixel_spacing_only.dcm")).pixelSize(atX: 96, y: 75, notes: &notes))
        XCTAssertEqual(spacing.source, .pixelSpacing)
        XCTAssertEqual(spacing.millimetres, Self.pixelMM, accuracy: 1e-12)
        XCTAssertNil(try readDICOM(path: Self.dicom("no_spacing.dcm")).pixelSize(atX: 96, y: 75, notes: &notes))
        notes = []
        XCTAssertNil(try readDICOM(path: Self.dicom("non_cm_units.dcm")).pixelSize(atX: 96, y: 75, notes: &notes))
        XCTAssertEqual(notes, ["ultrasound region 0 contains the head but its units (x 0, y 0) are not cm: not used"])
    }

    func testMalformedFilesGiveOneLineErrorsNamingTheFile() {
        let expected = [
            "truncated.dcm": "truncated: the value of (7FE0,0010) is 27000 bytes but only 13144 remain (byte 712)",
            "wrong_vr.dcm": "Rows (0028,0010): expected a 2-byte US value, found VR DS with 2 bytes",
            "missing_pixel_data.dcm": "no pixel data (7FE0,0010) in the file",
            "jpeg2000.dcm": "transfer syntax 1.2.840.10008.1.2.4.90 (JPEG 2000 lossless) has no decoder here; supported: uncompressed little endian, JPEG baseline, RLE lossless",
            "not_dicom.dcm": "not a DICOM file (no \"DICM\" marker at byte 128)",
        ]
        for (name, problem) in expected {
            let path = Self.dicom("malformed/" + name)
            XCTAssertThrowsError(try readDICOM(path: path)) { error in
                XCTAssertEqual("\(error)", "\(path): \(problem)")
            }
        }
    }

    /// Every prefix of a valid file is an error, never a trap or a frame.
    func testEveryTruncationIsAnError() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.dicom("rle_loop.dcm"))))
        for length in stride(from: 0, to: bytes.count, by: 97) {
            XCTAssertThrowsError(try decodeDICOM(bytes: Array(bytes.prefix(length)), source: "cut"), "\(length) bytes")
        }
    }

    func testRLESegmentsDecodeAsPackBits() throws {
        // Header: 1 segment at offset 64. Segment: literal run of 3 (2: copy 3), repeat of 4 (-3: repeat 4x), no-op (-128).
        var frame = [UInt8](repeating: 0, count: 64)
        frame[0] = 1
        frame[4] = 64
        frame += [2, 10, 20, 30, 0xFD, 7, 0x80, 0]  // the final 0 pads the segment to an even length
        XCTAssertEqual(try decodeRLEFrame(frame, width: 7, height: 1, samples: 1, source: "t", frame: 0), [10, 20, 30, 7, 7, 7, 7])
        XCTAssertThrowsError(try decodeRLEFrame(frame, width: 8, height: 1, samples: 1, source: "t", frame: 0)) { error in
            XCTAssertEqual("\(error)", "t: RLE frame 1: segment 0: a literal run overruns the data")
        }
    }

    // MARK: segment on DICOM

    func testSegmentGivesThePNGsHCWithTheFilesPixelSize() throws {
        let out = try temporaryDirectory(self, "segment-dicom")
        let model = try loadSegmentationModel(path: Fixtures.path("pytorch_D-all_192x128.safetensors"))
        let segmenter = try Segmenter(model: model, modelName: "D-all", size: InputSize(width: 192, height: 128), threads: 1)
        let table = try readPixelSizeTable(path: Self.dicom("frame_pixel_size.csv"))
        let names = ["frame.png", "one_region.dcm", "two_regions.dcm", "pixel_spacing_only.dcm", "rle_loop.dcm", "no_spacing.dcm",
                     "malformed/truncated.dcm"]
        let summary = try segmentFrames(names.map(Self.dicom), with: segmenter, scale: { (table[$0], nil) }, outDirectory: out, log: { _ in })
        let byName = Dictionary(grouping: summary.results) { ($0.frame as NSString).lastPathComponent }
        let png = try XCTUnwrap(byName["frame.png"]?.first?.hcMM)
        XCTAssertEqual(byName["frame.png"]?.first?.pixelSizeSource, .csv)
        for (name, source, region) in [("one_region.dcm", PixelSizeSource.ultrasoundRegion, 0), ("two_regions.dcm", .ultrasoundRegion, 1),
                                       ("pixel_spacing_only.dcm", .pixelSpacing, nil)] as [(String, PixelSizeSource, Int?)] {
            let result = try XCTUnwrap(byName[name]?.first, name)
            XCTAssertEqual(try XCTUnwrap(result.hcMM), png, accuracy: 1e-9, name)
            XCTAssertEqual(result.pixelSizeSource, source, name)
            XCTAssertEqual(result.ultrasoundRegion, region, name)
        }
        XCTAssertNil(byName["no_spacing.dcm"]?.first?.hcMM)
        XCTAssertTrue(byName["no_spacing.dcm"]?.first?.notes.contains("no pixel size given for this frame: HC in pixels only") ?? false)
        // The loop: three frames, each its own result and files, and one line in `loops`.
        XCTAssertEqual(byName["rle_loop.dcm"]?.map(\.frameIndex), [1, 2, 3])
        XCTAssertEqual(try XCTUnwrap(byName["rle_loop.dcm"]?[0].hcMM), png, accuracy: 1e-9)
        for file in ["rle_loop_f001_mask.png", "rle_loop_f003.json", "one_region_overlay.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), file)
        }
        let loop = try XCTUnwrap(summary.loops?.first)
        XCTAssertEqual([loop.frames, loop.headsFound, loop.framesMeasured], [3, 3, 3])
        let hcs = byName["rle_loop.dcm"]!.map { $0.hcMM! }.sorted()
        XCTAssertEqual(try XCTUnwrap(loop.medianHCmm), hcs[1], accuracy: 1e-12)
        // The truncated file fails alone; the batch goes on.
        XCTAssertEqual(summary.failures.map { ($0.frame as NSString).lastPathComponent }, ["truncated.dcm"])
        XCTAssertEqual(summary.frames, 9)
    }

    /// Scanners export DICOM without an extension: in a directory those files count when they carry the marker.
    func testDirectoriesIncludeExtensionlessDICOMFiles() throws {
        let directory = try temporaryDirectory(self, "export")
        try FileManager.default.copyItem(atPath: Self.dicom("one_region.dcm"), toPath: directory + "/IM_0001")
        try FileManager.default.copyItem(atPath: Self.png, toPath: directory + "/frame.png")
        try "not an image".write(toFile: directory + "/README", atomically: true, encoding: .utf8)
        XCTAssertEqual(try segmentationInputs(path: directory).map { ($0 as NSString).lastPathComponent }, ["IM_0001", "frame.png"])
        XCTAssertTrue(isDICOMPath(directory + "/IM_0001"))
        XCTAssertFalse(isDICOMPath(directory + "/README"))
    }

    func testAFileAndAnOptionThatDisagreeNeedAPriority() throws {
        let out = try temporaryDirectory(self, "segment-conflict")
        let model = try loadSegmentationModel(path: Fixtures.path("pytorch_D-all_192x128.safetensors"))
        let segmenter = try Segmenter(model: model, modelName: "D-all", size: InputSize(width: 192, height: 128), threads: 1)
        let option = FrameScale(pixelSizeMM: 0.3, source: .option)
        let path = Self.dicom("one_region.dcm")
        let refused = try segmentFrames([path], with: segmenter, scale: { _ in (option, nil) }, outDirectory: out + "/a", log: { _ in })
        XCTAssertEqual(refused.failures.map(\.error), ["\(path): pixel size conflict: the file gives \(Self.pixelMM) mm (its ultrasound region 0), --pixel-size gives 0.3 mm; say which wins with --pixel-size-priority file|option"])
        let optionWins = try segmentFrames([path], with: segmenter, scale: { _ in (option, nil) }, dicomPriority: .option, outDirectory: out + "/b", log: { _ in })
        XCTAssertEqual(optionWins.results.first?.pixelSizeMM, 0.3)
        XCTAssertEqual(optionWins.results.first?.pixelSizeSource, .option)
        let fileWins = try segmentFrames([path], with: segmenter, scale: { _ in (option, nil) }, dicomPriority: .file, outDirectory: out + "/c", log: { _ in })
        XCTAssertEqual(fileWins.results.first?.pixelSizeMM, Self.pixelMM)
        // Agreeing values are no conflict: the file's is used and named.
        let agree = FrameScale(pixelSizeMM: Self.pixelMM, source: .option)
        let same = try segmentFrames([path], with: segmenter, scale: { _ in (agree, nil) }, outDirectory: out + "/d", log: { _ in })
        XCTAssertEqual(same.results.first?.pixelSizeSource, .ultrasoundRegion)
    }
}
