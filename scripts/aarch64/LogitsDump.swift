// logits-dump: writes a model's logits on the repository's fixture frames as raw little-endian float32,
// so that two machines (x86-64 and aarch64) can be compared byte for byte. Used by scripts/aarch64-check.sh,
// which builds it in a small package together with QuantEngine, ImageCodecs and HC18.
//
//   logits-dump MODEL FIXTURES_DIR OUT_FILE [THREADS]
//
// Frames: every fixtures/hc18/training_set/*_HC.png (gray, squashed to 192x128 with HC18's bilinear resize,
// /255), then the three PyTorch-reference inputs of fixtures/forward_dall.safetensors (first channel, so gray).
// OUT_FILE gets the logits of all frames one after another; OUT_FILE.txt lists frame, shape and an FNV-1a
// hash per frame, for a readable diff.
import Foundation
import HC18
import ImageCodecs
import QuantEngine

func fnv1a(_ values: [Float]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for v in values {
        var bits = v.bitPattern.littleEndian
        for _ in 0..<4 { hash = (hash ^ UInt64(bits & 0xFF)) &* 0x100_0000_01b3; bits >>= 8 }
    }
    return hash
}

let arguments = CommandLine.arguments
guard arguments.count >= 4 else {
    FileHandle.standardError.write(Data("usage: logits-dump MODEL FIXTURES_DIR OUT_FILE [THREADS]\n".utf8))
    exit(2)
}
let (modelPath, fixtures, outPath) = (arguments[1], arguments[2], arguments[3])
let threads = arguments.count > 4 ? Int(arguments[4]) ?? 1 : 1

do {
    let model = try loadSegmentationModel(path: modelPath)
    var inputs: [(name: String, tensor: Tensor)] = []
    let framesDir = fixtures + "/hc18/training_set"
    let frames = try FileManager.default.contentsOfDirectory(atPath: framesDir)
        .filter { $0.hasSuffix("HC.png") }.sorted()
    for frame in frames {
        let image = resizeBilinear(try readGrayImage(path: framesDir + "/" + frame), width: 192, height: 128)
        inputs.append((frame, Tensor(shape: [1, 1, 128, 192], data: image.pixels.map { Float($0) / 255 })))
    }
    let reference = try SafeTensorsFile(path: fixtures + "/forward_dall.safetensors")
    for name in reference.names where name.hasPrefix("input_") {
        let rgb = try reference.tensor(name)
        let (h, w) = (rgb.shape[2], rgb.shape[3])
        inputs.append((name, Tensor(shape: [1, 1, h, w], data: Array(rgb.data[0..<(h * w)]))))
    }
    var bytes: [UInt8] = []
    var listing = "# model \(modelPath) precision \(model.precision) threads \(threads)\n"
    for (name, input) in inputs {
        let logits = try model.logits(for: input, threads: threads)
        for v in logits.data { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        listing += "\(name) \(logits.shape.map(String.init).joined(separator: "x")) \(String(fnv1a(logits.data), radix: 16))\n"
    }
    try writeFileAtomically(path: outPath, bytes: bytes)
    try writeFileAtomically(path: outPath + ".txt", text: listing)
    print("logits-dump: \(inputs.count) frames, \(model.precision), \(bytes.count) bytes -> \(outPath)")
} catch {
    FileHandle.standardError.write(Data("logits-dump: error: \(error)\n".utf8))
    exit(1)
}
