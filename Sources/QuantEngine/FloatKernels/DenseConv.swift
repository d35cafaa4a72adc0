import FloatMicrokernels

/// Dense (non-depthwise) convolution, 1x1 or 3x3, stride 1 or 2, as an indirect GEMM in the manner of
/// XNNPACK's igemm: output pixels x output channels, with K = taps x input channels.
///
/// For an output pixel the 3x3 taps are nine runs of `inChannels` floats at fixed offsets from the
/// pixel's input position (NHWC with a zero border, see `FeatureMap`), so one microkernel serves
/// 1x1 (one tap) and 3x3 (nine taps) at either stride; no im2col buffer is built.
///
/// Microkernel (`floatDenseTile`, compiled per instruction set): a tile of 6 output pixels x one panel of
/// output channels held in 12 vector accumulators: 16 channels in 12 of the 16 ymm registers on AVX2, 32
/// channels in 12 zmm registers on AVX-512. Each step of K loads the panel's weight vectors and broadcasts
/// one input value per pixel, then does 12 multiply-adds: 8 loads per 12 FMAs keeps the FMA units busy.
/// Weights are packed once at load time so the microkernel reads them as one linear stream.

/// Weights and bias of one dense convolution, packed for the microkernel.
///
/// Layout: output channels in panels of `panelBlocks` 8-lane blocks (the path's `floatDenseTileBlocks`: 2,
/// or 4 on AVX-512; the last panel may have fewer). Panel p holds, for each tap t (ky * k + kx) and input
/// channel c, its blocks' weights for its output channels (zero past `outChannels`).
public final class PackedDenseConv {
    public let kernel: Int
    public let stride: Int
    public let inChannels: Int
    public let outChannels: Int
    let clamp: ActivationClamp
    /// ceil(outChannels / 8)
    let blocks: Int
    /// Blocks in a full panel, and the panel count.
    let panelWidth: Int
    let panels: Int
    let weights: UnsafeMutablePointer<FloatVector>
    /// Bias per 8-channel block (zero past `outChannels`).
    let bias: UnsafeMutablePointer<FloatVector>
    /// The microkernels of the kernel path this convolution runs on.
    let kernels: FloatKernelTable

    public var taps: Int { kernel * kernel }
    public var padding: Int { kernel / 2 }

    /// Packs a folded convolution (weight [out][in][k][k]).
    /// `threads` split the packing by panel (the trainer packs its weights every step).
    public init(_ conv: FoldedConv, path: KernelPath = .current, threads: Int = 1) {
        kernels = .of(path)
        let spec = conv.spec
        precondition(spec.kind == .standard, "PackedDenseConv: \(spec.weightPrefix) is not a dense convolution")
        precondition(spec.kernel == 1 || spec.kernel == 3, "PackedDenseConv: kernel \(spec.kernel) unsupported")
        kernel = spec.kernel
        stride = spec.stride
        inChannels = spec.inChannels
        outChannels = spec.outChannels
        clamp = ActivationClamp(spec.activation)
        blocks = (outChannels + 7) / 8
        panelWidth = kernels.denseTileBlocks
        panels = (blocks + panelWidth - 1) / panelWidth
        let taps = kernel * kernel
        weights = .allocate(capacity: blocks * taps * inChannels)
        bias = .allocate(capacity: blocks)
        // Panel p holds, for each tap and input channel, the weights of its output channels as up to
        // `panelWidth` vectors; lanes past the last output channel are zero. Written in the packed order, one
        // vector run after another, reading the panel's 16 weight rows as 16 forward streams: writing in the
        // weight's order instead touched a new cache line per value, which cost the trainer (it packs every
        // step) 4% of a step.
        let count = blocks * taps * inChannels
        weights.withMemoryRebound(to: Float.self, capacity: count * 8) { packed in
            conv.weight.withUnsafeBufferPointer { w in
                let (inChannels, outChannels, blocks, panels, panelWidth) = (inChannels, outChannels, blocks, panels, panelWidth)
                parallelChunks(panels, threads: threads) { panelRange in
                    for panel in panelRange {
                        let width = min(panelWidth, blocks - panelWidth * panel) * 8, firstChannel = panel * panelWidth * 8
                        let lanes = min(width, outChannels - firstChannel)
                        var target = packed + panel * panelWidth * taps * inChannels * 8
                        for t in 0..<taps {
                            for c in 0..<inChannels {
                                var source = (firstChannel * inChannels + c) * taps + t
                                for lane in 0..<lanes { target[lane] = w[source]; source += inChannels * taps }
                                for lane in lanes..<width { target[lane] = 0 }
                                target += width
                            }
                        }
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

    /// 8-lane blocks in panel p: `panelWidth`, or fewer in the last panel.
    @inline(__always)
    func panelBlocks(_ panel: Int) -> Int { min(panelWidth, blocks - panelWidth * panel) }

    /// Start of panel p in `weights`: every earlier panel is full.
    @inline(__always)
    func panelStart(_ panel: Int) -> UnsafeMutablePointer<FloatVector> {
        weights + panel * panelWidth * taps * inChannels
    }

    /// The first output channel of panel p.
    @inline(__always)
    func panelChannel(_ panel: Int) -> Int { panel * panelWidth * 8 }

    /// Output size for an input side of n (PyTorch: floor((n + 2p - k) / s) + 1).
    public func outputSize(_ n: Int) -> Int { (n + 2 * padding - kernel) / stride + 1 }
}

/// Pixels per microkernel tile.
let denseTilePixels = 6

/// Weight bytes of one panel that a pass over the output tiles may stream; beyond this the input
/// channels are split into chunks (K blocking) so that a chunk's weights and the input rows it reads
/// stay in the core's L2 cache while every tile of the panel uses them. Only the widest layer
/// (decoder block 0's conv1: 1376 input channels x 9 taps, 792 KB per panel) needs it.
let densePanelCacheBytes = 192 << 10

/// Walks output pixels in order (image, row, column), giving each pixel's input and output offsets;
/// a tile's missing pixels past the end repeat the last one (computed, never stored).
struct PixelCursor {
    let input: FeatureMap, output: FeatureMap, stride: Int
    var n: Int, oy: Int, ox: Int
    var remaining: Int

    init(first: Int, count: Int, input: FeatureMap, output: FeatureMap, stride: Int) {
        self.input = input; self.output = output; self.stride = stride
        let pixelsPerImage = output.height * output.width
        n = first / pixelsPerImage
        let r = first % pixelsPerImage
        oy = r / output.width
        ox = r % output.width
        remaining = count
    }

    @inline(__always)
    mutating func next() -> (input: Int, output: Int) {
        let offsets = (input.offset(n, oy * stride, ox * stride), output.offset(n, oy, ox))
        remaining -= 1
        if remaining > 0 {
            ox += 1
            if ox == output.width {
                ox = 0; oy += 1
                if oy == output.height { oy = 0; n += 1 }
            }
        }
        return offsets
    }
}

/// output = activation(conv(input) + bias), writing the interior of `output` only.
public func denseConv(_ conv: PackedDenseConv, input: FeatureMap, output: FeatureMap, threads: Int) {
    precondition(input.channels == conv.inChannels && output.channels == conv.outChannels && input.images == output.images
                 && output.height == conv.outputSize(input.height) && output.width == conv.outputSize(input.width),
                 "denseConv: shapes do not fit the convolution")
    if conv.outChannels == 1 && conv.inChannels % 8 == 0 {
        denseConvSingleOutput(conv, input: input, output: output, threads: threads)
        return
    }
    // Tap offsets relative to the input position of the output pixel (the window's centre for 3x3).
    var tapOffsets = [Int]()
    for ky in 0..<conv.kernel {
        for kx in 0..<conv.kernel {
            tapOffsets.append((ky - conv.padding) * input.rowStride + (kx - conv.padding) * input.channels)
        }
    }
    let stride = conv.stride
    tapOffsets.withUnsafeBufferPointer { taps in
        runDenseTiles(conv, pixelCount: output.images * output.height * output.width, taps: taps.baseAddress!,
                      input: UnsafePointer(input.pointer), output: output.pointer, threads: threads) { first, valid in
            var cursor = PixelCursor(first: first, count: valid, input: input, output: output, stride: stride)
            let (i0, o0) = cursor.next(), (i1, o1) = cursor.next(), (i2, o2) = cursor.next()
            let (i3, o3) = cursor.next(), (i4, o4) = cursor.next(), (i5, o5) = cursor.next()
            return ((i0, i1, i2, i3, i4, i5), (o0, o1, o2, o3, o4, o5))
        }
    }
}

/// output = activation(input x W + bias) for a 1x1 convolution over `rows` pixels stored back to back with no
/// border (rows of inChannels and of outChannels floats): a plain GEMM on the same tiles (the trainer's
/// pointwise layers).
public func pointwiseConv(_ conv: PackedDenseConv, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int, threads: Int) {
    precondition(conv.kernel == 1 && conv.stride == 1, "pointwiseConv: not a 1x1 stride-1 convolution")
    let (cin, cout) = (conv.inChannels, conv.outChannels)
    var zeroTap = 0
    withUnsafePointer(to: &zeroTap) { taps in
        runDenseTiles(conv, pixelCount: rows, taps: taps, input: input, output: output, threads: threads) { first, valid in
            @inline(__always) func row(_ p: Int) -> Int { first + min(p, valid - 1) }
            return ((row(0) * cin, row(1) * cin, row(2) * cin, row(3) * cin, row(4) * cin, row(5) * cin),
                    (row(0) * cout, row(1) * cout, row(2) * cout, row(3) * cout, row(4) * cout, row(5) * cout))
        }
    }
}

/// The input and output offsets of a tile's 6 pixels (missing pixels past the end repeat the last one:
/// computed, never stored).
typealias TileOffsets = (inputs: (Int, Int, Int, Int, Int, Int), outputs: (Int, Int, Int, Int, Int, Int))

/// The tile loop of every dense convolution: work items (panel, tile of 6 pixels), panel-major, so a thread
/// keeps its panels' weights in its own cache; panels whose weights outgrow `densePanelCacheBytes` run in
/// input-channel chunks. `offsets(first, valid)` places the tile's pixels.
func runDenseTiles(_ conv: PackedDenseConv, pixelCount: Int, taps: UnsafePointer<Int>, input ip: UnsafePointer<Float>,
                   output op: UnsafeMutablePointer<Float>, threads: Int, offsets: (Int, Int) -> TileOffsets) {
    let tiles = (pixelCount + denseTilePixels - 1) / denseTilePixels
    // The input-channel chunks set the order each output's products are added in (chunk by chunk, all taps of
    // a chunk), so they are sized for a 16-channel panel on every path: 32-channel panels then stream twice
    // the bytes per chunk, and every path gives the same bits.
    let panelBytes = conv.taps * conv.inChannels * 2 * MemoryLayout<FloatVector>.stride
    let chunkCount = min(conv.inChannels, (panelBytes + densePanelCacheBytes - 1) / densePanelCacheBytes)
    let chunkChannels = (conv.inChannels + chunkCount - 1) / chunkCount
    parallelChunks(conv.panels * tiles, threads: threads) { items in
        var item = items.lowerBound
        while item < items.upperBound {
            let panel = item / tiles
            let tileRange = (item - panel * tiles)..<(min(items.upperBound, (panel + 1) * tiles) - panel * tiles)
            for chunkStart in Swift.stride(from: 0, to: conv.inChannels, by: chunkChannels) {
                let channels = chunkStart..<min(conv.inChannels, chunkStart + chunkChannels)
                let isFirst = chunkStart == 0, isLast = channels.upperBound == conv.inChannels
                // A panel of 2 blocks takes its tiles two at a time where the path has a 12-pixel tile (AVX-512).
                let pairs = conv.panelBlocks(panel) == 2 ? conv.kernels.denseTile12x16 : nil
                var tile = tileRange.lowerBound
                while tile < tileRange.upperBound {
                    let first = tile * denseTilePixels
                    let valid = min(denseTilePixels, pixelCount - first)
                    let (i, o) = offsets(first, valid)
                    if let pairs, tile + 1 < tileRange.upperBound {
                        let second = first + denseTilePixels, secondValid = min(denseTilePixels, pixelCount - second)
                        let (j, q) = offsets(second, secondValid)
                        var inputs = (ip + i.0, ip + i.1, ip + i.2, ip + i.3, ip + i.4, ip + i.5,
                                      ip + j.0, ip + j.1, ip + j.2, ip + j.3, ip + j.4, ip + j.5)
                        let channel = conv.panelChannel(panel)
                        var outputs = (op + o.0 + channel, op + o.1 + channel, op + o.2 + channel, op + o.3 + channel,
                                       op + o.4 + channel, op + o.5 + channel, op + q.0 + channel, op + q.1 + channel,
                                       op + q.2 + channel, op + q.3 + channel, op + q.4 + channel, op + q.5 + channel)
                        callTile(pairs, conv, panel: panel, taps: taps, channels: channels, accumulate: !isFirst, finish: isLast,
                                 inputs: &inputs, outputs: &outputs, valid: denseTilePixels + secondValid)
                        tile += 2
                    } else {
                        denseTile(conv, panel: panel, taps: taps, channels: channels, accumulate: !isFirst, finish: isLast,
                                  ip + i.0, ip + i.1, ip + i.2, ip + i.3, ip + i.4, ip + i.5,
                                  op + o.0, op + o.1, op + o.2, op + o.3, op + o.4, op + o.5, valid: valid)
                        tile += 1
                    }
                }
            }
            item = panel * tiles + tileRange.upperBound
        }
    }
}

/// One whole-K tile of 6 pixels on panel `panel` (either width), starting from the bias, activation applied.
@inline(__always)
func denseTile(_ conv: PackedDenseConv, panel: Int, taps: UnsafePointer<Int>,
               _ p0: UnsafePointer<Float>, _ p1: UnsafePointer<Float>, _ p2: UnsafePointer<Float>,
               _ p3: UnsafePointer<Float>, _ p4: UnsafePointer<Float>, _ p5: UnsafePointer<Float>,
               _ o0: UnsafeMutablePointer<Float>, _ o1: UnsafeMutablePointer<Float>, _ o2: UnsafeMutablePointer<Float>,
               _ o3: UnsafeMutablePointer<Float>, _ o4: UnsafeMutablePointer<Float>, _ o5: UnsafeMutablePointer<Float>,
               valid: Int) {
    denseTile(conv, panel: panel, taps: taps, channels: 0..<conv.inChannels, accumulate: false, finish: true,
              p0, p1, p2, p3, p4, p5, o0, o1, o2, o3, o4, o5, valid: valid)
}

/// 6 pixels x the panel's output channels, over the input channels `channels` of every tap, on
/// the path's microkernel (`floatDenseTile`, Sources/FloatMicrokernels/FloatTiles.swift). Starts from the
/// bias, or (`accumulate`) from the partial sums already in the output; applies the activation only when
/// `finish` (the last chunk of input channels). Pixels at index >= valid are computed but not stored.
@inline(__always)
func denseTile(_ conv: PackedDenseConv, panel: Int, taps: UnsafePointer<Int>, channels: Range<Int>, accumulate: Bool, finish: Bool,
               _ p0: UnsafePointer<Float>, _ p1: UnsafePointer<Float>, _ p2: UnsafePointer<Float>,
               _ p3: UnsafePointer<Float>, _ p4: UnsafePointer<Float>, _ p5: UnsafePointer<Float>,
               _ o0: UnsafeMutablePointer<Float>, _ o1: UnsafeMutablePointer<Float>, _ o2: UnsafeMutablePointer<Float>,
               _ o3: UnsafeMutablePointer<Float>, _ o4: UnsafeMutablePointer<Float>, _ o5: UnsafeMutablePointer<Float>,
               valid: Int) {
    let channel = conv.panelChannel(panel)
    var inputs = (p0, p1, p2, p3, p4, p5)
    var outputs = (o0 + channel, o1 + channel, o2 + channel, o3 + channel, o4 + channel, o5 + channel)
    callTile(conv.kernels.denseTile, conv, panel: panel, taps: taps, channels: channels, accumulate: accumulate, finish: finish,
             inputs: &inputs, outputs: &outputs, valid: valid)
}

/// Calls a dense tile microkernel of `conv`'s path on panel `panel`: `inputs` and `outputs` are tuples of the
/// tile's pixel pointers (6, or 12 for `floatDenseTile12x16`), the outputs already at the panel's first channel.
@inline(__always)
func callTile<Inputs, Outputs>(_ tile: FloatKernelTable.DenseTile, _ conv: PackedDenseConv, panel: Int, taps: UnsafePointer<Int>,
                               channels: Range<Int>, accumulate: Bool, finish: Bool, inputs: inout Inputs, outputs: inout Outputs,
                               valid: Int) {
    let channel = conv.panelChannel(panel)
    withUnsafePointer(to: &inputs) { inputs in
        withUnsafePointer(to: &outputs) { outputs in
            tile(UnsafeRawPointer(inputs).assumingMemoryBound(to: UnsafePointer<Float>.self),
                 UnsafeRawPointer(outputs).assumingMemoryBound(to: UnsafeMutablePointer<Float>.self), valid,
                 conv.panelStart(panel), conv.panelBlocks(panel), conv.bias + conv.panelWidth * panel, taps, conv.taps,
                 conv.inChannels, channels.lowerBound, channels.upperBound, conv.outChannels - channel,
                 accumulate, finish, conv.clamp.lower, conv.clamp.upper)
        }
    }
}

/// A convolution with one output channel (the segmentation head, 16 -> 1): the 16x-wasteful
/// 8-channel tile is replaced by vectors over input channels, one dot product per pixel:
/// per tap, inChannels / 8 multiply-adds, then one horizontal sum.
func denseConvSingleOutput(_ conv: PackedDenseConv, input: FeatureMap, output: FeatureMap, threads: Int) {
    let vectors = conv.inChannels / 8
    let taps = conv.taps
    // Weights as [tap][input channel], from the packed lane 0 of the single block.
    var weights = [FloatVector](repeating: FloatVector(), count: taps * vectors)
    for t in 0..<taps {
        for c in 0..<conv.inChannels { weights[t * vectors + c / 8][c % 8] = conv.weights[t * conv.inChannels + c][0] }
    }
    let bias = conv.bias[0][0]
    var tapOffsets = [Int]()
    for ky in 0..<conv.kernel {
        for kx in 0..<conv.kernel {
            tapOffsets.append((ky - conv.padding) * input.rowStride + (kx - conv.padding) * input.channels)
        }
    }
    let clamp = conv.clamp, stride = conv.stride
    weights.withUnsafeBufferPointer { weights in
        tapOffsets.withUnsafeBufferPointer { taps in
            parallelChunks(output.images * output.height, threads: threads) { rows in
                for row in rows {
                    let n = row / output.height, oy = row % output.height
                    let inRow = UnsafePointer(input.pointer + input.offset(n, oy * stride, 0))
                    let outRow = output.pointer + output.offset(n, oy, 0)
                    let pixelStep = stride * input.channels
                    var ox = 0
                    // Four pixels at a time: four independent accumulator chains hide the FMA latency.
                    while ox + 4 <= output.width {
                        let x = inRow + ox * pixelStep
                        var acc0 = FloatVector(), acc1 = FloatVector(), acc2 = FloatVector(), acc3 = FloatVector()
                        for t in 0..<taps.count {
                            let tap = x + taps[t]
                            for v in 0..<vectors {
                                let w = weights[t * vectors + v]
                                acc0 = multiplyAdd(acc0, loadVector(tap + 8 * v), w)
                                acc1 = multiplyAdd(acc1, loadVector(tap + pixelStep + 8 * v), w)
                                acc2 = multiplyAdd(acc2, loadVector(tap + 2 * pixelStep + 8 * v), w)
                                acc3 = multiplyAdd(acc3, loadVector(tap + 3 * pixelStep + 8 * v), w)
                            }
                        }
                        outRow[ox] = clamp.apply(bias + acc0.sum())
                        outRow[ox + 1] = clamp.apply(bias + acc1.sum())
                        outRow[ox + 2] = clamp.apply(bias + acc2.sum())
                        outRow[ox + 3] = clamp.apply(bias + acc3.sum())
                        ox += 4
                    }
                    while ox < output.width {
                        let x = inRow + ox * pixelStep
                        var acc = FloatVector()
                        for t in 0..<taps.count {
                            let tap = x + taps[t]
                            for v in 0..<vectors { acc = multiplyAdd(acc, loadVector(tap + 8 * v), weights[t * vectors + v]) }
                        }
                        outRow[ox] = clamp.apply(bias + acc.sum())
                        ox += 1
                    }
                }
            }
        }
    }
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
