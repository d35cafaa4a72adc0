/// Opens any model file SonoQuant can run: a float checkpoint (segmentation_models_pytorch names,
/// F32 or F16) becomes a `FloatUNet`; an int8 model file (metadata `sonoquant.format` = "int8-model",
/// written by `sonoquant calibrate`) becomes an `Int8UNet`.
public func loadSegmentationModel(path: String) throws -> SegmentationModel {
    let file = try SafeTensorsFile(path: path)
    switch file.metadata["sonoquant.format"] {
    case "int8-model":
        return Int8UNet(model: try Int8Model(file: file))
    default:
        let weights = try ModelWeights(file: file, graph: .mobileNetV2UNet(inputChannels: 3))
        return FloatUNet(weights: weights)
    }
}
