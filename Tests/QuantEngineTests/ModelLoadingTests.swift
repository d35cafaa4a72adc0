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
        XCTAssertTrue(loadProblem(try writer.serialized(), "unknown-arch").contains("sonoquant.architecture is \"unet-resnet34\": unknown architecture"))
        // A MobileNetV2 U-Net checkpoint is not a baseline one.
        let dAll = try SafeTensorsFile(path: Fixtures.path("pytorch_D-all_192x128.safetensors"))
        assertSonoQuantError(try ModelWeights(file: dAll, graph: .unetBaseline()), contains: "is a unet-mobilenet_v2 checkpoint, not unet-baseline")
        XCTAssertEqual(try ModelGraph.of(dAll).architecture, .mobileNetV2UNet)
        // A directory is not a model file.
        assertSonoQuantError(try loadSegmentationModel(path: NSTemporaryDirectory()), contains: "is a directory")
    }

    func testMissingFile() {
        XCTAssertThrowsError(try loadSegmentationModel(path: "/nonexistent/model.safetensors")) { error in
            XCTAssertEqual(error as? SonoQuantError, SonoQuantError("/nonexistent/model.safetensors", "file not found", kind: .fileNotFound))
        }
    }

    /// safetensors bytes with a hand-written header (to make what a writer never would).
    func rawSafeTensors(_ header: String, dataBytes: Int) -> [UInt8] {
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        return bytes + Array(header.utf8) + [UInt8](repeating: 0, count: dataBytes)
    }

    func testBadModelFiles() throws {
        XCTAssertTrue(loadProblem([], "empty").contains("shorter than the 8-byte header"))
        // Overlapping tensors (one tensor's bytes aliased as another's).
        let overlap = #"{"encoder.features.0.0.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        XCTAssertTrue(loadProblem(rawSafeTensors(overlap, dataBytes: 12), "overlap").contains("overlap"))
        // An integer tensor where a float weight belongs.
        var writer = SafeTensorsWriter()
        writer.add("encoder.features.0.0.weight", int8: [Int8](repeating: 1, count: 864), shape: [32, 3, 3, 3])
        XCTAssertTrue(loadProblem(try writer.serialized(), "int-dtype").contains("expected a float dtype"))
        // Unknown dtype, negative and fractional dimensions, offsets past the end.
        for (label, header, words) in [
            ("dtype", #"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, "unsupported or missing dtype"),
            ("negative", #"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#, "bad dimension"),
            ("fraction", #"{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}"#, "bad dimension"),
            ("past-end", #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#, "outside the"),
            ("huge-shape", #"{"a":{"dtype":"F64","shape":[1048576,1048576,1048576],"data_offsets":[0,1]}}"#, "too large"),
        ] {
            XCTAssertTrue(loadProblem(rawSafeTensors(header, dataBytes: 1), label).contains(words), "\(label): \(loadProblem(rawSafeTensors(header, dataBytes: 1), label))")
        }
        // Foreign metadata: another tool's format tag.
        var foreign = SafeTensorsWriter(metadata: ["sonoquant.format": "lora-adapter"])
        foreign.add("encoder.features.0.0.weight", floats: [Float](repeating: 0, count: 864), shape: [32, 3, 3, 3])
        XCTAssertTrue(loadProblem(try foreign.serialized(), "foreign-format").contains("not a float checkpoint"))
    }

    /// An int8 model whose scales are each finite and positive and pass the convolution checks, but make
    /// a concat's or an add's requantization multiplier overflow, is refused at load (it used to trap in
    /// the fixed-point multiplier's precondition).
    func testInt8ScalesThatOverflowARescaleAreRejected() throws {
        let weights = try ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())
        let base = Int8Model(quantizing: weights, ranges: [ClosedRange<Float>](repeating: -4...4, count: weights.graph.values.count), metadata: ModelMetadata())
        let graph = base.graph
        let concatOutput = try XCTUnwrap(graph.ops.lazy.compactMap { op -> Int? in if case .concat(_, _, let o) = op { return o }; return nil }.first)
        let addOutput = try XCTUnwrap(graph.ops.lazy.compactMap { op -> Int? in if case .add(_, _, let o) = op { return o }; return nil }.first)
        for (label, value) in [("concat", concatOutput), ("add", addOutput)] {
            var activations = base.activations
            activations[value] = ActivationQuantization(scale: 1e-30, zeroPoint: 0)
            let path = NSTemporaryDirectory() + "sonoquant-int8-rescale-\(label)-\(getpid()).safetensors"
            defer { try? FileManager.default.removeItem(atPath: path) }
            // The writer runs the loader's checks: nothing is written.
            assertSonoQuantError(try Int8Model(graph: graph, activations: activations, convs: base.convs, metadata: ModelMetadata()).save(to: path),
                                 subject: path, contains: "multiplier")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        }
    }

    /// A float checkpoint with one NaN or Inf weight, or a negative BatchNorm variance, is refused at load with
    /// the tensor named (it used to run through as "no head found", and to trap in calibrate's histograms).
    func testNonFiniteWeightsAndNegativeVarianceAreRejected() throws {
        let weights = try ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())
        func checkpoint(_ change: (inout [String: Tensor]) -> Void) throws -> [UInt8] {
            var tensors = weights.tensors
            change(&tensors)
            var writer = SafeTensorsWriter()
            for name in tensors.keys.sorted() { writer.add(name, floats: tensors[name]!.data, shape: tensors[name]!.shape) }
            return try writer.serialized()
        }
        for (label, value) in [("nan", Float.nan), ("inf", -Float.infinity)] {
            let bytes = try checkpoint { $0["decoder.blocks.2.conv1.0.weight"]!.data[5] = value }
            XCTAssertEqual(loadProblem(bytes, label),
                           "tensor decoder.blocks.2.conv1.0.weight (shape [64, 152, 3, 3]) holds \(value) at index 5: a corrupt or diverged checkpoint")
        }
        let negative = try checkpoint { $0["decoder.blocks.1.conv2.1.running_var"]!.data[3] = -1 }
        XCTAssertEqual(loadProblem(negative, "negvar"), "tensor decoder.blocks.1.conv2.1.running_var holds a negative variance (-1.0 at index 3): a corrupt checkpoint")
        XCTAssertEqual(loadProblem(try checkpoint { _ in }, "intact"), "loaded")
    }

    /// A weight scale so small that the layer's multiplier rounds every sum to 0 would give a constant output
    /// (a plausible "no head found"): refused at load and by the writer.
    func testDegenerateInt8ScalesAreRejected() throws {
        let weights = try ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())
        let base = Int8Model(quantizing: weights, ranges: [ClosedRange<Float>](repeating: -4...4, count: weights.graph.values.count), metadata: ModelMetadata())
        var convs = base.convs
        let head = try XCTUnwrap(convs["segmentation_head.0"])
        convs["segmentation_head.0"] = Int8ConvWeights(weights: head.weights, bias: head.bias, weightScales: head.weightScales.map { _ in 1e-30 })
        let path = NSTemporaryDirectory() + "sonoquant-int8-degenerate-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        assertSonoQuantError(try Int8Model(graph: base.graph, activations: base.activations, convs: convs, metadata: ModelMetadata()).save(to: path),
                             subject: path, contains: "below 2^-32")
        var output = base.activations
        output[base.graph.output] = ActivationQuantization(scale: 1e30, zeroPoint: 0)
        assertSonoQuantError(try Int8Model(graph: base.graph, activations: output, convs: base.convs, metadata: ModelMetadata()).save(to: path),
                             subject: path, contains: "below 2^-32")
        // A bias at the int32 limit would overflow the accumulator: refused.
        var biased = base.convs
        biased["segmentation_head.0"] = Int8ConvWeights(weights: head.weights, bias: [Int32.max - 10], weightScales: head.weightScales)
        assertSonoQuantError(try Int8Model(graph: base.graph, activations: base.activations, convs: biased, metadata: ModelMetadata()).save(to: path),
                             subject: path, contains: "can overflow its int32 accumulator")
        // A constant activation gets a usable scale (1e-3 / 255), not one whose multipliers overflow.
        XCTAssertEqual(ActivationQuantization(min: 0, max: 0).scale, 1e-3 / 255)
    }

    /// An absurd frame size is refused before anything is allocated, from the machine's memory.
    func testFrameSizeBeyondMemoryIsRefused() {
        let graph = ModelGraph.mobileNetV2UNet()
        XCTAssertNoThrow(try graph.checkFrameSize(width: 192, height: 128, subject: "--size 192x128"))
        XCTAssertNoThrow(try graph.checkFrameSize(width: 800, height: 544, subject: "--size 800x544"))
        assertSonoQuantError(try graph.checkFrameSize(width: 100_000, height: 100_000, subject: "--size 100000x100000"),
                             subject: "--size 100000x100000", contains: "more than half of this machine's")
        XCTAssertLessThan(graph.activationBytes(width: 192, height: 128), 1e8)
    }
}
