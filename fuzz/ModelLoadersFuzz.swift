// The model-file entry point every command uses (float checkpoint or int8 model), fuzzed through a file
// because that is its interface. Kept apart from SafeTensorsFuzz.swift so the harness still builds when
// fuzzing only the safetensors layer.
import Foundation

func fuzzExtraModelLoaders(_ bytes: [UInt8]) {
}
