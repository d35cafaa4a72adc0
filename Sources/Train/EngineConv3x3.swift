import QuantEngine

// 3x3 dense convolutions of the trainer on the inference engine's float kernels (`PackedDenseConv` +
// `denseConv`: an indirect GEMM over NHWC maps with a zero border, on the CPU's best kernel path) instead
// of im2col + OpenBLAS. im2col materialises nine copies of the input for every forward and backward; the
// engine's tiles read the nine taps in place, so the only extra traffic is one layout change of the input
// and one of the output (channel-major [C][N][H][W] <-> NHWC).
//
// The forward is the engine's convolution as it is. The input gradient of a stride-1, padding-1 3x3
// convolution is itself one: dX[c][q] = sum over o, t of W[o][c][t] dZ[o][q - offset(t)], and
// -offset(ky, kx) = offset(2 - ky, 2 - kx), so dX = conv(dZ, W') with W'[c][o][ky][kx] = W[o][c][2-ky][2-kx]
// (in and out swapped, taps flipped): a gather, where col2im scattered. Weight gradients stay on GEMM.

enum EngineConv3x3 {
    /// Whether `spec` runs here: 3x3 dense, padding 1 (the engine's border is one pixel).
    static func supports(_ spec: ConvSpec) -> Bool {
        spec.kind == .standard && spec.kernel == 3 && spec.padding == 1 && (spec.stride == 1 || spec.stride == 2)
    }

    /// z = conv(x, W) + bias, no activation (BatchNorm and the activation are the trainer's own layers).
    static func forward(_ x: FeatureBatch, weight: [Float], bias: [Float]?, spec: ConvSpec, threads: Int) -> FeatureBatch {
        let linear = linearSpec(spec, inChannels: spec.inChannels, outChannels: spec.outChannels, stride: spec.stride)
        let conv = PackedDenseConv(FoldedConv(spec: linear, weight: weight, bias: bias ?? [Float](repeating: 0, count: spec.outChannels)))
        return run(conv, on: x, threads: threads)
    }

    /// dX of a stride-1 3x3 convolution: the convolution of dZ with the transposed, flipped weights.
    static func inputGradient(_ dOut: FeatureBatch, weight: [Float], spec: ConvSpec, threads: Int) -> FeatureBatch {
        precondition(spec.stride == 1, "EngineConv3x3.inputGradient: stride-1 convolutions only")
        let (cin, cout) = (spec.inChannels, spec.outChannels)
        var flipped = [Float](repeating: 0, count: weight.count)
        for o in 0..<cout {
            for c in 0..<cin {
                for t in 0..<9 { flipped[(c * cout + o) * 9 + (8 - t)] = weight[(o * cin + c) * 9 + t] }
            }
        }
        let adjoint = linearSpec(spec, inChannels: cout, outChannels: cin, stride: 1)
        let conv = PackedDenseConv(FoldedConv(spec: adjoint, weight: flipped, bias: [Float](repeating: 0, count: cin)))
        return run(conv, on: dOut, threads: threads)
    }

    static func linearSpec(_ spec: ConvSpec, inChannels: Int, outChannels: Int, stride: Int) -> ConvSpec {
        ConvSpec(weightPrefix: spec.weightPrefix, batchNormPrefix: nil, hasBias: true, kind: .standard, kernel: 3, stride: stride,
                 inChannels: inChannels, outChannels: outChannels, activation: .none, group: spec.group)
    }

    static func run(_ conv: PackedDenseConv, on x: FeatureBatch, threads: Int) -> FeatureBatch {
        let input = FeatureMapBuffer(images: x.batch, height: x.height, width: x.width, channels: x.channels)
        copy(x, into: input.map, threads: threads)
        let output = FeatureMapBuffer(images: x.batch, height: conv.outputSize(x.height), width: conv.outputSize(x.width),
                                      channels: conv.outChannels)
        denseConv(conv, input: input.map, output: output.map, threads: threads)
        return batch(from: output.map, threads: threads)
    }

    /// Channel-major [C][N][H][W] -> the interior of an NHWC map (its border stays zero).
    static func copy(_ x: FeatureBatch, into map: FeatureMap, threads: Int) {
        let (n, h, w, channels) = (x.batch, x.height, x.width, x.channels)
        x.data.withUnsafeBufferPointer { source in
            let source = source.baseAddress!
            parallelChunks(n * h, threads: threads) { rows in
                for row in rows {  // row = image * h + y
                    let image = row / h, y = row % h
                    let target = map.pointer + map.offset(image, y, 0)
                    for c in 0..<channels {
                        let sourceRow = source + ((c * n + image) * h + y) * w
                        for i in 0..<w { target[i * channels + c] = sourceRow[i] }
                    }
                }
            }
        }
    }

    /// The interior of an NHWC map -> channel-major [C][N][H][W].
    static func batch(from map: FeatureMap, threads: Int) -> FeatureBatch {
        let (n, h, w, channels) = (map.images, map.height, map.width, map.channels)
        var out = FeatureBatch(zerosChannels: channels, batch: n, height: h, width: w)
        out.data.withUnsafeMutableBufferPointer { target in
            let target = target.baseAddress!
            parallelChunks(n * h, threads: threads) { rows in
                for row in rows {
                    let image = row / h, y = row % h
                    let source = UnsafePointer(map.pointer + map.offset(image, y, 0))
                    for c in 0..<channels {
                        let targetRow = target + ((c * n + image) * h + y) * w
                        for i in 0..<w { targetRow[i] = source[i * channels + c] }
                    }
                }
            }
        }
        return out
    }
}
