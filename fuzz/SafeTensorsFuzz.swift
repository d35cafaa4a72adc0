// libFuzzer harness for the model-file loaders: SafeTensorsFile (header, dtypes, shapes, offsets),
// every typed reader, and ModelWeights' validation against the U-Net graph.
// Built by scripts/fuzz.sh together with Sources/QuantEngine in one module (no package build needed).
// The contract under test: any byte string either loads or throws SonoQuantError; it never traps,
// reads out of bounds or allocates without bound.
import Foundation
import QuantEngine

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    guard let file = try? SafeTensorsFile(bytes: bytes, source: "fuzz-input") else { return 0 }
    // A file that opened must be readable through every accessor without trapping:
    // the accessor for its dtype succeeds, the others throw.
    for name in file.names {
        _ = try? file.tensor(name)
        _ = try? file.int8(name)
        _ = try? file.uint8(name)
        _ = try? file.int32(name)
        if let entry = file.entries[name] { _ = try? file.tensor(name, shape: entry.shape) }
    }
    for channels in [1, 3] {
        _ = try? ModelWeights(file: file, graph: ModelGraph.mobileNetV2UNet(inputChannels: channels),
                              allowEncoderOnly: true) { _, shape in Tensor(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *))) }
    }
    fuzzExtraModelLoaders(bytes)
    return 0
}
