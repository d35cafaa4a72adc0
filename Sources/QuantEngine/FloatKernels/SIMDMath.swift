import FloatMicrokernels

/// The vector type of the float kernels: 8 floats is one AVX2 ymm register on x86-64 and two NEON
/// registers on aarch64 (LLVM splits it), so the same source serves both. Its arithmetic (`multiplyAdd`,
/// loads and stores) is in Sources/FloatMicrokernels/FloatSIMD.swift, compiled per instruction set.
public typealias FloatVector = SIMD8<Float>

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
    func apply(_ v: FloatVector) -> FloatVector { clamp(v, lower, upper) }

    @inline(__always)
    func apply(_ v: Float) -> Float { Swift.min(Swift.max(v, lower), upper) }
}
