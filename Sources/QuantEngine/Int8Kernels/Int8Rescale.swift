/// Moving an int8 tensor from one (scale, zero point) to another in fixed point, as TFLite's ADD and
/// CONCATENATION do: (x - zp_in) is first shifted left by 20 bits (|x - zp_in| <= 255, so it stays
/// below 2^28) to keep precision through the first rounding, then multiplied by
/// M = s_in / (s_out * 2^20) < 1, the output zero point added and the result clamped.
public struct Int8Rescale: Equatable {
    public static let leftShift: Int32 = 20
    public let inputZeroPoint: Int32
    public let multiplier: QuantizedMultiplier
    public let outputZeroPoint: Int32
    /// True when input and output quantization are the same: a plain copy.
    public let isIdentity: Bool

    public init(inputScale: Float, inputZeroPoint: Int32, outputScale: Float, outputZeroPoint: Int32) {
        self.inputZeroPoint = inputZeroPoint
        self.outputZeroPoint = outputZeroPoint
        multiplier = QuantizedMultiplier(Double(inputScale) / (Double(outputScale) * pow2(Int(Self.leftShift))))
        isIdentity = inputScale == outputScale && inputZeroPoint == outputZeroPoint
    }

    /// The scalar reference.
    @inline(__always)
    public func apply(_ x: Int8) -> Int8 {
        if isIdentity { return x }
        let shifted = (Int32(x) - inputZeroPoint) << Self.leftShift
        return requantize(shifted, multiplier: multiplier.multiplier, shift: multiplier.shift, zeroPoint: outputZeroPoint, min: -128, max: 127)
    }
}

/// dst[i] = rescale.apply(src[i]) for i in 0..<count; eight lanes at a time, scalar tail.
/// (Out of line on purpose: see `requantizeRow`.)
@inline(never)
func rescaleInt8(_ src: UnsafePointer<Int8>, _ dst: UnsafeMutablePointer<Int8>, count: Int, _ r: Int8Rescale) {
    if r.isIdentity {
        dst.update(from: src, count: count)
        return
    }
    let zpIn = SIMD8<Int32>(repeating: r.inputZeroPoint), zpOut = SIMD8<Int32>(repeating: r.outputZeroPoint)
    let m = SIMD8<Int32>(repeating: r.multiplier.multiplier)
    let left = SIMD8<Int32>(repeating: max(r.multiplier.shift, 0)), right = SIMD8<Int32>(repeating: max(-r.multiplier.shift, 0))
    let lo = SIMD8<Int32>(repeating: -128), hi = SIMD8<Int32>(repeating: 127)
    var i = 0
    while i + 8 <= count {
        let x = widenToInt32(UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Int8>.self))
        let shifted = (x &- zpIn) &<< Int8Rescale.leftShift
        // M = s_in / (s_out * 2^20) is below 1 for any sane pair of scales: then no left shift is needed.
        let q = r.multiplier.shift <= 0
            ? requantize(shifted, multiplier: m, rightShift: right, zeroPoint: zpOut, min: lo, max: hi)
            : requantize(shifted, multiplier: m, leftShift: left, rightShift: right, zeroPoint: zpOut, min: lo, max: hi)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: q, as: SIMD8<Int8>.self)
        i += 8
    }
    while i < count { dst[i] = r.apply(src[i]); i += 1 }
}
