/// The float kernels' vector arithmetic, compiled once per instruction set with the float microkernels
/// (FloatTiles.swift): nothing here may name its module.
///
/// The vector is 8 floats: one AVX2 ymm register on x86-64, two NEON registers on aarch64 (LLVM splits
/// it), two SSE registers on portable x86-64.

/// acc + a * b.
///
/// On aarch64 and in the AVX2 module (built with FMA and -DSONOQUANT_FMA, Package.swift) this is one fused
/// multiply-add instruction. Portable x86-64 (SSE2) has no fused multiply-add instruction and LLVM would call
/// `fmaf` per lane, so there we multiply then add: the paths round differently, within the float
/// tolerance every float test uses.
@inlinable @inline(__always)
public func multiplyAdd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    #if arch(arm64) || SONOQUANT_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

/// Scalar form of `multiplyAdd`, rounding the same way, so scalar tails match the vector lanes.
@inlinable @inline(__always)
public func multiplyAdd(_ acc: Float, _ a: Float, _ b: Float) -> Float {
    #if arch(arm64) || SONOQUANT_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

/// min(max(v, lower), upper) per lane: the fused activation (ReLU: [0, inf], ReLU6: [0, 6], none: [-inf, inf]).
@inlinable @inline(__always)
public func clamp(_ v: SIMD8<Float>, _ lower: Float, _ upper: Float) -> SIMD8<Float> {
    v.replacing(with: SIMD8<Float>(repeating: lower), where: v .< lower)
     .replacing(with: SIMD8<Float>(repeating: upper), where: v .> upper)
}

@inlinable @inline(__always)
public func loadVector(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inlinable @inline(__always)
public func storeVector(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// Stores the first `count` lanes (all 8 when count >= 8) of v at p.
@inlinable @inline(__always)
public func storeLanes(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, count: Int) {
    if count >= 8 {
        storeVector(v, p)
    } else {
        for lane in 0..<max(count, 0) { p[lane] = v[lane] }
    }
}

/// Loads the first `count` lanes (all 8 when count >= 8) from p; the other lanes are zero.
@inlinable @inline(__always)
public func loadLanes(_ p: UnsafePointer<Float>, count: Int) -> SIMD8<Float> {
    if count >= 8 { return loadVector(p) }
    var v = SIMD8<Float>()
    for lane in 0..<max(count, 0) { v[lane] = p[lane] }
    return v
}
