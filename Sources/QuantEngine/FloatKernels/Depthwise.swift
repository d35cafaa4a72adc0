import FloatMicrokernels

/// Depthwise 3x3 convolution (one filter per channel, MobileNetV2's spatial step), stride 1 or 2, padding 1.
///
/// NHWC makes it a pure vector operation: 8 consecutive channels of a pixel are one vector, and each of
/// the 9 taps is one multiply-add of the input vector at a fixed offset with that tap's weight vector.
/// The loop runs over 8-channel blocks outside and pixels of a row inside, so a block's 9 weight vectors
/// and bias stay in registers for the whole row. Channels past the last full block use scalar code.

/// Weights of a depthwise 3x3 convolution, packed per 8-channel block: [block][tap] vectors, then bias.
public final class PackedDepthwiseConv {
    public let channels: Int
    public let stride: Int
    let clamp: ActivationClamp
    /// Full 8-channel blocks; channels past `vectorBlocks * 8` are the scalar tail.
    let vectorBlocks: Int
    let weights: UnsafeMutablePointer<FloatVector>
    let bias: UnsafeMutablePointer<FloatVector>
    /// Weights [channel][tap] and bias of the scalar tail (and of the reference), as in PyTorch.
    let scalarWeights: [Float]
    let scalarBias: [Float]
    /// The microkernels of the kernel path this convolution runs on.
    let kernels: FloatKernelTable

    public init(_ conv: FoldedConv, path: KernelPath = .current) {
        kernels = .of(path)
        let spec = conv.spec
        precondition(spec.kind == .depthwise && spec.kernel == 3, "PackedDepthwiseConv: \(spec.weightPrefix) is not a depthwise 3x3 convolution")
        channels = spec.outChannels
        stride = spec.stride
        clamp = ActivationClamp(spec.activation)
        vectorBlocks = channels / 8
        scalarWeights = conv.weight
        scalarBias = conv.bias
        weights = .allocate(capacity: max(1, vectorBlocks * 9))
        bias = .allocate(capacity: max(1, vectorBlocks))
        for b in 0..<vectorBlocks {
            for t in 0..<9 {
                var v = FloatVector()
                for lane in 0..<8 { v[lane] = conv.weight[(b * 8 + lane) * 9 + t] }
                (weights + b * 9 + t).initialize(to: v)
            }
            var v = FloatVector()
            for lane in 0..<8 { v[lane] = conv.bias[b * 8 + lane] }
            (bias + b).initialize(to: v)
        }
    }

    deinit {
        weights.deallocate()
        bias.deallocate()
    }

    public func outputSize(_ n: Int) -> Int { (n + 2 - 3) / stride + 1 }
}

public func depthwiseConv3x3(_ conv: PackedDepthwiseConv, input: FeatureMap, output: FeatureMap, threads: Int) {
    precondition(input.channels == conv.channels && output.channels == conv.channels && input.images == output.images
                 && output.height == conv.outputSize(input.height) && output.width == conv.outputSize(input.width),
                 "depthwiseConv3x3: shapes do not fit the convolution")
    let channels = conv.channels, stride = conv.stride
    let rowStride = input.rowStride
    // Offsets of the 9 taps from the window's centre.
    var taps = [Int]()
    for ky in -1...1 { for kx in -1...1 { taps.append(ky * rowStride + kx * channels) } }
    let inPixelStep = stride * channels
    let (clamp, depthwiseRow) = (conv.clamp, conv.kernels.depthwise3x3Row)
    taps.withUnsafeBufferPointer { tapBuffer in
    let taps = tapBuffer.baseAddress!
    parallelChunks(output.images * output.height, threads: threads) { rows in
        for row in rows {
            let n = row / output.height, oy = row % output.height
            let inRow = UnsafePointer(input.pointer + input.offset(n, oy * stride, 0))
            let outRow = output.pointer + output.offset(n, oy, 0)
            for b in 0..<conv.vectorBlocks {
                depthwiseRow(inRow + b * 8, inPixelStep, outRow + b * 8, channels, output.width, taps, conv.weights + b * 9, conv.bias[b],
                             clamp.lower, clamp.upper)
            }
            // Scalar tail: channels that do not fill a vector.
            for c in (conv.vectorBlocks * 8)..<channels {
                for ox in 0..<output.width {
                    let x = inRow + ox * inPixelStep + c
                    var acc = conv.scalarBias[c]
                    for t in 0..<9 { acc = multiplyAdd(acc, x[taps[t]], conv.scalarWeights[c * 9 + t]) }
                    outRow[ox * channels + c] = clamp.apply(acc)
                }
            }
        }
    }
    }
}

/// Plain-Swift reference: depthwise 3x3 with zero padding, from the folded PyTorch-layout weights.
public func depthwiseConv3x3Reference(_ conv: FoldedConv, input: FeatureMap, output: FeatureMap) {
    let spec = conv.spec
    let clamp = ActivationClamp(spec.activation)
    for n in 0..<output.images {
        for oy in 0..<output.height {
            for ox in 0..<output.width {
                for c in 0..<spec.outChannels {
                    var sum = conv.bias[c]
                    for ky in 0..<3 {
                        for kx in 0..<3 {
                            let iy = oy * spec.stride - 1 + ky, ix = ox * spec.stride - 1 + kx
                            guard iy >= 0, iy < input.height, ix >= 0, ix < input.width else { continue }
                            sum += input[n, iy, ix, c] * conv.weight[c * 9 + ky * 3 + kx]
                        }
                    }
                    output[n, oy, ox, c] = clamp.apply(sum)
                }
            }
        }
    }
}
