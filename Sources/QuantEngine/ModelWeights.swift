/// The float parameters of a model graph, by segmentation_models_pytorch state-dict name, validated
/// against the graph: every expected tensor present with its exact shape.
public struct ModelWeights: Sendable {
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

    /// Loads a full checkpoint of whichever architecture it holds (`ModelGraph.of`).
    public init(loading path: String, inputChannels: Int = 3) throws {
        let file = try SafeTensorsFile(path: path)
        try self.init(file: file, graph: try ModelGraph.of(file, inputChannels: inputChannels))
    }

    public init(file: SafeTensorsFile, graph: ModelGraph, allowEncoderOnly: Bool = false,
                initializer: ((String, [Int]) -> Tensor)? = nil) throws {
        self.graph = graph
        if let stored = ModelGraph.architecture(of: file), stored != graph.architecture {
            throw SonoQuantError(file.source, "this is a \(stored) checkpoint, not \(graph.architecture)", kind: .unsupportedArchitecture)
        }
        let isEncoderOnly = file.entries["encoder.features.0.0.weight"] == nil && file.entries["features.0.0.weight"] != nil
        if isEncoderOnly && !allowEncoderOnly {
            throw SonoQuantError(file.source, "this is an encoder-only file (torchvision `features.*` names), not a full \(graph.architecture) checkpoint", kind: .notAModel)
        }
        if let format = file.modelMetadata.format, format != .floatCheckpoint {
            throw SonoQuantError(file.source, "this is a \(format.rawValue) file, not a float checkpoint", kind: .notAModel)
        }
        let expected = graph.expectedTensorShapes
        let present = expected.filter { file.entries[isEncoderOnly ? Self.torchvisionName($0.name) : $0.name] != nil }.count
        if present == 0 {
            throw SonoQuantError(file.source, "no tensor of \(graph.architecture) found: a checkpoint for another architecture? (first expected: \(expected.first?.name ?? ""))", kind: .unsupportedArchitecture)
        }
        var tensors: [String: Tensor] = [:]
        for (name, shape) in expected {
            let stored = isEncoderOnly ? Self.torchvisionName(name) : name
            if file.entries[stored] != nil {
                tensors[name] = try file.tensor(stored, shape: shape)
            } else if isEncoderOnly && !name.hasPrefix("encoder."), let initializer {
                tensors[name] = initializer(name, shape)
            } else {
                throw SonoQuantError(file.source, "missing tensor \(stored) (shape \(shape)): not a complete \(graph.architecture) checkpoint", kind: .corruptModel)
            }
        }
        // A corrupt value must stop here: a NaN weight otherwise runs through as "no head found", and a
        // negative running variance as a NaN after BatchNorm folding.
        for (name, shape) in expected {
            guard let data = tensors[name]?.data else { continue }
            let stored = isEncoderOnly ? Self.torchvisionName(name) : name
            if let bad = data.firstIndex(where: { !$0.isFinite }) {
                throw SonoQuantError(file.source, "tensor \(stored) (shape \(shape)) holds \(data[bad]) at index \(bad): a corrupt or diverged checkpoint", kind: .corruptModel)
            }
            if name.hasSuffix(".running_var"), let bad = data.firstIndex(where: { $0 < 0 }) {
                throw SonoQuantError(file.source, "tensor \(stored) holds a negative variance (\(data[bad]) at index \(bad)): a corrupt checkpoint", kind: .corruptModel)
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

    /// Writes a checkpoint with smp names (F32, or F16 to halve the size), atomically; `metadata` gets the
    /// float-checkpoint format and this graph's architecture.
    public func save(to path: String, halfPrecision: Bool = false, metadata: ModelMetadata = ModelMetadata()) throws {
        var metadata = metadata
        metadata.format = .floatCheckpoint
        metadata.architecture = graph.architecture
        try metadata.checkWritable(subject: path)
        var writer = SafeTensorsWriter(metadata: metadata)
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
    /// gray = R = G = B). Weight layout: PyTorch's, `spec.weightShape` ([out][in/groups][k][k]; [in][out][k][k]
    /// for a transposed conv).
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
            for o in 0..<out {
                let scale = gamma[o] / (variance[o] + Self.batchNormEpsilon).squareRoot()
                for i in spec.weightIndices(ofOutput: o) { weight.data[i] *= scale }
                bias[o] = beta[o] + (bias[o] - mean[o]) * scale
            }
        }
        return FoldedConv(spec: spec, weight: weight.data, bias: bias)
    }
}

/// A convolution ready for inference: BatchNorm folded into weight and bias.
public struct FoldedConv: Sendable {
    public let spec: ConvSpec
    /// PyTorch layout `spec.weightShape`: [out][in/groups][k][k], or [in][out][k][k] for a transposed conv; float32.
    public let weight: [Float]
    public let bias: [Float]

    public init(spec: ConvSpec, weight: [Float], bias: [Float]) {
        precondition(weight.count == spec.weightCount && bias.count == spec.outChannels, "FoldedConv: \(spec.weightPrefix) weight/bias sizes do not match the spec")
        self.spec = spec
        self.weight = weight
        self.bias = bias
    }
}

/// The arithmetic a model runs in; reports and JSON write the raw value.
public enum Precision: String, Codable, Sendable, CustomStringConvertible {
    case float32, int8
    public var description: String { rawValue }
}

/// What `forward`, `evaluate`, `bench` and `segment` run: a float or int8 model behind one interface.
///
/// Concurrency: a loaded model is `Sendable`; share one instance across tasks or threads rather than
/// loading it twice. Each call to `logits` runs on `threads` threads of its own, and calls on one model
/// take turns (each engine keeps one planned arena per input size, guarded by a lock): eight tasks that
/// call one model at once get the same results as eight calls in a row, in about the same time. On a
/// small board the cores are better spent inside one frame (`threads`) than on frames side by side;
/// for frames side by side, load one model per task.
public protocol SegmentationModel: AnyObject, Sendable {
    var precision: Precision { get }
    var graph: ModelGraph { get }
    /// The instruction set its kernels run on (`KernelPath.current` unless built for another).
    var kernelPath: KernelPath { get }
    /// The size it was trained (float) or calibrated (int8) at, when its file records it (`sonoquant.size`);
    /// nil for a PyTorch checkpoint. `inputSize(requested:)` picks the size to run at.
    var inputSize: InputSize? { get }
    /// The factor its head circumference in mm is multiplied by (`sonoquant.hc_scale`; 1 when the file has none).
    var hcScale: Double { get }
    /// Logits [N, 1, H, W] for an input [N, C, H, W] in [0, 1] (C = 1 gray or 3 RGB, H and W multiples of
    /// `graph.sizeMultiple`).
    /// Throws with a clear message for a wrong shape.
    func logits(for input: Tensor, threads: Int) throws -> Tensor
    /// The time of every graph op on `input` (the fastest of `repeats` runs each), in graph order.
    func profile(_ input: Tensor, threads: Int, repeats: Int) throws -> [(op: String, milliseconds: Double)]
}

extension SegmentationModel {
    /// A model that runs no engine kernels of its own (a test stub) reports the process's path.
    public var kernelPath: KernelPath { .current }
    /// A model that is not read from a file records no size.
    public var inputSize: InputSize? { nil }
    /// A model that is not read from a file has no HC scale.
    public var hcScale: Double { 1 }
    /// A model without graph ops of its own (a test stub) has nothing to profile.
    public func profile(_ input: Tensor, threads: Int, repeats: Int) throws -> [(op: String, milliseconds: Double)] { [] }
}

extension ModelWeights {
    /// Deterministic synthetic weights from a closed-form formula, for checks against PyTorch without
    /// storing the weights (fixtures/forward_baseline.safetensors holds only input and logits) and for
    /// timing an architecture before it is trained. scripts/peers/unet_baseline.py computes the same
    /// values bit for bit (integer hash, then float64 arithmetic rounded once to float32):
    ///
    ///     tensor t (index in `graph.expectedTensorShapes`), element k (row-major):
    ///     x = lowbias32((k + 0x9E3779B9 * (t + 1)) mod 2^32),  s = 2 x / 2^32 - 1  (uniform in [-1, 1))
    ///     conv weight sqrt(6 / fan_in) s (fan_in = in k k; in for a transposed conv), conv bias 0.1 s,
    ///     BatchNorm weight 1 + 0.2 s, bias 0.1 s, running_mean 0.1 s, running_var 0.75 + 0.25 s.
    public static func synthetic(graph: ModelGraph) -> ModelWeights {
        var roles: [String: (fanIn: Int?, offset: Double, amplitude: Double)] = [:]
        for spec in graph.convs {
            let shape = spec.weightShape
            let fanIn = spec.kind == .transposed ? spec.inChannels : (spec.weightPrefix == graph.firstConvPrefix ? 3 : shape[1]) * spec.kernel * spec.kernel
            roles[spec.weightName] = (fanIn, 0, 0)
            if spec.hasBias { roles[spec.biasName] = (nil, 0, 0.1) }
            if let bn = spec.batchNormPrefix {
                roles["\(bn).weight"] = (nil, 1, 0.2)
                roles["\(bn).bias"] = (nil, 0, 0.1)
                roles["\(bn).running_mean"] = (nil, 0, 0.1)
                roles["\(bn).running_var"] = (nil, 0.75, 0.25)
            }
        }
        var tensors: [String: Tensor] = [:]
        for (t, (name, shape)) in graph.expectedTensorShapes.enumerated() {
            let role = roles[name]!
            let amplitude = role.fanIn.map { (6 / Double($0)).squareRoot() } ?? role.amplitude
            let count = shape.reduce(1, *)
            let base = UInt32(truncatingIfNeeded: 0x9E37_79B9 &* UInt64(t + 1))
            var data = [Float](repeating: 0, count: count)
            for k in 0..<count {
                var x = UInt32(truncatingIfNeeded: k) &+ base
                x ^= x >> 16; x &*= 0x7FEB_352D; x ^= x >> 15; x &*= 0x846C_A68B; x ^= x >> 16
                let s = 2 * Double(x) / 4_294_967_296 - 1
                data[k] = Float(role.offset + amplitude * s)
            }
            tensors[name] = Tensor(shape: shape, data: data)
        }
        return ModelWeights(graph: graph, tensors: tensors)
    }
}
