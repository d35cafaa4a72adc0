import Deploy
import Foundation
import HC18
import ImageCodecs
import QuantEngine
import XCTest
import TestSupport

/// Bad input never crashes `segment` or the model loaders: each case gets a clear error naming the file,
/// or a documented result.
final class HardeningTests: XCTestCase {
    // MARK: - Frames

    func testBadFramesAreListedAndTheRunGoesOn() throws {
        let dir = try temporaryDirectory(self, "frames")
        let png = [UInt8](FileManager.default.contents(atPath: DeployFixtures.frames + "/002_HC.png")!)
        let jpeg = [UInt8](FileManager.default.contents(atPath: Fixtures.path("codecs/rgb.jpg"))!)
        // A PNG whose IHDR claims 20000 x 20000 pixels (valid CRC): rejected before any allocation.
        var ihdr = Array("IHDR".utf8) + bigEndian(20000) + bigEndian(20000) + [8, 0, 0, 0, 0]
        ihdr += bigEndian(crc32(ihdr))
        var idat = Array("IDAT".utf8) + [0x78, 0x9C]
        idat += bigEndian(crc32(idat))
        let huge: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + bigEndian(13) + ihdr + bigEndian(2) + idat
        let cases: [(String, [UInt8], String)] = [
            ("a_empty.png", [], "empty"),
            ("b_truncated.png", Array(png.prefix(png.count / 3)), "truncated"),
            ("c_text.jpg", Array("not an image\n".utf8), "not a png or jpeg"),
            ("d_huge.png", huge, "larger than the limit"),
            ("e_truncated.jpg", Array(jpeg.prefix(jpeg.count / 2)), "jpeg"),
        ]
        for (name, bytes, _) in cases { try writeFileAtomically(path: dir + "/" + name, bytes: bytes) }
        try writeFileAtomically(path: dir + "/z_good.png", bytes: png)
        let segmenter = try Segmenter(model: StubModel(head: (0.5, 0.5, 0.3, 0.3)), modelName: "stub", width: 64, height: 64, threads: 1)
        let out = try temporaryDirectory(self, "out")
        var lines: [String] = []
        let summary = try segmentFrames(try segmentationInputs(path: dir), with: segmenter, scale: { _ in (nil, nil) },
                                        outDirectory: out, log: { lines.append($0) })
        XCTAssertEqual(summary.frames, 6)
        XCTAssertEqual(summary.results.map { ($0.frame as NSString).lastPathComponent }, ["z_good.png"])
        XCTAssertEqual(summary.failures.count, 5)
        for ((name, _, words), failure) in zip(cases, summary.failures) {
            XCTAssertEqual(failure.frame, dir + "/" + name)
            XCTAssertTrue(failure.error.hasPrefix(dir + "/" + name + ": "), failure.error)
            XCTAssertTrue(failure.error.lowercased().contains(words), "\(failure.error) lacks \(words)")
        }
        XCTAssertEqual(lines.filter { $0.hasPrefix("error: ") }.count, 5)
        // The good frame's outputs and the summary are written.
        for file in ["z_good_mask.png", "z_good_overlay.png", "z_good.json", "summary.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), file)
        }
        XCTAssertEqual(try readGrayImage(path: out + "/z_good_mask.png").width, 800)
    }

    /// Other bit depths and colour types are converted to 8-bit gray (documented in ImageCodecs) and segment.
    func testOtherBitDepthsAndColourTypesSegment() throws {
        let segmenter = try Segmenter(model: StubModel(head: (0.5, 0.5, 0.3, 0.3)), modelName: "stub", width: 64, height: 64, threads: 1)
        for name in ["bilevel.png", "gray16.png", "gray_alpha.png", "palette.png", "rgb8.png", "rgba8.png", "rgb.jpg", "progressive.jpg"] {
            let r = try segmenter.segment(path: Fixtures.path("codecs/" + name), scale: FrameScale(pixelSizeMM: 0.1)).result
            XCTAssertEqual([r.width, r.height], [4, 3], name)
        }
    }

    func testSameNameTwiceIsRefused() throws {
        let dir = try temporaryDirectory(self, "dupes")
        let png = [UInt8](FileManager.default.contents(atPath: Fixtures.path("codecs/gray8.png"))!)
        try writeFileAtomically(path: dir + "/a.png", bytes: png)
        try writeFileAtomically(path: dir + "/a.jpg", bytes: png)
        let segmenter = try Segmenter(model: StubModel(head: nil), modelName: "stub", width: 64, height: 64, threads: 1)
        assertSonoQuantError(try segmentFrames(try segmentationInputs(path: dir), with: segmenter, scale: { _ in (nil, nil) },
                                               outDirectory: dir + "/out", log: { _ in }), contains: "same name")
    }

    // MARK: - Model files

    func loadProblem(_ bytes: [UInt8], _ label: String) -> String {
        let path = NSTemporaryDirectory() + "sonoquant-hardening-\(label)-\(getpid()).safetensors"
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
        XCTAssertTrue(loadProblem(try writer.serialized(), "dtype").contains("expected a float dtype"))
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
        XCTAssertTrue(loadProblem(try foreign.serialized(), "foreign").contains("not a float checkpoint"))
    }

    /// An int8 model whose scales are each finite and positive and pass the convolution checks, but make
    /// a concat's or an add's requantization multiplier overflow, is refused at load (it used to trap in
    /// the fixed-point multiplier's precondition).
    func testInt8ScalesThatOverflowARescaleAreRejected() throws {
        let weights = try ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())
        let base = Int8Model(quantizing: weights, ranges: [ClosedRange<Float>](repeating: -4...4, count: weights.graph.values.count), info: [:])
        let graph = base.graph
        let concatOutput = try XCTUnwrap(graph.ops.lazy.compactMap { op -> Int? in if case .concat(_, _, let o) = op { return o }; return nil }.first)
        let addOutput = try XCTUnwrap(graph.ops.lazy.compactMap { op -> Int? in if case .add(_, _, let o) = op { return o }; return nil }.first)
        for (label, value) in [("concat", concatOutput), ("add", addOutput)] {
            var activations = base.activations
            activations[value] = ActivationQuantization(scale: 1e-30, zeroPoint: 0)
            let path = NSTemporaryDirectory() + "sonoquant-hardening-int8-\(label)-\(getpid()).safetensors"
            defer { try? FileManager.default.removeItem(atPath: path) }
            try Int8Model(graph: graph, activations: activations, convs: base.convs, info: [:]).save(to: path)
            assertSonoQuantError(try loadSegmentationModel(path: path), subject: path, contains: "multiplier")
        }
    }
}

func bigEndian(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)] }

/// CRC-32 (PNG's, ISO 3309), bit by bit: only for building small test files.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
    }
    return ~crc
}
