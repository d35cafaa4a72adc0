import Foundation

/// The float32 inference engine: walks `ModelGraph` with the kernels of FloatKernels/.
///
/// At load: BatchNorm is folded into each convolution (`ModelWeights.folded`) and weights are packed for
/// the SIMD kernels. Per input shape: an arena is planned once (which buffer holds which graph value,
/// reusing a buffer once its value is dead) and kept for later calls of the same shape, so a frame
/// allocates nothing but its output tensor. Activations are NHWC with a zero border (`FeatureMap`).
/// Every kernel splits its work with `parallelChunks`, and each output element is computed by the same
/// code in the same order whatever the split, so results do not depend on the thread count.
// @unchecked: after init only `arenas` changes, and only under `lock` (see `SegmentationModel`).
public final class FloatUNet: SegmentationModel, @unchecked Sendable {
    public let precision = Precision.float32
    /// The graph of the weights it was built from (1- or 3-channel).
    public let graph: ModelGraph
    /// The instruction set its kernels run on.
    public let kernelPath: KernelPath
    /// The size it was trained at, when its file records it.
    public let inputSize: InputSize?
    public let hcScale: Double

    private enum Step {
        case dense(PackedDenseConv)
        case winograd(PackedWinogradConv)
        case depthwise(PackedDepthwiseConv)
        case transposed(PackedTransposedConv2x2)
        case add, upsample, concat, maxPool
    }

    /// One step per graph op (the graph's ops and the steps share indices).
    private let steps: [Step]
    /// The first convolution for each input channel count it accepts (1: RGB weights summed; 3: as PyTorch).
    private let firstConvs: [Int: PackedDenseConv]
    private let lock = NSLock()
    private var arenas: [ArenaKey: Arena] = [:]

    public convenience init(weights: ModelWeights, kernelPath: KernelPath = .current, inputSize: InputSize? = nil, hcScale: Double = 1) {
        var copy = weights  // shares the caller's tensors: releasing them from the copy frees nothing
        self.init(releasing: &copy, kernelPath: kernelPath, inputSize: inputSize, hcScale: hcScale)
    }

    /// Builds the engine and removes each tensor from `weights` as soon as its layer is packed, so that
    /// the float tensors and the packed weights are not all alive at once (the baseline U-Net's peak at
    /// load). `weights` is left without tensors.
    public init(releasing weights: inout ModelWeights, kernelPath: KernelPath = .current, inputSize: InputSize? = nil, hcScale: Double = 1) {
        graph = weights.graph
        self.kernelPath = kernelPath
        self.inputSize = inputSize
        self.hcScale = hcScale
        // The same weights serve a gray and an RGB input: only the first convolution differs. The other
        // channel count's first conv is packed first, while its weights are still there.
        var otherFirstConvs: [Int: PackedDenseConv] = [:]
        for channels in [1, 3] where channels != graph.inputChannels {
            let other = graph.architecture.graph(inputChannels: channels)
            otherFirstConvs[channels] = PackedDenseConv(weights.folded(other.convs[0]), path: kernelPath)
        }
        var steps: [Step] = []
        for op in graph.ops {
            switch op {
            case .conv(let spec, _, _):
                let folded = weights.folded(spec)
                if spec.kind == .depthwise {
                    steps.append(.depthwise(PackedDepthwiseConv(folded, path: kernelPath)))
                } else if spec.kind == .transposed {
                    steps.append(.transposed(PackedTransposedConv2x2(folded, path: kernelPath)))
                } else if Self.useWinograd(spec, graph: graph, output: op.output) {
                    steps.append(.winograd(PackedWinogradConv(folded, path: kernelPath)))
                } else {
                    steps.append(.dense(PackedDenseConv(folded, path: kernelPath)))
                }
                for name in spec.tensorNames { weights.tensors[name] = nil }
            case .add: steps.append(.add)
            case .upsample2x: steps.append(.upsample)
            case .concat: steps.append(.concat)
            case .maxPool2x2: steps.append(.maxPool)
            }
        }
        self.steps = steps
        var firstConvs = otherFirstConvs
        if case .dense(let first) = steps.first { firstConvs[graph.inputChannels] = first }
        self.firstConvs = firstConvs
    }

    /// When Winograd F(2x2, 3x3) beats the direct kernel (measured per layer with `latency --profile`
    /// at 192x128, docs/PERFORMANCE.md): its input and output transforms cost per channel what the saved
    /// multiply-adds gain per channel pair, so both channel counts must be large enough; and each of its
    /// 16 GEMMs reads a transformed weight matrix of in x out floats, used by only one row per 2x2 output
    /// block, so that matrix must stay in L2 (decoder block 0's conv1, 1376 x 256, does not and is
    /// memory-bound with Winograd).
    static let winogradMinimumChannels = 64
    static let winogradMaximumWeightBytesPerPosition = 512 << 10

    /// Winograd for 3x3 stride-1 convolutions whose output sides are even for every accepted input size
    /// (sides are multiples of `sizeMultiple`, so the output is sizeMultiple / downsample times an integer).
    static func useWinograd(_ spec: ConvSpec, graph: ModelGraph, output: Int) -> Bool {
        let downsample = graph.values[output].downsample
        let evenSides = graph.sizeMultiple % downsample == 0 && (graph.sizeMultiple / downsample) % 2 == 0
        return evenSides && PackedWinogradConv.supports(spec, outputHeight: 2, outputWidth: 2)
            && spec.inChannels >= winogradMinimumChannels && spec.outChannels >= winogradMinimumChannels
            && spec.inChannels * spec.outChannels * MemoryLayout<Float>.size <= winogradMaximumWeightBytesPerPosition
    }

    public func logits(for input: Tensor, threads: Int) throws -> Tensor {
        try run(input, threads: threads, observe: nil)
    }

    /// Runs the network on an NCHW input and returns the logits [N, 1, H, W].
    ///
    /// - Parameter observe: if given, called with every graph value (0 = the input) as an NCHW tensor,
    ///   in graph order, as soon as it is computed (the calibrator's activation observers use this).
    public func run(_ input: Tensor, threads: Int, observe: ((_ value: Int, _ tensor: Tensor) -> Void)?) throws -> Tensor {
        let key = try validate(input)
        lock.lock()
        defer { lock.unlock() }
        let arena: Arena
        if let existing = arenas[key] {
            arena = existing
        } else {
            if arenas.count >= 4 { arenas.removeAll() }  // bound memory when sizes keep changing
            arena = Arena(graph: graph, key: key, scratch: scratchCount(key))
            arenas[key] = arena
        }
        let threads = max(1, threads)
        if arena.zeroInputBorder { arena.maps[0].zeroBorder() }
        arena.maps[0].load(input)
        observe?(0, arena.maps[0].tensor())
        for index in graph.ops.indices {
            runStep(index, arena: arena, inputChannels: key.channels, threads: threads)
            if let observe { observe(graph.ops[index].output, arena.maps[graph.ops[index].output].tensor()) }
        }
        return arena.maps[graph.output].tensor()
    }

    private func runStep(_ index: Int, arena: Arena, inputChannels: Int, threads: Int) {
        let op = graph.ops[index]
        let output = arena.maps[op.output]
        if arena.zeroBorderBefore[index] { output.zeroBorder() }
        let inputs = op.inputs.map { arena.maps[$0] }
        switch steps[index] {
        case .dense(let conv):
            denseConv(index == 0 ? firstConvs[inputChannels]! : conv, input: inputs[0], output: output, threads: threads)
        case .winograd(let conv):
            winogradConv3x3(conv, input: inputs[0], output: output, transformed: arena.scratchTransformed,
                            products: arena.scratchProducts, threads: threads)
        case .depthwise(let conv):
            depthwiseConv3x3(conv, input: inputs[0], output: output, threads: threads)
        case .add:
            addMaps(inputs[0], inputs[1], output: output, threads: threads)
        case .upsample:
            upsample2x(inputs[0], output: output, threads: threads)
        case .concat:
            concatChannels(inputs[0], inputs[1], output: output, threads: threads)
        case .transposed(let conv):
            transposedConv2x2(conv, input: inputs[0], output: output, threads: threads)
        case .maxPool:
            maxPool2x2(inputs[0], output: output, threads: threads)
        }
    }

    /// Time per graph op, in milliseconds: the fastest of `repeats` runs of each op (after one full run
    /// to plan the arena; the fastest, as the least disturbed by other processes). Shows where a frame's time goes (`sonoquant latency --profile`).
    public func profile(_ input: Tensor, threads: Int, repeats: Int) throws -> [(op: String, milliseconds: Double)] {
        _ = try run(input, threads: threads, observe: nil)
        let key = try validate(input)
        lock.lock()
        defer { lock.unlock() }
        guard let arena = arenas[key] else { return [] }
        return timeEachOp(of: graph, width: key.width, height: key.height, repeats: repeats, convKind: { index in
            if case .winograd = self.steps[index] { return "winograd" }
            return nil
        }) { index in
            runStep(index, arena: arena, inputChannels: key.channels, threads: max(1, threads))
        }
    }

    /// Scratch floats the Winograd steps need for this input shape (transformed input, products).
    private func scratchCount(_ key: ArenaKey) -> (transformed: Int, products: Int) {
        var result = (transformed: 0, products: 0)
        for (index, op) in graph.ops.enumerated() {
            guard case .winograd(let conv) = steps[index] else { continue }
            let downsample = graph.values[op.output].downsample
            let need = conv.scratchCount(images: key.images, outputHeight: key.height / downsample, outputWidth: key.width / downsample)
            result = (max(result.transformed, need.transformed), max(result.products, need.products))
        }
        return result
    }

    /// Checks the input shape and returns the arena key for it.
    private func validate(_ input: Tensor) throws -> ArenaKey {
        let subject = "input tensor"
        guard input.shape.count == 4 else {
            throw SonoQuantError(subject, "expected 4 dimensions [N, C, H, W], got shape \(input.shape)", kind: .badInput)
        }
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        guard n >= 1 else { throw SonoQuantError(subject, "batch size is \(n); need at least one image", kind: .badInput) }
        if let bad = input.data.firstIndex(where: { !$0.isFinite }) {
            throw SonoQuantError(subject, "holds \(input.data[bad]) at index \(bad); frames are finite values in [0, 1]", kind: .badInput)
        }
        guard firstConvs[c] != nil else {
            let accepted = firstConvs.keys.sorted().map(String.init).joined(separator: " or ")
            throw SonoQuantError(subject, "has \(c) channels; this model takes \(accepted) (gray or RGB) channels", kind: .badInput)
        }
        try graph.checkFrameSize(width: w, height: h, subject: subject)
        return ArenaKey(images: n, channels: c, height: h, width: w)
    }
}

private struct ArenaKey: Hashable {
    let images, channels, height, width: Int
}

/// Preplanned activation memory for one input shape: a feature map per graph value in one buffer, at the
/// offsets of the graph's `ArenaPlan` (values whose lifetimes do not overlap share memory).
private final class Arena {
    private let buffer: UnsafeMutablePointer<Float>
    /// Feature map of each graph value (views into `buffer`).
    private(set) var maps: [FeatureMap] = []
    /// Whether op i's output shares memory with another value, so its border must be re-zeroed before op i
    /// writes its interior (kernels never write a border; a fresh arena is zero).
    private(set) var zeroBorderBefore: [Bool] = []
    /// The same for the input, before it is loaded.
    private(set) var zeroInputBorder = false

    /// Scratch memory of the Winograd convolutions (shared by all of them: they run one at a time).
    let scratchTransformed: UnsafeMutablePointer<Float>
    let scratchProducts: UnsafeMutablePointer<Float>

    init(graph: ModelGraph, key: ArenaKey, scratch: (transformed: Int, products: Int)) {
        scratchTransformed = .allocate(capacity: max(1, scratch.transformed))
        scratchProducts = .allocate(capacity: max(1, scratch.products))
        let values = graph.values
        func shape(_ v: Int) -> (h: Int, w: Int, c: Int) {
            let info = values[v]
            return (key.height / info.downsample, key.width / info.downsample, v == 0 ? key.channels : info.channels)
        }
        // Ranges start on 64-byte boundaries (16 floats), as separately allocated maps would.
        let plan = graph.arenaPlan(storage: { v in
            let s = shape(v)
            return FeatureMap.storageCount(images: key.images, height: s.h, width: s.w, channels: s.c)
        }, alignment: 16)
        zeroInputBorder = plan.sharesMemory[0]
        zeroBorderBefore = graph.ops.map { plan.sharesMemory[$0.output] }
        buffer = .allocate(capacity: max(plan.size, 16))
        buffer.initialize(repeating: 0, count: max(plan.size, 16))
        for v in 0..<values.count {
            let s = shape(v)
            maps.append(FeatureMap(pointer: buffer + plan.offsets[v], images: key.images, height: s.h, width: s.w, channels: s.c))
        }
    }

    deinit {
        buffer.deallocate()
        scratchTransformed.deallocate()
        scratchProducts.deallocate()
    }
}
