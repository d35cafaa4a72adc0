import QuantEngine

// Every layer of the U-Net as a forward and a backward pass side by side (in the manner of llm.c): no
// autograd, the caches each backward needs are returned explicitly by its forward. Feature maps are NHWC
// (see FeatureBatch): the inner loops run over a pixel's contiguous channels, which the compiler
// vectorises. Reductions that decide a result (BatchNorm statistics, parameter gradients of depthwise
// convs, BatchNorm and biases, the loss) are summed in Double for accuracy (`ChannelSums`).

/// a[c] += b[c] x scale[c] for c < count (the inner loop of the depthwise layers).
@inline(__always)
func multiplyAccumulate(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ scale: UnsafePointer<Float>, count: Int) {
    for c in 0..<count { a[c] += b[c] * scale[c] }
}

// MARK: - Per-channel sums over a batch

/// Per-channel sums over every pixel of an NHWC batch (up to millions of pixels), the same whatever the
/// thread count: pixels are cut into fixed blocks of `block`, each block's sums are accumulated in Float
/// (one vector of channels per pixel), and the blocks' totals are added in order in Double, so the
/// rounding error grows with the block, not with the batch.
enum ChannelSums {
    static let block = 256

    /// `quantities` sums per channel: `add(pixels, sums)` adds each pixel of its range to
    /// sums[q * channels + c] (zeroed before). Returns [q][c].
    static func compute(pixels: Int, channels: Int, quantities: Int = 1, threads: Int,
                        _ add: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> [[Double]] {
        let blocks = (pixels + block - 1) / block, width = quantities * channels
        let partial = [Float](unsafeUninitializedCapacity: blocks * width) { partial, initialized in
            let base = partial.baseAddress!
            parallelChunks(blocks, threads: threads) { range in
                for b in range {
                    (base + b * width).initialize(repeating: 0, count: width)
                    add((b * block)..<min(pixels, (b + 1) * block), base + b * width)
                }
            }
            initialized = blocks * width
        }
        let totals = sumRows(partial, rows: blocks, width: width, threads: threads)
        return (0..<quantities).map { q in Array(totals[(q * channels)..<((q + 1) * channels)]) }
    }

    /// totals[i] = sum over r of Double(rows[r * width + i]), added in row order; columns split over the threads.
    static func sumRows(_ rows: [Float], rows count: Int, width: Int, threads: Int) -> [Double] {
        [Double](unsafeUninitializedCapacity: width) { totals, initialized in
            rows.withUnsafeBufferPointer { rows in
                let (source, target) = (rows.baseAddress!, totals.baseAddress!)
                parallelChunks(width, threads: width >= 4096 ? threads : 1) { columns in
                    for i in columns { target[i] = 0 }
                    for r in 0..<count {
                        let row = source + r * width
                        for i in columns { target[i] += Double(row[i]) }
                    }
                }
            }
            initialized = width
        }
    }

    /// The per-channel sum of a batch's values.
    static func of(_ x: FeatureBatch, threads: Int) -> [Double] {
        let c = x.channels
        return x.data.withUnsafeBufferPointer { xb in
            let xp = xb.baseAddress!
            return compute(pixels: x.pixels, channels: c, threads: threads) { range, sums in
                for p in range { let v = xp + p * c; for i in 0..<c { sums[i] += v[i] } }
            }[0]
        }
    }
}

// MARK: - Depthwise 3x3 convolution (one filter per channel, padding 1, stride 1 or 2)

public enum DepthwiseConv {
    /// [C][1][k][k] -> [k*k][C]: one vector of channels per tap.
    static func tapMajor(_ weight: [Float], channels: Int, taps: Int) -> [Float] {
        var out = [Float](repeating: 0, count: weight.count)
        for c in 0..<channels { for t in 0..<taps { out[t * channels + c] = weight[c * taps + t] } }
        return out
    }

    public static func forward(_ x: FeatureBatch, weight: [Float], spec: ConvSpec, threads: Int) -> FeatureBatch {
        let k = spec.kernel, s = spec.stride, pad = spec.padding, channels = x.channels
        let outHeight = spec.outputSize(x.height), outWidth = spec.outputSize(x.width)
        let (h, w) = (x.height, x.width)
        let taps = tapMajor(weight, channels: channels, taps: k * k)
        return FeatureBatch(channels: channels, batch: x.batch, height: outHeight, width: outWidth) { op in
        x.data.withUnsafeBufferPointer { xb in
        taps.withUnsafeBufferPointer { tb in
            let (xp, tp) = (xb.baseAddress!, tb.baseAddress!)
            parallelChunks(x.batch * outHeight, threads: threads) { rows in
                for row in rows {  // row = image * outHeight + oy
                    let image = row / outHeight, oy = row % outHeight
                    for ox in 0..<outWidth {
                        let target = op + (row * outWidth + ox) * channels
                        target.initialize(repeating: 0, count: channels)
                        for ky in 0..<k {
                            let iy = oy * s - pad + ky
                            guard iy >= 0 && iy < h else { continue }
                            for kx in 0..<k {
                                let ix = ox * s - pad + kx
                                guard ix >= 0 && ix < w else { continue }
                                multiplyAccumulate(target, xp + ((image * h + iy) * w + ix) * channels, tp + (ky * k + kx) * channels,
                                                   count: channels)
                            }
                        }
                    }
                }
            }
        }}}
    }

    /// The input gradient is gathered (each input pixel sums the output pixels its taps reached), so threads
    /// never write the same pixel. The filter gradient sums dZ x X per tap and channel over each output row
    /// in Float, and the rows in order in Double.
    public static func backward(x: FeatureBatch, dOut: FeatureBatch, weight: [Float], spec: ConvSpec,
                                wantWeightGradient: Bool, wantInputGradient: Bool, threads: Int) -> (dWeight: [Float]?, dInput: FeatureBatch?) {
        let k = spec.kernel, s = spec.stride, pad = spec.padding, channels = x.channels, taps = k * k
        let (h, w, n) = (x.height, x.width, x.batch)
        let (outHeight, outWidth) = (dOut.height, dOut.width)
        var dWeight: [Float]?
        if wantWeightGradient {
            // One row of sums per output row: [row][tap][channel].
            let rowSums = [Float](unsafeUninitializedCapacity: n * outHeight * taps * channels) { rb, initialized in
            x.data.withUnsafeBufferPointer { xb in
            dOut.data.withUnsafeBufferPointer { db in
                let (xp, dp, rp) = (xb.baseAddress!, db.baseAddress!, rb.baseAddress!)
                parallelChunks(n * outHeight, threads: threads) { rows in
                    for row in rows {
                        let image = row / outHeight, oy = row % outHeight
                        let sums = rp + row * taps * channels
                        sums.initialize(repeating: 0, count: taps * channels)
                        for ox in 0..<outWidth {
                            let gradient = dp + (row * outWidth + ox) * channels
                            for ky in 0..<k {
                                let iy = oy * s - pad + ky
                                guard iy >= 0 && iy < h else { continue }
                                for kx in 0..<k {
                                    let ix = ox * s - pad + kx
                                    guard ix >= 0 && ix < w else { continue }
                                    multiplyAccumulate(sums + (ky * k + kx) * channels, gradient, xp + ((image * h + iy) * w + ix) * channels,
                                                       count: channels)
                                }
                            }
                        }
                    }
                }
            }}
            initialized = n * outHeight * taps * channels
            }
            let totals = ChannelSums.sumRows(rowSums, rows: n * outHeight, width: taps * channels, threads: threads)
            var dw = [Float](repeating: 0, count: channels * taps)
            for c in 0..<channels { for t in 0..<taps { dw[c * taps + t] = Float(totals[t * channels + c]) } }
            dWeight = dw
        }
        var dInput: FeatureBatch?
        if wantInputGradient {
            let tapWeights = tapMajor(weight, channels: channels, taps: taps)
            dInput = FeatureBatch(channels: channels, batch: n, height: h, width: w) { xp in
            dOut.data.withUnsafeBufferPointer { db in
            tapWeights.withUnsafeBufferPointer { tb in
                let (dp, tp) = (db.baseAddress!, tb.baseAddress!)
                parallelChunks(n * h, threads: threads) { rows in
                    for row in rows {  // row = image * h + iy
                        let image = row / h, iy = row % h
                        for ix in 0..<w {
                            let target = xp + (row * w + ix) * channels
                            target.initialize(repeating: 0, count: channels)
                            for ky in 0..<k {
                                let py = iy + pad - ky  // = oy * s
                                guard py >= 0 && py % s == 0 && py / s < outHeight else { continue }
                                for kx in 0..<k {
                                    let px = ix + pad - kx
                                    guard px >= 0 && px % s == 0 && px / s < outWidth else { continue }
                                    multiplyAccumulate(target, dp + ((image * outHeight + py / s) * outWidth + px / s) * channels,
                                                       tp + (ky * k + kx) * channels, count: channels)
                                }
                            }
                        }
                    }
                }
            }}}
        }
        return (dWeight, dInput)
    }
}

// MARK: - Transposed convolution, kernel 2 stride 2 (the baseline U-Net's upsampling)

/// PyTorch's ConvTranspose2d(in, out, 2, stride=2) with bias: every input pixel writes its own 2x2 output
/// patch, out[o][n][2y+ky][2x+kx] = b[o] + sum_i W[i][o][ky][kx] x[i][n][y][x]. Patches never overlap, so
/// it is a 1x1 convolution to out*4 channels, col[(o*2+ky)*2+kx] = W1 x X with W1 = W read as [in][out*4],
/// transposed, whose output rows are scattered to their (ky, kx) phase of the output. Backward gathers
/// dOut into the same col layout and runs the 1x1 convolution's backward; dBias = sum of dOut per channel.
public enum TransposedConv2x2 {
    /// col channel r = (o*2+ky)*2+kx of input pixel (n, y, x)  <->  out channel o of pixel (n, 2y+ky, 2x+kx)
    /// (forward scatters, backward gathers; `scatter` false means gather from `map` into `col`).
    static func exchange(col: UnsafeMutablePointer<Float>, map: UnsafeMutablePointer<Float>, outChannels: Int,
                         batch n: Int, height h: Int, width w: Int, scatter: Bool, threads: Int) {
        let rows = outChannels * 4
        parallelChunks(n * h, threads: threads) { inputRows in
            for inputRow in inputRows {  // inputRow = image * h + y
                let image = inputRow / h, y = inputRow % h
                for x in 0..<w {
                    let patch = col + (inputRow * w + x) * rows
                    for ky in 0..<2 {
                        for kx in 0..<2 {
                            let pixel = map + ((image * 2 * h + 2 * y + ky) * 2 * w + 2 * x + kx) * outChannels
                            let phase = patch + ky * 2 + kx
                            if scatter {
                                for o in 0..<outChannels { pixel[o] = phase[o * 4] }
                            } else {
                                for o in 0..<outChannels { phase[o * 4] = pixel[o] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The equivalent 1x1 convolution: its spec and its weight W1[r][i] = W[i][r] ([out*4][in]).
    static func pointwise(_ spec: ConvSpec, weight: [Float]) -> (spec: ConvSpec, weight: [Float]) {
        let (cin, rows) = (spec.inChannels, spec.outChannels * 4)
        var transposed = [Float](repeating: 0, count: weight.count)
        for i in 0..<cin { for r in 0..<rows { transposed[r * cin + i] = weight[i * rows + r] } }
        let pointwise = ConvSpec(weightPrefix: spec.weightPrefix, batchNormPrefix: nil, hasBias: false, kind: .standard, kernel: 1,
                                 stride: 1, inChannels: cin, outChannels: rows, activation: .none, group: spec.group)
        return (pointwise, transposed)
    }

    /// Weight layout [in][out][2][2] (PyTorch's ConvTranspose2d).
    public static func forward(_ x: FeatureBatch, weight: [Float], bias: [Float]?, spec: ConvSpec, threads: Int) -> FeatureBatch {
        precondition(spec.kind == .transposed && spec.kernel == 2 && spec.stride == 2, "\(spec.weightPrefix): only kernel 2 stride 2")
        let cout = spec.outChannels
        let (pointwiseSpec, pointwiseWeight) = pointwise(spec, weight: weight)
        var col = DenseConv.forward(x, weight: pointwiseWeight, bias: nil, spec: pointwiseSpec, threads: threads)
        // Every output pixel is in exactly one input pixel's patch: the scatter writes all of them.
        var out = FeatureBatch(channels: cout, batch: x.batch, height: 2 * x.height, width: 2 * x.width) { map in
            col.data.withUnsafeMutableBufferPointer { cb in
                exchange(col: cb.baseAddress!, map: map, outChannels: cout, batch: x.batch, height: x.height,
                         width: x.width, scatter: true, threads: threads)
            }
        }
        if let bias {
            for p in 0..<out.pixels { for o in 0..<cout { out.data[p * cout + o] += bias[o] } }
        }
        return out
    }

    /// Gradients of the weight and the input (each only when asked); the bias gradient is the per-channel
    /// sum of dOut, as for every biased conv (TrainableUNet computes it).
    public static func backward(x: FeatureBatch, dOut: FeatureBatch, weight: [Float], spec: ConvSpec,
                                wantWeightGradient: Bool, wantInputGradient: Bool, threads: Int) -> (dWeight: [Float]?, dInput: FeatureBatch?) {
        if !wantWeightGradient && !wantInputGradient { return (nil, nil) }
        let (cin, rows) = (spec.inChannels, spec.outChannels * 4)
        var dOutCopy = dOut.data  // `exchange` takes a mutable map pointer; gathering only reads it
        let col = FeatureBatch(channels: rows, batch: x.batch, height: x.height, width: x.width) { col in
            dOutCopy.withUnsafeMutableBufferPointer { db in
                exchange(col: col, map: db.baseAddress!, outChannels: spec.outChannels, batch: x.batch, height: x.height,
                         width: x.width, scatter: false, threads: threads)
            }
        }
        let (pointwiseSpec, pointwiseWeight) = pointwise(spec, weight: weight)
        let (pointwiseGradient, dInput) = DenseConv.backward(x: x, dOut: col, weight: pointwiseWeight, spec: pointwiseSpec,
                                                             wantWeightGradient: wantWeightGradient, wantInputGradient: wantInputGradient,
                                                             threads: threads)
        var dWeight: [Float]?
        if let pointwiseGradient {  // [out*4][in] -> [in][out*4]
            var transposed = [Float](repeating: 0, count: pointwiseGradient.count)
            for r in 0..<rows { for i in 0..<cin { transposed[i * rows + r] = pointwiseGradient[r * cin + i] } }
            dWeight = transposed
        }
        return (dWeight, dInput)
    }
}

// MARK: - Max-pool 2x2, stride 2

/// PyTorch's MaxPool2d(2): each output is the largest of its 2x2 window (odd trailing rows/columns dropped).
/// The window is scanned in row-major order (top-left, top-right, bottom-left, bottom-right) and a value
/// replaces the running maximum only if it is larger or NaN — PyTorch's CPU kernel's rule — so on ties
/// the first position wins, and backward routes the whole gradient to that one position.
public enum MaxPool2x2 {
    /// Position 0..<4 of channel c's winner in the window whose four pixels' channels start at `window`.
    @inline(__always)
    static func argmax(_ window: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>), _ c: Int) -> Int {
        var best = window.0[c], index = 0
        @inline(__always) func consider(_ value: Float, _ position: Int) {
            if value > best || value.isNaN { best = value; index = position }
        }
        consider(window.1[c], 1)
        consider(window.2[c], 2)
        consider(window.3[c], 3)
        return index
    }

    /// The window of output pixel (image, y, x): its four input pixels in row-major order.
    @inline(__always)
    static func window(_ xp: UnsafePointer<Float>, image: Int, y: Int, x: Int, height h: Int, width w: Int, channels: Int)
        -> (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) {
        let top = xp + ((image * h + 2 * y) * w + 2 * x) * channels, bottom = top + w * channels
        return (top, top + channels, bottom, bottom + channels)
    }

    public static func forward(_ x: FeatureBatch, threads: Int) -> FeatureBatch {
        let (h, w, oh, ow, channels) = (x.height, x.width, x.height / 2, x.width / 2, x.channels)
        return FeatureBatch(channels: channels, batch: x.batch, height: oh, width: ow) { op in
        x.data.withUnsafeBufferPointer { xb in
            let xp = xb.baseAddress!
            parallelChunks(x.batch * oh, threads: threads) { rows in
                for row in rows {  // row = image * oh + y
                    for xx in 0..<ow {
                        let pixels = window(xp, image: row / oh, y: row % oh, x: xx, height: h, width: w, channels: channels)
                        let target = op + (row * ow + xx) * channels
                        for c in 0..<channels {
                            switch argmax(pixels, c) {
                            case 0: target[c] = pixels.0[c]
                            case 1: target[c] = pixels.1[c]
                            case 2: target[c] = pixels.2[c]
                            default: target[c] = pixels.3[c]
                            }
                        }
                    }
                }
            }
        } }
    }

    /// dx is zero except at each window's winner, which gets that output's gradient. The winners are found
    /// again from `x` (the forward's input, which the trainer keeps anyway) with the same rule.
    public static func backward(x: FeatureBatch, dOut: FeatureBatch, threads: Int) -> FeatureBatch {
        let (h, w, oh, ow, channels) = (x.height, x.width, dOut.height, dOut.width, x.channels)
        var dx = FeatureBatch(zerosChannels: channels, batch: x.batch, height: h, width: w)
        x.data.withUnsafeBufferPointer { xb in dOut.data.withUnsafeBufferPointer { gb in dx.data.withUnsafeMutableBufferPointer { db in
            let (xp, gp, dp) = (xb.baseAddress!, gb.baseAddress!, db.baseAddress!)
            parallelChunks(x.batch * oh, threads: threads) { rows in
                for row in rows {
                    let image = row / oh, y = row % oh
                    for xx in 0..<ow {
                        let pixels = window(xp, image: image, y: y, x: xx, height: h, width: w, channels: channels)
                        let gradient = gp + (row * ow + xx) * channels
                        for c in 0..<channels {
                            let position = argmax(pixels, c)
                            let (py, px) = (2 * y + position / 2, 2 * xx + position % 2)
                            dp[((image * h + py) * w + px) * channels + c] = gradient[c]
                        }
                    }
                }
            }
        } } }
        return dx
    }
}

// MARK: - BatchNorm (train mode: batch statistics; eval mode: running statistics)

/// What BatchNorm's backward needs: the normalised input and 1/sqrt(var + eps) per channel.
public struct BatchNormCache {
    public var normalized: [Float]
    public var inverseStd: [Float]
    public var trainMode: Bool
}

public enum BatchNorm {
    static let epsilon: Float = ModelWeights.batchNormEpsilon
    /// PyTorch's default momentum: running = (1 - 0.1) * running + 0.1 * batch.
    static let momentum: Float = 0.1

    /// Train mode, in place: y = gamma * (z - mean) / sqrt(var + eps) + beta with the batch's mean and biased
    /// variance over N*H*W (two passes: the mean, then the squared deviations from it). Returns the cache
    /// and the batch mean and biased variance (for running stats).
    /// `keepNormalized` false (a layer no gradient passes through) leaves the cache's xhat empty.
    /// `activation` is applied to the output in the same pass (the layer's ReLU or ReLU6).
    public static func trainForward(_ z: inout FeatureBatch, gamma: [Float], beta: [Float], activation: Activation = .none,
                                    keepNormalized: Bool = true, threads: Int)
        -> (cache: BatchNormCache, mean: [Float], variance: [Float]) {
        let (m, channels) = (z.pixels, z.channels)
        let mean = ChannelSums.of(z, threads: threads).map { Float($0 / Double(m)) }
        let deviations = z.data.withUnsafeBufferPointer { zb in
            mean.withUnsafeBufferPointer { mb in
                let (zp, mp) = (zb.baseAddress!, mb.baseAddress!)
                return ChannelSums.compute(pixels: m, channels: channels, threads: threads) { range, sums in
                    for p in range {
                        let v = zp + p * channels
                        for c in 0..<channels { let d = v[c] - mp[c]; sums[c] += d * d }
                    }
                }[0]
            }
        }
        let variance = deviations.map { Float($0 / Double(m)) }
        let inverseStd = deviations.map { Float(1 / ($0 / Double(m) + Double(epsilon)).squareRoot()) }
        let normalized = normalize(&z, mean: mean, inverseStd: inverseStd, gamma: gamma, beta: beta, activation: activation,
                                   keepNormalized: keepNormalized, threads: threads)
        return (BatchNormCache(normalized: normalized, inverseStd: inverseStd, trainMode: true), mean, variance)
    }

    /// z <- activation(gamma * xhat + beta) with xhat = (z - mean) * inverseStd, per pixel over its channels;
    /// returns xhat when asked (else an empty array).
    static func normalize(_ z: inout FeatureBatch, mean: [Float], inverseStd: [Float], gamma: [Float], beta: [Float],
                          activation: Activation, keepNormalized: Bool, threads: Int) -> [Float] {
        let (channels, pixelCount) = (z.channels, z.pixels)
        let (lower, upper) = ActivationLayer.bounds(activation) ?? (-.infinity, .infinity)
        var normalized = [Float](unsafeUninitializedCapacity: keepNormalized ? z.data.count : 0) { _, initialized in
            initialized = keepNormalized ? z.data.count : 0  // every value is written below
        }
        z.data.withUnsafeMutableBufferPointer { zb in
        normalized.withUnsafeMutableBufferPointer { nb in
        mean.withUnsafeBufferPointer { mb in
        inverseStd.withUnsafeBufferPointer { ib in
        gamma.withUnsafeBufferPointer { gb in
        beta.withUnsafeBufferPointer { bb in
            // (An empty array's buffer may still have a base address: decide by keepNormalized, never by nil.)
            let (zp, np) = (zb.baseAddress!, keepNormalized ? nb.baseAddress : nil)
            let (mp, ip, gp, bp) = (mb.baseAddress!, ib.baseAddress!, gb.baseAddress!, bb.baseAddress!)
            // y < lower and y > upper are false for NaN, which passes through as the separate clamp does.
            parallelChunks(pixelCount, threads: threads) { pixels in
                for p in pixels {
                    let v = zp + p * channels
                    if let np {
                        let out = np + p * channels
                        for c in 0..<channels {
                            let xhat = (v[c] - mp[c]) * ip[c]
                            out[c] = xhat
                            var y = gp[c] * xhat + bp[c]
                            if y < lower { y = lower }
                            if y > upper { y = upper }
                            v[c] = y
                        }
                    } else {
                        for c in 0..<channels {
                            var y = gp[c] * ((v[c] - mp[c]) * ip[c]) + bp[c]
                            if y < lower { y = lower }
                            if y > upper { y = upper }
                            v[c] = y
                        }
                    }
                }
            }
        }}}}}}
        return normalized
    }

    /// running_mean <- (1 - momentum) running_mean + momentum mean; running_var likewise with the UNBIASED
    /// batch variance (biased * M / (M - 1)), as PyTorch does.
    public static func updateRunningStatistics(runningMean: inout [Float], runningVar: inout [Float],
                                        mean: [Float], biasedVariance: [Float], count m: Int) {
        let unbias = m > 1 ? Float(m) / Float(m - 1) : 1
        for c in 0..<runningMean.count {
            runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean[c]
            runningVar[c] = (1 - momentum) * runningVar[c] + momentum * biasedVariance[c] * unbias
        }
    }

    /// Eval mode, in place: normalises with the running statistics.
    public static func evalForward(_ z: inout FeatureBatch, gamma: [Float], beta: [Float], runningMean: [Float], runningVar: [Float],
                                   activation: Activation = .none, keepCache: Bool, threads: Int) -> BatchNormCache? {
        let inverseStd = runningVar.map { 1 / ($0 + epsilon).squareRoot() }
        let normalized = normalize(&z, mean: runningMean, inverseStd: inverseStd, gamma: gamma, beta: beta, activation: activation,
                                   keepNormalized: keepCache, threads: threads)
        return keepCache ? BatchNormCache(normalized: normalized, inverseStd: inverseStd, trainMode: false) : nil
    }

    /// Gradients of y = gamma * xhat + beta. Train mode also flows through the batch statistics:
    /// dz = gamma * invStd / M * (M dy - sum(dy) - xhat * sum(dy xhat)); eval mode: dz = gamma * invStd * dy.
    public static func backward(_ dy: FeatureBatch, cache: BatchNormCache, gamma: [Float], wantInputGradient: Bool, threads: Int)
        -> (dInput: FeatureBatch?, dGamma: [Float], dBeta: [Float]) {
        let (m, channels) = (dy.pixels, dy.channels)
        let sums = dy.data.withUnsafeBufferPointer { db in
            cache.normalized.withUnsafeBufferPointer { nb in
                let (dp, np) = (db.baseAddress!, nb.baseAddress!)
                return ChannelSums.compute(pixels: m, channels: channels, quantities: 2, threads: threads) { range, sums in
                    let products = sums + channels
                    for p in range {
                        let (g, xhat) = (dp + p * channels, np + p * channels)
                        for c in 0..<channels { sums[c] += g[c]; products[c] += g[c] * xhat[c] }
                    }
                }
            }
        }
        let (sumDy, sumDyXhat) = (sums[0], sums[1])
        let dGamma = sumDyXhat.map { Float($0) }, dBeta = sumDy.map { Float($0) }
        guard wantInputGradient else { return (nil, dGamma, dBeta) }
        let scale = (0..<channels).map { gamma[$0] * cache.inverseStd[$0] }
        let meanDy = sumDy.map { Float($0 / Double(m)) }, meanDyXhat = sumDyXhat.map { Float($0 / Double(m)) }
        var dz = [Float](unsafeUninitializedCapacity: dy.data.count) { _, initialized in initialized = dy.data.count }  // all written below
        dy.data.withUnsafeBufferPointer { db in
        cache.normalized.withUnsafeBufferPointer { nb in
        dz.withUnsafeMutableBufferPointer { zb in
        scale.withUnsafeBufferPointer { sb in
        meanDy.withUnsafeBufferPointer { mdb in
        meanDyXhat.withUnsafeBufferPointer { mxb in
            let (dp, np, zp, sp, mdp, mxp) = (db.baseAddress!, nb.baseAddress!, zb.baseAddress!, sb.baseAddress!, mdb.baseAddress!, mxb.baseAddress!)
            let trainMode = cache.trainMode
            parallelChunks(m, threads: threads) { pixels in
                for p in pixels {
                    let (g, xhat, out) = (dp + p * channels, np + p * channels, zp + p * channels)
                    if trainMode {
                        for c in 0..<channels { out[c] = sp[c] * (g[c] - mdp[c] - xhat[c] * mxp[c]) }
                    } else {
                        for c in 0..<channels { out[c] = sp[c] * g[c] }
                    }
                }
            }
        }}}}}}
        return (FeatureBatch(channels: channels, batch: dy.batch, height: dy.height, width: dy.width, data: dz), dGamma, dBeta)
    }
}

// MARK: - ReLU / ReLU6

public enum ActivationLayer {
    /// The clamp range of an activation (nil for none).
    static func bounds(_ activation: Activation) -> (lower: Float, upper: Float)? {
        switch activation {
        case .none: return nil
        case .relu: return (0, .infinity)
        case .relu6: return (0, 6)
        }
    }

    /// Vectors of 8 per work item of the elementwise loops.
    static let chunk = 4096

    public static func forward(_ x: inout FeatureBatch, _ activation: Activation, threads: Int) {
        guard let (lower, upper) = bounds(activation) else { return }
        x.data.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!, count = b.count, vectors = count / 8
            let lowerVector = SIMD8<Float>(repeating: lower), upperVector = SIMD8<Float>(repeating: upper)
            UnsafeMutableRawPointer(p).withMemoryRebound(to: SIMD8<Float>.self, capacity: vectors) { v in
                parallelChunks((vectors + chunk - 1) / chunk, threads: threads) { chunks in
                    // (Not `clamped(lowerBound:upperBound:)`: the stdlib's generic pointwiseMin/Max is not specialised.)
                    for i in (chunks.lowerBound * chunk)..<min(vectors, chunks.upperBound * chunk) {
                        let x = v[i]
                        v[i] = x.replacing(with: lowerVector, where: x .< lowerVector).replacing(with: upperVector, where: x .> upperVector)
                    }
                }
            }
            for i in (8 * vectors)..<count { p[i] = min(max(p[i], lower), upper) }
        }
    }

    /// The gradient passes where the activation was not clamped. Decided from the output a = act(y):
    /// ReLU passes where a > 0 (y > 0); ReLU6 where 0 < a < 6 (PyTorch's hardtanh backward: min < y < max).
    public static func backward(_ dOut: inout FeatureBatch, output: FeatureBatch, _ activation: Activation, threads: Int) {
        guard let (_, upper) = bounds(activation) else { return }
        dOut.data.withUnsafeMutableBufferPointer { g in output.data.withUnsafeBufferPointer { a in
            let (gp, ap, count) = (g.baseAddress!, a.baseAddress!, g.count)
            let vectors = count / 8
            let zero = SIMD8<Float>(), upperVector = SIMD8<Float>(repeating: upper)
            UnsafeMutableRawPointer(gp).withMemoryRebound(to: SIMD8<Float>.self, capacity: vectors) { gv in
                UnsafeRawPointer(ap).withMemoryRebound(to: SIMD8<Float>.self, capacity: vectors) { av in
                    parallelChunks((vectors + chunk - 1) / chunk, threads: threads) { chunks in
                        for i in (chunks.lowerBound * chunk)..<min(vectors, chunks.upperBound * chunk) {
                            let passes = (av[i] .> zero) .& (av[i] .< upperVector)
                            gv[i] = zero.replacing(with: gv[i], where: passes)
                        }
                    }
                }
            }
            for i in (8 * vectors)..<count where !(ap[i] > 0 && ap[i] < upper) { gp[i] = 0 }
        } }
    }
}

// MARK: - Nearest 2x upsample, channel concat

public enum Upsample2x {
    public static func forward(_ x: FeatureBatch, threads: Int) -> FeatureBatch {
        let (h, w, channels) = (x.height, x.width, x.channels)
        return FeatureBatch(channels: channels, batch: x.batch, height: 2 * h, width: 2 * w) { op in
            x.data.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!
                parallelChunks(x.batch * 2 * h, threads: threads) { rows in
                    for row in rows {  // row = image * 2h + y
                        let image = row / (2 * h), y = row % (2 * h)
                        let source = xp + (image * h + y / 2) * w * channels, target = op + row * 2 * w * channels
                        for xx in 0..<(2 * w) { (target + xx * channels).initialize(from: source + (xx / 2) * channels, count: channels) }
                    }
                }
            }
        }
    }

    /// Each input pixel was copied to a 2x2 block: its gradient is the block's sum.
    public static func backward(_ dOut: FeatureBatch, threads: Int) -> FeatureBatch {
        let (h, w, channels) = (dOut.height / 2, dOut.width / 2, dOut.channels)
        return FeatureBatch(channels: channels, batch: dOut.batch, height: h, width: w) { xp in
        dOut.data.withUnsafeBufferPointer { gb in
            let gp = gb.baseAddress!
            parallelChunks(dOut.batch * h, threads: threads) { rows in
                for row in rows {  // row = image * h + y
                    let image = row / h, y = row % h
                    for xx in 0..<w {
                        let top = gp + ((image * 2 * h + 2 * y) * 2 * w + 2 * xx) * channels, bottom = top + 2 * w * channels
                        let target = xp + (row * w + xx) * channels
                        for c in 0..<channels { target[c] = (top[c] + top[channels + c]) + (bottom[c] + bottom[channels + c]) }
                    }
                }
            }
        } }
    }
}

public enum Concat {
    /// [a, b] along channels: each pixel's channels of a, then of b.
    public static func forward(_ a: FeatureBatch, _ b: FeatureBatch, threads: Int) -> FeatureBatch {
        precondition(a.batch == b.batch && a.height == b.height && a.width == b.width, "concat: spatial shapes differ")
        let (ca, cb, channels) = (a.channels, b.channels, a.channels + b.channels)
        return FeatureBatch(channels: channels, batch: a.batch, height: a.height, width: a.width) { target in
            a.data.withUnsafeBufferPointer { ab in b.data.withUnsafeBufferPointer { bb in
                let (ap, bp) = (ab.baseAddress!, bb.baseAddress!)
                parallelChunks(a.pixels, threads: threads) { pixels in
                    for p in pixels {
                        (target + p * channels).initialize(from: ap + p * ca, count: ca)
                        (target + p * channels + ca).initialize(from: bp + p * cb, count: cb)
                    }
                }
            } }
        }
    }

    public static func backward(_ dOut: FeatureBatch, firstChannels: Int, threads: Int) -> (FeatureBatch, FeatureBatch) {
        let channels = dOut.channels
        func part(_ start: Int, _ count: Int) -> FeatureBatch {
            FeatureBatch(channels: count, batch: dOut.batch, height: dOut.height, width: dOut.width) { target in
                dOut.data.withUnsafeBufferPointer { source in
                    let sp = source.baseAddress!
                    parallelChunks(dOut.pixels, threads: threads) { pixels in
                        for p in pixels { (target + p * count).initialize(from: sp + p * channels + start, count: count) }
                    }
                }
            }
        }
        return (part(0, firstChannels), part(firstChannels, channels - firstChannels))
    }
}

// MARK: - Loss: binary cross-entropy with logits, mean over every pixel

public enum BCEWithLogits {
    /// Pixels per block of the loss sum: each block is summed in order, then the blocks in order, so the
    /// loss is the same for any thread count.
    static let block = 4096

    /// loss = mean(max(x, 0) - x t + log(1 + exp(-|x|))), the numerically stable form (no overflow for large |x|).
    /// Gradient: (sigmoid(x) - t) / count.
    public static func lossAndGradient(logits: [Float], targets: [Float], threads: Int = 1) -> (loss: Double, gradient: [Float]) {
        precondition(logits.count == targets.count, "BCE: \(logits.count) logits, \(targets.count) targets")
        let count = logits.count, blocks = (count + block - 1) / block
        let scale = 1 / Double(count)
        var blockTotals = [Double](repeating: 0, count: blocks)
        let gradient = [Float](unsafeUninitializedCapacity: count) { gradient, initialized in
            logits.withUnsafeBufferPointer { lb in targets.withUnsafeBufferPointer { tb in blockTotals.withUnsafeMutableBufferPointer { bb in
                let (lp, tp, gp, totals) = (lb.baseAddress!, tb.baseAddress!, gradient.baseAddress!, bb.baseAddress!)
                parallelChunks(blocks, threads: threads) { range in
                    for b in range {
                        var total = 0.0
                        for i in (b * block)..<min(count, (b + 1) * block) {
                            let x = Double(lp[i]), t = Double(tp[i])
                            total += max(x, 0) - x * t + log1p(exp(-abs(x)))
                            let sigmoid = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
                            gp[i] = Float((sigmoid - t) * scale)
                        }
                        totals[b] = total
                    }
                }
            } } }
            initialized = count
        }
        return (blockTotals.reduce(0, +) * scale, gradient)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
