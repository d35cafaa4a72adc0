import Int8Microkernels

/// int8 3x3 stride-1 convolution by Winograd's F(2x2, 3x3), exact: bit for bit the direct kernel's result.
///
/// The float engine's version (FloatKernels/Winograd.swift) has the method. In integers it needs one
/// change: G has halves, so the weights are transformed with G' = 2G = [2 0 0; 1 1 1; 1 -1 1; 0 0 2],
/// and then
///
///   Aᵀ [ (G' g G'ᵀ) ⊙ (Bᵀ d B) ] A = 4 · (d ⋆ g)      for every 4x4 input patch d, exactly,
///
/// so the output transform gives 4x the direct sum and an arithmetic shift right by 2 gives the sum.
/// Ranges: d holds x - zero point (|d| ≤ 255), Bᵀ and B have row sums of |coefficients| ≤ 2, so
/// |Bᵀ d B| ≤ 1020; G' has row sums ≤ 3, so |G' g G'ᵀ| ≤ 9 · 127 = 1143. Both fit int16, and the 16
/// GEMMs run on the direct kernel's int16 x int16 -> int32 row microkernel (`int16GemmRow`) unchanged.
/// The products and all later sums use wrapping int32 arithmetic, which is exact modulo 2^32: the result is
/// right whenever the final value, 4x the direct sum, fits int32. The direct sum of output channel o is at
/// most 255 · Σ|w[o]|, so `init?` accepts a convolution only if 4 · 255 · Σ|w[o]| < 2^31 for every o
/// (about 1,800 input channels of full-scale weights; the model's largest is 1,376).
///
/// Steps per call (scratch: staged input, transformed input V, products M, all in the int16 scratch):
///   1. stage the input as int16 x - zero point with a zero border (`stageInt16`, as the direct kernel);
///   then for each band of tile rows (`defaultBandBytes` of V and M, so they stay in cache from one step to the
///   next and the scratch stays small at large frame sizes):
///   2. V[ξ][tile][c] = (Bᵀ d B)[ξ] per 2x2 output tile and channel, 16 channels per SIMD vector;
///   3. M[ξ][tile][o] = Σ_c V[ξ][tile][c] · U[ξ][o][c]: 16 GEMMs of tiles x channels x outputs, each a
///      1x1 convolution on the direct kernel's row microkernel (`int16GemmRow`);
///   4. per tile and 16 outputs: Aᵀ M A (int32), >> 2, then the direct kernel's epilogue (`requantizeRow`:
///      bias, requantize, clamp, store).
/// Cost: 16 multiplies per 2x2 output block and channel pair instead of 36 (2.25x fewer), plus the
/// transforms: per tile 32 int16 adds per input channel and 24 int32 adds per output channel, which is
/// why it only pays for wide convolutions (`minimumChannels`).
public final class Int8Winograd3x3 {
    public let inChannels: Int
    public let outChannels: Int
    /// Input channels rounded up to a multiple of 16 (a SIMD16<Int16> per 16 channels).
    let stagedChannels: Int
    /// Output channels rounded up to a multiple of 16: the epilogue's chunk; the extra weights are zero.
    let paddedOutputs: Int
    /// U[ξ] = G' g G'ᵀ, packed per ξ like a 1x1 conv for the microkernel: [ξ][group of 4][16-channel chunk][4][16].
    let weights: [Int16]
    let requant: PackedRequantization
    /// The microkernels of the kernel path this convolution runs on.
    let kernels: Int8KernelTable

    /// V and M of one band of tile rows, at most (at least one tile row)...
    public static let defaultBandBytes = 1 << 20
    /// ...or as many bytes as the transformed weights, if more: every band streams all of U once, so
    /// smaller bands would make a wide layer (unet-baseline's 1024 -> 512) read its weights many times
    /// (measured: 25.5 ms for that layer with 1 MB bands, docs/PERFORMANCE.md).
    let bandBytes: Int

    /// Narrower convolutions stay on the direct kernel: there the transforms cost about what the saved
    /// multiplies do (the float engine's rule is the same; measured for int8 in docs/PERFORMANCE.md).
    public static let minimumChannels = 64

    /// nil unless `p` is a dense 3x3 stride-1 convolution with at least `minimumChannels` input and output
    /// channels whose sums stay exact (see the type's comment). `bandBytes` overrides the band rule (tests).
    public init?(_ p: QuantizedConvParameters, minimumChannels: Int = Int8Winograd3x3.minimumChannels,
                 bandBytes: Int? = nil, path: KernelPath = .current) {
        guard p.kind == .standard, p.kernel == 3, p.stride == 1, p.inChannels >= minimumChannels, p.outChannels >= minimumChannels else {
            return nil
        }
        let perOutput = p.inChannels * 9
        for o in 0..<p.outChannels {
            let absoluteSum = p.weights[(o * perOutput)..<((o + 1) * perOutput)].reduce(0) { $0 + abs(Int($1)) }
            if 4 * 255 * absoluteSum >= 1 << 31 { return nil }
        }
        kernels = .of(path)
        inChannels = p.inChannels
        outChannels = p.outChannels
        stagedChannels = (p.inChannels + 15) & ~15
        paddedOutputs = (p.outChannels + 15) & ~15
        requant = PackedRequantization(p, paddedCount: paddedOutputs)
        let G: [[Int]] = [[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]]
        let chunks = stagedChannels / 16
        var packed = [Int16](repeating: 0, count: 16 * paddedOutputs * stagedChannels)
        for o in 0..<p.outChannels {
            let group = o / 4, lane = o % 4
            for c in 0..<p.inChannels {
                let g = (0..<9).map { Int(p.weights[(o * p.inChannels + c) * 9 + $0]) }
                for i in 0..<4 {
                    for j in 0..<4 {
                        var u = 0
                        for k in 0..<3 { for l in 0..<3 { u += G[i][k] * g[k * 3 + l] * G[j][l] } }
                        let xi = i * 4 + j
                        let index = ((((xi * (paddedOutputs / 4) + group) * chunks + c / 16) * 4 + lane) * 16) + c % 16
                        packed[index] = Int16(u)
                    }
                }
            }
        }
        weights = packed
        self.bandBytes = bandBytes ?? max(Self.defaultBandBytes, 2 * packed.count)
    }

    /// Whether an input of this size can run here (the tiles are 2x2 output pixels); else use the direct kernel.
    public func supports(height: Int, width: Int) -> Bool { height % 2 == 0 && width % 2 == 0 && height > 0 && width > 0 }

    /// Int16 scratch elements `run` needs: staged input, then one band's V and M (int32, two elements
    /// each), each starting on a 32-byte boundary.
    public func scratchCount(height: Int, width: Int) -> Int {
        let layout = scratchLayout(height: height, width: width)
        return layout.products + 2 * 16 * layout.bandRows * (width / 2) * paddedOutputs
    }

    private func scratchLayout(height: Int, width: Int) -> (bandRows: Int, transformed: Int, products: Int) {
        let tilesX = width / 2
        let bytesPerTile = 16 * stagedChannels * 2 + 16 * paddedOutputs * 4
        let bandRows = max(1, min(height / 2, bandBytes / (tilesX * bytesPerTile)))
        let staged = (height + 2) * (width + 2) * stagedChannels
        let transformed = (staged + 15) & ~15
        let products = (transformed + 16 * bandRows * tilesX * stagedChannels + 15) & ~15
        return (bandRows, transformed, products)
    }

    /// input: [height][width][inChannels] int8; output: [height][width][outChannels] int8 (padding 1).
    public func run(input: UnsafePointer<Int8>, height: Int, width: Int, output: UnsafeMutablePointer<Int8>,
                    scratch: UnsafeMutablePointer<Int16>, threads: Int, inputZeroPoint: Int32) {
        precondition(supports(height: height, width: width), "Int8Winograd3x3: \(height)x\(width) is not a whole number of 2x2 tiles")
        let layout = scratchLayout(height: height, width: width)
        let tilesX = width / 2, tilesY = height / 2
        stageInt16(input, height: height, width: width, channels: inChannels, zeroPoint: inputZeroPoint,
                   pad: 1, paddedChannels: stagedChannels, into: scratch, threads: threads)
        let staged = UnsafePointer(scratch), transformed = scratch + layout.transformed
        let products = UnsafeMutableRawPointer(scratch + layout.products)  // int32 [ξ][band tile][paddedOutputs]
        for firstRow in stride(from: 0, to: tilesY, by: layout.bandRows) {
            runBand(tileRows: firstRow..<min(firstRow + layout.bandRows, tilesY), tilesX: tilesX, width: width,
                    staged: staged, transformed: transformed, products: products, output: output, threads: threads)
        }
    }

    /// Steps 2-4 for the tile rows `tileRows`; V and M hold this band only (tile = local row x tilesX + tx).
    private func runBand(tileRows: Range<Int>, tilesX: Int, width: Int, staged: UnsafePointer<Int16>,
                         transformed: UnsafeMutablePointer<Int16>, products: UnsafeMutableRawPointer,
                         output: UnsafeMutablePointer<Int8>, threads: Int) {
        let cp = stagedChannels, outputs = outChannels, paddedOutputs = self.paddedOutputs
        let tiles = tileRows.count * tilesX
        let firstRow = tileRows.lowerBound

        // 2. Input transform. The patch of tile (ty, tx) starts at padded pixel (2ty, 2tx).
        let stagedRow = (width + 2) * cp
        parallelChunks(tileRows.count, threads: threads) { rows in
            for row in rows {
                let ty = firstRow + row
                for tx in 0..<tilesX {
                    let tile = row * tilesX + tx
                    let patch = staged + 2 * ty * stagedRow + 2 * tx * cp
                    for c in stride(from: 0, to: cp, by: 16) {
                        // Bᵀ d: combine the patch's 4 rows, for each of its 4 columns.
                        @inline(__always) func column(_ col: Int) -> (SIMD16<Int16>, SIMD16<Int16>, SIMD16<Int16>, SIMD16<Int16>) {
                            let p = patch + col * cp + c
                            let d0 = load16(p), d1 = load16(p + stagedRow), d2 = load16(p + 2 * stagedRow), d3 = load16(p + 3 * stagedRow)
                            return (d0 &- d2, d1 &+ d2, d2 &- d1, d1 &- d3)
                        }
                        let k0 = column(0), k1 = column(1), k2 = column(2), k3 = column(3)
                        // (Bᵀ d) B: the same combination across the columns, for each row i: V[i * 4 + j].
                        let base = transformed + tile * cp + c
                        let plane = tiles * cp
                        @inline(__always) func store(_ i: Int, _ e0: SIMD16<Int16>, _ e1: SIMD16<Int16>, _ e2: SIMD16<Int16>, _ e3: SIMD16<Int16>) {
                            UnsafeMutableRawPointer(base + (i * 4 + 0) * plane).storeBytes(of: e0 &- e2, as: SIMD16<Int16>.self)
                            UnsafeMutableRawPointer(base + (i * 4 + 1) * plane).storeBytes(of: e1 &+ e2, as: SIMD16<Int16>.self)
                            UnsafeMutableRawPointer(base + (i * 4 + 2) * plane).storeBytes(of: e2 &- e1, as: SIMD16<Int16>.self)
                            UnsafeMutableRawPointer(base + (i * 4 + 3) * plane).storeBytes(of: e1 &- e3, as: SIMD16<Int16>.self)
                        }
                        store(0, k0.0, k1.0, k2.0, k3.0)
                        store(1, k0.1, k1.1, k2.1, k3.1)
                        store(2, k0.2, k1.2, k2.2, k3.2)
                        store(3, k0.3, k1.3, k2.3, k3.3)
                    }
                }
            }
        }

        // 3. Sixteen GEMMs. Work items are (ξ, 16-output chunk): one chunk's U[ξ] (cp x 16 int16) stays in
        //    cache while every tile streams past it.
        let chunksOut = paddedOutputs / 16
        let groupElements = cp * 4
        let transformedView = UnsafePointer(transformed)
        let gemmRow = kernels.gemmRowInt16Weights
        weights.withUnsafeBufferPointer { weightBuffer in
            var zeroOffset = 0
            withUnsafePointer(to: &zeroOffset) { offsets in
                parallelChunks(16 * chunksOut, threads: threads) { items in
                    for item in items {
                        let xi = item / chunksOut, chunk = item % chunksOut
                        let v = transformedView + xi * tiles * cp
                        let m = products.assumingMemoryBound(to: Int32.self) + xi * tiles * paddedOutputs + chunk * 16
                        let u = weightBuffer.baseAddress! + (xi * (paddedOutputs / 4) + chunk * 4) * groupElements
                        gemmRow(v, cp, tiles, u, 4, groupElements, offsets, 1, cp / 16, m, paddedOutputs)
                    }
                }
            }
        }

        // 4. Output transform and epilogue, per (tile row, 16-output chunk): two output rows of int32 sums.
        let requant = self.requant
        let productsView = UnsafeRawPointer(products)
        let plane = tiles * paddedOutputs * 4  // bytes per ξ
        requant.withPointers(kernels) { requant in
            parallelChunks(tileRows.count * chunksOut, threads: threads) { items in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * width * 16) { rows in
                    let top = rows.baseAddress!, bottom = top + width * 16
                    for item in items {
                        let row = item / chunksOut, ty = firstRow + row, c0 = (item % chunksOut) * 16
                        for tx in 0..<tilesX {
                            let tileBase = ((row * tilesX + tx) * paddedOutputs + c0) * 4
                            for half in 0..<2 {
                                let at = tileBase + half * 32
                                @inline(__always) func m(_ i: Int, _ j: Int) -> SIMD8<Int32> {
                                    productsView.loadUnaligned(fromByteOffset: at + (i * 4 + j) * plane, as: SIMD8<Int32>.self)
                                }
                                // Aᵀ M: two rows, each over the 4 columns; then · A, and 4 · sum >> 2.
                                let s0 = (m(0, 0) &+ m(1, 0) &+ m(2, 0), m(0, 1) &+ m(1, 1) &+ m(2, 1),
                                          m(0, 2) &+ m(1, 2) &+ m(2, 2), m(0, 3) &+ m(1, 3) &+ m(2, 3))
                                let s1 = (m(1, 0) &- m(2, 0) &- m(3, 0), m(1, 1) &- m(2, 1) &- m(3, 1),
                                          m(1, 2) &- m(2, 2) &- m(3, 2), m(1, 3) &- m(2, 3) &- m(3, 3))
                                let lane = half * 8
                                storeSums((s0.0 &+ s0.1 &+ s0.2) &>> 2, top + 2 * tx * 16 + lane)
                                storeSums((s0.1 &- s0.2 &- s0.3) &>> 2, top + (2 * tx + 1) * 16 + lane)
                                storeSums((s1.0 &+ s1.1 &+ s1.2) &>> 2, bottom + 2 * tx * 16 + lane)
                                storeSums((s1.1 &- s1.2 &- s1.3) &>> 2, bottom + (2 * tx + 1) * 16 + lane)
                            }
                        }
                        for dy in 0..<2 {
                            requant.row(dy == 0 ? top : bottom, pixels: width, channel: c0, valid: min(16, outputs - c0),
                                        output: output + (2 * ty + dy) * width * outputs + c0, pixelStride: outputs)
                        }
                    }
                }
            }
        }
    }
}

@inline(__always)
private func storeSums(_ v: SIMD8<Int32>, _ p: UnsafeMutablePointer<Int32>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Int32>.self)
}
