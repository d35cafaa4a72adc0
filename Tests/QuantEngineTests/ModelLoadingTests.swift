import Foundation
import XCTest
import QuantEngine
import TestSupport

/// Loading a model file that is damaged or not a model gives a SonoQuantError naming the file and the problem.
final class ModelLoadingTests: XCTestCase {
    /// The problem text of the error loading these bytes as a model, or "loaded".
    func loadProblem(_ bytes: [UInt8], _ label: String) -> String {
        let path = NSTemporaryDirectory() + "sonoquant-\(label)-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            try writeFileAtomically(path: path, bytes: bytes)
            _ = try loadSegmentationModel(path: path)
            return "loaded"
        } catch let error as SonoQuantError {
            XCTAssertEqual(error.subject, path, "the error must name the file")
            return error.problem
        } catch {
            return "unexpected error \(error)"
        }
    }

    func smallFile() throws -> [UInt8] {
        var writer = SafeTensorsWriter()
        writer.add("encoder.features.0.0.weight", floats: [Float](repeating: 0.5, count: 32 * 3 * 9), shape: [32, 3, 3, 3])
        return try writer.serialized()
    }

    func testTruncatedFile() throws {
        let bytes = try smallFile()
        XCTAssertTrue(loadProblem(Array(bytes.prefix(bytes.count - 10)), "truncated").contains("outside the"), "data cut short")
        XCTAssertTrue(loadProblem(Array(bytes.prefix(5)), "tiny").contains("shorter than the 8-byte header"))
        XCTAssertTrue(loadProblem(Array(bytes.prefix(20)), "cut-header").contains("truncated"))
    }

    func testBadHeader() throws {
        var bytes = try smallFile()
        bytes[8] = UInt8(ascii: "!")
        XCTAssertTrue(loadProblem(bytes, "bad-json").contains("not valid JSON"))
        var huge = try smallFile()
        huge[6] = 0xFF  // header length of petabytes
        XCTAssertTrue(loadProblem(huge, "huge-header").contains("header length"))
    }

    func testBadOffsets() throws {
        let header = #"{"encoder.features.0.0.weight":{"dtype":"F32","shape":[32,3,3,3],"data_offsets":[0,400]}}"#
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += Array(header.utf8) + [UInt8](repeating: 0, count: 400)
        XCTAssertTrue(loadProblem(bytes, "bad-offsets").contains("needs 3456"), loadProblem(bytes, "bad-offsets"))
    }

    func testWrongShape() throws {
        var writer = SafeTensorsWriter()
        let model = Fixtures.path("pytorch_D-all_192x128.safetensors")
        let file = try SafeTensorsFile(path: model)
        for name in file.names where name != "decoder.blocks.0.conv1.0.weight" { writer.add(name, try file.tensor(name)) }
        writer.add("decoder.blocks.0.conv1.0.weight", floats: [Float](repeating: 0, count: 256 * 1376 * 3), shape: [256, 1376, 3, 1])
        XCTAssertTrue(loadProblem(try writer.serialized(), "wrong-shape").contains("decoder.blocks.0.conv1.0.weight has shape [256, 1376, 3, 1], expected [256, 1376, 3, 3]"))
    }

    func testEncoderOnlyFileIsNotACheckpoint() throws {
        var writer = SafeTensorsWriter()
        writer.add("features.0.0.weight", floats: [Float](repeating: 0, count: 864), shape: [32, 3, 3, 3])
        XCTAssertTrue(loadProblem(try writer.serialized(), "encoder-only").contains("encoder-only"))
    }

    func testForeignFile() throws {
        var writer = SafeTensorsWriter()
        writer.add("model.fc.weight", floats: [1, 2], shape: [2])
        XCTAssertTrue(loadProblem(try writer.serialized(), "foreign").contains("no tensor of a known architecture"))
        XCTAssertTrue(loadProblem(try smallFile(), "incomplete").contains("missing tensor"))
    }

    func testArchitectureIsDetectedAndChecked() throws {
        // Metadata naming an architecture this build does not know.
        var writer = SafeTensorsWriter(metadata: ["sonoquant.architecture": "unet-resnet34"])
        writer.add("encoder.conv1.weight", floats: [1, 2], shape: [2])
        XCTAssertTrue(loadProblem(try writer.serialized(), "unknown-arch").contains("unknown architecture \"unet-resnet34\""))
        // A MobileNetV2 U-Net checkpoint is not a baseline one.
        let dAll = try SafeTensorsFile(path: Fixtures.path("pytorch_D-all_192x128.safetensors"))
        assertSonoQuantError(try ModelWeights(file: dAll, graph: .unetBaseline()), contains: "is a unet-mobilenet_v2 checkpoint, not unet-baseline")
        XCTAssertEqual(try ModelGraph.of(dAll).architecture, "unet-mobilenet_v2")
        // A directory is not a model file.
        assertSonoQuantError(try loadSegmentationModel(path: NSTemporaryDirectory()), contains: "is a directory")
    }

    func testMissingFile() {
        XCTAssertThrowsError(try loadSegmentationModel(path: "/nonexistent/model.safetensors")) { error in
            XCTAssertEqual(error as? SonoQuantError, SonoQuantError("/nonexistent/model.safetensors", "file not found"))
        }
    }
}
