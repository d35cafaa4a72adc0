import Deploy
import Foundation
import ImageCodecs
import QuantEngine
import TestSupport
import XCTest

/// The failures an app embedding the deploy path meets, each with the kind it can switch on and the
/// one-line message the CLI prints.
final class ErrorKindTests: XCTestCase {
    func testModelFileFailures() throws {
        let directory = try temporaryDirectory(self, "kinds")
        let missing = directory + "/absent.safetensors"
        assertSonoQuantError(try loadSegmentationModel(path: missing), subject: missing, contains: "file not found", kind: .fileNotFound)
        assertSonoQuantError(try loadSegmentationModel(path: directory), subject: directory, contains: "is a directory", kind: .unreadable)

        let text = directory + "/notes.safetensors"
        try Data("these are notes, not a model".utf8).write(to: URL(fileURLWithPath: text))
        assertSonoQuantError(try loadSegmentationModel(path: text), subject: text, contains: "not a safetensors file", kind: .notAModel)

        assertSonoQuantError(try loadSegmentationModel(path: Fixtures.path("mobilenet_v2_imagenet_f16.safetensors")),
                             contains: "encoder-only", kind: .notAModel)

        // One NaN weight in an otherwise valid checkpoint.
        var weights = try ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())
        let name = weights.tensors.keys.sorted().first { $0.hasSuffix(".weight") }!
        weights.tensors[name]!.data[0] = .nan
        let corrupt = directory + "/nan.safetensors"
        try weights.save(to: corrupt)
        assertSonoQuantError(try loadSegmentationModel(path: corrupt), subject: corrupt, contains: "holds nan", kind: .corruptModel)

        var truncated = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("pytorch_D-all_192x128.safetensors"))))
        truncated.removeLast(1000)
        let cut = directory + "/cut.safetensors"
        try Data(truncated).write(to: URL(fileURLWithPath: cut))
        assertSonoQuantError(try loadSegmentationModel(path: cut), subject: cut, contains: "outside", kind: .corruptModel)
    }

    func testFrameAndSizeFailures() throws {
        let directory = try temporaryDirectory(self, "kinds")
        let frame = directory + "/frame.png"
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]).write(to: URL(fileURLWithPath: frame))
        assertSonoQuantError(try readGrayImage(path: frame), subject: frame, contains: "PNG", kind: .badImage)
        assertSonoQuantError(try readGrayImage(path: directory + "/absent.png"), contains: "no such file", kind: .fileNotFound)

        let model = StubModel(head: nil)
        assertSonoQuantError(try Segmenter(model: model, modelName: "stub", threads: 1), contains: "records no input size", kind: .badInputSize)
        assertSonoQuantError(try Segmenter(model: model, modelName: "stub", size: InputSize(width: 100, height: 64), threads: 1),
                             contains: "multiples of 32", kind: .badInputSize)
        assertSonoQuantError(try DeployFixtures.dAll.logits(for: Tensor(shape: [0, 1, 64, 64], data: []), threads: 1),
                             contains: "batch size is 0", kind: .badInput)
    }
}
