/// Opens any model file SonoQuant can run: a float checkpoint (segmentation_models_pytorch names,
/// F32 or F16) becomes a `FloatUNet`. Int8 model files (metadata `sonoquant.format` = "int8-model")
/// are added by the int8 engine.
public func loadSegmentationModel(path: String) throws -> SegmentationModel {
    let file = try SafeTensorsFile(path: path)
    switch file.metadata["sonoquant.format"] {
    case "int8-model":
        throw SonoQuantError(path, "int8 model files are not supported by this build yet")
    default:
        let weights = try ModelWeights(file: file, graph: .mobileNetV2UNet(inputChannels: 3))
        return FloatUNet(weights: weights)
    }
}
