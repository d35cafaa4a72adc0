/// The vector type of the float kernels: 8 floats is one AVX2 ymm register on x86-64 and two NEON
/// registers on aarch64 (LLVM splits it), so the same source serves both.
public typealias FloatVector = SIMD8<Float>

/// acc + a * b.
///
/// On aarch64 and on x86-64 built with FMA (`-target-cpu x86-64-v3` plus `-D SONOQUANT_FMA`, see
/// docs/PERFORMANCE.md) this is one fused multiply-add instruction. On plain x86-64 (SSE2) a fused
/// multiply-add has no instruction and LLVM would call `fmaf` per lane, so there we multiply then add.
@inline(__always)
func multiplyAdd(_ acc: FloatVector, _ a: FloatVector, _ b: FloatVector) -> FloatVector {
    #if arch(arm64) || SONOQUANT_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

/// Scalar form of `multiplyAdd`, rounding the same way, so scalar tails match the vector lanes.
@inline(__always)
func multiplyAdd(_ acc: Float, _ a: Float, _ b: Float) -> Float {
    #if arch(arm64) || SONOQUANT_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

/// The activation that follows a convolution, as a clamp to [lower, upper]
/// (none: [-inf, inf], ReLU: [0, inf], ReLU6: [0, 6]), fused into the kernels' stores.
struct ActivationClamp {
    let lower: Float
    let upper: Float

    init(_ activation: Activation) {
        switch activation {
        case .none: lower = -.infinity; upper = .infinity
        case .relu: lower = 0; upper = .infinity
        case .relu6: lower = 0; upper = 6
        }
    }

    @inline(__always)
    func apply(_ v: FloatVector) -> FloatVector {
        v.replacing(with: FloatVector(repeating: lower), where: v .< lower)
         .replacing(with: FloatVector(repeating: upper), where: v .> upper)
    }

    @inline(__always)
    func apply(_ v: Float) -> Float { Swift.min(Swift.max(v, lower), upper) }
}

@inline(__always)
func loadVector(_ p: UnsafePointer<Float>) -> FloatVector {
    UnsafeRawPointer(p).loadUnaligned(as: FloatVector.self)
}

@inline(__always)
func storeVector(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: FloatVector.self)
}
