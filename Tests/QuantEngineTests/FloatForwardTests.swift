import XCTest
import QuantEngine
import TestSupport

/// The float engine against PyTorch: logits of segmentation_models_pytorch's U-Net on the same weights
/// and inputs, to max |logit - reference| <= 1e-3 * (1 + max |reference|).
final class FloatForwardTests: XCTestCase {
    func assertMatches(_ logits: Tensor, _ reference: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(logits.shape, reference.shape, what, file: file, line: line)
        guard logits.shape == reference.shape else { return }
        let error = logits.maxAbsDifference(reference)
        let tolerance = 1e-3 * (1 + reference.maxAbs)
        XCTAssertLessThanOrEqual(error, tolerance, "\(what): max |logit - PyTorch| = \(error), tolerance \(tolerance)", file: file, line: line)
    }

    func testTrainedModelMatchesPyTorchAtThreeSizes() throws {
        let reference = try SafeTensorsFile(path: Fixtures.path("forward_dall.safetensors"))
        let model = Fixtures.dAllModel
        for size in ["192x128", "160x96", "64x64"] {
            let input = try reference.tensor("input_\(size)")
            let expected = try reference.tensor("logits_\(size)")
            assertMatches(try model.logits(for: input, threads: 2), expected, "RGB \(size)")
            // The gray path: channel 0 only, first conv's RGB weights summed.
            let plane = input.shape[2] * input.shape[3]
            let gray = Tensor(shape: [1, 1, input.shape[2], input.shape[3]], data: Array(input.data[0..<plane]))
            assertMatches(try model.logits(for: gray, threads: 1), expected, "gray \(size)")
        }
    }

    func testBatchOfTwoEqualsTwoSingleFrames() throws {
        let reference = try SafeTensorsFile(path: Fixtures.path("forward_dall.safetensors"))
        let a = try reference.tensor("input_64x64")
        var b = a
        b.data = b.data.reversed()
        let batch = Tensor(shape: [2, 3, 64, 64], data: a.data + b.data)
        let model = Fixtures.dAllModel
        let both = try model.logits(for: batch, threads: 2)
        let first = try model.logits(for: a, threads: 2), second = try model.logits(for: b, threads: 2)
        XCTAssertEqual(both.shape, [2, 1, 64, 64])
        XCTAssertTrue(both.data == first.data + second.data, "a batch must give each frame's logits exactly")
    }

    func testThreadCountDoesNotChangeTheResult() throws {
        let input = try SafeTensorsFile(path: Fixtures.path("forward_dall.safetensors")).tensor("input_160x96")
        let one = try Fixtures.dAllModel.logits(for: input, threads: 1)
        let three = try Fixtures.dAllModel.logits(for: input, threads: 3)
        XCTAssertTrue(one == three, "1 and 3 threads differ by up to \(one.maxAbsDifference(three))")
        // And a repeated call (the arena reused) gives the same bits.
        XCTAssertTrue(one == (try Fixtures.dAllModel.logits(for: input, threads: 1)), "a second call differs")
    }

    func testRandomWeightsMatchPyTorch() throws {
        let weightsPath = try Fixtures.shared("reference/unet_random_seed1.safetensors")
        let model = try loadSegmentationModel(path: weightsPath)
        let reference = try SafeTensorsFile(path: Fixtures.path("forward_random.safetensors"))
        assertMatches(try model.logits(for: try reference.tensor("input"), threads: 2), try reference.tensor("logits"), "random weights")
    }

    func testObserveSeesEveryValueInOrder() throws {
        let model = Fixtures.dAllModel
        let input = Tensor(zeros: [1, 1, 32, 64])
        var seen: [Int] = []
        var shapes: [Int: [Int]] = [:]
        let logits = try model.run(input, threads: 1) { value, tensor in
            seen.append(value)
            shapes[value] = tensor.shape
        }
        XCTAssertEqual(seen, Array(0..<model.graph.values.count))
        XCTAssertEqual(shapes[0], [1, 1, 32, 64])
        XCTAssertEqual(shapes[model.graph.output], logits.shape)
        XCTAssertEqual(shapes[model.graph.values.count - 2], [1, 16, 32, 64])
    }

    func testWrongInputShapesAreNamed() {
        let model = Fixtures.dAllModel
        func problem(_ shape: [Int]) -> String {
            do { _ = try model.logits(for: Tensor(zeros: shape), threads: 1); return "no error" } catch let e as SonoQuantError { return e.problem } catch { return "\(error)" }
        }
        XCTAssertTrue(problem([1, 3, 100, 64]).contains("multiples of 32"), problem([1, 3, 100, 64]))
        XCTAssertTrue(problem([1, 3, 0, 64]).contains("multiples of 32"))
        XCTAssertTrue(problem([1, 2, 64, 64]).contains("2 channels"), problem([1, 2, 64, 64]))
        XCTAssertTrue(problem([3, 64, 64]).contains("4 dimensions"))
        XCTAssertTrue(problem([0, 3, 64, 64]).contains("batch size"))
    }
}
