import Deploy
import Foundation
import HC18
import ImageCodecs
import QuantEngine
import XCTest
import TestSupport

final class SegmentTests: XCTestCase {
    /// segment's HC on a frame is exactly what the evaluation pipeline (loadSample -> logits -> measureHC)
    /// measures, so segment and bench report the same HC error.
    func testSegmentMeasuresExactlyWhatEvaluationMeasures() throws {
        let table = try readPixelSizeTable(path: DeployFixtures.pixelCSV)
        let segmenter = try Segmenter(model: DeployFixtures.dAll, modelName: "D-all", size: InputSize(width: 192, height: 128), threads: 2)
        let samples = try readPixelSizeCSV(directory: DeployFixtures.frames)
        for sample in samples.prefix(3) {
            let file = sample.name + ".png"
            let segmented = try segmenter.segment(path: sample.imagePath, scale: table[file])
            let prepared = try loadSample(sample, width: 192, height: 128)
            let logits = try DeployFixtures.dAll.logits(for: Tensor(shape: [1, 1, 128, 192], data: prepared.image), threads: 1)
            let measured = measureHC(mask: logits.data.map { $0 > 0 ? UInt8(1) : 0 }, width: 192, height: 128,
                                     originalWidth: prepared.originalWidth, originalHeight: prepared.originalHeight,
                                     pixelSizeMM: sample.pixelSizeMM)
            let r = segmented.result
            XCTAssertEqual(r.hcMM, measured?.hcMM, file)
            XCTAssertEqual(r.referenceHCmm, sample.referenceHCmm)
            XCTAssertEqual(r.hcErrorMM, measured.map { abs($0.hcMM - sample.referenceHCmm) }, file)
            XCTAssertEqual(r.ellipse?.centerX, measured?.ellipse.centerX)
            XCTAssertEqual(r.gestationalAge?.weeks, measured.map { Hadlock1984.weeks(hcMM: $0.hcMM) }, file)
            // Outputs at the frame's own size.
            XCTAssertEqual([segmented.mask.width, segmented.mask.height], [prepared.originalWidth, prepared.originalHeight])
            XCTAssertEqual([segmented.overlay.width, segmented.overlay.height], [prepared.originalWidth, prepared.originalHeight])
            XCTAssertEqual(r.maskPixels, segmented.mask.pixels.filter { $0 == 255 }.count)
        }
    }

    /// The trained model finds the head on a real frame: HC near the sonographer's, mask inside the frame.
    func testRealFrameHeadFound() throws {
        let table = try readPixelSizeTable(path: DeployFixtures.pixelCSV)
        let segmenter = try Segmenter(model: DeployFixtures.dAll, modelName: "D-all", size: InputSize(width: 192, height: 128), threads: 2)
        let r = try segmenter.segment(path: DeployFixtures.frames + "/002_HC.png", scale: table["002_HC.png"]).result
        XCTAssertTrue(r.headFound)
        XCTAssertEqual(r.referenceHCmm, 68.75)
        // Measured once: 69.29 mm (the PyTorch reference's mean error on the test split is 3.5 mm).
        XCTAssertLessThan(try XCTUnwrap(r.hcErrorMM), 2, "HC \(r.hcMM ?? -1) vs 68.75 mm")
        let e = try XCTUnwrap(r.ellipse)
        XCTAssertTrue((0..<Double(r.width)).contains(e.centerX) && (0..<Double(r.height)).contains(e.centerY))
        // The head fills roughly the ellipse's area (pi a b) at the frame's size.
        let area = Double.pi * e.semiMajorAxis * e.semiMinorAxis
        XCTAssertEqual(Double(r.maskPixels) / area, 1, accuracy: 0.1)
    }

    /// An ellipse drawn by a stub model at network size comes back in original-frame pixels.
    func testEllipseIsReportedInOriginalPixels() throws {
        let model = StubModel(head: (0.5, 0.5, 0.25, 0.25))
        let segmenter = try Segmenter(model: model, modelName: "stub", size: InputSize(width: 192, height: 128), threads: 1)
        let frame = GrayImage(width: 800, height: 540, pixels: [UInt8](repeating: 90, count: 800 * 540))
        let r = try segmenter.segment(frame: frame, name: "flat", scale: FrameScale(pixelSizeMM: 0.1)).result
        let e = try XCTUnwrap(r.ellipse)
        XCTAssertEqual(e.centerX, 399.5, accuracy: 1)
        XCTAssertEqual(e.centerY, 269.5, accuracy: 1)
        XCTAssertEqual(e.semiMajorAxis, 200, accuracy: 3)  // 0.25 * 800
        XCTAssertEqual(e.semiMinorAxis, 135, accuracy: 3)  // 0.25 * 540
        XCTAssertEqual(try XCTUnwrap(r.hcMM), try XCTUnwrap(r.hcPixels) * 0.1, accuracy: 1e-9)
    }

    /// No head: a documented result (headFound false, empty mask, HC error = reference), not an error.
    func testNoHeadFoundIsAResult() throws {
        let segmenter = try Segmenter(model: StubModel(head: nil), modelName: "stub", size: InputSize(width: 64, height: 64), threads: 1)
        let frame = GrayImage(width: 50, height: 40, pixels: [UInt8](repeating: 0, count: 2000))
        let out = try segmenter.segment(frame: frame, name: "black", scale: FrameScale(pixelSizeMM: 0.2, referenceHCmm: 150))
        XCTAssertFalse(out.result.headFound)
        XCTAssertNil(out.result.hcMM)
        XCTAssertNil(out.result.ellipse)
        XCTAssertEqual(out.result.hcErrorMM, 150)
        XCTAssertEqual(out.result.maskPixels, 0)
        XCTAssertEqual(out.mask.pixels, [UInt8](repeating: 0, count: 2000))
        XCTAssertEqual(out.overlay, RGBImage(gray: frame))
        XCTAssertEqual(out.result.notes, ["no head found: the model predicted no head pixel"])
        let summary = SegmentSummary(model: "stub", precision: .float32, kernels: "stub", networkWidth: 64, networkHeight: 64,
                                     results: [out.result], failures: [])
        XCTAssertEqual(summary.headsFound, 0)
        XCTAssertEqual(summary.meanHCErrorMM, 150)
    }

    /// Missing pixel size: HC in pixels only, with a note.
    func testMissingPixelSizeGivesPixelsOnly() throws {
        let segmenter = try Segmenter(model: StubModel(head: (0.5, 0.5, 0.3, 0.3)), modelName: "stub", size: InputSize(width: 64, height: 64), threads: 1)
        let frame = GrayImage(width: 64, height: 64, pixels: [UInt8](repeating: 128, count: 4096))
        let r = try segmenter.segment(frame: frame, name: "noscale", scale: nil).result
        XCTAssertTrue(r.headFound)
        XCTAssertNil(r.hcMM)
        XCTAssertNil(r.gestationalAge, "no age without a pixel size")
        XCTAssertNil(r.pixelSizeMM)
        XCTAssertNil(r.hcErrorMM)
        // A circle of radius 0.3 * 64 = 19.2 px: circumference ~ 120.6 px.
        XCTAssertEqual(try XCTUnwrap(r.hcPixels), 2 * Double.pi * 19.2, accuracy: 2)
        XCTAssertEqual(r.notes, ["no pixel size given for this frame: HC in pixels only"])
    }

    /// Frames of any size, down to 1x1 and very elongated ones, segment without trapping.
    func testTinyAndOddFrames() throws {
        let segmenter = try Segmenter(model: StubModel(head: (0.5, 0.5, 0.4, 0.4)), modelName: "stub", size: InputSize(width: 64, height: 32), threads: 1)
        for (w, h) in [(1, 1), (2, 1), (7, 3), (1, 500), (3000, 2)] {
            let frame = GrayImage(width: w, height: h, pixels: [UInt8](repeating: 200, count: w * h))
            let out = try segmenter.segment(frame: frame, name: "\(w)x\(h)", scale: FrameScale(pixelSizeMM: 0.1))
            XCTAssertEqual(out.mask.pixels.count, w * h)
            XCTAssertEqual(out.overlay.pixels.count, 3 * w * h)
        }
    }

    func testSizeMustSuitTheNetwork() {
        assertSonoQuantError(try Segmenter(model: StubModel(head: nil), modelName: "stub", size: InputSize(width: 100, height: 64), threads: 1),
                             subject: "--size 100x64", contains: "multiples of 32")
    }

    func testPixelSizeTable() throws {
        let dir = try temporaryDirectory(self, "csv")
        let path = dir + "/sizes.csv"
        try writeFileAtomically(path: path, text: "filename,pixel size(mm)\nA_HC.png,0.1\r\nB_HC.png, 0.25 \n\n")
        XCTAssertEqual(try readPixelSizeTable(path: path), ["A_HC.png": FrameScale(pixelSizeMM: 0.1, source: .csv), "B_HC.png": FrameScale(pixelSizeMM: 0.25, source: .csv)])
        let table = try readPixelSizeTable(path: DeployFixtures.pixelCSV)
        XCTAssertEqual(table["000_HC.png"], FrameScale(pixelSizeMM: 0.0691358041432, referenceHCmm: 44.3, source: .csv))
        for (text, words) in [("", "no frames"), ("a.png,zero\n", "positive pixel size"), ("a.png,-1\n", "positive pixel size"),
                              ("a.png,0.1\na.png,0.2\n", "listed twice"), ("a.png,0.1,x\n", "head circumference"),
                              ("a.png,0.1,2,3\n", "expected"), ("a.png\n", "expected")] {
            try writeFileAtomically(path: path, text: "filename,pixel size\n" + text)
            assertSonoQuantError(try readPixelSizeTable(path: path), subject: path, contains: words)
        }
        assertSonoQuantError(try readPixelSizeTable(path: dir + "/absent.csv"), contains: "no such file")
    }

    func testInputsFromADirectory() throws {
        let inputs = try segmentationInputs(path: DeployFixtures.frames)
        XCTAssertEqual(inputs.count, 32)
        XCTAssertFalse(inputs.contains { $0.contains("Annotation") })
        XCTAssertEqual(inputs.first, DeployFixtures.frames + "/000_HC.png")
        XCTAssertEqual(try segmentationInputs(path: DeployFixtures.frames + "/000_HC.png"), [DeployFixtures.frames + "/000_HC.png"])
        let empty = try temporaryDirectory(self, "empty")
        assertSonoQuantError(try segmentationInputs(path: empty), subject: empty, contains: "no .png")
        assertSonoQuantError(try segmentationInputs(path: empty + "/nothing"), contains: "no such file")
    }
}
