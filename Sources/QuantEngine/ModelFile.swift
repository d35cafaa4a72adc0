/// Opens any model file SonoQuant can run: a float checkpoint (PyTorch state-dict names of a known
/// architecture, F32 or F16) becomes a `FloatUNet`; an int8 model file (metadata `sonoquant.format` =
/// "int8-model", written by `sonoquant calibrate`) becomes an `Int8UNet`.
public func loadSegmentationModel(path: String) throws -> SegmentationModel {
    var weights: ModelWeights
    do {
        let file = try SafeTensorsFile(path: path)
        if file.metadata["sonoquant.format"] == "int8-model" { return Int8UNet(model: try Int8Model(file: file)) }
        weights = try ModelWeights(file: file, graph: try ModelGraph.of(file, inputChannels: 3))
    }  // the file's bytes are released here, before the weights are packed (peak memory at load)
    return FloatUNet(releasing: &weights)  // and each float tensor once its layer is packed
}

extension ModelGraph {
    /// The graph of the architecture a checkpoint holds (`architecture(of:)`: its `sonoquant.architecture`
    /// metadata, else recognised by its tensor names), or an error naming the file.
    public static func of(_ file: SafeTensorsFile, inputChannels: Int = 3) throws -> ModelGraph {
        let known = architectureNames.joined(separator: ", ")
        guard let name = architecture(of: file) else {
            throw SonoQuantError(file.source, "no tensor of a known architecture (\(known)) and no sonoquant.architecture metadata: a checkpoint for another architecture?")
        }
        guard let graph = named(name, inputChannels: inputChannels) else {
            throw SonoQuantError(file.source, "unknown architecture \"\(name)\" in sonoquant.architecture (this build knows \(known))")
        }
        return graph
    }
}
