/// Fixed-point requantization on eight int32 lanes: the SIMD form of the scalar reference in
/// Sources/QuantEngine/Int8Kernels/FixedPoint.swift (which states the rounding), bit for bit
/// (Tests/QuantEngineTests/FixedPointTests.swift), plus the row epilogue every int8 convolution ends with.
///
/// Compiled once per instruction set with the microkernels (see Int16DotTiles.swift): nothing here may
/// name its module, and everything a kernel calls is inlined into it.

// MARK: - SIMD8 versions (must match the scalar reference bit for bit)

// Written with integer arithmetic only, no lane masks (`.<`, `replacing(with:where:)`) and no lane-by-lane
// rebuilding: those compiled to per-lane extracts, tests and inserts in the kernels' epilogue, which then
// took a quarter of the int8 network's time (perf, AVX2 and AVX-512 builds alike).

/// All ones in the lanes where `x` is 0, zero elsewhere: x | -x has its sign bit set exactly when x != 0.
@usableFromInline @inline(__always)
func isZeroBits(_ x: SIMD8<Int32>) -> SIMD8<Int32> {
    ~((x | (0 &- x)) &>> 31)
}

@inlinable @inline(__always)
public func saturatingRoundingDoublingHighMul(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> {
    // The equivalent floor form (see the file comment): one add and one shift per lane. Viewed as 4 x int64,
    // the even lanes are the sign-extended low halves and the odd lanes the high halves; the multiplies are
    // then 32 x 32 -> 64 (`vpmuldq` on AVX2). Bits 31...62 of the nudged product are the result: shifted
    // down into the low half for the even lanes and up into the high half for the odd lanes, then merged.
    let a64 = unsafeBitCast(a, to: SIMD4<Int64>.self), b64 = unsafeBitCast(b, to: SIMD4<Int64>.self)
    let nudge = SIMD4<Int64>(repeating: 1 << 30)
    let even = ((a64 &<< 32) &>> 32) &* ((b64 &<< 32) &>> 32) &+ nudge
    let odd = (a64 &>> 32) &* (b64 &>> 32) &+ nudge
    let lowHalves = SIMD4<Int64>(repeating: 0xFFFF_FFFF)
    let merged = ((even &>> 31) & lowHalves) | ((odd &<< 1) & ~lowHalves)
    // The one overflow, INT32_MIN * INT32_MIN, gives INT32_MIN here; flipping every bit makes it INT32_MAX.
    let overflow = isZeroBits(a ^ SIMD8<Int32>(repeating: .min)) & isZeroBits(b ^ SIMD8<Int32>(repeating: .min))
    return unsafeBitCast(merged, to: SIMD8<Int32>.self) ^ overflow
}

@inlinable @inline(__always)
public func roundingDivideByPOT(_ x: SIMD8<Int32>, _ exponent: SIMD8<Int32>) -> SIMD8<Int32> {
    let one = SIMD8<Int32>(repeating: 1)
    let mask = (one &<< exponent) &- one
    let remainder = x & mask
    // x >> 31 is -1 for negative x, 0 otherwise: subtracting it adds the 1 of the scalar form.
    let threshold = (mask &>> 1) &- (x &>> 31)
    // Both are in [0, 2^31), so threshold - remainder cannot wrap and is negative exactly when
    // remainder > threshold; its sign, as 0 or -1, is the rounding step with the sign flipped.
    return (x &>> exponent) &- ((threshold &- remainder) &>> 31)
}

@inlinable @inline(__always)
public func saturatingLeftShift(_ x: SIMD8<Int32>, _ shift: SIMD8<Int32>) -> SIMD8<Int32> {
    let high = SIMD8<Int32>(repeating: .max) &>> shift, low = SIMD8<Int32>(repeating: .min) &>> shift
    var result = x &<< shift
    result.replace(with: .max, where: x .> high)
    result.replace(with: .min, where: x .< low)
    return result
}

/// Per-lane multipliers; `leftShift` = max(shift, 0), `rightShift` = max(-shift, 0), precomputed.
@inlinable @inline(__always)
public func multiplyByQuantizedMultiplier(_ x: SIMD8<Int32>, multiplier: SIMD8<Int32>, leftShift: SIMD8<Int32>, rightShift: SIMD8<Int32>) -> SIMD8<Int32> {
    roundingDivideByPOT(saturatingRoundingDoublingHighMul(saturatingLeftShift(x, leftShift), multiplier), rightShift)
}

/// Eight lanes of `requantize(_:multiplier:shift:zeroPoint:min:max:)`.
@inlinable @inline(__always)
public func requantize(_ accumulator: SIMD8<Int32>, multiplier: SIMD8<Int32>, leftShift: SIMD8<Int32>, rightShift: SIMD8<Int32>,
                       zeroPoint: SIMD8<Int32>, min lo: SIMD8<Int32>, max hi: SIMD8<Int32>) -> SIMD8<Int8> {
    requantize(saturatingLeftShift(accumulator, leftShift), multiplier: multiplier, rightShift: rightShift, zeroPoint: zeroPoint, min: lo, max: hi)
}

/// The same for multipliers with no left shift (every shift <= 0, i.e. real multipliers < 1, the usual
/// case): skipping a shift by 0 changes nothing, so kernels whose channels all qualify use this one.
///
/// `@_transparent` (always inlined, by the compiler's mandatory pass): with `@inline(__always)` alone the
/// optimizer left it an out-of-line call per 8 outputs in every kernel epilogue (seen with callgrind:
/// 125 M instructions per 3 frames), rebuilding its constants on each call.
@_transparent
public func requantize(_ accumulator: SIMD8<Int32>, multiplier: SIMD8<Int32>, rightShift: SIMD8<Int32>,
                       zeroPoint: SIMD8<Int32>, min lo: SIMD8<Int32>, max hi: SIMD8<Int32>) -> SIMD8<Int8> {
    let scaled = roundingDivideByPOT(saturatingRoundingDoublingHighMul(accumulator, multiplier), rightShift)
    // As in the scalar version: keep 256 away from the int32 limits so adding the zero point cannot wrap.
    let guarded = clampLanes(scaled, SIMD8<Int32>(repeating: Int32.min + 256), SIMD8<Int32>(repeating: Int32.max - 256))
    return narrowToInt8(clampToInt8Bounds(guarded &+ zeroPoint, lo, hi))
}

/// min(max(x, lo), hi) per lane, for int8 bounds lo and hi and x at least 128 inside the int32 limits
/// (so x - lo and x - hi cannot wrap). Written as x - min(x - lo, 0) and x - max(x - hi, 0), with
/// min(d, 0) = d & (d >> 31): with lane masks instead, LLVM pushed the narrowing to int8 that follows
/// through the selects and rebuilt the result lane by lane (extracts, tests, inserts) in every epilogue.
@usableFromInline @inline(__always)
func clampToInt8Bounds(_ x: SIMD8<Int32>, _ lo: SIMD8<Int32>, _ hi: SIMD8<Int32>) -> SIMD8<Int32> {
    let belowLow = x &- lo
    let atLeastLow = x &- (belowLow & (belowLow &>> 31))
    let aboveHigh = atLeastLow &- hi
    return atLeastLow &- (aboveHigh & ~(aboveHigh &>> 31))
}

/// min(max(x, lo), hi) per lane. Written with compares and blends: the standard library's
/// `clamped(lowerBound:upperBound:)` reached the hot loop as an out-of-line call to a generic
/// `pointwiseMax`/`pointwiseMin` specialisation (seen in the assembly).
@usableFromInline @inline(__always)
func clampLanes(_ x: SIMD8<Int32>, _ lo: SIMD8<Int32>, _ hi: SIMD8<Int32>) -> SIMD8<Int32> {
    let low = x.replacing(with: lo, where: x .< lo)
    return low.replacing(with: hi, where: low .> hi)
}

/// Loads eight Int32 from a (possibly unaligned) pointer.
@inlinable @inline(__always)
public func load8(_ p: UnsafePointer<Int32>) -> SIMD8<Int32> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Int32>.self) }

/// Stores the first `count` lanes of `v` (all eight with one store when count >= 8).
@inlinable @inline(__always)
public func store(_ v: SIMD8<Int8>, to p: UnsafeMutablePointer<Int8>, count: Int) {
    if count >= 8 {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Int8>.self)
    } else {
        for i in 0..<count { p[i] = v[i] }
    }
}

/// The epilogue of every int8 convolution: one row x 16 outputs of int32 sums (`sums[x * 16 + lane]`) plus
/// the bias, requantized, clamped and stored as int8 NHWC (`output + x * pixelStride`, the first `valid`
/// channels). The per-channel arrays start at this row's first channel; `needsLeftShift` is false when every
/// channel's multiplier is below 1 (the usual case), so the left shift is skipped.
///
/// Deliberately not inlined into the convolutions: their closures are already so large after the microkernel
/// is inlined that the optimizer stops inlining into them, and `requantize` would stay an out-of-line call
/// per 8 outputs with its constants rebuilt each time. Here it inlines and its constants stay in registers.
@inline(never)
public func requantizeRow(_ sums: UnsafePointer<Int32>, pixels: Int, valid: Int, output: UnsafeMutablePointer<Int8>, pixelStride: Int,
                          bias: UnsafePointer<Int32>, multiplier: UnsafePointer<Int32>, leftShift: UnsafePointer<Int32>,
                          rightShift: UnsafePointer<Int32>, needsLeftShift: Bool, zeroPoint: Int32, min: Int32, max: Int32) {
    let b0 = load8(bias), b1 = load8(bias + 8)
    let m0 = load8(multiplier), m1 = load8(multiplier + 8)
    let r0 = load8(rightShift), r1 = load8(rightShift + 8)
    let l0 = load8(leftShift), l1 = load8(leftShift + 8)
    let zp = SIMD8<Int32>(repeating: zeroPoint), lo = SIMD8<Int32>(repeating: min), hi = SIMD8<Int32>(repeating: max)
    for x in 0..<pixels {
        var a0 = load8(sums + x * 16) &+ b0, a1 = load8(sums + x * 16 + 8) &+ b1
        if needsLeftShift { a0 = saturatingLeftShift(a0, l0); a1 = saturatingLeftShift(a1, l1) }
        let out = output + x * pixelStride
        store(requantize(a0, multiplier: m0, rightShift: r0, zeroPoint: zp, min: lo, max: hi), to: out, count: valid)
        if valid > 8 { store(requantize(a1, multiplier: m1, rightShift: r1, zeroPoint: zp, min: lo, max: hi), to: out + 8, count: valid - 8) }
    }
}
