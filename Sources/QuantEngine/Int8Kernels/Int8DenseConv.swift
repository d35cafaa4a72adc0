/// int8 dense convolution: conv 3x3 (stride 1 and 2) and pointwise 1x1, one microkernel for both.
///
/// Method (direct convolution, no im2col): the input is staged once as int16 (x - zero point) with a
/// zero border and channels padded to a multiple of 16 (`stageInt16`), so every tap of every output
/// pixel is a pointer offset and padding costs nothing; the taps of one kernel row are even adjacent in
/// memory, so the reduction dimension K = taps x channels is k runs of k x channels values, walked 16
/// at a time: one vector of 16 int16 inputs (one pixel) against one vector of 16 int16
/// weights (one output channel), accumulated in 8 int32 lanes, reduced horizontally once at the end.
///
/// Microkernel tile: `microkernelPixels` output pixels (of one row; 2 on AVX2, 3 on NEON and VNNI, see
/// there) x 4 output channels, one accumulator per pixel and output. Weights are packed
/// [group of 4 outputs][tap][16-channel chunk][4 outputs][16], so a tile streams them linearly.
/// Work items are (16-output chunk, output row), chunk-major, so consecutive items reuse one chunk's
/// weights from cache; each item writes int32 sums for its row x 16 outputs to a small stack buffer
/// and requantizes them with the shared SIMD epilogue.
///
/// A convolution whose whole receptive field fits one 16-lane vector (taps x input channels <= 16: the
/// first layer, 3x3 taps of a gray frame) is staged differently, as patches: one vector per output pixel
/// holding its taps (im2col), and then runs as a 1x1 convolution. Staged the usual way, each of its 9 taps
/// would be a vector of 1 value and 15 zeros; int8 spent 6x the float kernel's time on that one layer.
///
/// The multiply-accumulate step is written per architecture (`multiplyAccumulate`); both give the same
/// exact int32 sums, so both agree bit for bit with `referenceQuantizedConv`:
///   - x86-64 (AVX2): pairs of int16 products summed into int32 = one `vpmaddwd`.
///   - arm64 (NEON): widening multiply-accumulate of the low and high halves = `smlal` + `smlal2`.
public final class Int8DenseConv {
    public let kernel: Int
    public let stride: Int
    public let inChannels: Int
    public let outChannels: Int
    /// The input staged as patches (see above) and run as a 1x1 convolution over them.
    public let stagesPatches: Bool
    /// Values per staged pixel, a multiple of 16: input channels rounded up, or one patch (16).
    let stagedChannels: Int
    /// Output channels rounded up to a multiple of 4 (the tile width).
    let groupedOutputs: Int
    let taps: Int
    /// Packed weights: int8 on x86-64 (sign-extended to int16 as they are loaded, `vpmovsxbw` from memory:
    /// no extra instruction and half the cache traffic of an int16 copy); int16 on arm64, where LLVM
    /// turned int8 loads into 4-byte loads + `sshll` but loads int16 as plain `ldp q` pairs.
    let weights: [PackedWeight]
    let requant: PackedRequantization

    static let tileOutputs = 4
    static let chunkOutputs = 16

    public init(_ p: QuantizedConvParameters) {
        precondition(p.kind == .dense, "Int8DenseConv: \(p.kind) parameters")
        kernel = p.kernel; stride = p.stride; inChannels = p.inChannels; outChannels = p.outChannels
        taps = p.kernel * p.kernel
        stagesPatches = p.kernel > 1 && taps * p.inChannels <= 16
        stagedChannels = stagesPatches ? 16 : (p.inChannels + 15) & ~15
        groupedOutputs = (p.outChannels + 3) & ~3
        requant = PackedRequantization(p, paddedCount: (p.outChannels + 15) & ~15)
        // Patches run as a 1x1 convolution: one tap, whose channel t * inChannels + ic is tap t's channel ic.
        let cp = stagedChannels, packedTaps = stagesPatches ? 1 : taps
        var packed = [PackedWeight](repeating: 0, count: groupedOutputs * packedTaps * cp)
        for oc in 0..<p.outChannels {
            let group = oc / 4, lane = oc % 4
            for t in 0..<taps {
                for ic in 0..<p.inChannels {
                    let (tap, channel) = stagesPatches ? (0, t * p.inChannels + ic) : (t, ic)
                    let index = (((group * packedTaps + tap) * (cp / 16) + channel / 16) * 4 + lane) * 16 + channel % 16
                    packed[index] = PackedWeight(p.weights[(oc * p.inChannels + ic) * taps + t])
                }
            }
        }
        weights = packed
    }

    public var padding: Int { kernel / 2 }
    public func outputSize(_ n: Int) -> Int { (n + 2 * padding - kernel) / stride + 1 }

    /// Int16 scratch elements `run` needs for an input of this size.
    public func scratchCount(height: Int, width: Int) -> Int {
        stagesPatches ? outputSize(height) * outputSize(width) * stagedChannels
                      : (height + 2 * padding) * (width + 2 * padding) * stagedChannels
    }

    /// input: [height][width][inChannels] int8; output: [outH][outW][outChannels] int8.
    ///
    /// - Parameters:
    ///   - outputRowStride: elements from one output row to the next (default outW x outChannels); the
    ///     transposed conv writes every other row of a twice-as-tall image with it.
    ///   - inputIsStaged: the scratch already holds this input staged by an earlier call (same input, same
    ///     zero point, a conv with the same kernel and input channels), so staging is skipped.
    public func run(input: UnsafePointer<Int8>, height: Int, width: Int, output: UnsafeMutablePointer<Int8>,
                    scratch: UnsafeMutablePointer<Int16>, threads: Int, inputZeroPoint: Int32,
                    outputRowStride: Int? = nil, inputIsStaged: Bool = false) {
        let cp = stagedChannels
        let outH = outputSize(height), outW = outputSize(width)
        // The staged image the loop below walks: kernel, stride and width of the convolution it runs.
        let (kernel, stride, paddedWidth): (Int, Int, Int)
        if stagesPatches {
            precondition(!inputIsStaged, "Int8DenseConv: a patch-staged convolution stages its own input")
            stagePatches(input, height: height, width: width, zeroPoint: inputZeroPoint, into: scratch, threads: threads)
            (kernel, stride, paddedWidth) = (1, 1, outW)
        } else {
            if !inputIsStaged {
                stageInt16(input, height: height, width: width, channels: inChannels, zeroPoint: inputZeroPoint,
                           pad: padding, paddedChannels: cp, into: scratch, threads: threads)
            }
            (kernel, stride, paddedWidth) = (self.kernel, self.stride, width + 2 * padding)
        }
        let outputRowStride = outputRowStride ?? outW * outChannels
        // In the padded NHWC staging, the k taps of one kernel row (kx = 0..k-1) are adjacent: k * cp int16
        // in a row, and the packed weights follow the same (ky, kx, channel) order. So the reduction is k
        // contiguous segments of k * cp values each, not k * k short ones.
        let rowOffsets = (0..<kernel).map { ky in ky * paddedWidth * cp }
        let chunksPerRow = kernel * cp / 16
        let groupElements = kernel * kernel * cp * 4
        let staged = UnsafePointer(scratch)
        let chunks = (outChannels + Self.chunkOutputs - 1) / Self.chunkOutputs
        let (outChannels, groupedOutputs) = (self.outChannels, self.groupedOutputs)
        let requant = self.requant  // a local copy: the hot loop reads it without touching `self`
        weights.withUnsafeBufferPointer { weightBuffer in
        requant.withPointers { requant in
        rowOffsets.withUnsafeBufferPointer { offsets in
            parallelChunks(chunks * outH, threads: threads) { items in
                // int32 sums of one row x 16 outputs, requantized when the row chunk is done.
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: outW * Self.chunkOutputs) { sums in
                    let sums = sums.baseAddress!
                    for item in items {
                        let chunk = item / outH, oy = item % outH
                        let c0 = chunk * Self.chunkOutputs
                        let rowBase = staged + oy * stride * paddedWidth * cp
                        var group = c0 / 4
                        while group * 4 < min(c0 + Self.chunkOutputs, groupedOutputs) {
                            let groupWeights = weightBuffer.baseAddress! + group * groupElements
                            let lane = group * 4 - c0
                            var x0 = 0
                            while x0 < outW {
                                // The last tile of a row repeats its final pixel instead of reading past the row.
                                let p0 = rowBase + min(x0, outW - 1) * stride * cp
                                let p1 = rowBase + min(x0 + 1, outW - 1) * stride * cp
                                let p2 = rowBase + min(x0 + 2, outW - 1) * stride * cp
                                let s = dotTile(p0, p1, p2, weights: groupWeights, segmentOffsets: offsets.baseAddress!, segments: kernel, chunks: chunksPerRow)
                                UnsafeMutableRawPointer(sums + x0 * 16 + lane).storeBytes(of: s.0, as: SIMD4<Int32>.self)
                                if x0 + 1 < outW { UnsafeMutableRawPointer(sums + (x0 + 1) * 16 + lane).storeBytes(of: s.1, as: SIMD4<Int32>.self) }
                                if microkernelPixels > 2 && x0 + 2 < outW { UnsafeMutableRawPointer(sums + (x0 + 2) * 16 + lane).storeBytes(of: s.2, as: SIMD4<Int32>.self) }
                                x0 += microkernelPixels
                            }
                            group += 1
                        }
                        // Epilogue: bias, requantize, clamp, store the valid channels.
                        requantizeRow(sums, pixels: outW, channel: c0, valid: min(Self.chunkOutputs, outChannels - c0),
                                      output: output + oy * outputRowStride + c0, pixelStride: outChannels, requant)
                    }
                }
            }
        }}}
    }
}

extension Int8DenseConv {
    /// Stages the input as patches: for output pixel (oy, ox), the 16 int16 at `(oy * outW + ox) * 16` are
    /// x - zero point of its taps in (ky, kx, channel) order, 0 for taps in the zero border and past the last.
    func stagePatches(_ input: UnsafePointer<Int8>, height: Int, width: Int, zeroPoint: Int32,
                      into staged: UnsafeMutablePointer<Int16>, threads: Int) {
        let outH = outputSize(height), outW = outputSize(width)
        let (kernel, stride, pad, channels) = (self.kernel, self.stride, padding, inChannels)
        parallelChunks(outH, threads: threads) { rows in
            for oy in rows {
                for ox in 0..<outW {
                    // Zero the patch, then write its taps in place (a SIMD16 built lane by lane with variable
                    // indices went through the stack and made this loop most of the layer's time).
                    let patch = staged + (oy * outW + ox) * 16
                    UnsafeMutableRawPointer(patch).storeBytes(of: SIMD16<Int16>(), as: SIMD16<Int16>.self)
                    // Wrapping arithmetic: the indices are bounded by the frame, and checked adds cost as much as the copy.
                    for ky in 0..<kernel {
                        let y = oy &* stride &+ ky &- pad
                        guard y >= 0 && y < height else { continue }
                        let row = input + y &* width &* channels
                        for kx in 0..<kernel {
                            let x = ox &* stride &+ kx &- pad
                            guard x >= 0 && x < width else { continue }
                            let source = row + x &* channels, target = patch + (ky &* kernel &+ kx) &* channels
                            for c in 0..<channels { target[c] = Int16(truncatingIfNeeded: Int32(source[c]) &- zeroPoint) }
                        }
                    }
                }
            }
        }
    }
}

/// Requantizes one row x 16 outputs of int32 sums (`sums[x * 16 + lane]`) into int8 NHWC.
///
/// Deliberately not inlined into the conv: the conv's closure is already so large after the microkernel is
/// inlined that the optimizer stops inlining into it, and `requantize` would stay an out-of-line call per
/// 8 outputs with its constants rebuilt each time. Here it inlines and its constants stay in registers.
@inline(never)
func requantizeRow(_ sums: UnsafePointer<Int32>, pixels: Int, channel c0: Int, valid: Int, output: UnsafeMutablePointer<Int8>, pixelStride: Int,
                   _ r: RequantizationPointers) {
    let b0 = load8(r.bias + c0), b1 = load8(r.bias + c0 + 8)
    let m0 = load8(r.multiplier + c0), m1 = load8(r.multiplier + c0 + 8)
    let r0 = load8(r.rightShift + c0), r1 = load8(r.rightShift + c0 + 8)
    let l0 = load8(r.leftShift + c0), l1 = load8(r.leftShift + c0 + 8)
    let (needsLeftShift, zeroPoint, lo, hi) = (r.needsLeftShift, r.zeroPoint, r.lo, r.hi)
    for x in 0..<pixels {
        var a0 = load8(sums + x * 16) &+ b0, a1 = load8(sums + x * 16 + 8) &+ b1
        if needsLeftShift { a0 = saturatingLeftShift(a0, l0); a1 = saturatingLeftShift(a1, l1) }
        let out = output + x * pixelStride
        store(requantize(a0, multiplier: m0, rightShift: r0, zeroPoint: zeroPoint, min: lo, max: hi), to: out, count: valid)
        if valid > 8 { store(requantize(a1, multiplier: m1, rightShift: r1, zeroPoint: zeroPoint, min: lo, max: hi), to: out + 8, count: valid - 8) }
    }
}

#if arch(arm64)
/// acc + the 16 products a[i] * w[i], folded into 8 lanes: NEON `smlal` (low halves) + `smlal2` (high halves).
@inline(__always)
func multiplyAccumulate(_ acc: SIMD8<Int32>, _ a: SIMD16<Int16>, _ w: SIMD16<Int16>) -> SIMD8<Int32> {
    acc &+ SIMD8<Int32>(truncatingIfNeeded: a.lowHalf) &* SIMD8<Int32>(truncatingIfNeeded: w.lowHalf)
        &+ SIMD8<Int32>(truncatingIfNeeded: a.highHalf) &* SIMD8<Int32>(truncatingIfNeeded: w.highHalf)
}
#else
/// acc + the 16 products a[i] * w[i], folded into 8 lanes as adjacent pairs: AVX2 `vpmaddwd` + `vpaddd`.
///
/// The shape matters (checked in the assembly, docs/QUANTIZATION.md): LLVM matches `vpmaddwd` when it
/// sees "multiply two sign-extended 16 x int16 vectors, add the even and odd lanes of the product".
/// Splitting the inputs into even/odd halves first (the textbook form) stops matching as soon as one
/// input vector feeds several multiplies (a register-blocked tile), and
/// `SIMD16<Int32>(truncatingIfNeeded:)` from SIMD16<Int16> is not inlined; `widen` below is both.
@inline(__always)
func multiplyAccumulate(_ acc: SIMD8<Int32>, _ a: SIMD16<Int16>, _ w: SIMD16<Int16>) -> SIMD8<Int32> {
    let products = widen(a) &* widen(w)
    return acc &+ (products.evenHalf &+ products.oddHalf)
}

/// Sign-extends 16 int16 lanes to int32, lane by lane (LLVM turns this into one `vpmovsxwd` per half,
/// or folds it into `vpmaddwd`).
@inline(__always)
func widen(_ a: SIMD16<Int16>) -> SIMD16<Int32> {
    SIMD16<Int32>(Int32(a[0]), Int32(a[1]), Int32(a[2]), Int32(a[3]), Int32(a[4]), Int32(a[5]), Int32(a[6]), Int32(a[7]),
                  Int32(a[8]), Int32(a[9]), Int32(a[10]), Int32(a[11]), Int32(a[12]), Int32(a[13]), Int32(a[14]), Int32(a[15]))
}
#endif

/// [sum of a's lanes, sum of b's, sum of c's, sum of d's].
@inline(__always)
func horizontalSums(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>, _ d: SIMD8<Int32>) -> SIMD4<Int32> {
    let ab = SIMD8<Int32>(lowHalf: a.lowHalf &+ a.highHalf, highHalf: b.lowHalf &+ b.highHalf)
    let cd = SIMD8<Int32>(lowHalf: c.lowHalf &+ c.highHalf, highHalf: d.lowHalf &+ d.highHalf)
    let pairs = SIMD8<Int32>(lowHalf: ab.evenHalf &+ ab.oddHalf, highHalf: cd.evenHalf &+ cd.oddHalf)
    return pairs.evenHalf &+ pairs.oddHalf
}

@inline(__always)
func load16(_ p: UnsafePointer<Int16>) -> SIMD16<Int16> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Int16>.self) }

#if arch(arm64)
typealias PackedWeight = Int16
#else
typealias PackedWeight = Int8
#endif

/// A packed weight type the microkernel reads 16 at a time as int16: int8 (the direct kernel on x86-64)
/// or int16 (the direct kernel on arm64, and the Winograd kernel's transformed weights everywhere).
protocol MicrokernelWeight {
    static func load16(_ p: UnsafePointer<Self>) -> SIMD16<Int16>
}

extension Int8: MicrokernelWeight {
    /// 16 int8 weights sign-extended to int16, lane by lane (one `vpmovsxbw` from memory on AVX2).
    @inline(__always)
    static func load16(_ p: UnsafePointer<Int8>) -> SIMD16<Int16> {
        widenToInt16(UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Int8>.self))
    }
}

extension Int16: MicrokernelWeight {
    /// 16 int16 weights (one `ldp q, q` on arm64, one `vmovdqu` on AVX2).
    @inline(__always)
    static func load16(_ p: UnsafePointer<Int16>) -> SIMD16<Int16> { QuantEngine.load16(p) }
}

/// Pixels per microkernel call: 3 (`dotTile3x4`) where the registers allow it, 2 (`dotTile2x4`) on
/// x86-64 without VNNI. The 3 x 4 tile needs its 12 accumulators, 3 inputs and a weight in registers; AVX2's
/// `vpmaddwd` also needs a register for its product before the add, the 17th of 16, so LLVM kept one
/// accumulator on the stack and every step waited on a store and reload (perf: the hottest instruction of
/// the int8 engine). VNNI's `vpdpwssd` adds in place and NEON has 32 registers, so both keep 3 x 4.
#if arch(x86_64) && !SONOQUANT_VNNI
let microkernelPixels = 2
#else
let microkernelPixels = 3
#endif

/// The microkernel for this target: dot products of `microkernelPixels` pixels (p0, p1 and, for 3, p2)
/// x 4 output channels; the third result is zero when the tile has 2 pixels.
@inline(__always)
func dotTile<Weight: MicrokernelWeight>(
    _ p0: UnsafePointer<Int16>, _ p1: UnsafePointer<Int16>, _ p2: UnsafePointer<Int16>, weights: UnsafePointer<Weight>,
    segmentOffsets: UnsafePointer<Int>, segments: Int, chunks: Int
) -> (SIMD4<Int32>, SIMD4<Int32>, SIMD4<Int32>) {
    #if arch(x86_64) && !SONOQUANT_VNNI
    let s = dotTile2x4(p0, p1, weights: weights, segmentOffsets: segmentOffsets, segments: segments, chunks: chunks)
    return (s.0, s.1, SIMD4<Int32>())
    #else
    return dotTile3x4(p0, p1, p2, weights: weights, segmentOffsets: segmentOffsets, segments: segments, chunks: chunks)
    #endif
}

/// 2 pixels x 4 output channels: 8 accumulators, 2 inputs, a weight and the product fit 16 registers.
@inline(__always)
func dotTile2x4<Weight: MicrokernelWeight>(
    _ p0: UnsafePointer<Int16>, _ p1: UnsafePointer<Int16>, weights: UnsafePointer<Weight>,
    segmentOffsets: UnsafePointer<Int>, segments: Int, chunks: Int
) -> (SIMD4<Int32>, SIMD4<Int32>) {
    var a00 = SIMD8<Int32>(), a01 = SIMD8<Int32>(), a02 = SIMD8<Int32>(), a03 = SIMD8<Int32>()
    var a10 = SIMD8<Int32>(), a11 = SIMD8<Int32>(), a12 = SIMD8<Int32>(), a13 = SIMD8<Int32>()
    var w = weights
    for segment in 0..<segments {
        let o = segmentOffsets[segment]
        var q0 = p0 + o, q1 = p1 + o
        for _ in 0..<chunks {
            let x0 = load16(q0), x1 = load16(q1)
            q0 += 16; q1 += 16
            let w0 = Weight.load16(w)
            a00 = multiplyAccumulate(a00, x0, w0); a10 = multiplyAccumulate(a10, x1, w0)
            let w1 = Weight.load16(w + 16)
            a01 = multiplyAccumulate(a01, x0, w1); a11 = multiplyAccumulate(a11, x1, w1)
            let w2 = Weight.load16(w + 32)
            a02 = multiplyAccumulate(a02, x0, w2); a12 = multiplyAccumulate(a12, x1, w2)
            let w3 = Weight.load16(w + 48)
            a03 = multiplyAccumulate(a03, x0, w3); a13 = multiplyAccumulate(a13, x1, w3)
            w += 64
        }
    }
    return (horizontalSums(a00, a01, a02, a03), horizontalSums(a10, a11, a12, a13))
}

/// The microkernel: int32 dot products of 3 pixels x 4 output channels over `segments` contiguous runs
/// of `chunks` x 16 values (one run per kernel row). Generic over the weight type, specialised at each
/// call site (both are in this module, and the function is inlined into them).
@inline(__always)
func dotTile3x4<Weight: MicrokernelWeight>(
    _ p0: UnsafePointer<Int16>, _ p1: UnsafePointer<Int16>, _ p2: UnsafePointer<Int16>, weights: UnsafePointer<Weight>,
    segmentOffsets: UnsafePointer<Int>, segments: Int, chunks: Int
) -> (SIMD4<Int32>, SIMD4<Int32>, SIMD4<Int32>) {
    var a00 = SIMD8<Int32>(), a01 = SIMD8<Int32>(), a02 = SIMD8<Int32>(), a03 = SIMD8<Int32>()
    var a10 = SIMD8<Int32>(), a11 = SIMD8<Int32>(), a12 = SIMD8<Int32>(), a13 = SIMD8<Int32>()
    var a20 = SIMD8<Int32>(), a21 = SIMD8<Int32>(), a22 = SIMD8<Int32>(), a23 = SIMD8<Int32>()
    var w = weights
    for segment in 0..<segments {
        let o = segmentOffsets[segment]
        var q0 = p0 + o, q1 = p1 + o, q2 = p2 + o
        for _ in 0..<chunks {
            let x0 = load16(q0), x1 = load16(q1), x2 = load16(q2)
            q0 += 16; q1 += 16; q2 += 16
            let w0 = Weight.load16(w)
            a00 = multiplyAccumulate(a00, x0, w0); a10 = multiplyAccumulate(a10, x1, w0); a20 = multiplyAccumulate(a20, x2, w0)
            let w1 = Weight.load16(w + 16)
            a01 = multiplyAccumulate(a01, x0, w1); a11 = multiplyAccumulate(a11, x1, w1); a21 = multiplyAccumulate(a21, x2, w1)
            let w2 = Weight.load16(w + 32)
            a02 = multiplyAccumulate(a02, x0, w2); a12 = multiplyAccumulate(a12, x1, w2); a22 = multiplyAccumulate(a22, x2, w2)
            let w3 = Weight.load16(w + 48)
            a03 = multiplyAccumulate(a03, x0, w3); a13 = multiplyAccumulate(a13, x1, w3); a23 = multiplyAccumulate(a23, x2, w3)
            w += 64
        }
    }
    return (horizontalSums(a00, a01, a02, a03), horizontalSums(a10, a11, a12, a13), horizontalSums(a20, a21, a22, a23))
}
