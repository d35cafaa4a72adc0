import QuantEngine

// Every layer of the U-Net as a forward and a backward pass side by side (in the manner of llm.c): no
// autograd, the caches each backward needs are returned explicitly by its forward. Feature maps are
// channel-major [C][N][H][W] (see FeatureBatch). Reductions that decide a result (BatchNorm statistics,
// parameter gradients of depthwise convs and BatchNorm, the loss) are summed in Double for accuracy.

/// Output columns ox whose input column ox*s - pad + kx lies inside 0..<width (the rest read padding).
@inline(__always)
func validOutputRange(kx: Int, stride s: Int, pad: Int, inputWidth: Int, outputWidth: Int) -> Range<Int> {
    let first = pad - kx > 0 ? (pad - kx + s - 1) / s : 0
    let last = inputWidth - 1 + pad - kx
    let end = last < 0 ? 0 : min(outputWidth, last / s + 1)
    return first < end ? first..<end : 0..<0
}

// MARK: - Depthwise 3x3 convolution (one filter per channel, padding 1, stride 1 or 2)

public enum DepthwiseConv {
    public static func forward(_ x: FeatureBatch, weight: [Float], spec: ConvSpec, threads: Int) -> FeatureBatch {
        let k = spec.kernel, s = spec.stride, pad = spec.padding
        let outHeight = spec.outputSize(x.height), outWidth = spec.outputSize(x.width)
        var out = FeatureBatch(zerosChannels: x.channels, batch: x.batch, height: outHeight, width: outWidth)
        let (h, w) = (x.height, x.width)
        let valid = (0..<k).map { validOutputRange(kx: $0, stride: s, pad: pad, inputWidth: w, outputWidth: outWidth) }
        x.data.withUnsafeBufferPointer { xb in
        weight.withUnsafeBufferPointer { wb in
        out.data.withUnsafeMutableBufferPointer { ob in
            let (xp, wp, op) = (xb.baseAddress!, wb.baseAddress!, ob.baseAddress!)
            parallelChunks(x.channels * x.batch, threads: threads) { planes in
                for planeIndex in planes {  // planeIndex = c * N + n
                    let c = planeIndex / x.batch
                    let source = xp + planeIndex * h * w, target = op + planeIndex * outHeight * outWidth
                    let filter = wp + c * k * k
                    for oy in 0..<outHeight {
                        let targetRow = target + oy * outWidth  // starts at zero
                        for ky in 0..<k {
                            let iy = oy * s - pad + ky
                            guard iy >= 0 && iy < h else { continue }
                            for kx in 0..<k {
                                let tap = filter[ky * k + kx]
                                let sourceRow = source + iy * w - pad + kx
                                if s == 1 {
                                    for ox in valid[kx] { targetRow[ox] += tap * sourceRow[ox] }
                                } else {
                                    for ox in valid[kx] { targetRow[ox] += tap * sourceRow[ox * s] }
                                }
                            }
                        }
                    }
                }
            }
        }}}
        return out
    }

    public static func backward(x: FeatureBatch, dOut: FeatureBatch, weight: [Float], spec: ConvSpec,
                                wantWeightGradient: Bool, wantInputGradient: Bool, threads: Int) -> (dWeight: [Float]?, dInput: FeatureBatch?) {
        let k = spec.kernel, s = spec.stride, pad = spec.padding
        let (h, w, n) = (x.height, x.width, x.batch)
        let (outHeight, outWidth) = (dOut.height, dOut.width)
        let valid = (0..<k).map { validOutputRange(kx: $0, stride: s, pad: pad, inputWidth: w, outputWidth: outWidth) }
        var dw = [Float](repeating: 0, count: x.channels * k * k)
        var dx = [Float](repeating: 0, count: wantInputGradient ? x.data.count : 0)
        x.data.withUnsafeBufferPointer { xb in
        weight.withUnsafeBufferPointer { wb in
        dOut.data.withUnsafeBufferPointer { db in
        dw.withUnsafeMutableBufferPointer { dwb in
        dx.withUnsafeMutableBufferPointer { dxb in
            let (xp, wp, dp, dwp) = (xb.baseAddress!, wb.baseAddress!, db.baseAddress!, dwb.baseAddress!)
            let dxp = wantInputGradient ? dxb.baseAddress : nil
            // Parallel over channels: each channel's filter gradient and input planes belong to one chunk.
            parallelChunks(x.channels, threads: threads) { channels in
                for c in channels {
                    var filterGradient = [Double](repeating: 0, count: k * k)
                    let filter = wp + c * k * k
                    for image in 0..<n {
                        let source = xp + (c * n + image) * h * w
                        let gradient = dp + (c * n + image) * outHeight * outWidth
                        let inputGradient = dxp.map { $0 + (c * n + image) * h * w }
                        for oy in 0..<outHeight {
                            let gradientRow = gradient + oy * outWidth
                            for ky in 0..<k {
                                let iy = oy * s - pad + ky
                                guard iy >= 0 && iy < h else { continue }
                                for kx in 0..<k {
                                    let offset = iy * w - pad + kx
                                    if wantWeightGradient {
                                        let sourceRow = source + offset
                                        let sum: Float
                                        if s == 1 {
                                            let range = valid[kx]
                                            sum = Reduction.rowDot(gradientRow + range.lowerBound, sourceRow + range.lowerBound, count: range.count)
                                        } else {
                                            var strided: Float = 0
                                            for ox in valid[kx] { strided += gradientRow[ox] * sourceRow[ox * s] }
                                            sum = strided
                                        }
                                        filterGradient[ky * k + kx] += Double(sum)
                                    }
                                    if let inputGradient {
                                        let tap = filter[ky * k + kx], inputRow = inputGradient + offset
                                        if s == 1 {
                                            for ox in valid[kx] { inputRow[ox] += tap * gradientRow[ox] }
                                        } else {
                                            for ox in valid[kx] { inputRow[ox * s] += tap * gradientRow[ox] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    for t in 0..<(k * k) { dwp[c * k * k + t] = Float(filterGradient[t]) }
                }
            }
        }}}}}
        let dInput = wantInputGradient ? FeatureBatch(channels: x.channels, batch: n, height: h, width: w, data: dx) : nil
        return (wantWeightGradient ? dw : nil, dInput)
    }
}

// MARK: - Transposed convolution, kernel 2 stride 2 (the baseline U-Net's upsampling)

/// PyTorch's ConvTranspose2d(in, out, 2, stride=2) with bias: every input pixel writes its own 2x2 output
/// patch, out[o][n][2y+ky][2x+kx] = b[o] + sum_i W[i][o][ky][kx] x[i][n][y][x]. Patches never overlap, so
/// it is a 1x1 convolution to out*4 channels, col[(o*2+ky)*2+kx] = W1 x X with W1 = W read as [in][out*4],
/// transposed, whose output rows are scattered to their (ky, kx) phase of the output. Backward gathers
/// dOut into the same col layout and runs the 1x1 convolution's backward; dBias = sum of dOut per channel.
public enum TransposedConv2x2 {
    /// col row r = (o*2+ky)*2+kx, column (n*H + y)*W + x  <->  out[o][n][2y+ky][2x+kx] (forward scatters,
    /// backward gathers; `scatter` false means gather from `map` into `col`).
    static func exchange(col: UnsafeMutablePointer<Float>, map: UnsafeMutablePointer<Float>, outChannels: Int,
                         batch n: Int, height h: Int, width w: Int, scatter: Bool, threads: Int) {
        let columns = n * h * w
        parallelChunks(outChannels * n, threads: threads) { planes in
            for planeIndex in planes {  // planeIndex = o * N + image
                let o = planeIndex / n, image = planeIndex % n
                let plane = map + planeIndex * 4 * h * w
                for ky in 0..<2 {
                    for kx in 0..<2 {
                        let row = col + ((o * 2 + ky) * 2 + kx) * columns + image * h * w
                        for y in 0..<h {
                            let mapRow = plane + (2 * y + ky) * 2 * w + kx, colRow = row + y * w
                            if scatter {
                                for x in 0..<w { mapRow[2 * x] = colRow[x] }
                            } else {
                                for x in 0..<w { colRow[x] = mapRow[2 * x] }
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
        var out = FeatureBatch(zerosChannels: cout, batch: x.batch, height: 2 * x.height, width: 2 * x.width)
        col.data.withUnsafeMutableBufferPointer { cb in
        out.data.withUnsafeMutableBufferPointer { ob in
            exchange(col: cb.baseAddress!, map: ob.baseAddress!, outChannels: cout, batch: x.batch, height: x.height,
                     width: x.width, scatter: true, threads: threads)
        }}
        if let bias {
            let perChannel = out.perChannel
            for o in 0..<cout {
                let b = bias[o]
                for i in (o * perChannel)..<((o + 1) * perChannel) { out.data[i] += b }
            }
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
        var col = FeatureBatch(zerosChannels: rows, batch: x.batch, height: x.height, width: x.width)
        dOutCopy.withUnsafeMutableBufferPointer { db in
        col.data.withUnsafeMutableBufferPointer { cb in
            exchange(col: cb.baseAddress!, map: db.baseAddress!, outChannels: spec.outChannels, batch: x.batch, height: x.height,
                     width: x.width, scatter: false, threads: threads)
        }}
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
    /// Position 0..<4 of the winning value within the window starting at `top`.
    @inline(__always)
    static func argmax(_ top: UnsafePointer<Float>, rowStride w: Int) -> Int {
        var best = top[0], index = 0
        for position in 1..<4 {
            let value = top[offset(position, rowStride: w)]
            if value > best || value.isNaN { best = value; index = position }
        }
        return index
    }

    @inline(__always)
    static func offset(_ position: Int, rowStride w: Int) -> Int { (position >> 1) * w + (position & 1) }

    public static func forward(_ x: FeatureBatch, threads: Int) -> FeatureBatch {
        let (h, w, oh, ow) = (x.height, x.width, x.height / 2, x.width / 2)
        var out = FeatureBatch(zerosChannels: x.channels, batch: x.batch, height: oh, width: ow)
        x.data.withUnsafeBufferPointer { xb in out.data.withUnsafeMutableBufferPointer { ob in
            let (xp, op) = (xb.baseAddress!, ob.baseAddress!)
            parallelChunks(x.channels * x.batch, threads: threads) { planes in
                for planeIndex in planes {
                    let source = xp + planeIndex * h * w, target = op + planeIndex * oh * ow
                    for y in 0..<oh {
                        for xx in 0..<ow {
                            let top = source + 2 * y * w + 2 * xx
                            target[y * ow + xx] = top[offset(argmax(top, rowStride: w), rowStride: w)]
                        }
                    }
                }
            }
        } }
        return out
    }

    /// dx is zero except at each window's winner, which gets that output's gradient. The winners are found
    /// again from `x` (the forward's input, which the trainer keeps anyway) with the same rule.
    public static func backward(x: FeatureBatch, dOut: FeatureBatch, threads: Int) -> FeatureBatch {
        let (h, w, oh, ow) = (x.height, x.width, dOut.height, dOut.width)
        var dx = FeatureBatch(zerosChannels: x.channels, batch: x.batch, height: h, width: w)
        x.data.withUnsafeBufferPointer { xb in dOut.data.withUnsafeBufferPointer { gb in dx.data.withUnsafeMutableBufferPointer { db in
            let (xp, gp, dp) = (xb.baseAddress!, gb.baseAddress!, db.baseAddress!)
            parallelChunks(x.channels * x.batch, threads: threads) { planes in
                for planeIndex in planes {
                    let source = xp + planeIndex * h * w, target = dp + planeIndex * h * w, gradient = gp + planeIndex * oh * ow
                    for y in 0..<oh {
                        for xx in 0..<ow {
                            let corner = 2 * y * w + 2 * xx
                            target[corner + offset(argmax(source + corner, rowStride: w), rowStride: w)] = gradient[y * ow + xx]
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
    /// variance over N*H*W. Returns the cache and the batch mean and biased variance (for running stats).
    public static func trainForward(_ z: inout FeatureBatch, gamma: [Float], beta: [Float], threads: Int)
        -> (cache: BatchNormCache, mean: [Float], variance: [Float]) {
        let m = z.perChannel
        var normalized = [Float](repeating: 0, count: z.data.count)
        var mean = [Float](repeating: 0, count: z.channels)
        var variance = [Float](repeating: 0, count: z.channels)
        var inverseStd = [Float](repeating: 0, count: z.channels)
        z.data.withUnsafeMutableBufferPointer { zb in
        normalized.withUnsafeMutableBufferPointer { nb in
        mean.withUnsafeMutableBufferPointer { mb in
        variance.withUnsafeMutableBufferPointer { vb in
        inverseStd.withUnsafeMutableBufferPointer { ib in
            let (zp, np, mp, vp, ip) = (zb.baseAddress!, nb.baseAddress!, mb.baseAddress!, vb.baseAddress!, ib.baseAddress!)
            parallelChunks(z.channels, threads: threads) { channels in
                for c in channels {
                    let row = zp + c * m, out = np + c * m
                    let mu = Reduction.sum(row, count: m) / Double(m)
                    let biased = Reduction.sumOfSquaredDeviations(row, count: m, from: Float(mu)) / Double(m)
                    let invStd = Float(1 / (biased + Double(epsilon)).squareRoot())
                    let muF = Float(mu), g = gamma[c], b = beta[c]
                    for i in 0..<m {
                        let xhat = (row[i] - muF) * invStd
                        out[i] = xhat
                        row[i] = g * xhat + b
                    }
                    mp[c] = muF
                    vp[c] = Float(biased)
                    ip[c] = invStd
                }
            }
        }}}}}
        return (BatchNormCache(normalized: normalized, inverseStd: inverseStd, trainMode: true), mean, variance)
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
                            keepCache: Bool, threads: Int) -> BatchNormCache? {
        let m = z.perChannel
        var normalized = [Float](repeating: 0, count: keepCache ? z.data.count : 0)
        let inverseStd = runningVar.map { 1 / ($0 + epsilon).squareRoot() }
        z.data.withUnsafeMutableBufferPointer { zb in
        normalized.withUnsafeMutableBufferPointer { nb in
            // (An empty array's buffer may still have a base address: decide by keepCache, never by nil.)
            let (zp, np) = (zb.baseAddress!, keepCache ? nb.baseAddress : nil)
            parallelChunks(z.channels, threads: threads) { channels in
                for c in channels {
                    let row = zp + c * m
                    let (mu, invStd, g, b) = (runningMean[c], inverseStd[c], gamma[c], beta[c])
                    for i in 0..<m {
                        let xhat = (row[i] - mu) * invStd
                        if let np { np[c * m + i] = xhat }
                        row[i] = g * xhat + b
                    }
                }
            }
        }}
        return keepCache ? BatchNormCache(normalized: normalized, inverseStd: inverseStd, trainMode: false) : nil
    }

    /// Gradients of y = gamma * xhat + beta. Train mode also flows through the batch statistics:
    /// dz = gamma * invStd / M * (M dy - sum(dy) - xhat * sum(dy xhat)); eval mode: dz = gamma * invStd * dy.
    public static func backward(_ dy: FeatureBatch, cache: BatchNormCache, gamma: [Float], wantInputGradient: Bool, threads: Int)
        -> (dInput: FeatureBatch?, dGamma: [Float], dBeta: [Float]) {
        let m = dy.perChannel
        var dGamma = [Float](repeating: 0, count: dy.channels)
        var dBeta = [Float](repeating: 0, count: dy.channels)
        var dz = [Float](repeating: 0, count: wantInputGradient ? dy.data.count : 0)
        dy.data.withUnsafeBufferPointer { db in
        cache.normalized.withUnsafeBufferPointer { nb in
        dGamma.withUnsafeMutableBufferPointer { gb in
        dBeta.withUnsafeMutableBufferPointer { bb in
        dz.withUnsafeMutableBufferPointer { zb in
            let (dp, np, gp, bp) = (db.baseAddress!, nb.baseAddress!, gb.baseAddress!, bb.baseAddress!)
            let zp = wantInputGradient ? zb.baseAddress : nil
            parallelChunks(dy.channels, threads: threads) { channels in
                for c in channels {
                    let g = dp + c * m, xhat = np + c * m
                    let sumDy = Reduction.sum(g, count: m), sumDyXhat = Reduction.sumOfProducts(g, xhat, count: m)
                    gp[c] = Float(sumDyXhat)
                    bp[c] = Float(sumDy)
                    guard let zp else { continue }
                    let out = zp + c * m
                    let scale = gamma[c] * cache.inverseStd[c]
                    if cache.trainMode {
                        let meanDy = Float(sumDy / Double(m)), meanDyXhat = Float(sumDyXhat / Double(m))
                        for i in 0..<m { out[i] = scale * (g[i] - meanDy - xhat[i] * meanDyXhat) }
                    } else {
                        for i in 0..<m { out[i] = scale * g[i] }
                    }
                }
            }
        }}}}}
        let dInput = wantInputGradient ? FeatureBatch(channels: dy.channels, batch: dy.batch, height: dy.height, width: dy.width, data: dz) : nil
        return (dInput, dGamma, dBeta)
    }
}

// MARK: - Reductions for BatchNorm

/// Sums over a channel row of N*H*W values (up to millions): vectorised in Float over blocks of 512 values,
/// each block's total added in Double, so the rounding error grows with the block, not with the row.
enum Reduction {
    static let block = 512

    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        blocked(count) { start, end in
            var acc = SIMD8<Float>(), i = start
            while i + 8 <= end { acc += load(x + i); i += 8 }
            var total = acc.sum()
            while i < end { total += x[i]; i += 1 }
            return total
        }
    }

    static func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, count: Int, from mean: Float) -> Double {
        blocked(count) { start, end in
            let m = SIMD8<Float>(repeating: mean)
            var acc = SIMD8<Float>(), i = start
            while i + 8 <= end { let d = load(x + i) - m; acc += d * d; i += 8 }
            var total = acc.sum()
            while i < end { let d = x[i] - mean; total += d * d; i += 1 }
            return total
        }
    }

    static func sumOfProducts(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Double {
        blocked(count) { start, end in
            var acc = SIMD8<Float>(), i = start
            while i + 8 <= end { acc += load(a + i) * load(b + i); i += 8 }
            var total = acc.sum()
            while i < end { total += a[i] * b[i]; i += 1 }
            return total
        }
    }

    /// The dot product of two short rows (one feature-map row), in Float.
    @inline(__always)
    static func rowDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>(), i = 0
        while i + 8 <= count { acc += load(a + i) * load(b + i); i += 8 }
        var total = acc.sum()
        while i < count { total += a[i] * b[i]; i += 1 }
        return total
    }

    @inline(__always)
    static func blocked(_ count: Int, _ blockSum: (Int, Int) -> Float) -> Double {
        var total = 0.0
        for start in stride(from: 0, to: count, by: block) { total += Double(blockSum(start, min(count, start + block))) }
        return total
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
}

// MARK: - ReLU / ReLU6

public enum ActivationLayer {
    public static func forward(_ x: inout FeatureBatch, _ activation: Activation) {
        let (lower, upper): (Float, Float)
        switch activation {
        case .none: return
        case .relu: (lower, upper) = (0, .infinity)
        case .relu6: (lower, upper) = (0, 6)
        }
        x.data.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!, vectors = b.count / 8
            let lowerVector = SIMD8<Float>(repeating: lower), upperVector = SIMD8<Float>(repeating: upper)
            UnsafeMutableRawPointer(p).withMemoryRebound(to: SIMD8<Float>.self, capacity: vectors) { v in
                // (Not `clamped(lowerBound:upperBound:)`: the stdlib's generic pointwiseMin/Max is not specialised.)
                for i in 0..<vectors {
                    let x = v[i]
                    v[i] = x.replacing(with: lowerVector, where: x .< lowerVector).replacing(with: upperVector, where: x .> upperVector)
                }
            }
            for i in (8 * vectors)..<b.count { p[i] = min(max(p[i], lower), upper) }
        }
    }

    /// The gradient passes where the activation was not clamped. Decided from the output a = act(y):
    /// ReLU passes where a > 0 (y > 0); ReLU6 where 0 < a < 6 (PyTorch's hardtanh backward: min < y < max).
    public static func backward(_ dOut: inout FeatureBatch, output: FeatureBatch, _ activation: Activation) {
        let upper: Float
        switch activation {
        case .none: return
        case .relu: upper = .infinity
        case .relu6: upper = 6
        }
        dOut.data.withUnsafeMutableBufferPointer { g in output.data.withUnsafeBufferPointer { a in
            let (gp, ap, vectors) = (g.baseAddress!, a.baseAddress!, g.count / 8)
            let zero = SIMD8<Float>(), upperVector = SIMD8<Float>(repeating: upper)
            UnsafeMutableRawPointer(gp).withMemoryRebound(to: SIMD8<Float>.self, capacity: vectors) { gv in
                UnsafeRawPointer(ap).withMemoryRebound(to: SIMD8<Float>.self, capacity: vectors) { av in
                    for i in 0..<vectors {
                        let passes = (av[i] .> zero) .& (av[i] .< upperVector)
                        gv[i] = zero.replacing(with: gv[i], where: passes)
                    }
                }
            }
            for i in (8 * vectors)..<g.count where !(ap[i] > 0 && ap[i] < upper) { gp[i] = 0 }
        } }
    }
}

// MARK: - Nearest 2x upsample, channel concat

public enum Upsample2x {
    public static func forward(_ x: FeatureBatch, threads: Int) -> FeatureBatch {
        let (h, w) = (x.height, x.width)
        var out = FeatureBatch(zerosChannels: x.channels, batch: x.batch, height: 2 * h, width: 2 * w)
        x.data.withUnsafeBufferPointer { xb in out.data.withUnsafeMutableBufferPointer { ob in
            let (xp, op) = (xb.baseAddress!, ob.baseAddress!)
            parallelChunks(x.channels * x.batch, threads: threads) { planes in
                for planeIndex in planes {
                    let source = xp + planeIndex * h * w, target = op + planeIndex * 4 * h * w
                    for y in 0..<(2 * h) {
                        for xx in 0..<(2 * w) { target[y * 2 * w + xx] = source[(y / 2) * w + xx / 2] }
                    }
                }
            }
        } }
        return out
    }

    /// Each input pixel was copied to a 2x2 block: its gradient is the block's sum.
    public static func backward(_ dOut: FeatureBatch, threads: Int) -> FeatureBatch {
        let (h, w) = (dOut.height / 2, dOut.width / 2)
        var dx = FeatureBatch(zerosChannels: dOut.channels, batch: dOut.batch, height: h, width: w)
        dOut.data.withUnsafeBufferPointer { gb in dx.data.withUnsafeMutableBufferPointer { xb in
            let (gp, xp) = (gb.baseAddress!, xb.baseAddress!)
            parallelChunks(dOut.channels * dOut.batch, threads: threads) { planes in
                for planeIndex in planes {
                    let source = gp + planeIndex * 4 * h * w, target = xp + planeIndex * h * w
                    for y in 0..<h {
                        for xx in 0..<w {
                            let top = source + 2 * y * 2 * w + 2 * xx, bottom = top + 2 * w
                            target[y * w + xx] = (top[0] + top[1]) + (bottom[0] + bottom[1])
                        }
                    }
                }
            }
        } }
        return dx
    }
}

public enum Concat {
    /// [a, b] along channels: channel-major storage makes it an append.
    public static func forward(_ a: FeatureBatch, _ b: FeatureBatch) -> FeatureBatch {
        precondition(a.batch == b.batch && a.height == b.height && a.width == b.width, "concat: spatial shapes differ")
        return FeatureBatch(channels: a.channels + b.channels, batch: a.batch, height: a.height, width: a.width, data: a.data + b.data)
    }

    public static func backward(_ dOut: FeatureBatch, firstChannels: Int) -> (FeatureBatch, FeatureBatch) {
        let split = firstChannels * dOut.perChannel
        let first = FeatureBatch(channels: firstChannels, batch: dOut.batch, height: dOut.height, width: dOut.width,
                               data: Array(dOut.data[0..<split]))
        let second = FeatureBatch(channels: dOut.channels - firstChannels, batch: dOut.batch, height: dOut.height, width: dOut.width,
                                data: Array(dOut.data[split...]))
        return (first, second)
    }
}

// MARK: - Loss: binary cross-entropy with logits, mean over every pixel

public enum BCEWithLogits {
    /// loss = mean(max(x, 0) - x t + log(1 + exp(-|x|))), the numerically stable form (no overflow for large |x|).
    /// Gradient: (sigmoid(x) - t) / count.
    public static func lossAndGradient(logits: [Float], targets: [Float]) -> (loss: Double, gradient: [Float]) {
        precondition(logits.count == targets.count, "BCE: \(logits.count) logits, \(targets.count) targets")
        var total = 0.0
        var gradient = [Float](repeating: 0, count: logits.count)
        let scale = 1 / Double(logits.count)
        for i in 0..<logits.count {
            let x = Double(logits[i]), t = Double(targets[i])
            total += max(x, 0) - x * t + log1p(exp(-abs(x)))
            let sigmoid = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
            gradient[i] = Float((sigmoid - t) * scale)
        }
        return (total * scale, gradient)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
