import Int8Microkernels

/// Parameters of one quantized convolution as the model file stores them (PyTorch weight layout),
/// shared by every int8 conv kernel and its scalar reference.
///
/// Activations are NHWC int8 (channels innermost), real = scale * (q - zeroPoint).
/// Accumulator for output channel c: bias[c] + sum (x - inputZeroPoint) * w[c], in int32, with scale
/// s_in * s_w[c]; then `requantize` with multipliers[c] = s_in * s_w[c] / s_out, + outputZeroPoint,
/// clamped to [outputMin, outputMax] (the fused ReLU / ReLU6, or [-128, 127] for none).
/// Padding pixels hold real 0, i.e. the input zero point: they contribute nothing to the sum.
public struct QuantizedConvParameters: Equatable, Sendable {
    /// The graph's kind (`ConvSpec.Kind`). standard and depthwise: padding kernel / 2, odd kernel.
    /// transposed: PyTorch's ConvTranspose2d with kernel == stride (every input pixel writes its own
    /// kernel x kernel output patch), no padding.
    public let kind: ConvSpec.Kind
    public let kernel: Int
    public let stride: Int
    public let inChannels: Int
    public let outChannels: Int
    /// [out][in][k][k] (dense), [out][1][k][k] (depthwise) or [in][out][k][k] (transposed), symmetric per
    /// output channel (zero point 0).
    public let weights: [Int8]
    /// [out], in units of s_in * s_w[c].
    public let bias: [Int32]
    /// [out]
    public let multipliers: [QuantizedMultiplier]
    public let inputZeroPoint: Int32
    public let outputZeroPoint: Int32
    public let outputMin: Int32
    public let outputMax: Int32

    public init(kind: ConvSpec.Kind, kernel: Int, stride: Int, inChannels: Int, outChannels: Int, weights: [Int8], bias: [Int32],
                multipliers: [QuantizedMultiplier], inputZeroPoint: Int32, outputZeroPoint: Int32, outputMin: Int32 = -128, outputMax: Int32 = 127) {
        precondition(kind != .depthwise || inChannels == outChannels, "depthwise conv needs inChannels == outChannels")
        precondition(weights.count == outChannels * (kind == .depthwise ? 1 : inChannels) * kernel * kernel, "weights count")
        precondition(bias.count == outChannels && multipliers.count == outChannels, "bias / multipliers count")
        precondition(kind == .transposed ? kernel == stride : kernel % 2 == 1 && stride >= 1, "kernel / stride")
        precondition(-128...127 ~= inputZeroPoint && -128...127 ~= outputZeroPoint && -128 <= outputMin && outputMin <= outputMax && outputMax <= 127)
        self.kind = kind; self.kernel = kernel; self.stride = stride
        self.inChannels = inChannels; self.outChannels = outChannels
        self.weights = weights; self.bias = bias; self.multipliers = multipliers
        self.inputZeroPoint = inputZeroPoint; self.outputZeroPoint = outputZeroPoint
        self.outputMin = outputMin; self.outputMax = outputMax
    }

    /// PyTorch's padding = kernel / 2 on every side (none for transposed).
    public var padding: Int { kind == .transposed ? 0 : kernel / 2 }
    public func outputSize(_ n: Int) -> Int { kind == .transposed ? n * stride : (n + 2 * padding - kernel) / stride + 1 }
}

/// The scalar reference for every int8 convolution (dense and depthwise, any kernel and stride):
/// the plain loops the SIMD kernels are checked against, bit for bit.
public func referenceQuantizedConv(_ p: QuantizedConvParameters, input: [Int8], height: Int, width: Int) -> [Int8] {
    precondition(input.count == height * width * p.inChannels)
    if p.kind == .transposed { return referenceQuantizedTransposedConv(p, input: input, height: height, width: width) }
    let outH = p.outputSize(height), outW = p.outputSize(width)
    let k = p.kernel, pad = p.padding
    var output = [Int8](repeating: 0, count: outH * outW * p.outChannels)
    for oy in 0..<outH {
        for ox in 0..<outW {
            for oc in 0..<p.outChannels {
                var acc = p.bias[oc]
                for ky in 0..<k {
                    let iy = oy * p.stride - pad + ky
                    if iy < 0 || iy >= height { continue }
                    for kx in 0..<k {
                        let ix = ox * p.stride - pad + kx
                        if ix < 0 || ix >= width { continue }
                        let pixel = (iy * width + ix) * p.inChannels
                        switch p.kind {
                        case .standard:
                            for ic in 0..<p.inChannels {
                                let w = Int32(p.weights[((oc * p.inChannels + ic) * k + ky) * k + kx])
                                acc += (Int32(input[pixel + ic]) - p.inputZeroPoint) * w
                            }
                        case .depthwise:
                            let w = Int32(p.weights[(oc * k + ky) * k + kx])
                            acc += (Int32(input[pixel + oc]) - p.inputZeroPoint) * w
                        case .transposed:
                            preconditionFailure("unreachable")
                        }
                    }
                }
                let m = p.multipliers[oc]
                output[(oy * outW + ox) * p.outChannels + oc] = requantize(acc, multiplier: m.multiplier, shift: m.shift, zeroPoint: p.outputZeroPoint, min: p.outputMin, max: p.outputMax)
            }
        }
    }
    return output
}

/// A transposed conv with kernel == stride: output pixel (oy, ox) reads only input pixel (oy / s, ox / s),
/// with the weights of tap (oy % s, ox % s): acc = bias[o] + sum_c (x[c] - zp) * W[c][o][oy % s][ox % s].
public func referenceQuantizedTransposedConv(_ p: QuantizedConvParameters, input: [Int8], height: Int, width: Int) -> [Int8] {
    precondition(p.kind == .transposed && input.count == height * width * p.inChannels)
    let s = p.stride, k = p.kernel
    let outH = p.outputSize(height), outW = p.outputSize(width)
    var output = [Int8](repeating: 0, count: outH * outW * p.outChannels)
    for oy in 0..<outH {
        for ox in 0..<outW {
            let pixel = ((oy / s) * width + ox / s) * p.inChannels
            let (dy, dx) = (oy % s, ox % s)
            for oc in 0..<p.outChannels {
                var acc = p.bias[oc]
                for ic in 0..<p.inChannels {
                    let w = Int32(p.weights[((ic * p.outChannels + oc) * k + dy) * k + dx])
                    acc += (Int32(input[pixel + ic]) - p.inputZeroPoint) * w
                }
                let m = p.multipliers[oc]
                output[(oy * outW + ox) * p.outChannels + oc] = requantize(acc, multiplier: m.multiplier, shift: m.shift, zeroPoint: p.outputZeroPoint, min: p.outputMin, max: p.outputMax)
            }
        }
    }
    return output
}

/// Per-channel requantization constants padded to a multiple of `lanes`, in the form the SIMD epilogue loads.
struct PackedRequantization {
    var bias: [Int32]
    var multiplier: [Int32]
    var leftShift: [Int32]
    var rightShift: [Int32]
    let zeroPoint: Int32
    let lo: Int32
    let hi: Int32
    /// Some channel's real multiplier is >= 1 (rare): the epilogue must apply the left shift.
    let needsLeftShift: Bool

    init(_ p: QuantizedConvParameters, paddedCount: Int) {
        let pad = paddedCount - p.outChannels
        bias = p.bias + [Int32](repeating: 0, count: pad)
        multiplier = p.multipliers.map(\.multiplier) + [Int32](repeating: 0, count: pad)
        leftShift = p.multipliers.map { max($0.shift, 0) } + [Int32](repeating: 0, count: pad)
        rightShift = p.multipliers.map { max(-$0.shift, 0) } + [Int32](repeating: 0, count: pad)
        zeroPoint = p.outputZeroPoint; lo = p.outputMin; hi = p.outputMax
        needsLeftShift = p.multipliers.contains { $0.shift > 0 }
    }
}

/// A `PackedRequantization` as the row epilogue reads it: pointers to its per-channel arrays, valid inside
/// `withPointers`, and the epilogue of the kernel path in use.
struct RequantizationPointers {
    let bias: UnsafePointer<Int32>
    let multiplier: UnsafePointer<Int32>
    let leftShift: UnsafePointer<Int32>
    let rightShift: UnsafePointer<Int32>
    let needsLeftShift: Bool
    let zeroPoint: Int32
    let lo: Int32
    let hi: Int32
    let requantizeRow: Int8KernelTable.RequantizeRow

    /// Requantizes one row x 16 outputs of int32 sums (`sums[x * 16 + lane]`, lane = channel - c0) into int8
    /// NHWC at `output + x * pixelStride`, the first `valid` channels (Sources/Int8Microkernels/SIMDRequantization.swift).
    @inline(__always)
    func row(_ sums: UnsafePointer<Int32>, pixels: Int, channel c0: Int, valid: Int, output: UnsafeMutablePointer<Int8>, pixelStride: Int) {
        requantizeRow(sums, pixels, valid, output, pixelStride, bias + c0, multiplier + c0, leftShift + c0, rightShift + c0,
                      needsLeftShift, zeroPoint, lo, hi)
    }
}

extension PackedRequantization {
    func withPointers<Result>(_ kernels: Int8KernelTable, _ body: (RequantizationPointers) -> Result) -> Result {
        bias.withUnsafeBufferPointer { bias in
        multiplier.withUnsafeBufferPointer { multiplier in
        leftShift.withUnsafeBufferPointer { leftShift in
        rightShift.withUnsafeBufferPointer { rightShift in
            body(RequantizationPointers(bias: bias.baseAddress!, multiplier: multiplier.baseAddress!, leftShift: leftShift.baseAddress!,
                                        rightShift: rightShift.baseAddress!, needsLeftShift: needsLeftShift,
                                        zeroPoint: zeroPoint, lo: lo, hi: hi, requantizeRow: kernels.requantizeRow))
        }}}}
    }
}

/// Copies an NHWC int8 image into a zero-bordered int16 buffer holding x - zeroPoint, with `pad` pixels
/// on every side and channels padded (with 0) to `paddedChannels`. Padding then means real 0, and the
/// microkernels multiply int16 x int16 without a zero-point correction term.
func stageInt16(_ input: UnsafePointer<Int8>, height: Int, width: Int, channels: Int, zeroPoint: Int32,
                pad: Int, paddedChannels: Int, into staged: UnsafeMutablePointer<Int16>, threads: Int) {
    let paddedWidth = width + 2 * pad
    let rowElements = paddedWidth * paddedChannels
    let zp = Int16(zeroPoint)
    // Top and bottom border rows.
    for y in 0..<pad {
        (staged + y * rowElements).initialize(repeating: 0, count: rowElements)
        (staged + (pad + height + y) * rowElements).initialize(repeating: 0, count: rowElements)
    }
    parallelChunks(height, threads: threads) { rows in
        for y in rows {
            let row = staged + (y + pad) * rowElements
            row.initialize(repeating: 0, count: pad * paddedChannels)
            (row + (pad + width) * paddedChannels).initialize(repeating: 0, count: pad * paddedChannels)
            let src = input + y * width * channels
            if channels == paddedChannels {
                // One long run: widen sixteen at a time.
                let dst = row + pad * paddedChannels
                let count = width * channels
                var i = 0
                let zpv = SIMD16<Int16>(repeating: zp)
                while i + 16 <= count {
                    let v = widenToInt16(UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Int8>.self))
                    UnsafeMutableRawPointer(dst + i).storeBytes(of: v &- zpv, as: SIMD16<Int16>.self)
                    i += 16
                }
                while i < count { dst[i] = Int16(src[i]) - zp; i += 1 }
            } else {
                for x in 0..<width {
                    let dst = row + (pad + x) * paddedChannels
                    for c in 0..<channels { dst[c] = Int16(src[x * channels + c]) - zp }
                    for c in channels..<paddedChannels { dst[c] = 0 }
                }
            }
        }
    }
}
