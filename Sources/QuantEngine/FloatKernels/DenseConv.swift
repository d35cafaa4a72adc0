/// Dense (non-depthwise) convolution, 1x1 or 3x3, stride 1 or 2, as an indirect GEMM in the manner of
/// XNNPACK's igemm: output pixels x output channels, with K = taps x input channels.
///
/// For an output pixel the 3x3 taps are nine runs of `inChannels` floats at fixed offsets from the
/// pixel's input position (NHWC with a zero border, see `FeatureMap`), so one microkernel serves
/// 1x1 (one tap) and 3x3 (nine taps) at either stride; no im2col buffer is built.
///
/// Microkernel: a tile of 6 output pixels x 16 output channels held in 12 vector accumulators
/// (12 of the 16 ymm registers on AVX2). Each step of K loads two weight vectors and broadcasts one
/// input value per pixel, then does 12 multiply-adds: 8 loads per 12 FMAs keeps the FMA units busy.
/// Weights are packed once at load time so the microkernel reads them as one linear stream.

/// Weights and bias of one dense convolution, packed for the microkernel.
///
/// Layout: output channels in panels of 16 (two 8-lane blocks; the last panel may have one block).
/// Panel p holds, for each tap t (ky * k + kx) and input channel c, its blocks' weights for output
/// channels 16p ..< 16p + 16 (zero past `outChannels`).
public final class PackedDenseConv {
    public let kernel: Int
    public let stride: Int
    public let inChannels: Int
    public let outChannels: Int
    let clamp: ActivationClamp
    /// ceil(outChannels / 8)
    let blocks: Int
    let panels: Int
    let weights: UnsafeMutablePointer<FloatVector>
    /// Bias per 8-channel block (zero past `outChannels`).
    let bias: UnsafeMutablePointer<FloatVector>

    public var taps: Int { kernel * kernel }
    public var padding: Int { kernel / 2 }

    /// Packs a folded convolution (weight [out][in][k][k]).
    public init(_ conv: FoldedConv) {
        let spec = conv.spec
        precondition(spec.kind == .standard, "PackedDenseConv: \(spec.weightPrefix) is not a dense convolution")
        precondition(spec.kernel == 1 || spec.kernel == 3, "PackedDenseConv: kernel \(spec.kernel) unsupported")
        kernel = spec.kernel
        stride = spec.stride
        inChannels = spec.inChannels
        outChannels = spec.outChannels
        clamp = ActivationClamp(spec.activation)
        blocks = (outChannels + 7) / 8
        panels = (blocks + 1) / 2
        let taps = kernel * kernel
        weights = .allocate(capacity: blocks * taps * inChannels)
        bias = .allocate(capacity: blocks)
        func weight(_ o: Int, _ c: Int, _ t: Int) -> Float {
            o < outChannels ? conv.weight[(o * inChannels + c) * taps + t] : 0
        }
        var next = 0
        for panel in 0..<panels {
            let width = panelBlocks(panel)
            for t in 0..<taps {
                for c in 0..<inChannels {
                    for b in 0..<width {
                        var v = FloatVector()
                        for lane in 0..<8 { v[lane] = weight(panel * 16 + b * 8 + lane, c, t) }
                        (weights + next).initialize(to: v)
                        next += 1
                    }
                }
            }
        }
        for b in 0..<blocks {
            var v = FloatVector()
            for lane in 0..<8 where b * 8 + lane < outChannels { v[lane] = conv.bias[b * 8 + lane] }
            (bias + b).initialize(to: v)
        }
    }

    deinit {
        weights.deallocate()
        bias.deallocate()
    }

    /// 8-lane blocks in panel p: 2, or 1 for a last panel of at most 8 channels.
    @inline(__always)
    func panelBlocks(_ panel: Int) -> Int { min(2, blocks - 2 * panel) }

    /// Start of panel p in `weights`: every earlier panel has two blocks.
    @inline(__always)
    func panelStart(_ panel: Int) -> UnsafeMutablePointer<FloatVector> {
        weights + panel * 2 * taps * inChannels
    }

    /// Output size for an input side of n (PyTorch: floor((n + 2p - k) / s) + 1).
    public func outputSize(_ n: Int) -> Int { (n + 2 * padding - kernel) / stride + 1 }
}

/// Pixels per microkernel tile.
let denseTilePixels = 6

/// output = activation(conv(input) + bias), writing the interior of `output` only.
public func denseConv(_ conv: PackedDenseConv, input: FeatureMap, output: FeatureMap, threads: Int) {
    precondition(input.channels == conv.inChannels && output.channels == conv.outChannels && input.images == output.images
                 && output.height == conv.outputSize(input.height) && output.width == conv.outputSize(input.width),
                 "denseConv: shapes do not fit the convolution")
    let pixelsPerImage = output.height * output.width
    let pixelCount = output.images * pixelsPerImage
    let tiles = (pixelCount + denseTilePixels - 1) / denseTilePixels
    // Tap offsets relative to the input position of the output pixel (the window's centre for 3x3).
    var tapOffsets = [Int]()
    for ky in 0..<conv.kernel {
        for kx in 0..<conv.kernel {
            tapOffsets.append((ky - conv.padding) * input.rowStride + (kx - conv.padding) * input.channels)
        }
    }
    let outWidth = output.width, stride = conv.stride
    tapOffsets.withUnsafeBufferPointer { taps in
        let taps = taps.baseAddress!
        // Work items: panel-major, so a thread keeps its panels' weights in its own cache.
        parallelChunks(conv.panels * tiles, threads: threads) { items in
            for item in items {
                let panel = item / tiles
                let first = (item % tiles) * denseTilePixels
                let valid = min(denseTilePixels, pixelCount - first)
                // Input and output position of each pixel of the tile; a short last tile repeats its last pixel.
                var inputs = (0, 0, 0, 0, 0, 0)
                var outputs = (0, 0, 0, 0, 0, 0)
                withUnsafeMutableBytes(of: &inputs) { inRaw in
                    withUnsafeMutableBytes(of: &outputs) { outRaw in
                        let inOffsets = inRaw.bindMemory(to: Int.self), outOffsets = outRaw.bindMemory(to: Int.self)
                        for p in 0..<denseTilePixels {
                            let pixel = first + min(p, valid - 1)
                            let n = pixel / pixelsPerImage, r = pixel % pixelsPerImage
                            let oy = r / outWidth, ox = r % outWidth
                            inOffsets[p] = input.offset(n, oy * stride, ox * stride)
                            outOffsets[p] = output.offset(n, oy, ox)
                        }
                    }
                }
                let ip = UnsafePointer(input.pointer)
                let op = output.pointer
                if conv.panelBlocks(panel) == 2 {
                    denseTile6x16(conv, panel: panel, taps: taps,
                                  ip + inputs.0, ip + inputs.1, ip + inputs.2, ip + inputs.3, ip + inputs.4, ip + inputs.5,
                                  op + outputs.0, op + outputs.1, op + outputs.2, op + outputs.3, op + outputs.4, op + outputs.5,
                                  valid: valid)
                } else {
                    denseTile6x8(conv, panel: panel, taps: taps,
                                 ip + inputs.0, ip + inputs.1, ip + inputs.2, ip + inputs.3, ip + inputs.4, ip + inputs.5,
                                 op + outputs.0, op + outputs.1, op + outputs.2, op + outputs.3, op + outputs.4, op + outputs.5,
                                 valid: valid)
                }
            }
        }
    }
}

/// Stores the first `count` lanes (all 8 when count >= 8) of v at p.
@inline(__always)
func storeLanes(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>, count: Int) {
    if count >= 8 {
        storeVector(v, p)
    } else {
        for lane in 0..<max(count, 0) { p[lane] = v[lane] }
    }
}

/// 6 pixels x 16 output channels of panel `panel`. Pixels at index >= valid are computed but not stored.
@inline(__always)
func denseTile6x16(_ conv: PackedDenseConv, panel: Int, taps: UnsafePointer<Int>,
                   _ p0: UnsafePointer<Float>, _ p1: UnsafePointer<Float>, _ p2: UnsafePointer<Float>,
                   _ p3: UnsafePointer<Float>, _ p4: UnsafePointer<Float>, _ p5: UnsafePointer<Float>,
                   _ o0: UnsafeMutablePointer<Float>, _ o1: UnsafeMutablePointer<Float>, _ o2: UnsafeMutablePointer<Float>,
                   _ o3: UnsafeMutablePointer<Float>, _ o4: UnsafeMutablePointer<Float>, _ o5: UnsafeMutablePointer<Float>,
                   valid: Int) {
    let bias0 = conv.bias[2 * panel], bias1 = conv.bias[2 * panel + 1]
    var a00 = bias0, a01 = bias1, a10 = bias0, a11 = bias1, a20 = bias0, a21 = bias1
    var a30 = bias0, a31 = bias1, a40 = bias0, a41 = bias1, a50 = bias0, a51 = bias1
    var w = UnsafePointer(conv.panelStart(panel))
    let inChannels = conv.inChannels
    for t in 0..<conv.taps {
        let offset = taps[t]
        let q0 = p0 + offset, q1 = p1 + offset, q2 = p2 + offset, q3 = p3 + offset, q4 = p4 + offset, q5 = p5 + offset
        for c in 0..<inChannels {
            let w0 = w[0], w1 = w[1]
            w += 2
            let x0 = FloatVector(repeating: q0[c]); a00 = multiplyAdd(a00, x0, w0); a01 = multiplyAdd(a01, x0, w1)
            let x1 = FloatVector(repeating: q1[c]); a10 = multiplyAdd(a10, x1, w0); a11 = multiplyAdd(a11, x1, w1)
            let x2 = FloatVector(repeating: q2[c]); a20 = multiplyAdd(a20, x2, w0); a21 = multiplyAdd(a21, x2, w1)
            let x3 = FloatVector(repeating: q3[c]); a30 = multiplyAdd(a30, x3, w0); a31 = multiplyAdd(a31, x3, w1)
            let x4 = FloatVector(repeating: q4[c]); a40 = multiplyAdd(a40, x4, w0); a41 = multiplyAdd(a41, x4, w1)
            let x5 = FloatVector(repeating: q5[c]); a50 = multiplyAdd(a50, x5, w0); a51 = multiplyAdd(a51, x5, w1)
        }
    }
    let clamp = conv.clamp
    let channel = panel * 16
    let rest = conv.outChannels - channel - 8  // lanes of the second block that exist
    storeVector(clamp.apply(a00), o0 + channel); storeLanes(clamp.apply(a01), o0 + channel + 8, count: rest)
    if valid > 1 { storeVector(clamp.apply(a10), o1 + channel); storeLanes(clamp.apply(a11), o1 + channel + 8, count: rest) }
    if valid > 2 { storeVector(clamp.apply(a20), o2 + channel); storeLanes(clamp.apply(a21), o2 + channel + 8, count: rest) }
    if valid > 3 { storeVector(clamp.apply(a30), o3 + channel); storeLanes(clamp.apply(a31), o3 + channel + 8, count: rest) }
    if valid > 4 { storeVector(clamp.apply(a40), o4 + channel); storeLanes(clamp.apply(a41), o4 + channel + 8, count: rest) }
    if valid > 5 { storeVector(clamp.apply(a50), o5 + channel); storeLanes(clamp.apply(a51), o5 + channel + 8, count: rest) }
}

/// 6 pixels x 8 output channels: the last panel when it has a single block (e.g. 24 channels, or the head's 1).
@inline(__always)
func denseTile6x8(_ conv: PackedDenseConv, panel: Int, taps: UnsafePointer<Int>,
                  _ p0: UnsafePointer<Float>, _ p1: UnsafePointer<Float>, _ p2: UnsafePointer<Float>,
                  _ p3: UnsafePointer<Float>, _ p4: UnsafePointer<Float>, _ p5: UnsafePointer<Float>,
                  _ o0: UnsafeMutablePointer<Float>, _ o1: UnsafeMutablePointer<Float>, _ o2: UnsafeMutablePointer<Float>,
                  _ o3: UnsafeMutablePointer<Float>, _ o4: UnsafeMutablePointer<Float>, _ o5: UnsafeMutablePointer<Float>,
                  valid: Int) {
    let bias0 = conv.bias[2 * panel]
    var a0 = bias0, a1 = bias0, a2 = bias0, a3 = bias0, a4 = bias0, a5 = bias0
    var w = UnsafePointer(conv.panelStart(panel))
    let inChannels = conv.inChannels
    for t in 0..<conv.taps {
        let offset = taps[t]
        let q0 = p0 + offset, q1 = p1 + offset, q2 = p2 + offset, q3 = p3 + offset, q4 = p4 + offset, q5 = p5 + offset
        for c in 0..<inChannels {
            let w0 = w[0]
            w += 1
            a0 = multiplyAdd(a0, FloatVector(repeating: q0[c]), w0)
            a1 = multiplyAdd(a1, FloatVector(repeating: q1[c]), w0)
            a2 = multiplyAdd(a2, FloatVector(repeating: q2[c]), w0)
            a3 = multiplyAdd(a3, FloatVector(repeating: q3[c]), w0)
            a4 = multiplyAdd(a4, FloatVector(repeating: q4[c]), w0)
            a5 = multiplyAdd(a5, FloatVector(repeating: q5[c]), w0)
        }
    }
    let clamp = conv.clamp
    let channel = panel * 16
    let count = conv.outChannels - channel
    storeLanes(clamp.apply(a0), o0 + channel, count: count)
    if valid > 1 { storeLanes(clamp.apply(a1), o1 + channel, count: count) }
    if valid > 2 { storeLanes(clamp.apply(a2), o2 + channel, count: count) }
    if valid > 3 { storeLanes(clamp.apply(a3), o3 + channel, count: count) }
    if valid > 4 { storeLanes(clamp.apply(a4), o4 + channel, count: count) }
    if valid > 5 { storeLanes(clamp.apply(a5), o5 + channel, count: count) }
}

/// Plain-Swift reference: the definition of a dense convolution with zero padding, straight from the
/// folded PyTorch-layout weights. The SIMD kernel above must agree with it to float tolerance.
public func denseConvReference(_ conv: FoldedConv, input: FeatureMap, output: FeatureMap) {
    let spec = conv.spec
    let k = spec.kernel, pad = spec.padding, s = spec.stride
    let clamp = ActivationClamp(spec.activation)
    for n in 0..<output.images {
        for oy in 0..<output.height {
            for ox in 0..<output.width {
                for o in 0..<spec.outChannels {
                    var sum = conv.bias[o]
                    for c in 0..<spec.inChannels {
                        for ky in 0..<k {
                            for kx in 0..<k {
                                let iy = oy * s - pad + ky, ix = ox * s - pad + kx
                                guard iy >= 0, iy < input.height, ix >= 0, ix < input.width else { continue }
                                sum += input[n, iy, ix, c] * conv.weight[((o * spec.inChannels + c) * k + ky) * k + kx]
                            }
                        }
                    }
                    output[n, oy, ox, o] = clamp.apply(sum)
                }
            }
        }
    }
}
