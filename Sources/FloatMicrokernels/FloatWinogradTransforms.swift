/// The input and output transforms of Winograd's F(2x2, 3x3) (`PackedWinogradConv` in
/// Sources/QuantEngine/FloatKernels/Winograd.swift states them), one run of tiles side by side in a tile row
/// per call, vectorised over 8 channels. They are adds and subtractions only, in a fixed order, so every
/// build gives the same bits; compiled per instruction set so that the AVX builds run them on 256-bit
/// registers instead of the baseline's 128-bit ones.

/// V = Bᵀ d B for `count` tiles side by side: tile t's 4x4 patch starts at patch + t * 2 * channels, its rows
/// `rowStride` apart; V[ξ][t][c] goes to transformed + ξ * plane + t * channels + c. Channels: a multiple of 8.
@inline(never)
public func floatWinogradInputRow(patch: UnsafePointer<Float>, rowStride: Int, channels: Int, count: Int,
                                  transformed: UnsafeMutablePointer<Float>, plane: Int) {
    for t in 0..<count {
        let patch = patch + t * 2 * channels, base = transformed + t * channels
        for c in stride(from: 0, to: channels, by: 8) {
            // Bᵀ d: combine the patch's 4 rows, for each of its 4 columns.
            @inline(__always) func column(_ col: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
                let p = patch + col * channels + c
                let d0 = loadVector(p), d1 = loadVector(p + rowStride), d2 = loadVector(p + 2 * rowStride), d3 = loadVector(p + 3 * rowStride)
                return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
            }
            let k0 = column(0), k1 = column(1), k2 = column(2), k3 = column(3)
            // (Bᵀ d) B: combine the 4 columns the same way, for each row i; V[i * 4 + j].
            @inline(__always) func store(_ i: Int, _ e0: SIMD8<Float>, _ e1: SIMD8<Float>, _ e2: SIMD8<Float>, _ e3: SIMD8<Float>) {
                storeVector(e0 - e2, base + (i * 4 + 0) * plane + c)
                storeVector(e1 + e2, base + (i * 4 + 1) * plane + c)
                storeVector(e2 - e1, base + (i * 4 + 2) * plane + c)
                storeVector(e1 - e3, base + (i * 4 + 3) * plane + c)
            }
            store(0, k0.0, k1.0, k2.0, k3.0)
            store(1, k0.1, k1.1, k2.1, k3.1)
            store(2, k0.2, k1.2, k2.2, k3.2)
            store(3, k0.3, k1.3, k2.3, k3.3)
        }
    }
}

/// Y = Aᵀ M A + bias, clamped to [lower, upper], for `count` tiles side by side: M[ξ][t][c] at
/// products + ξ * plane + t * channels + c; tile t's 2x2 output block at top + t * 2 * channels (its second
/// row `rowStride` further). Channels: a multiple of 8; bias: one vector per 8 channels.
@inline(never)
public func floatWinogradOutputRow(products: UnsafePointer<Float>, plane: Int, channels: Int, count: Int, bias: UnsafePointer<SIMD8<Float>>,
                                   top: UnsafeMutablePointer<Float>, rowStride: Int, lower: Float, upper: Float) {
    for t in 0..<count {
        let top = top + t * 2 * channels, bottom = top + rowStride
        for b in 0..<(channels / 8) {
            let base = products + t * channels + b * 8
            @inline(__always) func m(_ i: Int, _ j: Int) -> SIMD8<Float> { loadVector(base + (i * 4 + j) * plane) }
            // Aᵀ M: two rows, each over the 4 columns.
            let s0 = (m(0, 0) + m(1, 0) + m(2, 0), m(0, 1) + m(1, 1) + m(2, 1), m(0, 2) + m(1, 2) + m(2, 2), m(0, 3) + m(1, 3) + m(2, 3))
            let s1 = (m(1, 0) - m(2, 0) - m(3, 0), m(1, 1) - m(2, 1) - m(3, 1), m(1, 2) - m(2, 2) - m(3, 2), m(1, 3) - m(2, 3) - m(3, 3))
            let bv = bias[b]
            storeVector(clamp(bv + (s0.0 + s0.1 + s0.2), lower, upper), top + b * 8)
            storeVector(clamp(bv + (s0.1 - s0.2 - s0.3), lower, upper), top + channels + b * 8)
            storeVector(clamp(bv + (s1.0 + s1.1 + s1.2), lower, upper), bottom + b * 8)
            storeVector(clamp(bv + (s1.1 - s1.2 - s1.3), lower, upper), bottom + channels + b * 8)
        }
    }
}
