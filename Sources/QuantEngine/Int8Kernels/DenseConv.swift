/// int8 dense convolution: conv 3x3 (stride 1 and 2) and pointwise 1x1, one microkernel for both.
///
/// Method (direct convolution, no im2col): the input is staged once as int16 (x - zero point) with a
/// zero border (`stageInt16`), so every tap of every output pixel is a plain pointer offset and padding
/// costs nothing. A tile computes 4 output pixels of one row x 16 output channels; its reduction runs
/// over the taps and the input channels. Weights are packed per 16-channel block so the tile streams
/// them linearly. Work items are (channel block, output row), block-major, so consecutive rows on one
/// thread reuse the same weight block from cache.
///
/// The reduction's inner step differs per architecture (both produce the same exact int32 sums, so
/// both agree bit for bit with `referenceQuantizedConv`):
///   - x86-64 (AVX2): weights packed [block][tap][channel pair][16 outputs][2]; each step broadcasts one
///     input channel pair (an Int32 = two Int16) and does `vpmaddwd` (int16 pairs multiplied and summed
///     into int32) against 16 int16 weights = 8 outputs x 2 channels. The Swift expression that LLVM turns
///     into `vpmaddwd` is `multiplyAddPairs` below (widen even and odd halves, multiply, add).
///   - arm64 (NEON): weights packed [block][tap][channel][16 outputs]; each step multiplies 16 widened
///     weights by one broadcast input value and accumulates (`smull`/`smlal` by element), no pairing.
/// Input channels are padded to an even count (zero values, zero weights) for the pairing.
public final class Int8DenseConv {
    public let kernel: Int
    public let stride: Int
    public let inChannels: Int
    public let outChannels: Int
    /// Input channels rounded up to even.
    let stagedChannels: Int
    let blocks: Int
    let taps: Int
    let weights: [Int16]
    let requant: PackedRequantization

    static let blockWidth = 16
    static let tilePixels = 4

    public init(_ p: QuantizedConvParameters) {
        precondition(p.kind == .dense, "Int8DenseConv: depthwise parameters")
        kernel = p.kernel; stride = p.stride; inChannels = p.inChannels; outChannels = p.outChannels
        stagedChannels = (p.inChannels + 1) & ~1
        blocks = (p.outChannels + Self.blockWidth - 1) / Self.blockWidth
        taps = p.kernel * p.kernel
        requant = PackedRequantization(p, paddedCount: blocks * Self.blockWidth)
        var packed = [Int16](repeating: 0, count: blocks * taps * stagedChannels * Self.blockWidth)
        let k = p.kernel, cin = p.inChannels
        for oc in 0..<p.outChannels {
            let block = oc / Self.blockWidth, lane = oc % Self.blockWidth
            for t in 0..<taps {
                for ic in 0..<cin {
                    let w = Int16(p.weights[(oc * cin + ic) * k * k + t])
                    let blockBase = (block * taps + t) * stagedChannels * Self.blockWidth
                    #if arch(arm64)
                    packed[blockBase + ic * Self.blockWidth + lane] = w
                    #else
                    packed[blockBase + (ic / 2) * 2 * Self.blockWidth + lane * 2 + (ic & 1)] = w
                    #endif
                }
            }
        }
        weights = packed
    }

    public var padding: Int { kernel / 2 }
    public func outputSize(_ n: Int) -> Int { (n + 2 * padding - kernel) / stride + 1 }

    /// Int16 scratch elements `run` needs for an input of this size.
    public func scratchCount(height: Int, width: Int) -> Int {
        (height + 2 * padding) * (width + 2 * padding) * stagedChannels
    }

    /// input: [height][width][inChannels] int8; output: [outH][outW][outChannels] int8.
    public func run(input: UnsafePointer<Int8>, height: Int, width: Int, output: UnsafeMutablePointer<Int8>,
                    scratch: UnsafeMutablePointer<Int16>, threads: Int, inputZeroPoint: Int32) {
        let pad = padding, cp = stagedChannels
        stageInt16(input, height: height, width: width, channels: inChannels, zeroPoint: inputZeroPoint,
                   pad: pad, paddedChannels: cp, into: scratch, threads: threads)
        let outH = outputSize(height), outW = outputSize(width)
        let paddedWidth = width + 2 * pad
        var tapOffsets = [Int](repeating: 0, count: taps)
        for ky in 0..<kernel { for kx in 0..<kernel { tapOffsets[ky * kernel + kx] = (ky * paddedWidth + kx) * cp } }
        let blockElements = taps * cp * Self.blockWidth
        let staged = UnsafePointer(scratch)
        let (blocks, stride, outChannels, taps) = (self.blocks, self.stride, self.outChannels, self.taps)
        weights.withUnsafeBufferPointer { weightBuffer in
        requant.bias.withUnsafeBufferPointer { bias in
        requant.multiplier.withUnsafeBufferPointer { multiplier in
        requant.leftShift.withUnsafeBufferPointer { leftShift in
        requant.rightShift.withUnsafeBufferPointer { rightShift in
        tapOffsets.withUnsafeBufferPointer { offsets in
            let zeroPoint = SIMD8<Int32>(repeating: requant.zeroPoint)
            let lo = SIMD8<Int32>(repeating: requant.lo), hi = SIMD8<Int32>(repeating: requant.hi)
            parallelChunks(blocks * outH, threads: threads) { items in
                for item in items {
                    let block = item / outH, oy = item % outH
                    let c0 = block * Self.blockWidth
                    let valid = min(Self.blockWidth, outChannels - c0)
                    let blockWeights = weightBuffer.baseAddress! + block * blockElements
                    let bias0 = load8(bias.baseAddress! + c0), bias1 = load8(bias.baseAddress! + c0 + 8)
                    let m0 = load8(multiplier.baseAddress! + c0), m1 = load8(multiplier.baseAddress! + c0 + 8)
                    let l0 = load8(leftShift.baseAddress! + c0), l1 = load8(leftShift.baseAddress! + c0 + 8)
                    let r0 = load8(rightShift.baseAddress! + c0), r1 = load8(rightShift.baseAddress! + c0 + 8)
                    let rowBase = staged + oy * stride * paddedWidth * cp
                    var x0 = 0
                    while x0 < outW {
                        // The last tile of a row repeats its final pixel instead of reading past the row.
                        let p0 = rowBase + min(x0, outW - 1) * stride * cp
                        let p1 = rowBase + min(x0 + 1, outW - 1) * stride * cp
                        let p2 = rowBase + min(x0 + 2, outW - 1) * stride * cp
                        let p3 = rowBase + min(x0 + 3, outW - 1) * stride * cp
                        var acc = Accumulators4x16(bias0, bias1)
                        accumulateTile(&acc, p0, p1, p2, p3, weights: blockWeights, tapOffsets: offsets.baseAddress!, taps: taps, channels: cp)
                        let pixels = min(Self.tilePixels, outW - x0)
                        let out = output + (oy * outW + x0) * outChannels + c0
                        @inline(__always) func emit(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ pixel: Int) {
                            let q0 = requantize(a, multiplier: m0, leftShift: l0, rightShift: r0, zeroPoint: zeroPoint, min: lo, max: hi)
                            let q1 = requantize(b, multiplier: m1, leftShift: l1, rightShift: r1, zeroPoint: zeroPoint, min: lo, max: hi)
                            let dst = out + pixel * outChannels
                            store(q0, to: dst, count: valid)
                            if valid > 8 { store(q1, to: dst + 8, count: valid - 8) }
                        }
                        emit(acc.a00, acc.a01, 0)
                        if pixels > 1 { emit(acc.a10, acc.a11, 1) }
                        if pixels > 2 { emit(acc.a20, acc.a21, 2) }
                        if pixels > 3 { emit(acc.a30, acc.a31, 3) }
                        x0 += Self.tilePixels
                    }
                }
            }
        }}}}}}
    }
}

/// The int32 accumulators of one 4-pixel x 16-channel tile (aPC: pixel P, channels 8C..8C+7).
struct Accumulators4x16 {
    var a00, a01, a10, a11, a20, a21, a30, a31: SIMD8<Int32>
    @inline(__always) init(_ b0: SIMD8<Int32>, _ b1: SIMD8<Int32>) {
        a00 = b0; a10 = b0; a20 = b0; a30 = b0
        a01 = b1; a11 = b1; a21 = b1; a31 = b1
    }
}

/// a[2i] * b[2i] + a[2i+1] * b[2i+1] in int32: written this way, LLVM emits one `vpmaddwd` on AVX2.
@inline(__always)
func multiplyAddPairs(_ a: SIMD16<Int16>, _ b: SIMD16<Int16>) -> SIMD8<Int32> {
    SIMD8<Int32>(truncatingIfNeeded: a.evenHalf) &* SIMD8<Int32>(truncatingIfNeeded: b.evenHalf)
        &+ SIMD8<Int32>(truncatingIfNeeded: a.oddHalf) &* SIMD8<Int32>(truncatingIfNeeded: b.oddHalf)
}

#if arch(arm64)
/// NEON: for each tap and input channel, 16 weights (two int16x8) times one broadcast input value per pixel.
@inline(__always)
func accumulateTile(_ acc: inout Accumulators4x16, _ p0: UnsafePointer<Int16>, _ p1: UnsafePointer<Int16>,
                    _ p2: UnsafePointer<Int16>, _ p3: UnsafePointer<Int16>, weights: UnsafePointer<Int16>,
                    tapOffsets: UnsafePointer<Int>, taps: Int, channels: Int) {
    var w = weights
    for t in 0..<taps {
        let o = tapOffsets[t]
        let q0 = p0 + o, q1 = p1 + o, q2 = p2 + o, q3 = p3 + o
        for c in 0..<channels {
            let wLow = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(w).loadUnaligned(as: SIMD8<Int16>.self))
            let wHigh = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(w + 8).loadUnaligned(as: SIMD8<Int16>.self))
            w += 16
            let x0 = SIMD8<Int32>(repeating: Int32(q0[c])), x1 = SIMD8<Int32>(repeating: Int32(q1[c]))
            let x2 = SIMD8<Int32>(repeating: Int32(q2[c])), x3 = SIMD8<Int32>(repeating: Int32(q3[c]))
            acc.a00 &+= wLow &* x0; acc.a01 &+= wHigh &* x0
            acc.a10 &+= wLow &* x1; acc.a11 &+= wHigh &* x1
            acc.a20 &+= wLow &* x2; acc.a21 &+= wHigh &* x2
            acc.a30 &+= wLow &* x3; acc.a31 &+= wHigh &* x3
        }
    }
}
#else
/// AVX2 (and the portable fallback): for each tap and input channel pair, 16 int16 weight pairs times one
/// broadcast int16 pair per pixel, `vpmaddwd` into 8 int32 lanes.
@inline(__always)
func accumulateTile(_ acc: inout Accumulators4x16, _ p0: UnsafePointer<Int16>, _ p1: UnsafePointer<Int16>,
                    _ p2: UnsafePointer<Int16>, _ p3: UnsafePointer<Int16>, weights: UnsafePointer<Int16>,
                    tapOffsets: UnsafePointer<Int>, taps: Int, channels: Int) {
    var w = UnsafeRawPointer(weights)
    let pairs = channels / 2
    for t in 0..<taps {
        let o = tapOffsets[t]
        let q0 = UnsafeRawPointer(p0 + o), q1 = UnsafeRawPointer(p1 + o), q2 = UnsafeRawPointer(p2 + o), q3 = UnsafeRawPointer(p3 + o)
        for pair in 0..<pairs {
            let w0 = w.loadUnaligned(as: SIMD16<Int16>.self)
            let w1 = w.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self)
            w += 64
            let offset = pair * 4
            let x0 = unsafeBitCast(SIMD8<Int32>(repeating: q0.loadUnaligned(fromByteOffset: offset, as: Int32.self)), to: SIMD16<Int16>.self)
            let x1 = unsafeBitCast(SIMD8<Int32>(repeating: q1.loadUnaligned(fromByteOffset: offset, as: Int32.self)), to: SIMD16<Int16>.self)
            let x2 = unsafeBitCast(SIMD8<Int32>(repeating: q2.loadUnaligned(fromByteOffset: offset, as: Int32.self)), to: SIMD16<Int16>.self)
            let x3 = unsafeBitCast(SIMD8<Int32>(repeating: q3.loadUnaligned(fromByteOffset: offset, as: Int32.self)), to: SIMD16<Int16>.self)
            acc.a00 &+= multiplyAddPairs(x0, w0); acc.a01 &+= multiplyAddPairs(x0, w1)
            acc.a10 &+= multiplyAddPairs(x1, w0); acc.a11 &+= multiplyAddPairs(x1, w1)
            acc.a20 &+= multiplyAddPairs(x2, w0); acc.a21 &+= multiplyAddPairs(x2, w1)
            acc.a30 &+= multiplyAddPairs(x3, w0); acc.a31 &+= multiplyAddPairs(x3, w1)
        }
    }
}
#endif
