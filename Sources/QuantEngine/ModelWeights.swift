/// The float parameters of a model graph, by segmentation_models_pytorch state-dict name, validated
/// against the graph: every expected tensor present with its exact shape.
public struct ModelWeights {
    public let graph: ModelGraph
    /// Every tensor of `graph.expectedTensorShapes`, float32, PyTorch layout and shape.
    public var tensors: [String: Tensor]

    public init(graph: ModelGraph, tensors: [String: Tensor]) {
        self.graph = graph
        self.tensors = tensors
    }

    /// Loads a full checkpoint (smp names, F32 or F16) and checks it is this architecture.
    ///
    /// - Parameter encoderOnly: also accept a torchvision MobileNetV2 file (`features.*` names, as in
    ///   `../shared/weights`); the decoder and head then get `initializer`'s values.
    public init(loading path: String, graph: ModelGraph, allowEncoderOnly: Bool = false,
                initializer: ((String, [Int]) -> Tensor)? = nil) throws {
        let file = try SafeTensorsFile(path: path)
        try self.init(file: file, graph: graph, allowEncoderOnly: allowEncoderOnly, initializer: initializer)
    }

    public init(file: SafeTensorsFile, graph: ModelGraph, allowEncoderOnly: Bool = false,
                initializer: ((String, [Int]) -> Tensor)? = nil) throws {
        self.graph = graph
        let isEncoderOnly = file.entries["encoder.features.0.0.weight"] == nil && file.entries["features.0.0.weight"] != nil
        if isEncoderOnly && !allowEncoderOnly {
            throw SonoQuantError(file.source, "this is an encoder-only file (torchvision `features.*` names), not a full \(graph.architecture) checkpoint")
        }
        if let arch = file.metadata["sonoquant.format"], arch != "float-checkpoint" {
            throw SonoQuantError(file.source, "this is a \(arch) file, not a float checkpoint")
        }
        let expected = graph.expectedTensorShapes
        let present = expected.filter { file.entries[isEncoderOnly ? Self.torchvisionName($0.name) : $0.name] != nil }.count
        if present == 0 {
            throw SonoQuantError(file.source, "no tensor of \(graph.architecture) found: a checkpoint for another architecture? (first expected: \(expected.first?.name ?? ""))")
        }
        var tensors: [String: Tensor] = [:]
        for (name, shape) in expected {
            let stored = isEncoderOnly ? Self.torchvisionName(name) : name
            if file.entries[stored] != nil {
                tensors[name] = try file.tensor(stored, shape: shape)
            } else if isEncoderOnly && !name.hasPrefix("encoder."), let initializer {
                tensors[name] = initializer(name, shape)
            } else {
                throw SonoQuantError(file.source, "missing tensor \(stored) (shape \(shape)): not a complete \(graph.architecture) checkpoint")
            }
        }
        self.tensors = tensors
    }

    /// `encoder.features.3.conv.0.0.weight` -> `features.3.conv.0.0.weight`; other names unchanged.
    static func torchvisionName(_ name: String) -> String {
        name.hasPrefix("encoder.") ? String(name.dropFirst("encoder.".count)) : name
    }

    public func tensor(_ name: String) -> Tensor {
        guard let t = tensors[name] else { preconditionFailure("ModelWeights: no tensor \(name)") }
        return t
    }

    /// Writes a checkpoint with smp names (F32, or F16 to halve the size), atomically.
    public func save(to path: String, halfPrecision: Bool = false, metadata: [String: String] = [:]) throws {
        var writer = SafeTensorsWriter(metadata: metadata.merging(["sonoquant.format": "float-checkpoint", "sonoquant.architecture": graph.architecture]) { a, _ in a })
        for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
            if halfPrecision { writer.add(name, halves: tensor.data, shape: tensor.shape) } else { writer.add(name, tensor) }
        }
        try writer.write(to: path)
    }

    /// BatchNorm epsilon used by every BatchNorm of the model (PyTorch default).
    public static let batchNormEpsilon: Float = 1e-5

    /// The convolution with its BatchNorm folded in (inference semantics: running statistics):
    /// w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps) (+ conv bias).
    /// For a 1-channel graph, the first conv's RGB weights are summed over input channels (exact for
    /// gray = R = G = B). Weight layout: [out][in/groups][k][k].
    public func folded(_ spec: ConvSpec) -> FoldedConv {
        var weight = tensor(spec.weightName)
        let out = spec.outChannels
        if weight.shape[1] != spec.weightShape[1] {
            // Gray input: sum the RGB planes of the first conv.
            let k2 = spec.kernel * spec.kernel
            let rgb = weight.shape[1]
            var summed = [Float](repeating: 0, count: out * k2)
            for o in 0..<out { for c in 0..<rgb { for t in 0..<k2 { summed[o * k2 + t] += weight.data[(o * rgb + c) * k2 + t] } } }
            weight = Tensor(shape: spec.weightShape, data: summed)
        }
        var bias = spec.hasBias ? tensor(spec.biasName).data : [Float](repeating: 0, count: out)
        if let bn = spec.batchNormPrefix {
            let gamma = tensor("\(bn).weight").data, beta = tensor("\(bn).bias").data
            let mean = tensor("\(bn).running_mean").data, variance = tensor("\(bn).running_var").data
            let perOutput = weight.count / out
            for o in 0..<out {
                let scale = gamma[o] / (variance[o] + Self.batchNormEpsilon).squareRoot()
                for i in 0..<perOutput { weight.data[o * perOutput + i] *= scale }
                bias[o] = beta[o] + (bias[o] - mean[o]) * scale
            }
        }
        return FoldedConv(spec: spec, weight: weight.data, bias: bias)
    }
}

/// A convolution ready for inference: BatchNorm folded into weight and bias.
public struct FoldedConv {
    public let spec: ConvSpec
    /// [out][in/groups][k][k], float32.
    public let weight: [Float]
    public let bias: [Float]

    public init(spec: ConvSpec, weight: [Float], bias: [Float]) {
        precondition(weight.count == spec.weightCount && bias.count == spec.outChannels, "FoldedConv: \(spec.weightPrefix) weight/bias sizes do not match the spec")
        self.spec = spec
        self.weight = weight
        self.bias = bias
    }
}

/// What `forward`, `evaluate`, `bench` and `segment` run: a float or int8 model behind one interface.
public protocol SegmentationModel: AnyObject {
    /// "float32" or "int8".
    var precision: String { get }
    var graph: ModelGraph { get }
    /// Logits [N, 1, H, W] for an input [N, C, H, W] in [0, 1] (C = 1 gray or 3 RGB, H and W multiples of 32).
    /// Throws with a clear message for a wrong shape.
    func logits(for input: Tensor, threads: Int) throws -> Tensor
}
