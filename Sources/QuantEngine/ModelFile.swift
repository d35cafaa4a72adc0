/// Opens any model file SonoQuant can run: a float checkpoint (PyTorch state-dict names of a known
/// architecture, F32 or F16) becomes a `FloatUNet`; an int8 model file (metadata `sonoquant.format` =
/// "int8-model", written by `sonoquant calibrate`) becomes an `Int8UNet`.
public func loadSegmentationModel(path: String) throws -> SegmentationModel {
    var weights: ModelWeights
    let metadata: ModelMetadata
    do {
        let file = try SafeTensorsFile(path: path)
        if file.modelMetadata.format == .int8Model { return Int8UNet(model: try Int8Model(file: file)) }
        weights = try ModelWeights(file: file, graph: try ModelGraph.of(file, inputChannels: 3))
        metadata = file.modelMetadata
    }  // the file's bytes are released here, before the weights are packed (peak memory at load)
    return FloatUNet(releasing: &weights, inputSize: metadata.size, hcScale: metadata.hcScale ?? 1)  // and each float tensor once its layer is packed
}

extension ModelGraph {
    /// The graph of the architecture a checkpoint holds (`architecture(of:)`: its `sonoquant.architecture`
    /// metadata, else recognised by its tensor names), or an error naming the file.
    public static func of(_ file: SafeTensorsFile, inputChannels: Int = 3) throws -> ModelGraph {
        guard let architecture = architecture(of: file) else {
            throw SonoQuantError(file.source, "no tensor of a known architecture (\(architectureNames.joined(separator: ", "))) and no sonoquant.architecture metadata: a checkpoint for another architecture?", kind: .unsupportedArchitecture)
        }
        return architecture.graph(inputChannels: inputChannels)
    }
}

/// A network input size, written WxH (width first, as PIL's resize((w, h))), e.g. 192x128.
public struct InputSize: Hashable, Sendable, CustomStringConvertible {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// Parses "WxH" with positive sides; nil otherwise.
    public init?(_ text: String) {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0 else { return nil }
        self.init(width: w, height: h)
    }

    public var description: String { "\(width)x\(height)" }
}

extension SegmentationModel {
    /// The size to run this model at: `requested` if given, else the size its file records.
    ///
    /// An int8 model's activation ranges were measured at its calibration size; at another size the
    /// ranges (and the HC) shift without a word, so that is refused unless `allowingOtherSize`. A float model runs at any valid size. A
    /// file that records no size (a PyTorch checkpoint) needs `requested`.
    public func inputSize(requested: InputSize?, allowingOtherSize: Bool = false, subject: String) throws -> InputSize {
        let size: InputSize
        switch (requested, inputSize) {
        case (nil, nil):
            throw SonoQuantError(subject, "the model file records no input size (a PyTorch checkpoint?): give the size it was trained at (--size WxH)", kind: .badInputSize)
        case (nil, let recorded?):
            size = recorded
        case (let requested?, let recorded):
            if precision == .int8, let recorded, requested != recorded, !allowingOtherSize {
                throw SonoQuantError(subject, "the int8 model was calibrated at \(recorded), asked to run at \(requested): its activation ranges "
                                     + "(and the HC it gives) shift with the size; calibrate at \(requested), or allow it (--any-size)", kind: .badInputSize)
            }
            size = requested
        }
        try graph.checkFrameSize(width: size.width, height: size.height, subject: requested == nil ? subject : "--size \(size)")
        return size
    }
}
