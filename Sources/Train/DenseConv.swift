import FloatMicrokernels
#if arch(x86_64) && compiler(>=6.3)
import FloatMicrokernelsAVX2
import FloatMicrokernelsAVX512
#endif
import QuantEngine

// MARK: - Dense convolution (1x1 and 3x3) on the inference engine's kernels

// The trainer's dense convolutions run on the float engine's indirect GEMM (`PackedDenseConv` +
// `denseConv`: NHWC maps with a zero border, the taps read in place, on the CPU's best kernel path), and
// their weight gradients on a microkernel of the same shape. Nothing is unfolded (no im2col buffer of nine
// copies of the input); the only extra traffic is one row copy of each operand into a map with the zero
// border the taps read (the trainer's maps are NHWC like the engine's, without the border).
//
// - Forward: the engine's convolution, bias included, no activation (BatchNorm and the activation are the
//   trainer's own layers).
// - Input gradient: dX[c][q] = sum over o, t of W[o][c][t] dZ[o][q - offset(t)], and -offset(ky, kx) =
//   offset(k-1-ky, k-1-kx), so for stride 1 dX = conv(dZ, W') with W'[c][o][ky][kx] = W[o][c][k-1-ky][k-1-kx]
//   (in and out swapped, taps flipped): a gather, where col2im scattered. For stride 2, dZ is first spread
//   onto the input's grid (dZ[o][oy][ox] at (2oy, 2ox), zeros between), which makes it the same stride-1 sum.
// - Weight gradient: per tap, dW_t[o][c] = sum over output pixels p of dZ[p][o] X[stride p + offset(t)][c],
//   a GEMM whose K is the pixel count, on `floatWeightGradientTile` (Sources/FloatMicrokernels/FloatGradientTiles.swift).

public enum DenseConv {
    /// The convolutions the trainer's graphs have: 3x3 with padding 1 (stride 1 or 2), 1x1 stride 1.
    static func check(_ spec: ConvSpec) {
        precondition(spec.kind == .standard && ((spec.kernel == 3 && spec.padding == 1 && (spec.stride == 1 || spec.stride == 2))
                                                || (spec.kernel == 1 && spec.stride == 1 && spec.padding == 0)),
                     "DenseConv: \(spec.weightPrefix) is not a 3x3 (stride 1 or 2) or 1x1 (stride 1) convolution")
    }

    /// z = conv(x, W) + bias. Weight layout [Cout][Cin][k][k] (PyTorch's).
    public static func forward(_ x: FeatureBatch, weight: [Float], bias: [Float]?, spec: ConvSpec, threads: Int) -> FeatureBatch {
        check(spec)
        func packed() -> PackedDenseConv {
            let linear = linearSpec(spec, inChannels: spec.inChannels, outChannels: spec.outChannels, stride: spec.stride)
            return PackedDenseConv(FoldedConv(spec: linear, weight: weight, bias: bias ?? [Float](repeating: 0, count: spec.outChannels)),
                                   threads: threads)
        }
        if spec.kernel == 1 { return pointwise(packed(), x, threads: threads) }
        let input = NHWCBuffer(x, threads: threads)
        return withExtendedLifetime(input) {
            if WinogradConv.applies(spec, height: x.height, width: x.width) {
                return WinogradConv.convolve(input.map, weight: weight, bias: bias, outChannels: spec.outChannels, name: spec.weightPrefix,
                                             threads: threads)
            }
            return run(packed(), on: input.map, threads: threads)
        }
    }

    /// dW (layout [Cout][Cin][k][k]) and dX, each only when asked.
    public static func backward(x: FeatureBatch, dOut: FeatureBatch, weight: [Float], spec: ConvSpec,
                                wantWeightGradient: Bool, wantInputGradient: Bool, threads: Int) -> (dWeight: [Float]?, dInput: FeatureBatch?) {
        check(spec)
        if !wantWeightGradient && !wantInputGradient { return (nil, nil) }
        // The tile reads up to 32 input channels per pixel: with at least 16 per pixel, every pixel but the
        // last reads inside the next pixels' rows (pointwiseBackward adds the last one on its own).
        if spec.kernel == 1 && spec.inChannels >= 16 && spec.outChannels >= gradientTileRows {
            return pointwiseBackward(x: x, dOut: dOut, weight: weight, spec: spec, wantWeightGradient: wantWeightGradient,
                                     wantInputGradient: wantInputGradient, threads: threads)
        }
        let gradient = NHWCBuffer(dOut, threads: threads)
        var dInput: FeatureBatch?
        if wantInputGradient {
            let (cin, cout, taps) = (spec.inChannels, spec.outChannels, spec.kernel * spec.kernel)
            let flipped = transposedFlipped(weight, outChannels: cout, inChannels: cin, taps: taps, threads: threads)
            if WinogradConv.applies(spec, height: x.height, width: x.width) {
                dInput = WinogradConv.convolve(gradient.map, weight: flipped, bias: nil, outChannels: cin, name: spec.weightPrefix, threads: threads)
            } else {
                let adjoint = linearSpec(spec, inChannels: cout, outChannels: cin, stride: 1)
                let conv = PackedDenseConv(FoldedConv(spec: adjoint, weight: flipped, bias: [Float](repeating: 0, count: cin)), threads: threads)
                if spec.stride == 1 {
                    dInput = run(conv, on: gradient.map, threads: threads)
                } else {
                    let spread = NHWCBuffer(spreading: gradient.map, onto: x.height, x.width, stride: spec.stride, threads: threads)
                    dInput = withExtendedLifetime(spread) { run(conv, on: spread.map, threads: threads) }
                }
            }
        }
        var dWeight: [Float]?
        if wantWeightGradient {
            let input = NHWCBuffer(x, threads: threads)
            dWeight = withExtendedLifetime(input) {
                WinogradConv.applies(spec, height: x.height, width: x.width)
                    ? WinogradConv.weightGradient(input: input.map, gradient: gradient.map, threads: threads)
                    : weightGradient(input: input.map, gradient: gradient.map, kernel: spec.kernel, stride: spec.stride, threads: threads)
            }
        }
        withExtendedLifetime(gradient) {}  // its memory is read through `gradient.map` until here
        return (dWeight, dInput)
    }

    /// A 1x1 convolution runs on the trainer's rows as they are (no border to add): a GEMM over pixels.
    static func pointwise(_ conv: PackedDenseConv, _ x: FeatureBatch, threads: Int) -> FeatureBatch {
        let data = [Float](unsafeUninitializedCapacity: x.pixels * conv.outChannels) { output, initialized in
            x.data.withUnsafeBufferPointer { input in
                pointwiseConv(conv, input: input.baseAddress!, output: output.baseAddress!, rows: x.pixels, threads: threads)
            }
            initialized = x.pixels * conv.outChannels
        }
        return FeatureBatch(channels: conv.outChannels, batch: x.batch, height: x.height, width: x.width, data: data)
    }

    /// A 1x1 convolution's backward on the trainer's rows: dX = dZ W (the GEMM with W transposed), and
    /// dW[o][c] = sum over pixels of dZ[p][o] X[p][c] on the weight-gradient tile. The tile reads 6 gradients
    /// and up to 32 inputs per pixel, which for every pixel but the last stays inside the next pixels' rows (at
    /// least 16 input and 6 output channels), so the last pixel is added on its own.
    static func pointwiseBackward(x: FeatureBatch, dOut: FeatureBatch, weight: [Float], spec: ConvSpec,
                                  wantWeightGradient: Bool, wantInputGradient: Bool, threads: Int) -> (dWeight: [Float]?, dInput: FeatureBatch?) {
        let (cin, cout, pixels) = (spec.inChannels, spec.outChannels, x.pixels)
        var dInput: FeatureBatch?
        if wantInputGradient {
            let transposed = transposedFlipped(weight, outChannels: cout, inChannels: cin, taps: 1, threads: threads)
            let adjoint = linearSpec(spec, inChannels: cout, outChannels: cin, stride: 1)
            dInput = pointwise(PackedDenseConv(FoldedConv(spec: adjoint, weight: transposed, bias: [Float](repeating: 0, count: cin)), threads: threads),
                               dOut, threads: threads)
        }
        var dWeight: [Float]?
        if wantWeightGradient {
            var sums = x.data.withUnsafeBufferPointer { input in
                dOut.data.withUnsafeBufferPointer { gradient in
                    gradientGEMMs(gradients: gradient.baseAddress!, gradientBases: [0], gradientOffsets: pixelOffsets(pixels - 1, threads: threads) { $0 * cout },
                                  inputs: input.baseAddress!, inputBases: [0], inputOffsets: pixelOffsets(pixels - 1, threads: threads) { $0 * cin },
                                  rows: cout, lanes: cin, kernels: .current, threads: threads)
                }
            }
            let last = pixels - 1
            sums.withUnsafeMutableBufferPointer { sums in
                x.data.withUnsafeBufferPointer { input in
                    dOut.data.withUnsafeBufferPointer { gradient in
                        let (sp, lastInput, lastGradient) = (sums.baseAddress!, input.baseAddress! + last * cin, gradient.baseAddress! + last * cout)
                        parallelChunks(cout, threads: threads) { outputs in
                            for o in outputs {
                                let g = lastGradient[o], row = sp + o * cin
                                for c in 0..<cin { row[c] += g * lastInput[c] }
                            }
                        }
                    }
                }
            }
            dWeight = sums  // [out][in] is PyTorch's [out][in][1][1]
        }
        return (dWeight, dInput)
    }

    /// Output channels per weight-gradient tile (`floatWeightGradientTile`); its input channels are the kernel
    /// path's (`TrainKernels.weightGradientLanes`: 16, or 32 on AVX-512), and buffers the tile reads keep
    /// `gradientTileSlack` readable floats past their end.
    static let gradientTileRows = 6, gradientTileSlack = 32

    /// dW[o][c][ky][kx] = sum over output pixels p of dZ[p][o] X[stride * p + (ky - k/2, kx - k/2)][c]:
    /// one gradient GEMM per tap, the tap's input read in place.
    static func weightGradient(input: FeatureMap, gradient: FeatureMap, kernel k: Int, stride s: Int, kernels: TrainKernels = .current,
                               threads: Int) -> [Float] {
        let (cin, cout, taps) = (input.channels, gradient.channels, k * k)
        let pixels = gradient.images * gradient.height * gradient.width
        // Pixel p = (n * height + oy) * width + ox of the gradient, and where it and its input sit in the maps.
        let (height, width) = (gradient.height, gradient.width)
        let inputOffsets = pixelOffsets(pixels, threads: threads) { p in input.offset(p / width / height, (p / width) % height * s, p % width * s) }
        let gradientOffsets = pixelOffsets(pixels, threads: threads) { p in gradient.offset(p / width / height, (p / width) % height, p % width) }
        var tapOffsets = [Int]()
        for ky in 0..<k { for kx in 0..<k { tapOffsets.append((ky - k / 2) * input.rowStride + (kx - k / 2) * cin) } }
        let sums = gradientGEMMs(gradients: UnsafePointer(gradient.pointer), gradientBases: [Int](repeating: 0, count: taps),
                                 gradientOffsets: gradientOffsets, inputs: UnsafePointer(input.pointer), inputBases: tapOffsets,
                                 inputOffsets: inputOffsets, rows: cout, lanes: cin, kernels: kernels, threads: threads)
        return pairMajor(sums, pairs: cout * cin, taps: taps, threads: threads)
    }

    /// [offset(p) for p in 0..<count], on all threads.
    static func pixelOffsets(_ count: Int, threads: Int, _ offset: (Int) -> Int) -> [Int] {
        [Int](unsafeUninitializedCapacity: count) { out, initialized in
            let target = out.baseAddress!
            parallelChunks(count, threads: threads) { range in for p in range { target[p] = offset(p) } }
            initialized = count
        }
    }

    /// [tap][pair] -> [pair][tap] (PyTorch's weight layout [out][in][k][k], a pair being (out, in)).
    static func pairMajor(_ byTap: [Float], pairs: Int, taps: Int, threads: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: pairs * taps) { out, initialized in
            byTap.withUnsafeBufferPointer { source in
                let (sp, op) = (source.baseAddress!, out.baseAddress!)
                parallelChunks(pairs, threads: threads) { range in
                    for pair in range { for t in 0..<taps { op[pair * taps + t] = sp[t * pairs + pair] } }
                }
            }
            initialized = pairs * taps
        }
    }

    /// W'[c][o][t'] = W[o][c][taps - 1 - t']: the input gradient's weights (in and out swapped, taps flipped).
    static func transposedFlipped(_ weight: [Float], outChannels cout: Int, inChannels cin: Int, taps: Int, threads: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: weight.count) { out, initialized in
            weight.withUnsafeBufferPointer { source in
                let (sp, op) = (source.baseAddress!, out.baseAddress!)
                parallelChunks(cin, threads: threads) { channels in
                    for c in channels {
                        for o in 0..<cout {
                            for t in 0..<taps { op[(c * cout + o) * taps + (taps - 1 - t)] = sp[(o * cin + c) * taps + t] }
                        }
                    }
                }
            }
            initialized = weight.count
        }
    }

    /// For each position q (a tap, or a Winograd point): sums[q][o][c] = sum over i < count of
    /// gradients[gradientBases[q] + gradientOffsets[i] + o] x inputs[inputBases[q] + inputOffsets[i] + c],
    /// o < rows, c < lanes: GEMMs whose K is the pixel (or tile) count, on `floatWeightGradientTile`.
    /// The tile reads 6 gradients and up to 32 inputs per step, so both operands need that much readable memory
    /// past their last value.
    ///
    /// Work items are (position, 6 rows, the tile's lanes), one contiguous run per thread; every thread walks the
    /// pixels in blocks that fit its L2 cache and runs all its items on a block before the next, so the
    /// operands stream from memory once per thread, and an item's sums are added block by block in the same
    /// order whatever the thread count.
    static func gradientGEMMs(gradients: UnsafePointer<Float>, gradientBases: [Int], gradientOffsets: [Int],
                              inputs: UnsafePointer<Float>, inputBases: [Int], inputOffsets: [Int],
                              rows cout: Int, lanes cin: Int, kernels: TrainKernels, threads: Int) -> [Float] {
        precondition(gradientBases.count == inputBases.count && gradientOffsets.count == inputOffsets.count)
        let (positions, pixels) = (gradientBases.count, gradientOffsets.count)
        let items = gradientItemCount(positions: positions, rows: cout, lanes: cin, kernels: kernels)
        // About 128 KB of the two operands per block.
        let block = max(64, min(4096, 32768 / (cin + cout)))
        let sumCount = positions * cout * cin
        return [Float](unsafeUninitializedCapacity: sumCount) { sums, initialized in  // [position][out][in]
        inputOffsets.withUnsafeBufferPointer { inputOffsets in
        gradientOffsets.withUnsafeBufferPointer { gradientOffsets in
            let (sp, ip, gp) = (sums.baseAddress!, inputOffsets.baseAddress!, gradientOffsets.baseAddress!)
            parallelChunks(sumCount, threads: threads) { range in (sp + range.lowerBound).initialize(repeating: 0, count: range.count) }
            // One contiguous run of items per thread: each run streams both operands through its cache once.
            let parts = min(threads, items)
            parallelChunks(parts, threads: threads) { partRange in
                for part in partRange {
                    let run = (items * part / parts)..<(items * (part + 1) / parts)
                    for first in Swift.stride(from: 0, to: pixels, by: block) {
                        addGradientItems(run, gradients: gradients, gradientBases: gradientBases, gradientOffsets: gp + first,
                                         inputs: inputs, inputBases: inputBases, inputOffsets: ip + first, count: min(block, pixels - first),
                                         sums: sp, rows: cout, lanes: cin, kernels: kernels)
                    }
                }
            }
        }}
        initialized = sumCount
        }
    }

    /// Work items of the gradient GEMMs: (position, 6 rows, the kernel path's tile lanes), position-major.
    static func gradientItemCount(positions: Int, rows: Int, lanes: Int, kernels: TrainKernels) -> Int {
        positions * ((rows + gradientTileRows - 1) / gradientTileRows) * ((lanes + kernels.weightGradientLanes - 1) / kernels.weightGradientLanes)
    }

    /// Adds `count` pixels of each work item in `items` to its sums (layout [position][row][lane]), the
    /// pixels at the given offsets from each position's base: the one place an item becomes a tile call.
    static func addGradientItems(_ items: Range<Int>, gradients: UnsafePointer<Float>, gradientBases: [Int], gradientOffsets: UnsafePointer<Int>,
                                 inputs: UnsafePointer<Float>, inputBases: [Int], inputOffsets: UnsafePointer<Int>, count: Int,
                                 sums: UnsafeMutablePointer<Float>, rows cout: Int, lanes cin: Int, kernels: TrainKernels) {
        let (tile, tileLanes) = (kernels.weightGradientTile, kernels.weightGradientLanes)
        let rowTiles = (cout + gradientTileRows - 1) / gradientTileRows
        let panels = (cin + tileLanes - 1) / tileLanes
        for item in items {
            let q = item / (rowTiles * panels), row = (item / panels) % rowTiles, panel = item % panels
            let o = row * gradientTileRows, c = panel * tileLanes
            tile(gradients + gradientBases[q] + o, gradientOffsets, inputs + inputBases[q] + c, inputOffsets, count,
                 sums + (q * cout + o) * cin + c, cin, min(gradientTileRows, cout - o), min(tileLanes, cin - c))
        }
    }

    /// The weight gradient of a k x k, padding k/2 convolution on the microkernels of `path` (tests compare
    /// every path with `weightGradientReference`).
    public static func weightGradient(x: FeatureBatch, dOut: FeatureBatch, kernel: Int, stride: Int, path: KernelPath, threads: Int) -> [Float] {
        let input = NHWCBuffer(x, threads: threads), gradient = NHWCBuffer(dOut, threads: threads)
        return withExtendedLifetime((input, gradient)) {
            weightGradient(input: input.map, gradient: gradient.map, kernel: kernel, stride: stride, kernels: .of(path), threads: threads)
        }
    }

    /// Plain-Swift reference: dW[o][c][ky][kx] = sum over n, oy, ox of dZ[n][oy][ox][o] X[n][s oy + ky - k/2][s ox + kx - k/2][c],
    /// summed in Double.
    public static func weightGradientReference(x: FeatureBatch, dOut: FeatureBatch, kernel k: Int, stride s: Int) -> [Float] {
        let (cin, cout, n) = (x.channels, dOut.channels, x.batch)
        var dWeight = [Float](repeating: 0, count: cout * cin * k * k)
        for o in 0..<cout {
            for c in 0..<cin {
                for ky in 0..<k {
                    for kx in 0..<k {
                        var sum = 0.0
                        for image in 0..<n {
                            for oy in 0..<dOut.height {
                                let iy = s * oy + ky - k / 2
                                guard iy >= 0 && iy < x.height else { continue }
                                for ox in 0..<dOut.width {
                                    let ix = s * ox + kx - k / 2
                                    guard ix >= 0 && ix < x.width else { continue }
                                    sum += Double(dOut.data[((image * dOut.height + oy) * dOut.width + ox) * cout + o])
                                        * Double(x.data[((image * x.height + iy) * x.width + ix) * cin + c])
                                }
                            }
                        }
                        dWeight[((o * cin + c) * k + ky) * k + kx] = Float(sum)
                    }
                }
            }
        }
        return dWeight
    }

    static func linearSpec(_ spec: ConvSpec, inChannels: Int, outChannels: Int, stride: Int) -> ConvSpec {
        ConvSpec(weightPrefix: spec.weightPrefix, batchNormPrefix: nil, hasBias: true, kind: .standard, kernel: spec.kernel, stride: stride,
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
    static let slack = DenseConv.gradientTileSlack
    let map: FeatureMap

    init(images: Int, height: Int, width: Int, channels: Int) {
        let count = FeatureMap.storageCount(images: images, height: height, width: width, channels: channels)
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: count + Self.slack)
        map = FeatureMap(pointer: pointer, images: images, height: height, width: width, channels: channels)
        map.zeroBorder()
        (pointer + count).initialize(repeating: 0, count: Self.slack)
    }

    deinit { map.pointer.deallocate() }

    /// A strided map's values placed on a grid `stride` times finer, of height x width: value (y, x) at
    /// (stride y, stride x), zeros elsewhere (how a stride-2 input gradient becomes a stride-1 convolution).
    convenience init(spreading source: FeatureMap, onto height: Int, _ width: Int, stride: Int, threads: Int) {
        self.init(images: source.images, height: height, width: width, channels: source.channels)
        let map = map
        parallelChunks(map.images * height, threads: threads) { rows in
            for imageRow in rows {
                let (n, y) = (imageRow / height, imageRow % height)
                let row = map.pointer + map.offset(n, y, 0)
                row.initialize(repeating: 0, count: width * map.channels)
                guard y % stride == 0, y / stride < source.height else { continue }
                for x in Swift.stride(from: 0, to: width, by: stride) where x / stride < source.width {
                    (row + x * map.channels).update(from: source.pointer + source.offset(n, y / stride, x / stride), count: map.channels)
                }
            }
        }
    }

    /// The trainer's NHWC map with a zero border around each image: one row copy per pixel row.
    convenience init(_ x: FeatureBatch, threads: Int) {
        self.init(images: x.batch, height: x.height, width: x.width, channels: x.channels)
        let (h, rowCount, map) = (x.height, x.width * x.channels, map)
        x.data.withUnsafeBufferPointer { source in
            let source = source.baseAddress!
            parallelChunks(x.batch * h, threads: threads) { rows in
                for row in rows {  // row = image * h + y
                    (map.pointer + map.offset(row / h, row % h, 0)).update(from: source + row * rowCount, count: rowCount)
                }
            }
        }
    }

    /// The map's interior as the trainer's NHWC batch.
    func batch(threads: Int) -> FeatureBatch {
        let (n, h, w, channels, map) = (map.images, map.height, map.width, map.channels, map)
        let rowCount = w * channels
        // Every value is written below: no zero fill first.
        let data = [Float](unsafeUninitializedCapacity: n * h * rowCount) { target, initialized in
            let target = target.baseAddress!
            parallelChunks(n * h, threads: threads) { rows in
                for row in rows { (target + row * rowCount).initialize(from: map.pointer + map.offset(row / h, row % h, 0), count: rowCount) }
            }
            initialized = n * h * rowCount
        }
        return FeatureBatch(channels: channels, batch: n, height: h, width: w, data: data)
    }
}

/// The trainer's own microkernel, on the path the engine runs (`KernelPath.current`).
struct TrainKernels: Sendable {
    typealias WeightGradientTile = @Sendable (_ gradients: UnsafePointer<Float>, _ gradientOffsets: UnsafePointer<Int>,
                                    _ inputs: UnsafePointer<Float>, _ inputOffsets: UnsafePointer<Int>, _ count: Int,
                                    _ sums: UnsafeMutablePointer<Float>, _ sumStride: Int, _ rows: Int, _ lanes: Int) -> Void
    let weightGradientTile: WeightGradientTile
    /// Input channels per call of the tile (its `floatWeightGradientTileLanes`).
    let weightGradientLanes: Int

    static let current = of(.current)

    static func of(_ path: KernelPath) -> TrainKernels {
        switch path {
        #if arch(x86_64) && compiler(>=6.3)
        case .avx2:
            return TrainKernels(weightGradientTile: FloatMicrokernelsAVX2.floatWeightGradientTile,
                                weightGradientLanes: FloatMicrokernelsAVX2.floatWeightGradientTileLanes)
        case .avx512VNNI:
            return TrainKernels(weightGradientTile: FloatMicrokernelsAVX512.floatWeightGradientTile,
                                weightGradientLanes: FloatMicrokernelsAVX512.floatWeightGradientTileLanes)
        #endif
        default:
            return TrainKernels(weightGradientTile: FloatMicrokernels.floatWeightGradientTile,
                                weightGradientLanes: FloatMicrokernels.floatWeightGradientTileLanes)
        }
    }
}
