import Foundation

/// How one int8 activation tensor maps to real numbers: real = scale * (q - zeroPoint), q in [-128, 127].
public struct ActivationQuantization: Equatable, Codable, Sendable {
    public var scale: Float
    public var zeroPoint: Int32

    public init(scale: Float, zeroPoint: Int32) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// Asymmetric int8 covering [min, max], widened to include 0 so that 0 (padding, ReLU) is exact:
    /// scale = (max - min) / 255, zeroPoint = round(-128 - min / scale).
    public init(min lo: Float, max hi: Float) {
        var lo = Swift.min(lo, 0), hi = Swift.max(hi, 0)
        // Constant (or empty) tensors still get a usable scale: with the 1e-6 this floor used to be, an all-zero
        // activation got scale 3.9e-9 and the multiplier of the conv writing it 3e7, which the loader refuses.
        if !(hi - lo > 1e-3) { hi = lo + 1e-3 }
        if !lo.isFinite || !hi.isFinite { lo = -1; hi = 1 }
        scale = (hi - lo) / 255
        zeroPoint = Int32(Swift.max(-128, Swift.min(127, (-128 - lo / scale).rounded())))
    }

    /// The uint8 gray frame: byte b is real b / 255, stored as the int8 b - 128.
    public static let inputFrame = ActivationQuantization(scale: 1 / 255, zeroPoint: -128)

    /// The byte a gray value in [0, 1] becomes in that frame: round(255 x), clamped to [0, 255]. The one
    /// conversion from float frames to the int8 engine's input (the engine, calibration and `latency` use it).
    @inlinable
    public static func frameByte(_ value: Float) -> UInt8 { UInt8(Swift.max(0, Swift.min(255, (value * 255).rounded()))) }

    public func quantize(_ x: Float) -> Int8 {
        Int8(Swift.max(-128, Swift.min(127, (x / scale).rounded() + Float(zeroPoint))))
    }

    public func dequantize(_ q: Int8) -> Float { scale * Float(Int32(q) - zeroPoint) }

    /// The int8 clamp that implements a fused activation on this (output) quantization.
    public func clamp(for activation: Activation) -> ClosedRange<Int32> {
        switch activation {
        case .none: return -128...127
        case .relu: return zeroPoint...127
        case .relu6: return zeroPoint...Swift.min(127, zeroPoint + Int32((6 / scale).rounded()))
        }
    }
}

/// One convolution's int8 parameters: BatchNorm folded, weights symmetric per output channel.
public struct Int8ConvWeights: Equatable, Sendable {
    /// PyTorch layout: [out][in/groups][k][k], or [in][out][k][k] for a transposed conv (the first conv of
    /// the gray graph has in = 1).
    public var weights: [Int8]
    /// [out], real bias / (s_in * s_w[c]), rounded.
    public var bias: [Int32]
    /// [out], s_w[c] = max |w_c| / 127 (1 for an all-zero channel).
    public var weightScales: [Float]

    public init(weights: [Int8], bias: [Int32], weightScales: [Float]) {
        self.weights = weights
        self.bias = bias
        self.weightScales = weightScales
    }

    /// Quantizes a folded float conv for an input with scale `inputScale`.
    public init(_ folded: FoldedConv, inputScale: Float) {
        let out = folded.spec.outChannels
        var weights = [Int8](repeating: 0, count: folded.weight.count)
        var scales = [Float](repeating: 1, count: out)
        var bias = [Int32](repeating: 0, count: out)
        for c in 0..<out {
            let indices = folded.spec.weightIndices(ofOutput: c)
            let maxAbs = indices.reduce(Float(0)) { Swift.max($0, abs(folded.weight[$1])) }
            let scale: Float = maxAbs > 0 ? maxAbs / 127 : 1
            scales[c] = scale
            for i in indices {
                weights[i] = Int8(Swift.max(-127, Swift.min(127, (folded.weight[i] / scale).rounded())))
            }
            let b = (Double(folded.bias[c]) / (Double(inputScale) * Double(scale))).rounded()
            bias[c] = Int32(Swift.max(Double(Int32.min), Swift.min(Double(Int32.max), b)))
        }
        self.init(weights: weights, bias: bias, weightScales: scales)
    }
}

/// A quantized model: the gray (1-channel) graph, every value's activation quantization and every
/// convolution's int8 weights, plus provenance metadata. Saved as and loaded from one safetensors file.
public struct Int8Model: Equatable, Sendable {
    public static let formatVersion = "1"

    public let graph: ModelGraph
    /// Indexed by graph value (0 = the input frame).
    public var activations: [ActivationQuantization]
    /// By conv weight prefix.
    public var convs: [String: Int8ConvWeights]
    /// Provenance and settings (observer, calibration frames, source checkpoint, strategy, input size, HC
    /// factor...). The entries that describe the file itself (format, architecture, activations...) are
    /// written by `save` from the model and are not kept here.
    public var metadata: ModelMetadata

    /// The size its activation ranges were measured at: `metadata.size`, or for files written before that
    /// entry, the width and height in `metadata.input`.
    public var calibrationSize: InputSize? {
        if let size = metadata.size { return size }
        guard let json = metadata.input?.data(using: .utf8),
              let input = try? JSONSerialization.jsonObject(with: json) as? [String: Any],
              let width = input["width"] as? Int, let height = input["height"] as? Int, width > 0, height > 0 else { return nil }
        return InputSize(width: width, height: height)
    }

    /// The HC factor (`ModelMetadata.hcScale`), 1 when absent.
    public var hcScale: Double { metadata.hcScale ?? 1 }

    public init(graph: ModelGraph, activations: [ActivationQuantization], convs: [String: Int8ConvWeights], metadata: ModelMetadata) {
        self.graph = graph
        self.activations = activations
        self.convs = convs
        self.metadata = metadata
    }

    /// Quantizes float weights given each graph value's calibrated real range.
    ///
    /// The input is fixed to the uint8 frame's quantization; the output of an upsample or a max-pool keeps
    /// its input's quantization (they only copy or select values). Everything else comes from `ranges`.
    public init(quantizing weights: ModelWeights, ranges: [ClosedRange<Float>], metadata: ModelMetadata) {
        let graph = weights.graph.inputChannels == 1 ? weights.graph : weights.graph.architecture.graph(inputChannels: 1)
        precondition(ranges.count == graph.values.count, "Int8Model: \(ranges.count) ranges for \(graph.values.count) values")
        var activations = ranges.map { ActivationQuantization(min: $0.lowerBound, max: $0.upperBound) }
        activations[0] = .inputFrame
        for (input, output) in graph.quantizationTies { activations[output] = activations[input] }
        // A gray-graph view of the weights: `folded` sums the first conv's RGB weights for it.
        let grayWeights = ModelWeights(graph: graph, tensors: weights.tensors)
        var convs: [String: Int8ConvWeights] = [:]
        for op in graph.ops {
            guard case .conv(let spec, let input, _) = op else { continue }
            convs[spec.weightPrefix] = Int8ConvWeights(grayWeights.folded(spec), inputScale: activations[input].scale)
        }
        self.init(graph: graph, activations: activations, convs: convs, metadata: metadata)
    }

    /// The kernel parameters of one graph conv (multipliers derived from the scales, deterministically).
    public func convParameters(_ spec: ConvSpec, input: Int, output: Int) -> QuantizedConvParameters {
        let w = convs[spec.weightPrefix]!
        let inQ = activations[input], outQ = activations[output]
        let multipliers = w.weightScales.map { QuantizedMultiplier(Double(inQ.scale) * Double($0) / Double(outQ.scale)) }
        let clamp = outQ.clamp(for: spec.activation)
        return QuantizedConvParameters(kind: spec.kind, kernel: spec.kernel, stride: spec.stride,
                                       inChannels: spec.inChannels, outChannels: spec.outChannels, weights: w.weights, bias: w.bias,
                                       multipliers: multipliers, inputZeroPoint: inQ.zeroPoint, outputZeroPoint: outQ.zeroPoint,
                                       outputMin: clamp.lowerBound, outputMax: clamp.upperBound)
    }

    public func addParameters(a: Int, b: Int, output: Int) -> Int8AddParameters {
        let qa = activations[a], qb = activations[b], qo = activations[output]
        return Int8AddParameters(aScale: qa.scale, aZeroPoint: qa.zeroPoint, bScale: qb.scale, bZeroPoint: qb.zeroPoint,
                                 outputScale: qo.scale, outputZeroPoint: qo.zeroPoint)
    }

    public func rescale(from value: Int, to output: Int) -> Int8Rescale {
        let i = activations[value], o = activations[output]
        return Int8Rescale(inputScale: i.scale, inputZeroPoint: i.zeroPoint, outputScale: o.scale, outputZeroPoint: o.zeroPoint)
    }
}

extension ModelGraph {
    /// (input, output) of every op whose int8 output must keep its input's scale and zero point: upsample
    /// (copies) and max-pool (selects; the max of quantized values is the quantized max only on one scale).
    public var quantizationTies: [(input: Int, output: Int)] {
        ops.compactMap { op in
            switch op {
            case .upsample2x(let i, let o), .maxPool2x2(let i, let o): return (i, o)
            default: return nil
            }
        }
    }
}

// MARK: - The file

extension Int8Model {
    static let activationScaleName = "activations.scale"
    static let activationZeroPointName = "activations.zero_point"
    static func weightName(_ prefix: String) -> String { prefix + ".weight" }
    static func biasName(_ prefix: String) -> String { prefix + ".bias" }
    static func weightScaleName(_ prefix: String) -> String { prefix + ".weight_scale" }

    /// Writes the model atomically: I8 weights, I32 biases, F32 weight scales, F32/I32 activation
    /// quantization, and metadata describing the graph and every value's quantization.
    public func save(to path: String) throws {
        // What the loader would refuse is never written (a calibration that produced it fails here, naming the file).
        try checkMultipliers(source: path)
        try metadata.checkWritable(subject: path)
        var metadata = self.metadata
        metadata.format = .int8Model
        metadata.formatVersion = Self.formatVersion
        metadata.architecture = graph.architecture
        metadata.inputChannels = graph.inputChannels
        metadata.activations = Self.activationsJSON(activations)
        metadata.weights = "int8 symmetric per output channel (zero point 0, [-127, 127]), BatchNorm folded; I32 bias in units of s_in * s_w[c]"
        metadata.requantization = "gemmlowp fixed point: Q31 multiplier + shift from s_in * s_w[c] / s_out; see docs/QUANTIZATION.md"
        var writer = SafeTensorsWriter(metadata: metadata)
        writer.add(Self.activationScaleName, floats: activations.map(\.scale), shape: [activations.count])
        writer.add(Self.activationZeroPointName, int32: activations.map(\.zeroPoint), shape: [activations.count])
        for spec in graph.convs {
            let w = convs[spec.weightPrefix]!
            writer.add(Self.weightName(spec.weightPrefix), int8: w.weights, shape: spec.weightShape)
            writer.add(Self.biasName(spec.weightPrefix), int32: w.bias, shape: [spec.outChannels])
            writer.add(Self.weightScaleName(spec.weightPrefix), floats: w.weightScales, shape: [spec.outChannels])
        }
        try writer.write(to: path)
    }

    /// Per-value quantization as compact JSON: [[scale, zero point], ...] indexed by graph value.
    static func activationsJSON(_ activations: [ActivationQuantization]) -> String {
        "[" + activations.map { "[\($0.scale.description),\($0.zeroPoint)]" }.joined(separator: ",") + "]"
    }

    public init(loading path: String) throws {
        try self.init(file: try SafeTensorsFile(path: path))
    }

    /// The smallest conv multiplier s_in * s_w / s_out that can change an output (see `checkMultipliers`).
    static let smallestMultiplier = pow2(-32)

    /// The checks that the file's tensors cannot show one by one: every accumulator fits int32, and every
    /// fixed-point multiplier the engine will build is representable and not degenerate. The loader and the
    /// writer (`save`) both run them.
    func checkMultipliers(source: String) throws {
        let graph = self.graph, activations = self.activations, convs = self.convs
        // Every accumulator must fit int32: |bias| + 255 Σ|w| (255 = the largest |x - zero point|) per output
        // channel, or the sums would wrap silently (a bias at the int32 limits used to be accepted).
        for spec in graph.convs {
            let w = convs[spec.weightPrefix]!
            let perOutput = w.weights.count / max(1, spec.outChannels)
            for o in 0..<spec.outChannels {
                let absoluteSum: Int
                if spec.kind == .transposed {
                    // [in][out][k][k]: output o's weights are spread over the input channels.
                    let k2 = spec.kernel * spec.kernel
                    absoluteSum = (0..<spec.inChannels).reduce(0) { sum, c in
                        sum + (0..<k2).reduce(0) { $0 + abs(Int(w.weights[(c * spec.outChannels + o) * k2 + $1])) }
                    }
                } else {
                    absoluteSum = w.weights[(o * perOutput)..<((o + 1) * perOutput)].reduce(0) { $0 + abs(Int($1)) }
                }
                guard abs(Int(w.bias[o])) + 255 * absoluteSum < Int(Int32.max) else {
                    throw SonoQuantError(source, "\(spec.weightPrefix): output channel \(o) can overflow its int32 accumulator (bias \(w.bias[o]), Σ|w| \(absoluteSum)): a tampered or corrupt model", kind: .corruptModel)
                }
            }
        }
        // Every real multiplier must be representable (finite, < 2^31); a tampered scale could break that.
        for op in graph.ops {
            guard case .conv(let spec, let i, let o) = op else { continue }
            for s in convs[spec.weightPrefix]!.weightScales {
                let m = Double(activations[i].scale) * Double(s) / Double(activations[o].scale)
                guard m.isFinite, m < 65536 else { throw SonoQuantError(source, "\(spec.weightPrefix): requantization multiplier \(m) out of range (inconsistent scales)", kind: .corruptModel) }
                // Below 2^-32 every int32 sum rounds to 0: the layer would output its zero point whatever the input.
                guard m >= Self.smallestMultiplier else {
                    throw SonoQuantError(source, "\(spec.weightPrefix): requantization multiplier \(m) below 2^-32: the layer's output would be constant (a tampered or degenerate scale)", kind: .corruptModel)
                }
            }
        }
        // The same for the rescales of residual adds and concats (Int8AddParameters, Int8Rescale), whose
        // fixed-point multipliers must stay below 2^31 too: each scale alone can be valid while their ratio
        // is not (it used to trap when the engine was built; see DeployTests.HardeningTests).
        let rescaleBound = 65536 * pow2(Int(Int8Rescale.leftShift))
        for op in graph.ops {
            switch op {
            case .add(let a, let b, let o):
                let m = 2 * Double(max(activations[a].scale, activations[b].scale)) / Double(activations[o].scale)
                guard m.isFinite, m < rescaleBound else { throw SonoQuantError(source, "value \(o) (residual add): requantization multiplier \(m) out of range (inconsistent scales)", kind: .corruptModel) }
            case .concat(let a, let b, let o):
                for v in [a, b] {
                    let m = Double(activations[v].scale) / Double(activations[o].scale)
                    guard m.isFinite, m < rescaleBound else { throw SonoQuantError(source, "value \(o) (concat of value \(v)): requantization multiplier \(m) out of range (inconsistent scales)", kind: .corruptModel) }
                }
            default:
                break
            }
        }
    }

    /// Validates everything before use: format, architecture, every tensor's presence, dtype and shape,
    /// no unexpected tensor, scales finite and positive, zero points in range, metadata consistent with
    /// the tensors, and the quantization rules the engine relies on (input = uint8 frame, upsample and max-pool keep scale).
    public init(file: SafeTensorsFile) throws {
        let source = file.source
        func fail(_ problem: String, kind: SonoQuantError.Kind = .corruptModel) -> SonoQuantError { SonoQuantError(source, problem, kind: kind) }
        var metadata = file.modelMetadata
        guard let format = metadata.format else {
            throw fail("not a SonoQuant int8 model: no `sonoquant.format` metadata (a float checkpoint or a foreign safetensors file?)", kind: .notAModel)
        }
        guard format == .int8Model else { throw fail("not an int8 model: sonoquant.format is \"\(format.rawValue)\", expected \"\(ModelMetadata.Format.int8Model.rawValue)\"", kind: .notAModel) }
        guard metadata.formatVersion == Self.formatVersion else {
            throw fail("int8 model format version \(metadata.formatVersion ?? "missing") is not supported (expected \(Self.formatVersion))", kind: .notAModel)
        }
        guard let architecture = metadata.architecture else {
            throw fail("missing metadata sonoquant.architecture (this build runs \(ModelGraph.architectureNames.joined(separator: ", ")))", kind: .unsupportedArchitecture)
        }
        let graph = architecture.graph(inputChannels: 1)
        guard metadata.inputChannels == 1 else {
            throw fail("sonoquant.input_channels is \(metadata.inputChannels.map(String.init) ?? "missing"), expected 1 (int8 models take the gray frame)")
        }

        func entry(_ name: String, _ dtype: SafeTensorsDType, _ shape: [Int]) throws {
            guard let e = file.entries[name] else { throw fail("missing tensor \(name) (\(dtype.rawValue) \(shape)): truncated or not a complete int8 model") }
            guard e.dtype == dtype else { throw fail("tensor \(name) is \(e.dtype.rawValue), expected \(dtype.rawValue)") }
            guard e.shape == shape else { throw fail("tensor \(name) has shape \(e.shape), expected \(shape)") }
        }
        var expected: Set<String> = [Self.activationScaleName, Self.activationZeroPointName]
        let valueCount = graph.values.count
        try entry(Self.activationScaleName, .f32, [valueCount])
        try entry(Self.activationZeroPointName, .i32, [valueCount])
        let scales = try file.tensor(Self.activationScaleName).data
        let zeroPoints = try file.int32(Self.activationZeroPointName)
        var activations: [ActivationQuantization] = []
        for v in 0..<valueCount {
            guard scales[v].isFinite, scales[v] > 0 else { throw fail("activation scale of value \(v) is \(scales[v]); scales must be finite and positive") }
            guard -128...127 ~= zeroPoints[v] else { throw fail("activation zero point of value \(v) is \(zeroPoints[v]), outside [-128, 127]") }
            activations.append(ActivationQuantization(scale: scales[v], zeroPoint: zeroPoints[v]))
        }
        guard activations[0] == .inputFrame else {
            throw fail("value 0 (the input frame) must be scale 1/255, zero point -128 (uint8 bytes); found \(activations[0].scale), \(activations[0].zeroPoint)")
        }
        for (i, o) in graph.quantizationTies where activations[i] != activations[o] {
            throw fail("value \(o) is an upsample or max-pool of value \(i) and must keep its quantization")
        }
        guard let json = metadata.activations else { throw fail("missing metadata sonoquant.activations") }
        guard json == Self.activationsJSON(activations) else {
            throw fail("inconsistent metadata: sonoquant.activations does not match the tensors \(Self.activationScaleName) / \(Self.activationZeroPointName) (tampered?)")
        }
        var convs: [String: Int8ConvWeights] = [:]
        for spec in graph.convs {
            let p = spec.weightPrefix
            try entry(Self.weightName(p), .i8, spec.weightShape)
            try entry(Self.biasName(p), .i32, [spec.outChannels])
            try entry(Self.weightScaleName(p), .f32, [spec.outChannels])
            expected.formUnion([Self.weightName(p), Self.biasName(p), Self.weightScaleName(p)])
            let weights = try file.int8(Self.weightName(p))
            if weights.contains(-128) { throw fail("tensor \(Self.weightName(p)) holds -128; symmetric int8 weights are in [-127, 127]") }
            let weightScales = try file.tensor(Self.weightScaleName(p)).data
            for (c, s) in weightScales.enumerated() where !(s.isFinite && s > 0) {
                throw fail("tensor \(Self.weightScaleName(p))[\(c)] is \(s); weight scales must be finite and positive")
            }
            convs[p] = Int8ConvWeights(weights: weights, bias: try file.int32(Self.biasName(p)), weightScales: weightScales)
        }
        for name in file.entries.keys where !expected.contains(name) {
            throw fail("unexpected tensor \(name): not part of an int8 \(architecture) model (tampered or foreign file)")
        }
        // What `save` writes from the model itself is not kept: a model built in memory and the same model
        // loaded back compare equal.
        metadata.format = nil; metadata.formatVersion = nil; metadata.architecture = nil; metadata.inputChannels = nil
        metadata.activations = nil; metadata.weights = nil; metadata.requantization = nil
        self.init(graph: graph, activations: activations, convs: convs, metadata: metadata)
        try checkMultipliers(source: source)
    }
}
