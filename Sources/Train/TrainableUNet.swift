import QuantEngine

/// One learnable tensor (conv weight, conv bias, BatchNorm gamma or beta) with its gradient.
public final class Parameter {
    /// segmentation_models_pytorch state-dict name, e.g. "decoder.blocks.0.conv1.1.weight".
    public let name: String
    public let shape: [Int]
    public let group: ParameterGroup
    public var value: [Float]
    /// Gradient of the last `backward`; zeros when the parameter is frozen.
    public var gradient: [Float]
    /// The `backward` call that last set `gradient` (so a parameter it did not reach gets zeros).
    var gradientStep = -1

    func setGradient(_ value: [Float], step: Int) {
        gradient = value
        gradientStep = step
    }
    public internal(set) var trainable: Bool

    init(name: String, shape: [Int], group: ParameterGroup, value: [Float], trainable: Bool) {
        precondition(value.count == shape.reduce(1, *), "\(name): \(value.count) values for shape \(shape)")
        self.name = name
        self.shape = shape
        self.group = group
        self.value = value
        self.gradient = [Float](repeating: 0, count: value.count)
        self.trainable = trainable
    }
}

/// A convolution of the graph with its BatchNorm: parameters, running statistics and mode.
final class ConvLayer {
    let spec: ConvSpec
    let weight: Parameter
    let bias: Parameter?
    let gamma: Parameter?
    let beta: Parameter?
    var runningMean: [Float]
    var runningVar: [Float]
    /// Whether this layer's parameters are updated (its group is trainable).
    let trainable: Bool
    /// Frozen BatchNorm kept in eval mode during training (the "freeze statistics" option).
    let batchNormAlwaysEval: Bool

    init(spec: ConvSpec, weights: ModelWeights, trainable: Bool, batchNormAlwaysEval: Bool) {
        self.spec = spec
        self.trainable = trainable
        self.batchNormAlwaysEval = batchNormAlwaysEval
        let w = weights.tensor(spec.weightName)
        precondition(w.shape == spec.weightShape, "\(spec.weightName): the trainer needs the 3-channel (RGB) graph, got \(w.shape)")
        weight = Parameter(name: spec.weightName, shape: w.shape, group: spec.group, value: w.data, trainable: trainable)
        bias = spec.hasBias ? Parameter(name: spec.biasName, shape: [spec.outChannels], group: spec.group,
                                        value: weights.tensor(spec.biasName).data, trainable: trainable) : nil
        if let bn = spec.batchNormPrefix {
            gamma = Parameter(name: "\(bn).weight", shape: [spec.outChannels], group: spec.group,
                              value: weights.tensor("\(bn).weight").data, trainable: trainable)
            beta = Parameter(name: "\(bn).bias", shape: [spec.outChannels], group: spec.group,
                             value: weights.tensor("\(bn).bias").data, trainable: trainable)
            runningMean = weights.tensor("\(bn).running_mean").data
            runningVar = weights.tensor("\(bn).running_var").data
        } else {
            gamma = nil; beta = nil; runningMean = []; runningVar = []
        }
    }

    var parameters: [Parameter] { [weight, bias, gamma, beta].compactMap { $0 } }
}

/// The U-Net as the trainer sees it: the shared `ModelGraph` walked forward (keeping what backward needs)
/// and in reverse for the gradients. Parameters keep their smp names, so `weights()` saves a checkpoint
/// PyTorch (and every other part of SonoQuant) loads.
///
/// Backward computes only what is needed: parameter gradients of trainable layers, and input gradients only
/// for values that lie above some trainable layer. With a frozen encoder (D-all) nothing below the decoder
/// is differentiated at all.
public final class TrainableUNet {
    public let graph: ModelGraph
    let layers: [ConvLayer]
    /// Index into `layers` for each op of the graph (nil for add / upsample / concat / max-pool).
    private let layerOfOp: [Int?]
    /// Whether the loss gradient must be propagated into each graph value.
    private let needsGradient: [Bool]
    /// Whether backward reads a graph value: the input and output of every convolution (weight gradient,
    /// activation mask) and the input of every max-pool that gradient flows through. The forward of a
    /// training step drops every other value after its last use, so a frozen encoder (D-all) keeps only
    /// the maps the decoder reads.
    private let keptForBackward: [Bool]
    public let trainableGroups: Set<ParameterGroup>

    /// Every parameter in graph order (weight, bias, gamma, beta per conv).
    public let parameters: [Parameter]
    /// `backward` calls so far (Parameter.gradientStep).
    private var backwardSteps = 0
    public var trainableParameters: [Parameter] { parameters.filter { $0.trainable } }
    public var trainableParameterCount: Int { trainableParameters.reduce(0) { $0 + $1.value.count } }

    /// - Parameters:
    ///   - weights: a full checkpoint for the 3-channel (RGB) graph.
    ///   - trainable: groups whose parameters receive gradients and updates.
    ///   - freezeFrozenBatchNormStatistics: run BatchNorm of frozen groups in eval mode during training
    ///     (running statistics used and left unchanged). Default false: as in the paper's code, frozen
    ///     BatchNorm layers still normalise with batch statistics and update their running statistics.
    public init(weights: ModelWeights, trainable: Set<ParameterGroup>, freezeFrozenBatchNormStatistics: Bool = false) {
        graph = weights.graph
        trainableGroups = trainable
        var layers: [ConvLayer] = []
        var layerOfOp: [Int?] = []
        var needsGradient = [Bool](repeating: false, count: graph.values.count)
        for op in graph.ops {
            switch op {
            case .conv(let spec, let input, let output):
                let isTrainable = trainable.contains(spec.group)
                layers.append(ConvLayer(spec: spec, weights: weights, trainable: isTrainable,
                                        batchNormAlwaysEval: freezeFrozenBatchNormStatistics && !isTrainable))
                layerOfOp.append(layers.count - 1)
                needsGradient[output] = needsGradient[input] || isTrainable
            default:
                layerOfOp.append(nil)
                needsGradient[op.output] = op.inputs.contains { needsGradient[$0] }
            }
        }
        var keptForBackward = [Bool](repeating: false, count: graph.values.count)
        for op in graph.ops {
            switch op {
            case .conv(_, let input, let output) where needsGradient[output]:
                keptForBackward[input] = true
                keptForBackward[output] = true
            case .maxPool2x2(let input, let output) where needsGradient[output]:
                keptForBackward[input] = true
            default: break
            }
        }
        self.layers = layers
        self.layerOfOp = layerOfOp
        self.needsGradient = needsGradient
        self.keptForBackward = keptForBackward
        self.parameters = layers.flatMap { $0.parameters }
    }

    /// The current parameters and running statistics as a checkpoint (smp names).
    public func weights() -> ModelWeights {
        var tensors: [String: Tensor] = [:]
        for layer in layers {
            for p in layer.parameters { tensors[p.name] = Tensor(shape: p.shape, data: p.value) }
            if let bn = layer.spec.batchNormPrefix {
                tensors["\(bn).running_mean"] = Tensor(shape: [layer.spec.outChannels], data: layer.runningMean)
                tensors["\(bn).running_var"] = Tensor(shape: [layer.spec.outChannels], data: layer.runningVar)
            }
        }
        return ModelWeights(graph: graph, tensors: tensors)
    }

    /// Running statistics by name ("<bn>.running_mean" / "<bn>.running_var").
    public var runningStatistics: [String: [Float]] {
        var result: [String: [Float]] = [:]
        for layer in layers {
            guard let bn = layer.spec.batchNormPrefix else { continue }
            result["\(bn).running_mean"] = layer.runningMean
            result["\(bn).running_var"] = layer.runningVar
        }
        return result
    }

    func setRunningStatistics(_ stats: [String: [Float]]) {
        for layer in layers {
            guard let bn = layer.spec.batchNormPrefix else { continue }
            if let m = stats["\(bn).running_mean"] { layer.runningMean = m }
            if let v = stats["\(bn).running_var"] { layer.runningVar = v }
        }
    }

    // MARK: Forward

    /// What the forward pass keeps for backward: the graph values backward reads and the BatchNorm caches
    /// of layers gradient flows through.
    struct ForwardCache {
        var values: [FeatureBatch?]
        var batchNorm: [Int: BatchNormCache]
    }

    /// Runs the graph. In training mode BatchNorm uses batch statistics (except frozen-statistics layers)
    /// and updates running statistics; in eval mode everything uses running statistics and nothing is kept.
    func forward(_ input: FeatureBatch, training: Bool, threads: Int) -> (logits: FeatureBatch, cache: ForwardCache) {
        precondition(input.channels == graph.inputChannels, "input has \(input.channels) channels, the model \(graph.inputChannels)")
        var values = [FeatureBatch?](repeating: nil, count: graph.values.count)
        var batchNormCaches: [Int: BatchNormCache] = [:]
        values[0] = input
        // A value is dropped after its last use unless a training step's backward reads it.
        let lastUse = graph.lastUse
        for (index, op) in graph.ops.enumerated() {
            switch op {
            case .conv(let spec, let inputIndex, let output):
                let layer = layers[layerOfOp[index]!]
                let x = values[inputIndex]!
                var z: FeatureBatch
                switch spec.kind {
                case .standard: z = DenseConv.forward(x, weight: layer.weight.value, bias: layer.bias?.value, spec: spec, threads: threads)
                case .depthwise: z = DepthwiseConv.forward(x, weight: layer.weight.value, spec: spec, threads: threads)
                case .transposed: z = TransposedConv2x2.forward(x, weight: layer.weight.value, bias: layer.bias?.value, spec: spec, threads: threads)
                }
                if let gamma = layer.gamma, let beta = layer.beta {
                    if training && !layer.batchNormAlwaysEval {
                        let (cache, mean, variance) = BatchNorm.trainForward(&z, gamma: gamma.value, beta: beta.value, activation: spec.activation,
                                                                             keepNormalized: needsGradient[output], threads: threads)
                        BatchNorm.updateRunningStatistics(runningMean: &layer.runningMean, runningVar: &layer.runningVar,
                                                          mean: mean, biasedVariance: variance, count: z.pixels)
                        if needsGradient[output] { batchNormCaches[index] = cache }
                    } else {
                        let cache = BatchNorm.evalForward(&z, gamma: gamma.value, beta: beta.value, runningMean: layer.runningMean,
                                                          runningVar: layer.runningVar, activation: spec.activation,
                                                          keepCache: training && needsGradient[output], threads: threads)
                        if let cache { batchNormCaches[index] = cache }
                    }
                } else {
                    ActivationLayer.forward(&z, spec.activation, threads: threads)
                }
                values[output] = z
            case .add(let a, let b, let output):
                var sum = values[a]!
                sum.add(values[b]!, threads: threads)
                values[output] = sum
            case .upsample2x(let a, let output):
                values[output] = Upsample2x.forward(values[a]!, threads: threads)
            case .concat(let a, let b, let output):
                values[output] = Concat.forward(values[a]!, values[b]!, threads: threads)
            case .maxPool2x2(let a, let output):
                values[output] = MaxPool2x2.forward(values[a]!, threads: threads)
            }
            for v in op.inputs where lastUse[v] == index && !(training && keptForBackward[v]) { values[v] = nil }
        }
        return (values[graph.output]!, ForwardCache(values: values, batchNorm: batchNormCaches))
    }

    // MARK: Backward

    /// Fills every trainable parameter's `gradient` from the loss gradient at the logits.
    /// Frozen parameters' gradients stay zero; values that need no gradient are never differentiated.
    func backward(_ dLogits: FeatureBatch, cache: ForwardCache, threads: Int) {
        // Every trainable parameter's gradient is assigned below; any the walk does not reach is zeroed at the end.
        let step = backwardSteps
        backwardSteps += 1
        defer {
            for p in parameters where p.trainable && p.gradientStep != step {
                p.gradient = [Float](repeating: 0, count: p.value.count)
                p.gradientStep = step
            }
        }
        guard needsGradient[graph.output] else { return }  // nothing trainable
        var values = cache.values
        var gradients = [FeatureBatch?](repeating: nil, count: graph.values.count)
        gradients[graph.output] = dLogits
        func accumulate(_ g: FeatureBatch, into v: Int) {
            guard needsGradient[v] else { return }
            if gradients[v] == nil { gradients[v] = g } else { gradients[v]!.add(g, threads: threads) }
        }
        for (index, op) in graph.ops.enumerated().reversed() {
            guard var g = gradients[op.output] else { continue }
            gradients[op.output] = nil  // consumed: free it
            switch op {
            case .conv(let spec, let inputIndex, let output):
                let layer = layers[layerOfOp[index]!]
                ActivationLayer.backward(&g, output: values[output]!, spec.activation, threads: threads)
                values[output] = nil
                let wantInputGradient = needsGradient[inputIndex]
                if let gamma = layer.gamma, let beta = layer.beta {
                    let bnCache = cache.batchNorm[index]!
                    let (dz, dGamma, dBeta) = BatchNorm.backward(g, cache: bnCache, gamma: gamma.value,
                                                                 wantInputGradient: true, threads: threads)
                    if layer.trainable { gamma.setGradient(dGamma, step: step); beta.setGradient(dBeta, step: step) }
                    g = dz!
                } else if let bias = layer.bias, layer.trainable {
                    bias.setGradient(ChannelSums.of(g, threads: threads).map { Float($0) }, step: step)
                }
                let x = values[inputIndex]!
                let (dWeight, dInput): ([Float]?, FeatureBatch?)
                switch spec.kind {
                case .standard:
                    (dWeight, dInput) = DenseConv.backward(x: x, dOut: g, weight: layer.weight.value, spec: spec,
                                                           wantWeightGradient: layer.trainable, wantInputGradient: wantInputGradient, threads: threads)
                case .depthwise:
                    (dWeight, dInput) = DepthwiseConv.backward(x: x, dOut: g, weight: layer.weight.value, spec: spec,
                                                               wantWeightGradient: layer.trainable, wantInputGradient: wantInputGradient, threads: threads)
                case .transposed:
                    (dWeight, dInput) = TransposedConv2x2.backward(x: x, dOut: g, weight: layer.weight.value, spec: spec,
                                                                   wantWeightGradient: layer.trainable, wantInputGradient: wantInputGradient, threads: threads)
                }
                if let dWeight { layer.weight.setGradient(dWeight, step: step) }
                if let dInput { accumulate(dInput, into: inputIndex) }
            case .add(let a, let b, _):
                accumulate(g, into: a)
                accumulate(g, into: b)
            case .upsample2x(let a, _):
                accumulate(Upsample2x.backward(g, threads: threads), into: a)
            case .concat(let a, let b, _):
                let (ga, gb) = Concat.backward(g, firstChannels: graph.values[a].channels, threads: threads)
                accumulate(ga, into: a)
                accumulate(gb, into: b)
            case .maxPool2x2(let a, _):
                accumulate(MaxPool2x2.backward(x: values[a]!, dOut: g, threads: threads), into: a)
            }
        }
    }

    // MARK: One training step's forward + loss + backward

    /// Forward in train mode, BCE-with-logits against `targets` ([N, 1, H, W] as NCHW), backward.
    /// Leaves the gradients in `parameters` and returns the loss and the logits (NCHW).
    public func lossAndGradients(input: Tensor, targets: Tensor, threads: Int) -> (loss: Double, logits: Tensor) {
        let (logits, cache) = forward(FeatureBatch(nchw: input), training: true, threads: threads)
        // Logits have one channel, so NHWC and NCHW are the same order.
        let (loss, gradient) = BCEWithLogits.lossAndGradient(logits: logits.data, targets: targets.data, threads: threads)
        let dLogits = FeatureBatch(channels: 1, batch: logits.batch, height: logits.height, width: logits.width, data: gradient)
        backward(dLogits, cache: cache, threads: threads)
        return (loss, logits.nchw())
    }
}
