import Foundation
import XCTest
import QuantEngine
import TestSupport

/// The baseline U-Net (`ModelGraph.unetBaseline`) in the float engine against PyTorch: the module of
/// scripts/peers/unet_baseline.py with its formula weights (`ModelWeights.synthetic`, computed the same
/// way on both sides), logits of fixtures/forward_baseline.safetensors.
final class BaselineForwardTests: XCTestCase {
    /// 31M parameters: built once for the class.
    static let weights = ModelWeights.synthetic(graph: .unetBaseline())
    static let model = FloatUNet(weights: weights)
    static let fixture = try! SafeTensorsFile(path: Fixtures.path("forward_baseline.safetensors"))

    func testStateDictNamesAndShapesEqualTheGraph() throws {
        // The fixture records PyTorch's state dict (without num_batches_tracked) in order, as name:shape.
        let recorded = Self.fixture.metadata["state_dict"]!.split(separator: ";").map(String.init)
        let expected = ModelGraph.unetBaseline().expectedTensorShapes.map { "\($0.name):" + $0.shape.map(String.init).joined(separator: "x") }
        XCTAssertEqual(recorded, expected)
        XCTAssertEqual(Self.fixture.metadata["parameters"], "31037633")
    }

    func testMatchesPyTorchRGBAndGray() throws {
        for size in ["48x32", "32x64"] {
            let input = try Self.fixture.tensor("input_\(size)")
            let expected = try Self.fixture.tensor("logits_\(size)")
            XCTAssertGreaterThan(expected.maxAbs, 5, "the fixture's logits should not be flat")
            let rgb = try Self.model.logits(for: input, threads: 2)
            let tolerance = 1e-3 * (1 + expected.maxAbs)
            XCTAssertEqual(rgb.shape, expected.shape)
            XCTAssertLessThanOrEqual(rgb.maxAbsDifference(expected), tolerance, "RGB \(size)")
            let plane = input.shape[2] * input.shape[3]
            let gray = Tensor(shape: [1, 1, input.shape[2], input.shape[3]], data: Array(input.data[0..<plane]))
            let grayLogits = try Self.model.logits(for: gray, threads: 1)
            XCTAssertLessThanOrEqual(grayLogits.maxAbsDifference(expected), tolerance, "gray \(size)")
        }
    }

    func testSizesMustBeMultiplesOf16() {
        XCTAssertThrowsError(try Self.model.logits(for: Tensor(zeros: [1, 1, 40, 32]), threads: 1)) { error in
            XCTAssertTrue(String(describing: error).contains("multiples of 16"), "\(error)")
        }
    }

    func testLoadsThroughArchitectureDetection() throws {
        // A tiny checkpoint with only baseline names is recognised as unet-baseline: the error is about
        // the baseline's missing tensors, not another architecture's.
        var writer = SafeTensorsWriter()
        writer.add("enc.0.0.weight", try XCTUnwrap(Self.weights.tensors["enc.0.0.weight"]))
        let path = NSTemporaryDirectory() + "sonoquant-baseline-partial-\(getpid()).safetensors"
        try writer.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try loadSegmentationModel(path: path)) { error in
            XCTAssertTrue(String(describing: error).contains("missing tensor enc.0.1.weight"), "\(error)")
            XCTAssertTrue(String(describing: error).contains("unet-baseline"), "\(error)")
        }
        XCTAssertEqual(ModelGraph.architecture(of: try SafeTensorsFile(path: path)), .unetBaseline)
    }
}
