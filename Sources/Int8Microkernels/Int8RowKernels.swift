/// The int8 engine's other hot loops, one row (or run) per call, compiled per instruction set like the
/// GEMM microkernel (Int16DotTiles.swift): the depthwise 3x3 accumulation, and the fixed-point rescale
/// and residual add. Each takes plain values, no engine types, and each agrees bit for bit with the scalar
/// reference in Sources/QuantEngine (`referenceQuantizedConv`, `Int8Rescale.apply`, `Int8AddParameters.add`).
///
/// Ragged ends (fewer than 8 values) go through an 8-lane buffer, so each value is computed by the one
/// vector formula and no scalar copy of the fixed-point code is needed here.

/// Depthwise 3x3 sums for one output row and 16 channels: sums[x * 16 + lane] for x in 0..<count, from the
/// int16 staged input (x - zero point, zero border). Pixel x's 3x3 window starts at `origin + x * pixelStride`,
/// kernel rows are `rowStride` apart and taps `channelStride` apart; `weights` is [tap][channelStride] int32,
/// already offset to the first of the 16 channels.
@inline(never)
public func depthwise3x3Row(origin: UnsafePointer<Int16>, pixelStride: Int, count: Int, rowStride: Int, channelStride: Int,
                            weights: UnsafePointer<Int32>, sums: UnsafeMutablePointer<Int32>) {
    for ox in 0..<count {
        let window = origin + ox * pixelStride
        var acc0 = SIMD8<Int32>(), acc1 = SIMD8<Int32>()
        for ky in 0..<3 {
            for kx in 0..<3 {
                // Two 8-lane halves, widened lane by lane (SIMDConversions.swift).
                let x = window + ky * rowStride + kx * channelStride
                let k = weights + (ky * 3 + kx) * channelStride
                acc0 &+= widenToInt32(UnsafeRawPointer(x).loadUnaligned(as: SIMD8<Int16>.self)) &* load8(k)
                acc1 &+= widenToInt32(UnsafeRawPointer(x + 8).loadUnaligned(as: SIMD8<Int16>.self)) &* load8(k + 8)
            }
        }
        UnsafeMutableRawPointer(sums + ox * 16).storeBytes(of: acc0, as: SIMD8<Int32>.self)
        UnsafeMutableRawPointer(sums + ox * 16 + 8).storeBytes(of: acc1, as: SIMD8<Int32>.self)
    }
}

/// dst[i] = requantize((src[i] - inputZeroPoint) << 20, multiplier, shift) + outputZeroPoint, clamped to int8,
/// for i in 0..<count: `Int8Rescale.apply` (TFLite's CONCATENATION rescale).
@inline(never)
public func rescaleRun(_ src: UnsafePointer<Int8>, _ dst: UnsafeMutablePointer<Int8>, count: Int,
                       inputZeroPoint: Int32, multiplier: Int32, shift: Int32, outputZeroPoint: Int32) {
    let zpIn = SIMD8<Int32>(repeating: inputZeroPoint), zpOut = SIMD8<Int32>(repeating: outputZeroPoint)
    let m = SIMD8<Int32>(repeating: multiplier)
    let left = SIMD8<Int32>(repeating: max(shift, 0)), right = SIMD8<Int32>(repeating: max(-shift, 0))
    let lo = SIMD8<Int32>(repeating: -128), hi = SIMD8<Int32>(repeating: 127)
    @inline(__always) func rescale(_ v: SIMD8<Int8>) -> SIMD8<Int8> {
        let shifted = (widenToInt32(v) &- zpIn) &<< 20
        // M = s_in / (s_out * 2^20) is below 1 for any sane pair of scales: then no left shift is needed.
        return shift <= 0
            ? requantize(shifted, multiplier: m, rightShift: right, zeroPoint: zpOut, min: lo, max: hi)
            : requantize(shifted, multiplier: m, leftShift: left, rightShift: right, zeroPoint: zpOut, min: lo, max: hi)
    }
    var i = 0
    while i + 8 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: rescale(UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Int8>.self)), as: SIMD8<Int8>.self)
        i += 8
    }
    if i < count { store(rescale(loadPartial(src + i, count: count - i)), to: dst + i, count: count - i) }
}

/// output[i] = `Int8AddParameters.add(a[i], b[i])` for i in 0..<count: both inputs shifted left by 20 and
/// rescaled to a common scale, summed, rescaled to the output, zero point added, clamped to [min, max].
@inline(never)
public func addRun(_ a: UnsafePointer<Int8>, _ b: UnsafePointer<Int8>, count: Int, output: UnsafeMutablePointer<Int8>,
                   aZeroPoint: Int32, aMultiplier: Int32, aShift: Int32, bZeroPoint: Int32, bMultiplier: Int32, bShift: Int32,
                   outputZeroPoint: Int32, outputMultiplier: Int32, outputShift: Int32, min: Int32, max: Int32) {
    @inline(__always) func split(_ m: Int32, _ shift: Int32) -> (SIMD8<Int32>, SIMD8<Int32>, SIMD8<Int32>) {
        (SIMD8(repeating: m), SIMD8(repeating: Swift.max(shift, 0)), SIMD8(repeating: Swift.max(-shift, 0)))
    }
    let (am, al, ar) = split(aMultiplier, aShift), (bm, bl, br) = split(bMultiplier, bShift), (om, ol, or) = split(outputMultiplier, outputShift)
    let azp = SIMD8<Int32>(repeating: aZeroPoint), bzp = SIMD8<Int32>(repeating: bZeroPoint), ozp = SIMD8<Int32>(repeating: outputZeroPoint)
    let lo = SIMD8<Int32>(repeating: min), hi = SIMD8<Int32>(repeating: max)
    @inline(__always) func add(_ x: SIMD8<Int8>, _ y: SIMD8<Int8>) -> SIMD8<Int8> {
        let x1 = multiplyByQuantizedMultiplier((widenToInt32(x) &- azp) &<< 20, multiplier: am, leftShift: al, rightShift: ar)
        let y1 = multiplyByQuantizedMultiplier((widenToInt32(y) &- bzp) &<< 20, multiplier: bm, leftShift: bl, rightShift: br)
        return requantize(x1 &+ y1, multiplier: om, leftShift: ol, rightShift: or, zeroPoint: ozp, min: lo, max: hi)
    }
    var i = 0
    while i + 8 <= count {
        let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Int8>.self), y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Int8>.self)
        UnsafeMutableRawPointer(output + i).storeBytes(of: add(x, y), as: SIMD8<Int8>.self)
        i += 8
    }
    if i < count { store(add(loadPartial(a + i, count: count - i), loadPartial(b + i, count: count - i)), to: output + i, count: count - i) }
}

/// The first `count` (< 8) values at p, the other lanes 0.
@inline(__always)
func loadPartial(_ p: UnsafePointer<Int8>, count: Int) -> SIMD8<Int8> {
    var v = SIMD8<Int8>()
    for lane in 0..<count { v[lane] = p[lane] }
    return v
}
