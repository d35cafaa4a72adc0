import Foundation

/// The int8 inference engine: walks the gray `ModelGraph` with the kernels of Int8Kernels/.
///
/// Input: the uint8 gray frame (its bytes are the quantized input: real = byte / 255). Activations are
/// NHWC int8 in one preplanned arena per input size: the graph's `ArenaPlan` (the float engine's plan too)
/// gives each value a byte range, reused once every reader of its value has run, so a frame allocates
/// nothing but its output. The int16 staging buffer the convolutions use is planned once too.
/// Output: the int8 logits, dequantized to float.
///
/// Results are bit-identical for every thread count and across architectures: all arithmetic is integer,
/// and each output element is computed by the same integer operations whatever the split.
// @unchecked: after init only `plans` changes, and only under `lock` (see `SegmentationModel`).
public final class Int8UNet: SegmentationModel, @unchecked Sendable {
    public let precision = Precision.int8
    public let graph: ModelGraph
    public let model: Int8Model
    /// The instruction set its kernels run on.
    public let kernelPath: KernelPath
    /// The size it was calibrated at (`Int8Model.calibrationSize`).
    public var inputSize: InputSize? { model.calibrationSize }
    public var hcScale: Double { model.hcScale }

    private enum Step {
        case dense(DenseConvStep, inputZeroPoint: Int32)
        case depthwise(Int8Depthwise3x3, inputZeroPoint: Int32)
        case transposed(Int8TransposedConv2x2, inputZeroPoint: Int32)
        case add(Int8AddParameters)
        case upsample
        case maxPool
        case concat(Int8Rescale, Int8Rescale)
    }
    private let steps: [Step]
    private let lock = NSLock()
    private var plans: [Int: Plan] = [:]

    public init(model: Int8Model, kernelPath: KernelPath = .current) {
        self.model = model
        self.kernelPath = kernelPath
        graph = model.graph
        steps = graph.ops.map { op in
            switch op {
            case .conv(let spec, let input, let output):
                let p = model.convParameters(spec, input: input, output: output)
                switch spec.kind {
                case .standard: return .dense(DenseConvStep(p, path: kernelPath), inputZeroPoint: p.inputZeroPoint)
                case .depthwise: return .depthwise(Int8Depthwise3x3(p, path: kernelPath), inputZeroPoint: p.inputZeroPoint)
                case .transposed: return .transposed(Int8TransposedConv2x2(p, path: kernelPath), inputZeroPoint: p.inputZeroPoint)
                }
            case .add(let a, let b, let output): return .add(model.addParameters(a: a, b: b, output: output))
            case .upsample2x: return .upsample
            case .concat(let a, let b, let output): return .concat(model.rescale(from: a, to: output), model.rescale(from: b, to: output))
            case .maxPool2x2: return .maxPool
            }
        }
    }

    public convenience init(loading path: String) throws {
        self.init(model: try Int8Model(loading: path))
    }

    /// Logits [N, 1, H, W] for an input [N, 1 or 3, H, W] in [0, 1]: each frame is turned into the uint8
    /// gray frame first (3 channels averaged; byte = round(255 x), clamped), exactly what a camera frame is.
    public func logits(for input: Tensor, threads: Int) throws -> Tensor {
        try validate(input)
        let (n, h, w) = (input.shape[0], input.shape[2], input.shape[3])
        var result = [Float](); result.reserveCapacity(n * h * w)
        for image in 0..<n {
            result += try logits(frame: Self.grayFrame(input, image: image), width: w, height: h, threads: threads)
        }
        return Tensor(shape: [n, 1, h, w], data: result)
    }

    /// Logits (height * width floats) for one uint8 gray frame (row-major bytes).
    public func logits(frame: [UInt8], width: Int, height: Int, threads: Int) throws -> [Float] {
        let q = model.activations[graph.output]
        return try quantizedLogits(frame: frame, width: width, height: height, threads: threads).map { q.dequantize($0) }
    }

    /// The raw int8 logits (real = scale * (q - zeroPoint) of the output value): what the bit-exactness
    /// checks (threads, architectures, the scalar reference) compare.
    public func quantizedLogits(frame: [UInt8], width: Int, height: Int, threads: Int) throws -> [Int8] {
        try checkSize(width: width, height: height)
        guard frame.count == width * height else {
            throw SonoQuantError("input", "frame has \(frame.count) bytes, expected \(width) x \(height) = \(width * height)", kind: .badInput)
        }
        lock.lock()
        defer { lock.unlock() }
        let plan = self.plan(width: width, height: height)
        let input = plan.pointer(0)
        frame.withUnsafeBufferPointer { bytes in
            for i in 0..<bytes.count { input[i] = Int8(bitPattern: bytes[i] &- 128) }
        }
        for index in steps.indices { run(index, plan: plan, threads: max(1, threads)) }
        return Array(UnsafeBufferPointer(start: plan.pointer(graph.output), count: width * height))
    }

    private func checkSize(width: Int, height: Int) throws {
        try graph.checkFrameSize(width: width, height: height, subject: "input")
        guard width * height <= 4096 * 4096 else {
            throw SonoQuantError("input", "frame size \(width)x\(height) is too large (at most 4096 x 4096 pixels)", kind: .badInputSize)
        }
    }

    private func run(_ index: Int, plan: Plan, threads: Int) {
        let op = graph.ops[index]
        let out = plan.pointer(op.output)
        let info = graph.values[op.inputs[0]]
        let h = plan.height / info.downsample, w = plan.width / info.downsample
        switch steps[index] {
        case .dense(let step, let zp):
            step.run(input: plan.pointer(op.inputs[0]), height: h, width: w, output: out, scratch: plan.scratch, threads: threads, inputZeroPoint: zp)
        case .depthwise(let conv, let zp):
            conv.run(input: plan.pointer(op.inputs[0]), height: h, width: w, output: out, scratch: plan.scratch, threads: threads, inputZeroPoint: zp)
        case .transposed(let conv, let zp):
            conv.run(input: plan.pointer(op.inputs[0]), height: h, width: w, output: out, scratch: plan.scratch, threads: threads, inputZeroPoint: zp)
        case .maxPool:
            int8MaxPool2x2(plan.pointer(op.inputs[0]), height: h, width: w, channels: info.channels, output: out, threads: threads)
        case .add(let p):
            int8Add(plan.pointer(op.inputs[0]), plan.pointer(op.inputs[1]), count: h * w * info.channels, output: out, p, threads: threads, path: kernelPath)
        case .upsample:
            int8Upsample2x(plan.pointer(op.inputs[0]), height: h, width: w, channels: info.channels, output: out, threads: threads)
        case .concat(let ra, let rb):
            int8Concat(plan.pointer(op.inputs[0]), channelsA: info.channels, plan.pointer(op.inputs[1]), channelsB: graph.values[op.inputs[1]].channels,
                       pixels: h * w, output: out, rescaleA: ra, rescaleB: rb, threads: threads, path: kernelPath)
        }
    }

    /// Time per graph op, in milliseconds: the fastest of `repeats` runs of each op (after one full run to
    /// plan the arena; the fastest is the least disturbed by other processes), named like FloatUNet.profile's
    /// ops so the two can be compared line by line.
    /// Refuses an input `logits(for:)` cannot take: not [N >= 1, 1 or 3, H, W], a non-finite value, or a size
    /// the graph or the engine cannot run.
    private func validate(_ input: Tensor) throws {
        guard input.shape.count == 4, input.shape[1] == 1 || input.shape[1] == 3 else {
            throw SonoQuantError("input", "expected a tensor [N, 1 or 3, H, W], got shape \(input.shape)", kind: .badInput)
        }
        guard input.shape[0] >= 1 else { throw SonoQuantError("input", "batch size is \(input.shape[0]); need at least one image", kind: .badInput) }
        if let bad = input.data.firstIndex(where: { !$0.isFinite }) {
            throw SonoQuantError("input", "holds \(input.data[bad]) at index \(bad); frames are finite values in [0, 1]", kind: .badInput)
        }
        try checkSize(width: input.shape[3], height: input.shape[2])
    }

    /// Image `image` of an [N, 1 or 3, H, W] tensor as the uint8 gray frame (channels averaged).
    static func grayFrame(_ input: Tensor, image: Int) -> [UInt8] {
        let (c, h, w) = (input.shape[1], input.shape[2], input.shape[3])
        return (0..<(h * w)).map { i in
            var sum: Float = 0
            for channel in 0..<c { sum += input.data[(image * c + channel) * h * w + i] }
            return ActivationQuantization.frameByte(sum / Float(c))
        }
    }

    /// `profile(frame:...)` of the first image of an input tensor, as `logits(for:)` would see it.
    public func profile(_ input: Tensor, threads: Int, repeats: Int) throws -> [(op: String, milliseconds: Double)] {
        try validate(input)
        return try profile(frame: Self.grayFrame(input, image: 0), width: input.shape[3], height: input.shape[2], threads: threads, repeats: repeats)
    }

    public func profile(frame: [UInt8], width: Int, height: Int, threads: Int, repeats: Int = 5) throws -> [(op: String, milliseconds: Double)] {
        _ = try quantizedLogits(frame: frame, width: width, height: height, threads: threads)
        lock.lock()
        defer { lock.unlock() }
        let plan = self.plan(width: width, height: height)
        return timeEachOp(of: graph, width: width, height: height, repeats: repeats) { index in
            run(index, plan: plan, threads: max(1, threads))
        }
    }

    /// Bytes of the activation arena for a frame of this size (what one inference keeps live at most).
    public func arenaBytes(width: Int, height: Int) -> Int {
        lock.lock(); defer { lock.unlock() }
        return plan(width: width, height: height).arenaBytes
    }

    private func plan(width: Int, height: Int) -> Plan {
        let key = height << 32 | width
        if let plan = plans[key] { return plan }
        if plans.count >= 4 { plans.removeAll() }  // bound memory when sizes keep changing
        var scratch = 0
        for (index, op) in graph.ops.enumerated() {
            let info = graph.values[op.inputs[0]]
            let h = height / info.downsample, w = width / info.downsample
            switch steps[index] {
            case .dense(let step, _): scratch = max(scratch, step.scratchCount(height: h, width: w))
            case .depthwise(let conv, _): scratch = max(scratch, conv.scratchCount(height: h, width: w))
            case .transposed(let conv, _): scratch = max(scratch, conv.scratchCount(height: h, width: w))
            default: break
            }
        }
        let plan = Plan(graph: graph, width: width, height: height, scratchCount: scratch)
        plans[key] = plan
        return plan
    }

    /// Where each graph value lives for one input size.
    private final class Plan {
        let width: Int, height: Int
        let offsets: [Int]
        let arenaBytes: Int
        let arena: UnsafeMutablePointer<Int8>
        let scratch: UnsafeMutablePointer<Int16>
        let scratchCount: Int

        init(graph: ModelGraph, width: Int, height: Int, scratchCount: Int) {
            self.width = width; self.height = height
            // The graph's arena plan in bytes, each range cache-line aligned.
            let plan = graph.arenaPlan(storage: { v in
                let info = graph.values[v]
                return (height / info.downsample) * (width / info.downsample) * info.channels
            }, alignment: 64)
            offsets = plan.offsets
            arenaBytes = plan.size
            arena = .allocate(capacity: max(plan.size, 64))
            arena.initialize(repeating: 0, count: max(plan.size, 64))
            self.scratchCount = max(scratchCount, 1)
            scratch = .allocate(capacity: self.scratchCount)
            scratch.initialize(repeating: 0, count: self.scratchCount)
        }

        func pointer(_ value: Int) -> UnsafeMutablePointer<Int8> { arena + offsets[value] }

        deinit {
            arena.deallocate()
            scratch.deallocate()
        }
    }
}

/// A dense convolution of the int8 engine: on a path with 4-way dot products, `Int8DotProductConv`; else
/// Winograd (`Int8Winograd3x3`) where it applies and the input size allows, the direct kernel otherwise.
/// The direct kernel's packed weights are made on first use, so a model whose sizes always suit Winograd
/// (the MobileNetV2 U-Net at sizes that are multiples of 32) does not hold the layer's weights twice.
/// Used under `Int8UNet`'s lock.
final class DenseConvStep {
    private let dotProduct: Int8DotProductConv?
    private let winograd: Int8Winograd3x3?
    private let parameters: QuantizedConvParameters
    private let path: KernelPath
    private var directKernel: Int8DenseConv?

    init(_ p: QuantizedConvParameters, path: KernelPath) {
        parameters = p
        self.path = path
        dotProduct = Int8DotProductConv(p, path: path)
        // With 4-way dot products the direct kernel beats Winograd's int16 GEMMs on every layer of the
        // MobileNetV2 U-Net (1376 -> 256 at 12x8: 2.42 vs 3.04 ms; 152 -> 64 at 48x32: 0.81 vs 1.93 ms;
        // docs/PERFORMANCE.md, "int8 kernel paths"), so Winograd serves the int16 paths only.
        winograd = dotProduct == nil ? Int8Winograd3x3(p, path: path) : nil
        directKernel = winograd == nil && dotProduct == nil ? Int8DenseConv(p, path: path) : nil
    }

    /// The one place that picks the kernel for an input size.
    private func winograd(height: Int, width: Int) -> Int8Winograd3x3? {
        guard let winograd, winograd.supports(height: height, width: width) else { return nil }
        return winograd
    }

    private var direct: Int8DenseConv {
        if let directKernel { return directKernel }
        let kernel = Int8DenseConv(parameters, path: path)
        directKernel = kernel
        return kernel
    }

    func scratchCount(height: Int, width: Int) -> Int {
        if let winograd = winograd(height: height, width: width) { return winograd.scratchCount(height: height, width: width) }
        if let dotProduct { return dotProduct.scratchCount(height: height, width: width) }
        return direct.scratchCount(height: height, width: width)
    }

    func run(input: UnsafePointer<Int8>, height: Int, width: Int, output: UnsafeMutablePointer<Int8>,
             scratch: UnsafeMutablePointer<Int16>, threads: Int, inputZeroPoint: Int32) {
        if let winograd = winograd(height: height, width: width) {
            winograd.run(input: input, height: height, width: width, output: output, scratch: scratch, threads: threads, inputZeroPoint: inputZeroPoint)
        } else if let dotProduct {
            dotProduct.run(input: input, height: height, width: width, output: output, scratch: scratch, threads: threads, inputZeroPoint: inputZeroPoint)
        } else {
            direct.run(input: input, height: height, width: width, output: output, scratch: scratch, threads: threads, inputZeroPoint: inputZeroPoint)
        }
    }
}

extension Int8UNet {
    /// The same network computed with the scalar reference kernels only (slow; for tests on small frames):
    /// the SIMD engine must match it bit for bit.
    public func referenceQuantizedLogits(frame: [UInt8], width: Int, height: Int) throws -> [Int8] {
        try checkSize(width: width, height: height)
        var values = [[Int8]](repeating: [], count: graph.values.count)
        values[0] = frame.map { Int8(bitPattern: $0 &- 128) }
        for op in graph.ops {
            let info = graph.values[op.inputs[0]]
            let h = height / info.downsample, w = width / info.downsample
            switch op {
            case .conv(let spec, let i, let o):
                values[o] = referenceQuantizedConv(model.convParameters(spec, input: i, output: o), input: values[i], height: h, width: w)
            case .add(let a, let b, let o):
                values[o] = referenceAdd(values[a], values[b], model.addParameters(a: a, b: b, output: o))
            case .upsample2x(let i, let o):
                values[o] = referenceUpsample2x(values[i], height: h, width: w, channels: info.channels)
            case .concat(let a, let b, let o):
                values[o] = referenceConcat(values[a], channelsA: info.channels, values[b], channelsB: graph.values[b].channels,
                                            rescaleA: model.rescale(from: a, to: o), rescaleB: model.rescale(from: b, to: o))
            case .maxPool2x2(let i, let o):
                values[o] = referenceMaxPool2x2(values[i], height: h, width: w, channels: info.channels)
            }
        }
        return values[graph.output]
    }
}
