/// Transposed convolution with kernel 2, stride 2 (PyTorch `ConvTranspose2d(cin, cout, 2, stride=2)`,
/// the baseline U-Net's upsampling): every input pixel (y, x) writes its own 2x2 output patch,
///
///     output[2y + dy][2x + dx][o] = bias[o] + sum_c input[y][x][c] * W[c][o][dy][dx]
///
/// with no overlap and no padding. So it is four 1x1 convolutions, one per (dy, dx). In NHWC the two
/// outputs (2y + dy, 2x) and (2y + dy, 2x + 1) are adjacent, 2 x cout floats: for a fixed dy, "channel
/// dx * cout + o at output pixel (2y + dy, 2x)" is one 1x1 convolution cin -> 2 cout whose output pixel
/// sits at a computed address. We run the dense kernel's 6-pixel x 16-channel tile (`denseTile`) on
/// two such convolutions (dy = 0, 1), giving it each input pixel's output address.
public final class PackedTransposedConv2x2 {
    public let inChannels: Int
    public let outChannels: Int
    /// Output rows 2y + dy, for dy = 0 and 1: 1x1 convolutions cin -> 2 cout (channel dx * cout + o).
    let rows: [PackedDenseConv]

    /// Packs a transposed conv's folded weights ([in][out][2][2], PyTorch's ConvTranspose2d layout) and bias.
    public init(_ conv: FoldedConv, path: KernelPath = .current) {
        let spec = conv.spec
        precondition(spec.kind == .transposed && spec.kernel == 2 && spec.stride == 2,
                     "PackedTransposedConv2x2: \(spec.weightPrefix) is not a 2x2 stride-2 transposed convolution")
        inChannels = spec.inChannels
        outChannels = spec.outChannels
        rows = (0..<2).map { dy in PackedDenseConv(transposedConvRow(conv, dy: dy), path: path) }
    }

    public func outputSize(_ n: Int) -> Int { 2 * n }
}

/// Output row dy of a 2x2 stride-2 transposed conv as a 1x1 conv cin -> 2 cout: weight [dx * cout + o][c]
/// = W[c][o][dy][dx], bias [dx * cout + o] = bias[o].
func transposedConvRow(_ conv: FoldedConv, dy: Int) -> FoldedConv {
    let spec = conv.spec
    let (cin, cout) = (spec.inChannels, spec.outChannels)
    var weight = [Float](repeating: 0, count: 2 * cout * cin)
    for dx in 0..<2 {
        for o in 0..<cout {
            for c in 0..<cin { weight[(dx * cout + o) * cin + c] = conv.weight[((c * cout + o) * 2 + dy) * 2 + dx] }
        }
    }
    let row = ConvSpec(weightPrefix: "\(spec.weightPrefix)[row \(dy)]", batchNormPrefix: nil, hasBias: true, kind: .standard,
                       kernel: 1, stride: 1, inChannels: cin, outChannels: 2 * cout, activation: spec.activation, group: spec.group)
    return FoldedConv(spec: row, weight: weight, bias: conv.bias + conv.bias)
}

/// Runs the transposed conv: output must be twice the input in both sides.
public func transposedConv2x2(_ conv: PackedTransposedConv2x2, input: FeatureMap, output: FeatureMap, threads: Int) {
    precondition(input.channels == conv.inChannels && output.channels == conv.outChannels && output.images == input.images
                 && output.height == 2 * input.height && output.width == 2 * input.width, "transposedConv2x2: shapes do not fit")
    let pixelsPerImage = input.height * input.width
    let pixelCount = input.images * pixelsPerImage
    let tiles = (pixelCount + denseTilePixels - 1) / denseTilePixels
    let panels = conv.rows[0].panels
    var zeroTap = 0
    withUnsafePointer(to: &zeroTap) { taps in
        // Work items: (dy, panel, tile), panel-major within a row, so a thread keeps one panel's weights in cache.
        parallelChunks(2 * panels * tiles, threads: threads) { items in
            for item in items {
                let dy = item / (panels * tiles)
                let panel = (item / tiles) % panels
                let tile = item % tiles
                let first = tile * denseTilePixels
                let valid = min(denseTilePixels, pixelCount - first)
                /// Input and output addresses of pixel first + i (the last valid one again past the end).
                func pixel(_ i: Int) -> (UnsafePointer<Float>, UnsafeMutablePointer<Float>) {
                    let p = first + min(i, valid - 1)
                    let n = p / pixelsPerImage, y = (p % pixelsPerImage) / input.width, x = p % input.width
                    return (UnsafePointer(input.pointer + input.offset(n, y, x)), output.pointer + output.offset(n, 2 * y + dy, 2 * x))
                }
                let (i0, o0) = pixel(0), (i1, o1) = pixel(1), (i2, o2) = pixel(2)
                let (i3, o3) = pixel(3), (i4, o4) = pixel(4), (i5, o5) = pixel(5)
                denseTile(conv.rows[dy], panel: panel, taps: taps, i0, i1, i2, i3, i4, i5, o0, o1, o2, o3, o4, o5, valid: valid)
            }
        }
    }
}

/// Plain-Swift reference: the definition, straight from the folded PyTorch-layout weights [in][out][2][2].
public func transposedConv2x2Reference(_ conv: FoldedConv, input: FeatureMap, output: FeatureMap) {
    let spec = conv.spec
    let clamp = ActivationClamp(spec.activation)
    for n in 0..<input.images {
        for y in 0..<input.height {
            for x in 0..<input.width {
                for dy in 0..<2 {
                    for dx in 0..<2 {
                        for o in 0..<spec.outChannels {
                            var sum = conv.bias[o]
                            for c in 0..<spec.inChannels {
                                sum += input[n, y, x, c] * conv.weight[((c * spec.outChannels + o) * 2 + dy) * 2 + dx]
                            }
                            output[n, 2 * y + dy, 2 * x + dx, o] = clamp.apply(sum)
                        }
                    }
                }
            }
        }
    }
}
