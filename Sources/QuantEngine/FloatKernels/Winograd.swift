import FloatMicrokernels

/// 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms
/// for Convolutional Neural Networks", 2016): each 2x2 block of output pixels is computed from a 4x4
/// input patch with 16 multiplies per (input, output) channel pair instead of 36, a 2.25x cut in the
/// multiply-adds that dominate the decoder.
///
///   V = Bᵀ d B      (input patch d, 4x4, per input channel)         — input transform
///   U = G g Gᵀ      (filter g, 3x3, per channel pair; at load time)   — weight transform
///   M[ξ] = Σ_c V[ξ][c] U[ξ][c][o]   for each of the 16 positions ξ    — 16 GEMMs, tiles x in x out
///   Y = Aᵀ M A      (2x2 output block, per output channel)           — output transform, + bias, activation
///
/// with Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],
/// Aᵀ = [1 1 1 0; 0 1 -1 -1]. The coefficients are 0, ±1 and ±½, so the transforms are adds and the
/// rounding error stays close to the direct convolution's (the tests hold it to the same tolerance).
///
/// The 16 GEMMs run on `DenseConv`'s 6x16 microkernel (as 1x1 convolutions with no bias). Transforms are
/// vectorised over 8 channels (NHWC). Used for the decoder's 3x3 convolutions, where channel counts are
/// multiples of 8 and output sides are even; the rest stays on the direct kernel.
public final class PackedWinogradConv {
    public let inChannels: Int
    public let outChannels: Int
    let clamp: ActivationClamp
    /// U[ξ] as a 1x1 convolution in -> out without bias, packed for the GEMM microkernel, for ξ = 0..<16.
    let transformedWeights: [PackedDenseConv]
    let bias: [FloatVector]

    /// Whether the Winograd path can run this convolution on this output size.
    public static func supports(_ spec: ConvSpec, outputHeight: Int, outputWidth: Int) -> Bool {
        spec.kind == .standard && spec.kernel == 3 && spec.stride == 1 && spec.inChannels % 8 == 0
            && spec.outChannels % 8 == 0 && outputHeight % 2 == 0 && outputWidth % 2 == 0
    }

    public convenience init(_ conv: FoldedConv, path: KernelPath = .current) {
        let spec = conv.spec
        precondition(spec.kind == .standard && spec.kernel == 3 && spec.stride == 1 && spec.inChannels % 8 == 0 && spec.outChannels % 8 == 0,
                     "PackedWinogradConv: \(spec.weightPrefix) is not a 3x3 stride-1 convolution with channels in multiples of 8")
        self.init(transformed: winogradWeightTransform(conv.weight, outChannels: spec.outChannels, inChannels: spec.inChannels),
                  inChannels: spec.inChannels, outChannels: spec.outChannels, bias: conv.bias, activation: spec.activation,
                  name: spec.weightPrefix, path: path)
    }

    /// From weights already transformed by `winogradWeightTransform` (the trainer transforms its own, and
    /// the weight gradient's adjoint, every step).
    public init(transformed u: [[Float]], inChannels: Int, outChannels: Int, bias: [Float], activation: Activation,
                name: String, path: KernelPath = .current, threads: Int = 1) {
        precondition(inChannels % 8 == 0 && outChannels % 8 == 0 && u.count == 16 && u.allSatisfy { $0.count == outChannels * inChannels }
                     && bias.count == outChannels, "PackedWinogradConv: \(name) has channels not in multiples of 8 or mis-sized weights")
        self.inChannels = inChannels
        self.outChannels = outChannels
        clamp = ActivationClamp(activation)
        let gemmSpec = ConvSpec(weightPrefix: name + ".winograd", batchNormPrefix: nil, hasBias: false, kind: .standard,
                                kernel: 1, stride: 1, inChannels: inChannels, outChannels: outChannels, activation: .none, group: .head)
        let zeros = [Float](repeating: 0, count: outChannels)
        // The 16 packings are independent: one per work item, each writing its own slot.
        var packed = [PackedDenseConv?](repeating: nil, count: 16)
        packed.withUnsafeMutableBufferPointer { slots in
            parallelChunks(16, threads: threads) { points in
                for xi in points { slots[xi] = PackedDenseConv(FoldedConv(spec: gemmSpec, weight: u[xi], bias: zeros), path: path) }
            }
        }
        transformedWeights = packed.map { $0! }
        self.bias = (0..<(outChannels / 8)).map { b in FloatVector((0..<8).map { bias[b * 8 + $0] }) }
    }

    /// Floats of scratch memory a call needs: transformed input (16 x tiles x in) and products (16 x tiles x out).
    public func scratchCount(images: Int, outputHeight: Int, outputWidth: Int) -> (transformed: Int, products: Int) {
        let tiles = images * (outputHeight / 2) * (outputWidth / 2)
        return (16 * tiles * inChannels, 16 * tiles * outChannels)
    }
}

/// F(2x2, 3x3)'s filter transform G (4 x 3); the trainer's weight gradient applies its transpose.
public let winogradG: [[Float]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]

/// U = G g Gᵀ for every (out, in) pair of a 3x3 weight [out][in][3][3]: 16 arrays [out][in], one per ξ.
///
/// Each U[ξ] is the sum, in (k, l) order, of the terms G[i][k] g[k][l] G[j][l] whose coefficients are not
/// zero (an added zero term changes no sum), computed for all pairs at once from a tap-major copy of the
/// weights, so the loops run over contiguous memory.
public func winogradWeightTransform(_ weight: [Float], outChannels: Int, inChannels: Int, threads: Int = 1) -> [[Float]] {
    let pairs = outChannels * inChannels
    precondition(weight.count == pairs * 9, "winogradWeightTransform: \(weight.count) weights for \(outChannels) x \(inChannels) x 3 x 3")
    // byTap[t][pair] = weight[pair][t]. Every step of the trainer transforms its weights, so the copy and the
    // sums run on all threads (each value is computed the same way whichever thread computes it).
    let byTap = [Float](unsafeUninitializedCapacity: 9 * pairs) { b, initialized in
        weight.withUnsafeBufferPointer { w in
            let (source, target) = (w.baseAddress!, b.baseAddress!)
            parallelChunks(pairs, threads: threads) { range in
                for pair in range { for t in 0..<9 { target[t * pairs + pair] = source[pair * 9 + t] } }
            }
        }
        initialized = 9 * pairs
    }
    let G = winogradG
    var u = [[Float]](repeating: [], count: 16)  // U[ξ] = [out][in], one ξ per work item, each writing its own slot
    byTap.withUnsafeBufferPointer { b in
        u.withUnsafeMutableBufferPointer { slots in
            let tapBase = b.baseAddress!
            parallelChunks(16, threads: threads) { points in
                for xi in points {
                    let (i, j) = (xi / 4, xi % 4)
                    slots[xi] = [Float](unsafeUninitializedCapacity: pairs) { target, initialized in
                        let target = target.baseAddress!
                        target.initialize(repeating: 0, count: pairs)
                        for k in 0..<3 where G[i][k] != 0 {
                            for l in 0..<3 where G[j][l] != 0 {
                                let (left, right) = (G[i][k], G[j][l])
                                let tap = tapBase + (k * 3 + l) * pairs
                                for pair in 0..<pairs { target[pair] += left * tap[pair] * right }
                            }
                        }
                        initialized = pairs
                    }
                }
            }
        }
    }
    return u
}

/// Tiles of an F(2x2, 3x3) convolution: one per 2x2 output block, numbered image by image, row by row:
/// tile t = (n * tilesY + ty) * tilesX + tx, whose 4x4 input patch starts at pixel (2ty-1, 2tx-1).
public struct WinogradTiles {
    public let tilesX: Int, tilesY: Int, count: Int
    public init(_ map: FeatureMap) {
        tilesX = map.width / 2
        tilesY = map.height / 2
        count = map.images * tilesX * tilesY
    }
    @inline(__always)
    public func position(_ tile: Int) -> (n: Int, ty: Int, tx: Int) {
        let row = tile / tilesX
        return (row / tilesY, row % tilesY, tile % tilesX)
    }
}

/// The input transform of F(2x2, 3x3) for tiles `range`: V[ξ][t][c] = (Bᵀ d B)[ξ] for the 4x4 patch d of
/// tile range.lowerBound + t, stored at transformed + ξ * plane + t * channels + c. Each run of tiles in one
/// tile row is one call of the path's `floatWinogradInputRow`.
public func winogradInputTiles(_ input: FeatureMap, tiles range: Range<Int>, into transformed: UnsafeMutablePointer<Float>, plane: Int) {
    let tiles = WinogradTiles(input), cin = input.channels, kernels = FloatKernelTable.of(.current)
    var tile = range.lowerBound
    while tile < range.upperBound {
        let (n, ty, tx) = tiles.position(tile)
        let run = min(range.upperBound - tile, tiles.tilesX - tx)
        kernels.winogradInputRow(UnsafePointer(input.pointer + input.offset(n, 2 * ty - 1, 2 * tx - 1)), input.rowStride, cin, run,
                                 transformed + (tile - range.lowerBound) * cin, plane)
        tile += run
    }
}

/// The input transform of every tile: V[ξ][tile][c] in `transformed` (16 x tiles x channels floats).
/// `input` has even sides and channels in multiples of 8.
public func winogradInputTransform(_ input: FeatureMap, transformed: UnsafeMutablePointer<Float>, threads: Int) {
    precondition(input.channels % 8 == 0 && input.height % 2 == 0 && input.width % 2 == 0,
                 "winogradInputTransform: channels not in multiples of 8 or odd sides")
    let tiles = WinogradTiles(input)
    parallelChunks(input.images * tiles.tilesY, threads: threads) { tileRows in
        for tileRow in tileRows {
            let first = tileRow * tiles.tilesX
            winogradInputTiles(input, tiles: first..<(first + tiles.tilesX), into: transformed + first * input.channels,
                               plane: tiles.count * input.channels)
        }
    }
}

/// M[ξ] = V[ξ] · U[ξ] for `count` tiles on the dense microkernel, work items `items` of the 16 x panels x
/// (count / 6) (ξ, panel, 6-tile row) items; V[ξ] at transformed + ξ * transformedPlane, M[ξ] likewise.
func winogradProducts(_ conv: PackedWinogradConv, transformed: UnsafePointer<Float>, transformedPlane: Int,
                      products: UnsafeMutablePointer<Float>, productsPlane: Int, count: Int, items: Range<Int>) {
    let cin = conv.inChannels, cout = conv.outChannels
    let gemmTiles = (count + denseTilePixels - 1) / denseTilePixels
    let panels = conv.transformedWeights[0].panels
    var zeroTap = 0
    withUnsafePointer(to: &zeroTap) { taps in
        // One ξ's items at a time, its packed weights taken from the array once: fetching them per item
        // retained and released the object around every tile call, 3% of a training step (the narrow
        // layers' tiles are short).
        var start = items.lowerBound
        while start < items.upperBound {
            let xi = start / (panels * gemmTiles)
            let end = min(items.upperBound, (xi + 1) * panels * gemmTiles)
            let packed = conv.transformedWeights[xi]
            let a = transformed + xi * transformedPlane, m = products + xi * productsPlane
            for item in start..<end {
                let panel = (item / gemmTiles) % panels
                let first = (item % gemmTiles) * denseTilePixels
                let valid = min(denseTilePixels, count - first)
                @inline(__always) func row(_ p: Int) -> Int { first + min(p, valid - 1) }
                denseTile(packed, panel: panel, taps: taps,
                          a + row(0) * cin, a + row(1) * cin, a + row(2) * cin, a + row(3) * cin, a + row(4) * cin, a + row(5) * cin,
                          m + row(0) * cout, m + row(1) * cout, m + row(2) * cout, m + row(3) * cout, m + row(4) * cout, m + row(5) * cout,
                          valid: valid)
            }
            start = end
        }
    }
}

/// The output transform for tiles `range`: Y = Aᵀ M A per 2x2 block, plus bias and activation, into the
/// output's interior; M[ξ][t] of tile range.lowerBound + t at products + ξ * plane + t * outChannels. Each run
/// of tiles in one tile row is one call of the path's `floatWinogradOutputRow`.
func winogradOutputTiles(_ conv: PackedWinogradConv, products: UnsafePointer<Float>, plane: Int, tiles range: Range<Int>, output: FeatureMap) {
    let tiles = WinogradTiles(output), cout = conv.outChannels, clamp = conv.clamp, kernels = conv.transformedWeights[0].kernels
    conv.bias.withUnsafeBufferPointer { bias in
        var tile = range.lowerBound
        while tile < range.upperBound {
            let (n, ty, tx) = tiles.position(tile)
            let run = min(range.upperBound - tile, tiles.tilesX - tx)
            kernels.winogradOutputRow(products + (tile - range.lowerBound) * cout, plane, cout, run, bias.baseAddress!,
                                      output.pointer + output.offset(n, 2 * ty, 2 * tx), output.rowStride, clamp.lower, clamp.upper)
            tile += run
        }
    }
}

/// output = activation(conv3x3(input) + bias) by F(2x2, 3x3), each stage over the whole map; `transformed`
/// and `products` are scratch of at least `scratchCount` floats. The right order for few tiles and wide
/// layers, where each transformed weight matrix is read once per stage.
public func winogradConv3x3(_ conv: PackedWinogradConv, input: FeatureMap, output: FeatureMap,
                            transformed: UnsafeMutablePointer<Float>, products: UnsafeMutablePointer<Float>, threads: Int) {
    checkShapes(conv, input: input, output: output)
    let tiles = WinogradTiles(output)
    let (transformedPlane, productsPlane) = (tiles.count * conv.inChannels, tiles.count * conv.outChannels)
    // 1. Input transform: V[ξ][tile][c].
    winogradInputTransform(input, transformed: transformed, threads: threads)
    // 2. Sixteen GEMMs: M[ξ] (tiles x out) = V[ξ] (tiles x in) · U[ξ] (in x out).
    let items = 16 * conv.transformedWeights[0].panels * ((tiles.count + denseTilePixels - 1) / denseTilePixels)
    parallelChunks(items, threads: threads) { items in
        winogradProducts(conv, transformed: transformed, transformedPlane: transformedPlane, products: products,
                         productsPlane: productsPlane, count: tiles.count, items: items)
    }
    // 3. Output transform, one tile row per item.
    parallelChunks(output.images * tiles.tilesY, threads: threads) { tileRows in
        for tileRow in tileRows {
            let first = tileRow * tiles.tilesX
            winogradOutputTiles(conv, products: products + first * conv.outChannels, plane: productsPlane,
                                tiles: first..<(first + tiles.tilesX), output: output)
        }
    }
}

/// The same convolution in blocks of tiles: each thread transforms a block, runs its 16 GEMMs and writes
/// its outputs while the block's transforms are still in its cache. The right order for many tiles of
/// narrow layers (high resolution), whose whole-map transforms (4x the map) would go through memory.
/// Allocates its own scratch (`blockTiles(conv)` tiles per thread).
public func winogradConv3x3Blocked(_ conv: PackedWinogradConv, input: FeatureMap, output: FeatureMap, threads: Int) {
    checkShapes(conv, input: input, output: output)
    let tiles = WinogradTiles(output)
    let block = winogradBlockTiles(inChannels: conv.inChannels, outChannels: conv.outChannels)
    let blocks = (tiles.count + block - 1) / block
    let parts = min(threads, blocks)
    let (transformedPlane, productsPlane) = (block * conv.inChannels, block * conv.outChannels)
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: parts * 16 * (transformedPlane + productsPlane))
    defer { scratch.deallocate() }
    let panels = conv.transformedWeights[0].panels
    parallelChunks(parts, threads: threads) { partRange in
        for part in partRange {
            let transformed = scratch + part * 16 * (transformedPlane + productsPlane)
            let products = transformed + 16 * transformedPlane
            for b in (blocks * part / parts)..<(blocks * (part + 1) / parts) {
                let range = (b * block)..<min(tiles.count, (b + 1) * block)
                winogradInputTiles(input, tiles: range, into: transformed, plane: transformedPlane)
                let items = 16 * panels * ((range.count + denseTilePixels - 1) / denseTilePixels)
                winogradProducts(conv, transformed: transformed, transformedPlane: transformedPlane, products: products,
                                 productsPlane: productsPlane, count: range.count, items: 0..<items)
                winogradOutputTiles(conv, products: products, plane: productsPlane, tiles: range, output: output)
            }
        }
    }
}

/// Tiles per block of `winogradConv3x3Blocked`: a multiple of the GEMM tile's 6 rows whose transformed
/// input and products (16 x tiles x (in + out) floats) take about 256 KB, so they stay in L2.
public func winogradBlockTiles(inChannels: Int, outChannels: Int) -> Int {
    let tiles = (256 << 10) / (16 * (inChannels + outChannels) * MemoryLayout<Float>.size)
    return max(6, min(96, tiles / 6 * 6))
}

func checkShapes(_ conv: PackedWinogradConv, input: FeatureMap, output: FeatureMap) {
    precondition(input.channels == conv.inChannels && output.channels == conv.outChannels && input.images == output.images
                 && output.height == input.height && output.width == input.width && output.height % 2 == 0 && output.width % 2 == 0,
                 "winogradConv3x3: shapes do not fit the convolution")
}
