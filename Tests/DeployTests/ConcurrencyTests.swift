import Deploy
import QuantEngine
import TestSupport
import XCTest

/// One loaded model shared by a task group of 8 frames gives exactly what 8 calls in a row give, for the
/// float and the int8 engine. The package builds in the Swift 6 language mode, so this compiles only
/// because models and `Segmenter` are `Sendable` (README "Use SonoQuant in your app").
final class ConcurrencyTests: XCTestCase {
    func testOneModelSharedByATaskGroupMatchesSequentialCalls() async throws {
        let weights = try ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())
        // Fixed ranges: not a good int8 model, but a deterministic one, which is all this test needs.
        let ranges = [ClosedRange<Float>](repeating: -8...8, count: weights.graph.values.count)
        let models: [SegmentationModel] = [FloatUNet(weights: weights), Int8UNet(model: Int8Model(quantizing: weights, ranges: ranges, metadata: ModelMetadata()))]
        let frames = (0..<8).map { Fixtures.path(String(format: "hc18/training_set/%03d_HC.png", $0)) }

        for model in models {
            let segmenter = try Segmenter(model: model, modelName: "D-all", size: InputSize(width: 192, height: 128), threads: 2)
            let sequential = try frames.map { try Outcome(segmenter.segment(path: $0, scale: nil)) }
            let concurrent = try await withThrowingTaskGroup(of: (Int, Outcome).self) { group in
                for (index, path) in frames.enumerated() {
                    group.addTask { (index, try Outcome(segmenter.segment(path: path, scale: nil))) }
                }
                var outcomes = [Outcome?](repeating: nil, count: frames.count)
                for try await (index, outcome) in group { outcomes[index] = outcome }
                return outcomes.map { $0! }
            }
            XCTAssertEqual(concurrent, sequential, model.precision.rawValue)
            XCTAssertGreaterThan(sequential.filter { $0.hcPixels != nil }.count, 0, "\(model.precision): some head found")
        }
    }
}

/// What a segmentation decides, without its timings.
private struct Outcome: Equatable {
    let hcPixels: Double?
    let mask: [UInt8]

    init(_ segmentation: FrameSegmentation) {
        hcPixels = segmentation.result.hcPixels
        mask = segmentation.mask.pixels
    }
}
