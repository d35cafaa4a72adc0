import Deploy
import QuantEngine
import TestSupport
import XCTest

/// Model files record the size they were trained or calibrated at (`sonoquant.size`); the tools run at it
/// by default, and an int8 model refuses another size unless allowed.
final class InputSizeTests: XCTestCase {
    static let weights = try! ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())
    static let ranges = [ClosedRange<Float>](repeating: -8...8, count: weights.graph.values.count)

    func testParsing() {
        XCTAssertEqual(InputSize("192x128"), InputSize(width: 192, height: 128))
        XCTAssertEqual(InputSize("256X160")?.description, "256x160")
        for bad in ["192", "192x", "x128", "0x128", "-32x32", "192x128x1", "ax b"] { XCTAssertNil(InputSize(bad), bad) }
    }

    func testFloatCheckpointWithoutASizeNeedsOne() throws {
        // The PyTorch checkpoint records no size: a size must be given, and any valid one is taken.
        let model = try loadSegmentationModel(path: Fixtures.path("pytorch_D-all_192x128.safetensors"))
        XCTAssertNil(model.inputSize)
        assertSonoQuantError(try model.inputSize(requested: nil, subject: "m"), subject: "m", contains: "records no input size")
        XCTAssertEqual(try model.inputSize(requested: InputSize(width: 256, height: 160), subject: "m"), InputSize(width: 256, height: 160))
        assertSonoQuantError(try model.inputSize(requested: InputSize(width: 100, height: 64), subject: "m"), subject: "--size 100x64", contains: "multiples of 32")
    }

    func testFloatCheckpointWrittenWithASizeRunsAtIt() throws {
        let path = try temporaryDirectory(self, "sized") + "/model.safetensors"
        var sized = ModelMetadata()
        sized.size = InputSize(width: 224, height: 160)
        try Self.weights.save(to: path, halfPrecision: true, metadata: sized)
        let model = try loadSegmentationModel(path: path)
        XCTAssertEqual(model.inputSize, InputSize(width: 224, height: 160))
        let segmenter = try Segmenter(model: model, modelName: path, threads: 1)
        XCTAssertEqual([segmenter.width, segmenter.height], [224, 160])
        // A float model may run at another size (it has no calibrated ranges).
        XCTAssertEqual(try Segmenter(model: model, modelName: path, size: InputSize(width: 192, height: 128), threads: 1).width, 192)

        // A size that does not parse (written raw, as a damaged file would carry it) is refused at load.
        let file = try SafeTensorsFile(path: path)
        var damaged = SafeTensorsWriter(metadata: file.metadata.merging(["sonoquant.size": "224 by 160"]) { _, new in new })
        damaged.addTensors(of: file)
        try damaged.write(to: path)
        assertSonoQuantError(try loadSegmentationModel(path: path), subject: path, contains: "expected WxH")
    }

    func testInt8ModelRefusesAnotherSizeUnlessAllowed() throws {
        let path = try temporaryDirectory(self, "int8") + "/model.int8.safetensors"
        var calibrated = ModelMetadata()
        calibrated.size = InputSize(width: 192, height: 128)
        try Int8Model(quantizing: Self.weights, ranges: Self.ranges, metadata: calibrated).save(to: path)
        let model = try loadSegmentationModel(path: path)
        XCTAssertEqual(model.inputSize, InputSize(width: 192, height: 128))
        XCTAssertEqual(try Segmenter(model: model, modelName: path, threads: 1).height, 128)
        assertSonoQuantError(try Segmenter(model: model, modelName: path, size: InputSize(width: 256, height: 160), threads: 1),
                             subject: path, contains: "calibrated at 192x128, asked to run at 256x160")
        let allowed = try Segmenter(model: model, modelName: path, size: InputSize(width: 256, height: 160), threads: 1, allowingOtherSize: true)
        XCTAssertEqual([allowed.width, allowed.height], [256, 160])
    }

    func testInt8ModelsWrittenBeforeTheSizeKeyGiveItFromTheirInputDescription() {
        var before = ModelMetadata()
        before.input = #"{"width":256,"height":160,"channels":1}"#
        let old = Int8Model(quantizing: Self.weights, ranges: Self.ranges, metadata: before)
        XCTAssertEqual(old.calibrationSize, InputSize(width: 256, height: 160))
        XCTAssertNil(Int8Model(quantizing: Self.weights, ranges: Self.ranges, metadata: ModelMetadata()).calibrationSize)
    }
}
