/// The trainer's weight-gradient microkernel, compiled per instruction set with the other float kernels.
///
/// For one tap t of a convolution, dW_t[o][c] = sum over output pixels p of dZ[p][o] x X[p + tap][c]:
/// a GEMM whose K is the pixel count. With both maps NHWC (channels innermost), the tile has the shape of
/// the forward's (`floatDenseTile`): 6 rows (output channels o, one broadcast each) x 16 lanes (input
/// channels c, two vectors read in place at the pixel's tap position), 12 multiply-adds per pixel.

/// Adds, over `count` pixels, dZ[i][o + r] x X[i][c + lane] to sums[r * sumStride + lane] for r < rows,
/// lane < lanes (at most 6 and 16).
///
/// - gradients: dZ of the tile's first output channel; pixel i's at gradients + gradientOffsets[i].
/// - inputs: X at the tap and the tile's first input channel; pixel i's at inputs + inputOffsets[i].
/// - Reads 6 gradients and 16 inputs per pixel whatever `rows` and `lanes` (the extra lanes are computed
///   and dropped), so both maps need that much readable memory past their last value.
@inline(never)
public func floatWeightGradientTile(gradients: UnsafePointer<Float>, gradientOffsets: UnsafePointer<Int>,
                                    inputs: UnsafePointer<Float>, inputOffsets: UnsafePointer<Int>, count: Int,
                                    sums: UnsafeMutablePointer<Float>, sumStride: Int, rows: Int, lanes: Int) {
    var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
    var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
    var a40 = SIMD8<Float>(), a41 = SIMD8<Float>(), a50 = SIMD8<Float>(), a51 = SIMD8<Float>()
    for i in 0..<count {
        let x = inputs + inputOffsets[i], g = gradients + gradientOffsets[i]
        let x0 = loadVector(x), x1 = loadVector(x + 8)
        let g0 = SIMD8<Float>(repeating: g[0]); a00 = multiplyAdd(a00, g0, x0); a01 = multiplyAdd(a01, g0, x1)
        let g1 = SIMD8<Float>(repeating: g[1]); a10 = multiplyAdd(a10, g1, x0); a11 = multiplyAdd(a11, g1, x1)
        let g2 = SIMD8<Float>(repeating: g[2]); a20 = multiplyAdd(a20, g2, x0); a21 = multiplyAdd(a21, g2, x1)
        let g3 = SIMD8<Float>(repeating: g[3]); a30 = multiplyAdd(a30, g3, x0); a31 = multiplyAdd(a31, g3, x1)
        let g4 = SIMD8<Float>(repeating: g[4]); a40 = multiplyAdd(a40, g4, x0); a41 = multiplyAdd(a41, g4, x1)
        let g5 = SIMD8<Float>(repeating: g[5]); a50 = multiplyAdd(a50, g5, x0); a51 = multiplyAdd(a51, g5, x1)
    }
    addRow(a00, a01, sums, lanes)
    if rows > 1 { addRow(a10, a11, sums + sumStride, lanes) }
    if rows > 2 { addRow(a20, a21, sums + 2 * sumStride, lanes) }
    if rows > 3 { addRow(a30, a31, sums + 3 * sumStride, lanes) }
    if rows > 4 { addRow(a40, a41, sums + 4 * sumStride, lanes) }
    if rows > 5 { addRow(a50, a51, sums + 5 * sumStride, lanes) }
}

/// sums[0..<lanes] += the first `lanes` of (low, high).
@inline(__always)
func addRow(_ low: SIMD8<Float>, _ high: SIMD8<Float>, _ sums: UnsafeMutablePointer<Float>, _ lanes: Int) {
    storeLanes(loadLanes(sums, count: lanes) + low, sums, count: lanes)
    storeLanes(loadLanes(sums + 8, count: lanes - 8) + high, sums + 8, count: lanes - 8)
}
