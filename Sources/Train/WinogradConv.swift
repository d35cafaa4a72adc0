import QuantEngine

// MARK: - 3x3 stride-1 convolution by Winograd F(2x2, 3x3), forward and backward

// The decoder's wide 3x3 convolutions hold most of a training step's multiply-adds. Winograd's F(2x2, 3x3)
// (Lavin & Gray 2016; the engine's `PackedWinogradConv` states the transforms) computes each 2x2 output block
// from a 4x4 input patch with 16 multiplies per channel pair instead of 36, and the same holds for both
// gradients:
//
// - Forward: Y = Aᵀ [U ⊙ V] A with U = G g Gᵀ, V = Bᵀ d B: the engine's `winogradConv3x3`.
// - Input gradient: dX = conv(dZ, W') with the flipped, transposed weights W' (see DenseConv.swift), itself a
//   3x3 stride-1 convolution, so the same forward with U' = G W' Gᵀ.
// - Weight gradient: Y is linear in M = U ⊙ V, so dM[ξ] = (A dY Aᵀ)[ξ] per tile (the output transform's
//   adjoint, 2x2 -> 4x4), dU[ξ][o][c] = sum over tiles of dM[ξ][tile][o] V[ξ][tile][c] (16 GEMMs whose K is
//   the tile count, on the weight-gradient tile), and dg = Gᵀ dU G (the weight transform's adjoint).
//
// All three are checked against the direct convolution's forward and gradients (LayerGradientTests).

public enum WinogradConv {
    /// The channel pairs (in x out) a layer needs for Winograd to pay: the transforms cost per channel what the
    /// 2.25x fewer multiply-adds save per channel pair. Timed per layer on a full-ft step at 192x128, batch
    /// 10, one thread (docs/TRAINING.md, "Layers"): 32 -> 16 channels gains a little, 16 -> 16 loses 5-10%.
    static let minimumChannelPairs = 32 * 16

    /// Whether a convolution of the trainer runs on Winograd at this map size (the map is the output's, which
    /// for stride 1 is also the input's).
    public static func applies(_ spec: ConvSpec, height: Int, width: Int) -> Bool {
        PackedWinogradConv.supports(spec, outputHeight: height, outputWidth: width)
            && spec.inChannels * spec.outChannels >= minimumChannelPairs
    }

    /// conv(input, weight) + bias, weight [out][in][3][3]; `input` is NHWC with a zero border.
    static func convolve(_ input: FeatureMap, weight: [Float], bias: [Float]?, outChannels: Int, name: String, threads: Int) -> FeatureBatch {
        let cin = input.channels
        let conv = PackedWinogradConv(transformed: winogradWeightTransform(weight, outChannels: outChannels, inChannels: cin, threads: threads),
                                      inChannels: cin, outChannels: outChannels, bias: bias ?? [Float](repeating: 0, count: outChannels),
                                      activation: .none, name: name, threads: threads)
        let output = NHWCBuffer(images: input.images, height: input.height, width: input.width, channels: outChannels)
        if isNarrow(inChannels: cin, outChannels: outChannels) {
            winogradConv3x3Blocked(conv, input: input, output: output.map, threads: threads)
            return output.batch(threads: threads)
        }
        let scratch = conv.scratchCount(images: input.images, outputHeight: input.height, outputWidth: input.width)
        let transformed = UnsafeMutablePointer<Float>.allocate(capacity: scratch.transformed)
        let products = UnsafeMutablePointer<Float>.allocate(capacity: scratch.products)
        defer { transformed.deallocate(); products.deallocate() }
        winogradConv3x3(conv, input: input, output: output.map, transformed: transformed, products: products, threads: threads)
        return output.batch(threads: threads)
    }

    /// Whether a layer runs in blocks of tiles (`winogradConv3x3Blocked`, `blockedWeightGradient`), which keeps
    /// each block's transforms in cache, rather than each stage over the whole map, which reads each of the
    /// 16 transformed weight matrices once per stage. Blocks win while those matrices (16 x in x out floats)
    /// stay near the L2 cache: timed per layer, 288 -> 128 channels gains 3-10% in blocks, 256 -> 256 and
    /// 1376 -> 256 lose up to 2.5x.
    static func isNarrow(inChannels: Int, outChannels: Int) -> Bool { inChannels * outChannels <= 288 * 128 }

    /// dW [out][in][3][3] from the layer's input X and output gradient dZ (both NHWC with a zero border).
    static func weightGradient(input: FeatureMap, gradient: FeatureMap, kernels: TrainKernels = .current, threads: Int) -> [Float] {
        let (cin, cout) = (input.channels, gradient.channels)
        if isNarrow(inChannels: cin, outChannels: cout) {
            return blockedWeightGradient(input: input, gradient: gradient, kernels: kernels, threads: threads)
        }
        let tiles = WinogradTiles(input).count
        // V = Bᵀ d B and dM = A dY Aᵀ, each [ξ][tile][channel], plus what the GEMM tile may read past the end.
        let slack = DenseConv.gradientTileSlack
        let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * tiles * cin + slack)
        let dM = UnsafeMutablePointer<Float>.allocate(capacity: 16 * tiles * cout + slack)
        defer { v.deallocate(); dM.deallocate() }
        (v + 16 * tiles * cin).initialize(repeating: 0, count: slack)
        (dM + 16 * tiles * cout).initialize(repeating: 0, count: slack)
        winogradInputTransform(input, transformed: v, threads: threads)
        outputGradientTransform(gradient, into: dM, threads: threads)
        let dU = DenseConv.gradientGEMMs(gradients: UnsafePointer(dM), gradientBases: (0..<16).map { $0 * tiles * cout },
                                         gradientOffsets: (0..<tiles).map { $0 * cout },
                                         inputs: UnsafePointer(v), inputBases: (0..<16).map { $0 * tiles * cin },
                                         inputOffsets: (0..<tiles).map { $0 * cin },
                                         rows: cout, lanes: cin, kernels: kernels, threads: threads)
        return weightTransformAdjoint(dU, pairs: cout * cin, threads: threads)
    }

    /// dW in blocks of tiles: each of a fixed number of parts (so the sums are the same whatever the thread
    /// count) transforms a block's input and output gradient into cache-sized buffers and adds the block's
    /// 16 GEMMs to its own dU; the parts' dU are added in order.
    static func blockedWeightGradient(input: FeatureMap, gradient: FeatureMap, kernels: TrainKernels, threads: Int) -> [Float] {
        let (cin, cout) = (input.channels, gradient.channels)
        let tiles = WinogradTiles(input).count
        let block = winogradBlockTiles(inChannels: cin, outChannels: cout)
        let blocks = (tiles + block - 1) / block
        let parts = min(blocks, 4)
        let (vPlane, mPlane, slack) = (block * cin, block * cout, DenseConv.gradientTileSlack)
        let partFloats = 16 * (vPlane + mPlane) + slack
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: parts * partFloats)
        defer { scratch.deallocate() }
        let sumCount = 16 * cout * cin
        // Each part zeroes its own scratch (incl. the slack the GEMM tile may read) and sums on its thread.
        let partSums = UnsafeMutablePointer<Float>.allocate(capacity: parts * sumCount)
        defer { partSums.deallocate() }
        let items = DenseConv.gradientItemCount(positions: 16, rows: cout, lanes: cin, kernels: kernels)
        let (gradientBases, inputBases) = ((0..<16).map { $0 * mPlane }, (0..<16).map { $0 * vPlane })
        let gradientOffsets = (0..<block).map { $0 * cout }, inputOffsets = (0..<block).map { $0 * cin }
        gradientOffsets.withUnsafeBufferPointer { gradientOffsets in
        inputOffsets.withUnsafeBufferPointer { inputOffsets in
            let (gp, ip) = (gradientOffsets.baseAddress!, inputOffsets.baseAddress!)
            parallelChunks(parts, threads: threads) { partRange in
                for part in partRange {
                    let v = scratch + part * partFloats, dM = v + 16 * vPlane
                    let sums = partSums + part * sumCount
                    v.initialize(repeating: 0, count: partFloats)
                    sums.initialize(repeating: 0, count: sumCount)
                    for b in (blocks * part / parts)..<(blocks * (part + 1) / parts) {
                        let range = (b * block)..<min(tiles, (b + 1) * block)
                        winogradInputTiles(input, tiles: range, into: v, plane: vPlane)
                        outputGradientTiles(gradient, tiles: range, into: dM, plane: mPlane)
                        DenseConv.addGradientItems(0..<items, gradients: UnsafePointer(dM), gradientBases: gradientBases, gradientOffsets: gp,
                                                   inputs: UnsafePointer(v), inputBases: inputBases, inputOffsets: ip, count: range.count,
                                                   sums: sums, rows: cout, lanes: cin, kernels: kernels)
                    }
                }
            }
        }}
        // dU = the parts' sums added in part order (from 0, as every sum here starts), on all threads.
        let dU = [Float](unsafeUninitializedCapacity: sumCount) { dU, initialized in
            let target = dU.baseAddress!
            parallelChunks(sumCount, threads: threads) { range in
                for i in range {
                    var total: Float = 0
                    for part in 0..<parts { total += partSums[part * sumCount + i] }
                    target[i] = total
                }
            }
            initialized = sumCount
        }
        return weightTransformAdjoint(dU, pairs: cout * cin, threads: threads)
    }

    /// dM[ξ][tile][o] = (A dY Aᵀ)[ξ] for every tile (16 x tiles x out floats).
    static func outputGradientTransform(_ gradient: FeatureMap, into dM: UnsafeMutablePointer<Float>, threads: Int) {
        let tiles = WinogradTiles(gradient)
        parallelChunks(gradient.images * tiles.tilesY, threads: threads) { tileRows in
            for tileRow in tileRows {
                let first = tileRow * tiles.tilesX
                outputGradientTiles(gradient, tiles: first..<(first + tiles.tilesX), into: dM + first * gradient.channels,
                                    plane: tiles.count * gradient.channels)
            }
        }
    }

    /// dM[ξ][t][o] = (A dY Aᵀ)[ξ] for the 2x2 block of dY of tile range.lowerBound + t (`WinogradTiles`'
    /// numbering), at dM + ξ * plane + t * out + o. With Aᵀ = [1 1 1 0; 0 1 -1 -1],
    /// each of the block's two rows (a, b) becomes (a, a + b, a - b, -b), and so do its columns.
    static func outputGradientTiles(_ gradient: FeatureMap, tiles range: Range<Int>, into dM: UnsafeMutablePointer<Float>, plane: Int) {
        let (cout, tiles) = (gradient.channels, WinogradTiles(gradient))
        for tile in range {
            let (n, ty, tx) = tiles.position(tile)
            let top = UnsafePointer(gradient.pointer + gradient.offset(n, 2 * ty, 2 * tx))
            let bottom = top + gradient.rowStride
            let base = dM + (tile - range.lowerBound) * cout
            for o in 0..<cout {
                @inline(__always) func store(_ i: Int, _ a: Float, _ b: Float) {
                    base[(i * 4 + 0) * plane + o] = a
                    base[(i * 4 + 1) * plane + o] = a + b
                    base[(i * 4 + 2) * plane + o] = a - b
                    base[(i * 4 + 3) * plane + o] = -b
                }
                let (y00, y01, y10, y11) = (top[o], top[cout + o], bottom[o], bottom[cout + o])
                // A dY: rows (y0, y0 + y1, y0 - y1, -y1); then the same along each row.
                store(0, y00, y01)
                store(1, y00 + y10, y01 + y11)
                store(2, y00 - y10, y01 - y11)
                store(3, -y10, -y11)
            }
        }
    }

    /// dg = Gᵀ dU G for every channel pair: dU is [ξ][pair], the result [pair][3][3] (PyTorch's weight layout).
    static func weightTransformAdjoint(_ dU: [Float], pairs: Int, threads: Int) -> [Float] {
        let G = winogradG
        // [k * 3 + l][pair], one tap per work item, which zeroes its own row first.
        let byTap = [Float](unsafeUninitializedCapacity: 9 * pairs) { out, initialized in
            dU.withUnsafeBufferPointer { dU in
                let (source, target) = (dU.baseAddress!, out.baseAddress!)
                parallelChunks(9, threads: threads) { taps in
                    for tap in taps {
                        let (k, l) = (tap / 3, tap % 3), row = target + tap * pairs
                        row.initialize(repeating: 0, count: pairs)
                        for i in 0..<4 where G[i][k] != 0 {
                            for j in 0..<4 where G[j][l] != 0 {
                                let coefficient = G[i][k] * G[j][l]
                                let point = source + (i * 4 + j) * pairs
                                for pair in 0..<pairs { row[pair] += coefficient * point[pair] }
                            }
                        }
                    }
                }
            }
            initialized = 9 * pairs
        }
        return DenseConv.pairMajor(byTap, pairs: pairs, taps: 9, threads: threads)
    }
}
