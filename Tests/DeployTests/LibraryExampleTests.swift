import Deploy
import QuantEngine
import TestSupport
import XCTest

/// README's "Use SonoQuant in your app" example, as written there (paths pointed at the fixtures), gives
/// what `segment` gives for the same frame.
final class LibraryExampleTests: XCTestCase {
    func testReadmeExample() throws {
        let modelPath = Fixtures.path("pytorch_D-all_192x128.safetensors")
        let framePath = Fixtures.path("hc18/training_set/002_HC.png")

        let model = try loadSegmentationModel(path: modelPath)   // float checkpoint or int8 model
        let segmenter = try Segmenter(model: model, modelName: "D-all", size: InputSize(width: 192, height: 128), threads: 2)
        let frame = try segmenter.segment(path: framePath, scale: FrameScale(pixelSizeMM: 0.0620))

        let hc = try XCTUnwrap(frame.result.hcMM)
        XCTAssertEqual(hc, 68.75, accuracy: 3, "002_HC's annotation says 68.75 mm")
        XCTAssertFalse(frame.result.needsReview, "\(frame.result.reviewReasons)")
        XCTAssertEqual([frame.mask.width, frame.mask.height], [frame.result.width, frame.result.height])
        // The same frame through `segmentFrames` (the CLI's path) gives the same HC.
        let out = try temporaryDirectory(self, "out")
        let summary = try segmentFrames([framePath], with: segmenter, scale: { _ in (FrameScale(pixelSizeMM: 0.0620), nil) },
                                        outDirectory: out, log: { _ in })
        XCTAssertEqual(summary.results.first?.hcMM, hc)
    }
}
