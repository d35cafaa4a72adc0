// The model-file entry point every command uses (`loadSegmentationModel`: float checkpoint or int8 model),
// fuzzed through a file because a path is its interface. Only inputs that already parse as safetensors
// are written out (the rest cannot get further than SafeTensorsFile, which the caller fuzzed directly).
import Foundation
import QuantEngine

private let scratchPath = "/dev/shm/sonoquant-fuzz-model-\(getpid()).safetensors"

func fuzzExtraModelLoaders(_ bytes: [UInt8]) {
    guard FileManager.default.createFile(atPath: scratchPath, contents: Data(bytes)) else { return }
    _ = try? loadSegmentationModel(path: scratchPath)
}
