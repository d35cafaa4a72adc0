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
                name: String, path: KernelPath = .current) {
        precondition(inChannels % 8 == 0 && outChannels % 8 == 0 && u.count == 16 && u.allSatisfy { $0.count == outChannels * inChannels }
                     && bias.count == outChannels, "PackedWinogradConv: \(name) has channels not in multiples of 8 or mis-sized weights")
        self.inChannels = inChannels
        self.outChannels = outChannels
        clamp = ActivationClamp(activation)
        let gemmSpec = ConvSpec(weightPrefix: name + ".winograd", batchNormPrefix: nil, hasBias: false, kind: .standard,
                                kernel: 1, stride: 1, inChannels: inChannels, outChannels: outChannels, activation: .none, group: .head)
        let zeros = [Float](repeating: 0, count: outChannels)
        transformedWeights = u.map { PackedDenseConv(FoldedConv(spec: gemmSpec, weight: $0, bias: zeros), path: path) }
        self.bias = (0..<(outChannels / 8)).map { b in FloatVector((0..<8).map { bias[b * 8 + $0] }) }
    }

    /// Floats of scratch memory a call needs: transformed input (16 x tiles x in) and products (16 x tiles x out).
    public func scratchCount(images: Int, outputHeight: Int, outputWidth: Int) -> (transformed: Int, products: Int) {
        let tiles = images * (outputHeight / 2) * (outputWidth / 2)
        return (16 * tiles * inChannels, 16 * tiles * outChannels)
    }
}

/// U = G g Gᵀ for every (out, in) pair of a 3x3 weight [out][in][3][3]: 16 arrays [out][in], one per ξ.
///
/// Each U[ξ] is the sum, in (k, l) order, of the terms G[i][k] g[k][l] G[j][l] whose coefficients are not
/// zero (an added zero term changes no sum), computed for all pairs at once from a tap-major copy of the
/// weights, so the loops run over contiguous memory.
public func winogradWeightTransform(_ weight: [Float], outChannels: Int, inChannels: Int) -> [[Float]] {
    let pairs = outChannels * inChannels
    precondition(weight.count == pairs * 9, "winogradWeightTransform: \(weight.count) weights for \(outChannels) x \(inChannels) x 3 x 3")
    // byTap[t][pair] = weight[pair][t].
    var byTap = [Float](repeating: 0, count: 9 * pairs)
    weight.withUnsafeBufferPointer { w in
        byTap.withUnsafeMutableBufferPointer { b in
            for pair in 0..<pairs { for t in 0..<9 { b[t * pairs + pair] = w[pair * 9 + t] } }
        }
    }
    let G: [[Float]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
    return byTap.withUnsafeBufferPointer { b in
        (0..<16).map { xi in
            let (i, j) = (xi / 4, xi % 4)
            var u = [Float](repeating: 0, count: pairs)
            u.withUnsafeMutableBufferPointer { u in
                for k in 0..<3 where G[i][k] != 0 {
                    for l in 0..<3 where G[j][l] != 0 {
                        let (left, right) = (G[i][k], G[j][l])
                        let tap = b.baseAddress! + (k * 3 + l) * pairs
                        for pair in 0..<pairs { u[pair] += left * tap[pair] * right }
                    }
                }
            }
            return u
        }
    }
}

/// The input transform of F(2x2, 3x3): V[ξ][tile][c] = (Bᵀ d B)[ξ] for the 4x4 patch d whose top-left is
/// input pixel (2ty-1, 2tx-1), tiles numbered image by image, row by row. `input` has even sides and
/// channels in multiples of 8; `transformed` holds 16 x tiles x channels floats.
public func winogradInputTransform(_ input: FeatureMap, transformed: UnsafeMutablePointer<Float>, threads: Int) {
    precondition(input.channels % 8 == 0 && input.height % 2 == 0 && input.width % 2 == 0,
                 "winogradInputTransform: channels not in multiples of 8 or odd sides")
    let tilesX = input.width / 2, tilesY = input.height / 2
    let tiles = input.images * tilesX * tilesY
    let cin = input.channels
    let rowStride = input.rowStride
    parallelChunks(input.images * tilesY, threads: threads) { tileRows in
        for tileRow in tileRows {
            let n = tileRow / tilesY, ty = tileRow % tilesY
            for tx in 0..<tilesX {
                let tile = tileRow * tilesX + tx
                let patch = UnsafePointer(input.pointer + input.offset(n, 2 * ty - 1, 2 * tx - 1))
                for c in stride(from: 0, to: cin, by: 8) {
                    // Bᵀ d: combine the patch's 4 rows, for each of its 4 columns.
                    @inline(__always) func column(_ col: Int) -> (FloatVector, FloatVector, FloatVector, FloatVector) {
                        let p = patch + col * cin + c
                        let d0 = loadVector(p), d1 = loadVector(p + rowStride), d2 = loadVector(p + 2 * rowStride), d3 = loadVector(p + 3 * rowStride)
                        return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
                    }
                    let k0 = column(0), k1 = column(1), k2 = column(2), k3 = column(3)
                    // (Bᵀ d) B: combine the 4 columns the same way, for each row i; V[i * 4 + j].
                    let base = transformed + tile * cin + c
                    let plane = tiles * cin
                    @inline(__always) func store(_ i: Int, _ e0: FloatVector, _ e1: FloatVector, _ e2: FloatVector, _ e3: FloatVector) {
                        storeVector(e0 - e2, base + (i * 4 + 0) * plane)
                        storeVector(e1 + e2, base + (i * 4 + 1) * plane)
                        storeVector(e2 - e1, base + (i * 4 + 2) * plane)
                        storeVector(e1 - e3, base + (i * 4 + 3) * plane)
                    }
                    store(0, k0.0, k1.0, k2.0, k3.0)
                    store(1, k0.1, k1.1, k2.1, k3.1)
                    store(2, k0.2, k1.2, k2.2, k3.2)
                    store(3, k0.3, k1.3, k2.3, k3.3)
                }
            }
        }
    }
}

/// output = activation(conv3x3(input) + bias) by F(2x2, 3x3); `transformed` and `products` are scratch
/// of at least `scratchCount` floats.
public func winogradConv3x3(_ conv: PackedWinogradConv, input: FeatureMap, output: FeatureMap,
                            transformed: UnsafeMutablePointer<Float>, products: UnsafeMutablePointer<Float>, threads: Int) {
    precondition(input.channels == conv.inChannels && output.channels == conv.outChannels && input.images == output.images
                 && output.height == input.height && output.width == input.width && output.height % 2 == 0 && output.width % 2 == 0,
                 "winogradConv3x3: shapes do not fit the convolution")
    let tilesX = output.width / 2, tilesY = output.height / 2
    let tilesPerImage = tilesX * tilesY
    let tiles = output.images * tilesPerImage
    let cin = conv.inChannels, cout = conv.outChannels

    // 1. Input transform: V[ξ][tile][c].
    winogradInputTransform(input, transformed: transformed, threads: threads)

    // 2. Sixteen GEMMs: M[ξ] (tiles x out) = V[ξ] (tiles x in) · U[ξ] (in x out), on the dense microkernel.
    let gemmTiles = (tiles + denseTilePixels - 1) / denseTilePixels
    let panels = conv.transformedWeights[0].panels
    var zeroTap = 0
    withUnsafePointer(to: &zeroTap) { taps in
        parallelChunks(16 * panels * gemmTiles, threads: threads) { items in
            for item in items {
                let xi = item / (panels * gemmTiles)
                let panel = (item / gemmTiles) % panels
                let first = (item % gemmTiles) * denseTilePixels
                let valid = min(denseTilePixels, tiles - first)
                let gemm = conv.transformedWeights[xi]
                let a = UnsafePointer(transformed + xi * tiles * cin), m = products + xi * tiles * cout
                @inline(__always) func row(_ p: Int) -> Int { first + min(p, valid - 1) }
                denseTile(gemm, panel: panel, taps: taps,
                                      a + row(0) * cin, a + row(1) * cin, a + row(2) * cin, a + row(3) * cin, a + row(4) * cin, a + row(5) * cin,
                                      m + row(0) * cout, m + row(1) * cout, m + row(2) * cout, m + row(3) * cout, m + row(4) * cout, m + row(5) * cout,
                                      valid: valid)
            }
        }
    }

    // 3. Output transform: Y = Aᵀ M A per 2x2 block, plus bias, activation, into the output's interior.
    let clamp = conv.clamp
    parallelChunks(output.images * tilesY, threads: threads) { tileRows in
        for tileRow in tileRows {
            let n = tileRow / tilesY, ty = tileRow % tilesY
            for tx in 0..<tilesX {
                let tile = tileRow * tilesX + tx
                let top = output.pointer + output.offset(n, 2 * ty, 2 * tx)
                let bottom = top + output.rowStride
                for b in 0..<(cout / 8) {
                    let base = UnsafePointer(products + tile * cout + b * 8)
                    let plane = tiles * cout
                    @inline(__always) func m(_ i: Int, _ j: Int) -> FloatVector { loadVector(base + (i * 4 + j) * plane) }
                    // Aᵀ M: two rows, each over the 4 columns.
                    let s0 = (m(0, 0) + m(1, 0) + m(2, 0), m(0, 1) + m(1, 1) + m(2, 1), m(0, 2) + m(1, 2) + m(2, 2), m(0, 3) + m(1, 3) + m(2, 3))
                    let s1 = (m(1, 0) - m(2, 0) - m(3, 0), m(1, 1) - m(2, 1) - m(3, 1), m(1, 2) - m(2, 2) - m(3, 2), m(1, 3) - m(2, 3) - m(3, 3))
                    let bias = conv.bias[b]
                    storeVector(clamp.apply(bias + (s0.0 + s0.1 + s0.2)), top + b * 8)
                    storeVector(clamp.apply(bias + (s0.1 - s0.2 - s0.3)), top + cout + b * 8)
                    storeVector(clamp.apply(bias + (s1.0 + s1.1 + s1.2)), bottom + b * 8)
                    storeVector(clamp.apply(bias + (s1.1 - s1.2 - s1.3)), bottom + cout + b * 8)
                }
            }
        }
    }
}
