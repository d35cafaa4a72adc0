import Deploy
import Foundation
import HC18
import QuantEngine
import XCTest
import TestSupport

/// `sonoquant.hc_scale`: a model's HC factor, fitted on its training split by `sonoquant hc-scale`.
final class HCScaleTests: XCTestCase {
    /// A copy of the D-all fixture checkpoint with other metadata: same tensors, byte for byte.
    private func copy(of path: String, metadata extra: [String: String], to out: String) throws {
        let file = try SafeTensorsFile(path: path)
        var writer = SafeTensorsWriter(metadata: file.metadata.merging(extra) { _, new in new })
        writer.addTensors(of: file)
        try writer.write(to: out)
    }

    func testTheScaleMultipliesHCInEvaluateAndSegment() throws {
        let dir = try temporaryDirectory(self, "hc-scale")
        let source = Fixtures.path("pytorch_D-all_192x128.safetensors")
        let scaled = dir + "/scaled.safetensors"
        try copy(of: source, metadata: ["sonoquant.hc_scale": "0.9"], to: scaled)
        let original = try SafeTensorsFile(path: source), written = try SafeTensorsFile(path: scaled)
        XCTAssertEqual(written.names, original.names)
        for name in original.names { XCTAssertEqual(try written.tensor(name), try original.tensor(name), name) }

        let plain = DeployFixtures.dAll, model = try loadSegmentationModel(path: scaled)
        XCTAssertEqual(plain.hcScale, 1)
        XCTAssertEqual(model.hcScale, 0.9)
        let sample = try XCTUnwrap(try readPixelSizeCSV(directory: DeployFixtures.frames).first)
        let prepared = try loadSample(sample, width: 192, height: 128)
        let before = try evaluate(model: plain, prepared: [prepared], threads: 1).rows[0]
        let after = try evaluate(model: model, prepared: [prepared], threads: 1).rows[0]
        XCTAssertEqual(try XCTUnwrap(after.hcMM), try XCTUnwrap(before.hcMM) * 0.9, accuracy: 1e-9)
        XCTAssertEqual(after.dice, before.dice)

        let frame = FrameScale(pixelSizeMM: sample.pixelSizeMM)
        let segmentedBefore = try Segmenter(model: plain, modelName: "plain", size: InputSize(width: 192, height: 128), threads: 1)
            .segment(path: sample.imagePath, scale: frame).result
        let segmentedAfter = try Segmenter(model: model, modelName: "scaled", size: InputSize(width: 192, height: 128), threads: 1)
            .segment(path: sample.imagePath, scale: frame).result
        XCTAssertEqual(try XCTUnwrap(segmentedAfter.hcMM), try XCTUnwrap(segmentedBefore.hcMM) * 0.9, accuracy: 1e-9)
        XCTAssertEqual(segmentedAfter.hcPixels, segmentedBefore.hcPixels, "the ellipse and its pixels are the model's own")
        XCTAssertTrue(segmentedAfter.notes.contains { $0.contains("HC scale 0.9000") }, "\(segmentedAfter.notes)")
    }

    func testAbsurdScalesAreRefusedAtLoad() throws {
        let dir = try temporaryDirectory(self, "hc-scale-bad")
        for text in ["nan", "0", "2", "-1", "0.5", "x"] {
            let path = dir + "/bad.safetensors"
            try copy(of: Fixtures.path("pytorch_D-all_192x128.safetensors"), metadata: ["sonoquant.hc_scale": text], to: path)
            assertSonoQuantError(try loadSegmentationModel(path: path), subject: path, contains: "sonoquant.hc_scale is \"\(text)\": expected a factor in [0.8, 1.25]")
        }
        XCTAssertNil(try ModelMetadata(entries: [:], source: "x").hcScale)
        XCTAssertEqual(try ModelMetadata(entries: ["sonoquant.hc_scale": "1.012"], source: "x").hcScale, 1.012)
    }

    /// The writer runs the loader's check: an int8 model whose factor the loader would refuse is never written.
    func testAnInt8ModelWithAnAbsurdScaleIsNotWritten() throws {
        let dir = try temporaryDirectory(self, "hc-scale-int8")
        var model = try Int8Model(file: SafeTensorsFile(path: Fixtures.packageRoot + "/models/D-all.int8.safetensors"))
        model.metadata.hcScale = 3
        assertSonoQuantError(try model.save(to: dir + "/m.safetensors"), subject: dir + "/m.safetensors",
                             contains: "sonoquant.hc_scale would be 3.0: expected a factor in [0.8, 1.25]")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/m.safetensors"))
        model.metadata.hcScale = 0.99
        try model.save(to: dir + "/m.safetensors")
        XCTAssertEqual(try loadSegmentationModel(path: dir + "/m.safetensors").hcScale, 0.99)
    }
}
