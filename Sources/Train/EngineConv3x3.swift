import FloatMicrokernels
#if arch(x86_64) && compiler(>=6.3)
import FloatMicrokernelsAVX2
#endif
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
// (in and out swapped, taps flipped): a gather, where col2im scattered. The weight gradient of each tap is
// a GEMM over pixels, dW_t[o][c] = sum_p dZ[p][o] X[p + tap][c], on the tile `floatWeightGradientTile`
// (Sources/FloatMicrokernels/FloatGradientTiles.swift) reading both NHWC maps in place.

public enum EngineConv3x3 {
    /// Whether `spec` runs here: 3x3 dense, padding 1 (the engine's border is one pixel).
    static func supports(_ spec: ConvSpec) -> Bool {
        spec.kind == .standard && spec.kernel == 3 && spec.padding == 1 && (spec.stride == 1 || spec.stride == 2)
    }

    /// z = conv(x, W) + bias, no activation (BatchNorm and the activation are the trainer's own layers).
    static func forward(_ x: FeatureBatch, weight: [Float], bias: [Float]?, spec: ConvSpec, threads: Int) -> FeatureBatch {
        let linear = linearSpec(spec, inChannels: spec.inChannels, outChannels: spec.outChannels, stride: spec.stride)
        let conv = PackedDenseConv(FoldedConv(spec: linear, weight: weight, bias: bias ?? [Float](repeating: 0, count: spec.outChannels)))
        let input = NHWCBuffer(x, threads: threads)
        return withExtendedLifetime(input) { run(conv, on: input.map, threads: threads) }
    }

    /// dW (PyTorch layout [out][in][3][3]) and dX (stride 1 only), each only when asked.
    static func backward(x: FeatureBatch, dOut: FeatureBatch, weight: [Float], spec: ConvSpec,
                         wantWeightGradient: Bool, wantInputGradient: Bool, threads: Int) -> (dWeight: [Float]?, dInput: FeatureBatch?) {
        precondition(!wantInputGradient || spec.stride == 1, "EngineConv3x3: input gradients of stride-1 convolutions only")
        let gradient = NHWCBuffer(dOut, threads: threads)
        var dInput: FeatureBatch?
        if wantInputGradient {
            let (cin, cout) = (spec.inChannels, spec.outChannels)
            var flipped = [Float](repeating: 0, count: weight.count)
            for o in 0..<cout {
                for c in 0..<cin {
                    for t in 0..<9 { flipped[(c * cout + o) * 9 + (8 - t)] = weight[(o * cin + c) * 9 + t] }
                }
            }
            let adjoint = linearSpec(spec, inChannels: cout, outChannels: cin, stride: 1)
            let conv = PackedDenseConv(FoldedConv(spec: adjoint, weight: flipped, bias: [Float](repeating: 0, count: cin)))
            dInput = run(conv, on: gradient.map, threads: threads)
        }
        var dWeight: [Float]?
        if wantWeightGradient {
            let input = NHWCBuffer(x, threads: threads)
            dWeight = withExtendedLifetime(input) {
                weightGradient(input: input.map, gradient: gradient.map, stride: spec.stride, threads: threads)
            }
        }
        withExtendedLifetime(gradient) {}  // its memory is read through `gradient.map` until here
        return (dWeight, dInput)
    }

    /// Output channels and input channels per weight-gradient tile (`floatWeightGradientTile`).
    static let gradientTileRows = 6, gradientTileLanes = 16

    /// dW[o][c][ky][kx] = sum over output pixels p of dZ[p][o] X[stride * p + (ky - 1, kx - 1)][c].
    ///
    /// Work items are (tap, 6 output channels, 16 input channels), one contiguous run per thread; every
    /// thread walks the pixels in blocks that fit its L2 cache and runs all its items on a block before the
    /// next, so the maps stream from memory once per thread, and an item's sums are added block by block in
    /// the same order whatever the thread count.
    static func weightGradient(input: FeatureMap, gradient: FeatureMap, stride s: Int, kernels: TrainKernels = .current,
                               threads: Int) -> [Float] {
        let (cin, cout) = (input.channels, gradient.channels)
        let pixels = gradient.images * gradient.height * gradient.width
        var inputOffsets = [Int](repeating: 0, count: pixels), gradientOffsets = [Int](repeating: 0, count: pixels)
        var p = 0
        for n in 0..<gradient.images {
            for oy in 0..<gradient.height {
                for ox in 0..<gradient.width {
                    inputOffsets[p] = input.offset(n, oy * s, ox * s)
                    gradientOffsets[p] = gradient.offset(n, oy, ox)
                    p += 1
                }
            }
        }
        var tapOffsets = [Int]()
        for ky in 0..<3 { for kx in 0..<3 { tapOffsets.append((ky - 1) * input.rowStride + (kx - 1) * cin) } }
        let rowTiles = (cout + gradientTileRows - 1) / gradientTileRows
        let panels = (cin + gradientTileLanes - 1) / gradientTileLanes
        let items = 9 * rowTiles * panels
        // About 128 KB of the two maps per block.
        let block = max(64, min(4096, 32768 / (cin + cout)))
        let tile = kernels.weightGradientTile
        var sums = [Float](repeating: 0, count: 9 * cout * cin)  // [tap][out][in]
        sums.withUnsafeMutableBufferPointer { sums in
        inputOffsets.withUnsafeBufferPointer { inputOffsets in
        gradientOffsets.withUnsafeBufferPointer { gradientOffsets in
            let (sp, ip, gp) = (sums.baseAddress!, inputOffsets.baseAddress!, gradientOffsets.baseAddress!)
            let inputs = UnsafePointer(input.pointer), gradients = UnsafePointer(gradient.pointer)
            // One contiguous run of items per thread: each run streams both maps through its cache once.
            let parts = min(threads, items)
            parallelChunks(parts, threads: threads) { partRange in
                for part in partRange {
                let chunk = (items * part / parts)..<(items * (part + 1) / parts)
                for first in Swift.stride(from: 0, to: pixels, by: block) {
                    let count = min(block, pixels - first)
                    for item in chunk {
                        let t = item / (rowTiles * panels), row = (item / panels) % rowTiles, panel = item % panels
                        let o = row * gradientTileRows, c = panel * gradientTileLanes
                        tile(gradients + o, gp + first, inputs + tapOffsets[t] + c, ip + first, count,
                             sp + (t * cout + o) * cin + c, cin, min(gradientTileRows, cout - o), min(gradientTileLanes, cin - c))
                    }
                }
                }
            }
        }}}
        var dWeight = [Float](repeating: 0, count: 9 * cout * cin)
        for t in 0..<9 {
            for o in 0..<cout {
                for c in 0..<cin { dWeight[(o * cin + c) * 9 + t] = sums[(t * cout + o) * cin + c] }
            }
        }
        return dWeight
    }

    /// The weight gradient of a 3x3, padding-1 convolution on the microkernels of `path` (tests compare
    /// every path with `weightGradientReference`).
    public static func weightGradient(x: FeatureBatch, dOut: FeatureBatch, stride: Int, path: KernelPath, threads: Int) -> [Float] {
        let input = NHWCBuffer(x, threads: threads), gradient = NHWCBuffer(dOut, threads: threads)
        return withExtendedLifetime((input, gradient)) {
            weightGradient(input: input.map, gradient: gradient.map, stride: stride, kernels: .of(path), threads: threads)
        }
    }

    /// Plain-Swift reference: dW[o][c][ky][kx] = sum over n, oy, ox of dZ[o][n][oy][ox] X[c][n][s oy + ky - 1][s ox + kx - 1],
    /// summed in Double.
    public static func weightGradientReference(x: FeatureBatch, dOut: FeatureBatch, stride s: Int) -> [Float] {
        let (cin, cout, n) = (x.channels, dOut.channels, x.batch)
        var dWeight = [Float](repeating: 0, count: cout * cin * 9)
        for o in 0..<cout {
            for c in 0..<cin {
                for ky in 0..<3 {
                    for kx in 0..<3 {
                        var sum = 0.0
                        for image in 0..<n {
                            for oy in 0..<dOut.height {
                                let iy = s * oy + ky - 1
                                guard iy >= 0 && iy < x.height else { continue }
                                for ox in 0..<dOut.width {
                                    let ix = s * ox + kx - 1
                                    guard ix >= 0 && ix < x.width else { continue }
                                    sum += Double(dOut.data[((o * n + image) * dOut.height + oy) * dOut.width + ox])
                                        * Double(x.data[((c * n + image) * x.height + iy) * x.width + ix])
                                }
                            }
                        }
                        dWeight[((o * cin + c) * 3 + ky) * 3 + kx] = Float(sum)
                    }
                }
            }
        }
        return dWeight
    }

    static func linearSpec(_ spec: ConvSpec, inChannels: Int, outChannels: Int, stride: Int) -> ConvSpec {
        ConvSpec(weightPrefix: spec.weightPrefix, batchNormPrefix: nil, hasBias: true, kind: .standard, kernel: 3, stride: stride,
                 inChannels: inChannels, outChannels: outChannels, activation: .none, group: spec.group)
    }

    static func run(_ conv: PackedDenseConv, on input: FeatureMap, threads: Int) -> FeatureBatch {
        let output = NHWCBuffer(images: input.images, height: conv.outputSize(input.height), width: conv.outputSize(input.width),
                                channels: conv.outChannels)
        denseConv(conv, input: input, output: output.map, threads: threads)
        return output.batch(threads: threads)
    }
}

/// An NHWC map with a zero border (the engine's `FeatureMap`) that owns its memory, plus `slack` floats past
/// the end that the weight-gradient tile may read. `map` is a view: keep the buffer alive while it is used
/// (`withExtendedLifetime`), or Swift may free it after its last mention.
final class NHWCBuffer {
    static let slack = 16
    let map: FeatureMap

    init(images: Int, height: Int, width: Int, channels: Int) {
        let count = FeatureMap.storageCount(images: images, height: height, width: width, channels: channels)
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: count + Self.slack)
        map = FeatureMap(pointer: pointer, images: images, height: height, width: width, channels: channels)
        map.zeroBorder()
        (pointer + count).initialize(repeating: 0, count: Self.slack)
    }

    deinit { map.pointer.deallocate() }

    /// Channel-major [C][N][H][W] -> NHWC.
    convenience init(_ x: FeatureBatch, threads: Int) {
        self.init(images: x.batch, height: x.height, width: x.width, channels: x.channels)
        let (n, h, w, channels, map) = (x.batch, x.height, x.width, x.channels, map)
        x.data.withUnsafeBufferPointer { source in
            let source = source.baseAddress!
            parallelChunks(n * h, threads: threads) { rows in
                for row in rows {  // row = image * h + y
                    let image = row / h, y = row % h
                    let target = map.pointer + map.offset(image, y, 0)
                    let rowStep = n * h * w  // from channel c's row to channel c + 1's
                    let first = source + (image * h + y) * w
                    var c = 0
                    while c + 8 <= channels {  // 8 channel rows read in step, one vector written per pixel
                        let r = first + c * rowStep
                        for i in 0..<w {
                            let v = SIMD8<Float>(r[i], r[i + rowStep], r[i + 2 * rowStep], r[i + 3 * rowStep],
                                                 r[i + 4 * rowStep], r[i + 5 * rowStep], r[i + 6 * rowStep], r[i + 7 * rowStep])
                            UnsafeMutableRawPointer(target + i * channels + c).storeBytes(of: v, as: SIMD8<Float>.self)
                        }
                        c += 8
                    }
                    for c in c..<channels {
                        let sourceRow = first + c * rowStep
                        for i in 0..<w { target[i * channels + c] = sourceRow[i] }
                    }
                }
            }
        }
    }

    /// NHWC -> channel-major [C][N][H][W].
    func batch(threads: Int) -> FeatureBatch {
        let (n, h, w, channels, map) = (map.images, map.height, map.width, map.channels, map)
        // Every value is written below: no zero fill first.
        let data = [Float](unsafeUninitializedCapacity: channels * n * h * w) { target, initialized in
            let target = target.baseAddress!
            parallelChunks(n * h, threads: threads) { rows in
                for row in rows {
                    let image = row / h, y = row % h
                    let source = UnsafePointer(map.pointer + map.offset(image, y, 0))
                    let rowStep = n * h * w
                    let first = target + (image * h + y) * w
                    var c = 0
                    while c + 8 <= channels {  // one vector read per pixel, its lanes written to 8 channel rows
                        let r = first + c * rowStep
                        for i in 0..<w {
                            let v = UnsafeRawPointer(source + i * channels + c).loadUnaligned(as: SIMD8<Float>.self)
                            r[i] = v[0]; r[i + rowStep] = v[1]; r[i + 2 * rowStep] = v[2]; r[i + 3 * rowStep] = v[3]
                            r[i + 4 * rowStep] = v[4]; r[i + 5 * rowStep] = v[5]; r[i + 6 * rowStep] = v[6]; r[i + 7 * rowStep] = v[7]
                        }
                        c += 8
                    }
                    for c in c..<channels {
                        let targetRow = first + c * rowStep
                        for i in 0..<w { targetRow[i] = source[i * channels + c] }
                    }
                }
            }
            initialized = channels * n * h * w
        }
        return FeatureBatch(channels: channels, batch: n, height: h, width: w, data: data)
    }
}

/// The trainer's own microkernels, on the path the engine runs (`KernelPath.current`).
struct TrainKernels {
    typealias WeightGradientTile = (_ gradients: UnsafePointer<Float>, _ gradientOffsets: UnsafePointer<Int>,
                                    _ inputs: UnsafePointer<Float>, _ inputOffsets: UnsafePointer<Int>, _ count: Int,
                                    _ sums: UnsafeMutablePointer<Float>, _ sumStride: Int, _ rows: Int, _ lanes: Int) -> Void
    let weightGradientTile: WeightGradientTile

    static let current = of(.current)

    static func of(_ path: KernelPath) -> TrainKernels {
        switch path {
        #if arch(x86_64) && compiler(>=6.3)
        case .avx2, .avx512VNNI: return TrainKernels(weightGradientTile: FloatMicrokernelsAVX2.floatWeightGradientTile)
        #endif
        default: return TrainKernels(weightGradientTile: FloatMicrokernels.floatWeightGradientTile)
        }
    }
}
