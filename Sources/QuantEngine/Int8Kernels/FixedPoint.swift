/// Fixed-point requantization, exactly as TFLite's reference kernels and gemmlowp define it.
///
/// An int8 kernel accumulates in int32; the result must be scaled by a real number M (for a conv,
/// M = s_in * s_w[c] / s_out) and rounded back to int8. M is stored as a Q31 integer `multiplier` in
/// [2^30, 2^31) and a power-of-two `shift`: M = multiplier * 2^-31 * 2^shift. Applying it:
///
///     x' = saturatingLeftShift(x, max(shift, 0))
///     y  = roundingDivideByPOT(saturatingRoundingDoublingHighMul(x', multiplier), max(-shift, 0))
///
/// Rounding, stated once:
///   - `saturatingRoundingDoublingHighMul(a, b)` = floor((a * b + 2^30) / 2^31): round(a * b / 2^31)
///     with ties toward +infinity (0.5 -> 1, -0.5 -> 0, -1.5 -> -1). gemmlowp writes it as "add 2^30
///     or 1 - 2^30 by sign, then divide truncating toward zero", which is the same function (and the same
///     as ARM's SQRDMULH). The one overflow, INT32_MIN * INT32_MIN, saturates to INT32_MAX.
///   - `roundingDivideByPOT(x, e)` = round(x / 2^e), ties AWAY FROM ZERO (gemmlowp's remainder/threshold
///     form: -2.5 -> -3, 2.5 -> 3).
///   - the left shift saturates at the int32 limits (TFLite leaves overflow undefined; we define it).
/// Two roundings in a row (not one) is deliberate: it is what TFLite does, so our int8 results can be
/// checked against theirs bit for bit.
///
/// Each scalar function below is the reference; the SIMD8 versions must agree with it bit for bit
/// (Tests/QuantEngineTests/FixedPointTests.swift).

/// M = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) (or 0 for M == 0).
public struct QuantizedMultiplier: Equatable, CustomStringConvertible, Sendable {
    public let multiplier: Int32
    /// Positive: shift left before the high multiply; negative: rounding shift right after it.
    public let shift: Int32

    public init(multiplier: Int32, shift: Int32) {
        self.multiplier = multiplier
        self.shift = shift
    }

    /// Decomposes a real multiplier like TFLite's QuantizeMultiplier: frexp, round the Q31 mantissa
    /// half away from zero, renormalise if it rounded up to 2^31, flush to zero below 2^-31 * 2^-31.
    /// `real` must be finite, >= 0 and < 2^31.
    public init(_ real: Double) {
        precondition(real.isFinite && real >= 0 && real < 2_147_483_648, "QuantizedMultiplier: \(real) out of range")
        if real == 0 {
            self.init(multiplier: 0, shift: 0)
            return
        }
        // frexp: real = q * 2^e with q in [0.5, 1).
        var exponent = Int(real.exponent) + 1
        let q = real.significand / 2
        var fixed = Int64((q * 2_147_483_648).rounded(.toNearestOrAwayFromZero))
        if fixed == 1 << 31 {
            fixed /= 2
            exponent += 1
        }
        if exponent < -31 {
            self.init(multiplier: 0, shift: 0)
            return
        }
        self.init(multiplier: Int32(fixed), shift: Int32(exponent))
    }

    /// The real number this represents.
    public var realValue: Double { Double(multiplier) / 2_147_483_648 * pow2(Int(shift)) }

    public var description: String { "\(multiplier) * 2^(\(shift) - 31)" }
}

@inline(__always)
func pow2(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1) }

// MARK: - Scalar reference

/// round(a * b / 2^31), ties toward +infinity; INT32_MIN * INT32_MIN saturates to INT32_MAX. (gemmlowp's form.)
@inline(__always)
public func saturatingRoundingDoublingHighMul(_ a: Int32, _ b: Int32) -> Int32 {
    if a == .min && b == .min { return .max }
    let product = Int64(a) * Int64(b)
    let nudge: Int64 = product >= 0 ? (1 << 30) : (1 - (1 << 30))
    // Swift's `/` truncates toward zero, as C's does in gemmlowp.
    return Int32(truncatingIfNeeded: (product + nudge) / (1 << 31))
}

/// round(x / 2^exponent), ties away from zero. exponent in 0...31.
@inline(__always)
public func roundingDivideByPOT(_ x: Int32, _ exponent: Int32) -> Int32 {
    let mask = Int32(truncatingIfNeeded: (Int64(1) << Int64(exponent)) - 1)
    let remainder = x & mask
    let threshold = (mask >> 1) + (x < 0 ? 1 : 0)
    return (x >> exponent) + (remainder > threshold ? 1 : 0)
}

/// x * 2^shift clamped to the int32 range. shift in 0...31.
@inline(__always)
public func saturatingLeftShift(_ x: Int32, _ shift: Int32) -> Int32 {
    if x > Int32.max >> shift { return .max }
    if x < Int32.min >> shift { return .min }
    return x << shift
}

/// x * M with TFLite's MultiplyByQuantizedMultiplier semantics (see the file comment).
@inline(__always)
public func multiplyByQuantizedMultiplier(_ x: Int32, _ m: QuantizedMultiplier) -> Int32 {
    multiplyByQuantizedMultiplier(x, multiplier: m.multiplier, shift: m.shift)
}

@inline(__always)
public func multiplyByQuantizedMultiplier(_ x: Int32, multiplier: Int32, shift: Int32) -> Int32 {
    let left = max(shift, 0), right = max(-shift, 0)
    return roundingDivideByPOT(saturatingRoundingDoublingHighMul(saturatingLeftShift(x, left), multiplier), right)
}

/// The output stage of every int8 kernel: scale, add the output zero point, clamp (the fused activation).
@inline(__always)
public func requantize(_ accumulator: Int32, multiplier: Int32, shift: Int32, zeroPoint: Int32, min lo: Int32, max hi: Int32) -> Int8 {
    let scaled = multiplyByQuantizedMultiplier(accumulator, multiplier: multiplier, shift: shift)
    // zeroPoint, lo and hi are int8 values: clamping `scaled` 256 inside the int32 range first makes the
    // add unable to wrap without changing the clamped result.
    let guarded = min(max(scaled, Int32.min + 256), Int32.max - 256)
    return Int8(truncatingIfNeeded: min(max(guarded + zeroPoint, lo), hi))
}

// The SIMD8 versions, which must match these bit for bit, are in Sources/Int8Microkernels/SIMDRequantization.swift:
// they are compiled once per instruction set with the microkernels whose epilogue they are.
