import Foundation
import XCTest
import Calibrate
import QuantEngine
import TestSupport

/// The baseline U-Net (31M parameters) through calibration and the int8 engine, at 48x32 so that the
/// scalar reference stays fast: formula weights (`ModelWeights.synthetic`), built and quantized once.
final class BaselineCalibrationTests: XCTestCase {
    static let (width, height) = (48, 32)
    static let weights = ModelWeights.synthetic(graph: .unetBaseline())
    static let float = FloatUNet(weights: weights)

    /// Two frames: a real one (the PyTorch fixture's input) and a smooth synthetic pattern.
    static let frames: [[Float]] = {
        let input = try! SafeTensorsFile(path: Fixtures.path("forward_baseline.safetensors")).tensor("input_48x32")
        let real = Array(input.data[0..<(width * height)])
        let pattern = (0..<(width * height)).map { i -> Float in
            let (x, y) = (Float(i % width), Float(i / width))
            return 0.5 + 0.4 * sin(x / 5) * cos(y / 7)
        }
        return [real, pattern]
    }()

    static let model: Int8Model = {
        let statistics = try! collectStatistics(model: float, frames: frames, width: width, height: height, threads: 2)
        return quantize(weights: weights, statistics: statistics, settings: CalibrationSettings(observer: .minmax, width: width, height: height),
                        provenance: try! ModelMetadata(entries: ["sonoquant.source_checkpoint": "formula weights", "sonoquant.strategy": "none"], source: "test"))
    }()
    static let net = Int8UNet(model: model)

    static func bytes(_ frame: [Float]) -> [UInt8] { frame.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) } }

    func testEngineMatchesScalarReferenceBitForBit() throws {
        let frame = Self.bytes(Self.frames[0])
        let reference = try Self.net.referenceQuantizedLogits(frame: frame, width: Self.width, height: Self.height)
        for threads in [1, 2, 3] {
            XCTAssertEqual(try Self.net.quantizedLogits(frame: frame, width: Self.width, height: Self.height, threads: threads), reference, "threads \(threads)")
        }
        XCTAssertGreaterThan(Set(reference).count, 50, "logits should vary over the frame")
    }

    func testMaxPoolOutputsShareTheirInputsQuantization() {
        let graph = Self.model.graph
        var pools = 0
        for op in graph.ops {
            guard case .maxPool2x2(let i, let o) = op else { continue }
            XCTAssertEqual(Self.model.activations[o], Self.model.activations[i])
            pools += 1
        }
        XCTAssertEqual(pools, 4)
        XCTAssertEqual(graph.architecture, .unetBaseline)
        XCTAssertEqual(graph.inputChannels, 1)
    }

    func testInt8LogitsTrackFloat() throws {
        for (index, frame) in Self.frames.enumerated() {
            let bytes = Self.bytes(frame)
            let input = Tensor(shape: [1, 1, Self.height, Self.width], data: bytes.map { Float($0) / 255 })
            let float = try Self.float.logits(for: input, threads: 2)
            let int8 = try Self.net.logits(for: input, threads: 2)
            let meanFloat = float.data.reduce(0, +) / Float(float.count)
            var spread: Float = 0, meanError: Float = 0
            for i in 0..<float.count {
                spread += abs(float.data[i] - meanFloat)
                meanError += abs(int8.data[i] - float.data[i])
            }
            spread /= Float(float.count); meanError /= Float(float.count)
            print("baseline int8 vs float, frame \(index): mean |error| \(meanError), mean |logit - mean| \(spread), max |float| \(float.maxAbs), max |error| \(int8.maxAbsDifference(float))")
            XCTAssertGreaterThan(spread, 1, "float logits should vary")
            XCTAssertLessThan(meanError, 0.1 * spread, "frame \(index)")
        }
    }

    func testSaveLoadRoundTripAndRejectsUntiedMaxPool() throws {
        let directory = try temporaryDirectory(self, "baseline-int8")
        let path = directory + "/baseline.int8.safetensors"
        try Self.model.save(to: path)
        let loaded = try loadSegmentationModel(path: path)
        XCTAssertEqual(loaded.precision, .int8)
        XCTAssertEqual(loaded.graph.architecture, .unetBaseline)
        XCTAssertEqual((loaded as! Int8UNet).model, Self.model)
        // Size: the int8 weights are about a quarter of the float32 parameters.
        let bytes = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let float32Bytes = ModelGraph.unetBaseline().expectedTensorShapes.reduce(0) { $0 + 4 * $1.shape.reduce(1, *) }
        print("baseline int8 file \(bytes) bytes, float32 parameters \(float32Bytes) bytes")
        XCTAssertLessThanOrEqual(Double(bytes) / Double(float32Bytes), 0.26)

        var untied = Self.model
        let pool = untied.graph.ops.compactMap { op -> Int? in if case .maxPool2x2(_, let o) = op { return o } else { return nil } }[0]
        untied.activations[pool].scale *= 2
        let badPath = directory + "/untied.int8.safetensors"
        try untied.save(to: badPath)
        assertSonoQuantError(try Int8Model(loading: badPath), subject: badPath, contains: "max-pool")
    }
}
