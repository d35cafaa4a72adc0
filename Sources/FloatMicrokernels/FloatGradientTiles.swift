/// The trainer's weight-gradient microkernel, compiled per instruction set with the other float kernels.
///
/// For one tap t of a convolution, dW_t[o][c] = sum over output pixels p of dZ[p][o] x X[p + tap][c]:
/// a GEMM whose K is the pixel count. With both maps NHWC (channels innermost), the tile has the shape of
/// the forward's (`floatDenseTile`): 6 rows (output channels o, one broadcast each) x 16 lanes (input
/// channels c, two vectors read in place at the pixel's tap position), 12 multiply-adds per pixel.

#if SONOQUANT_AVX512
/// Input channels per tile of this build: 32, two 16-lane vectors per row (the AVX-512 build).
public let floatWeightGradientTileLanes = 32
#else
/// Input channels per tile of this build: 16, two 8-lane vectors per row.
public let floatWeightGradientTileLanes = 16
#endif

/// Adds, over `count` pixels, dZ[i][o + r] x X[i][c + lane] to sums[r * sumStride + lane] for r < rows,
/// lane < lanes (at most 6 and `floatWeightGradientTileLanes`).
///
/// - gradients: dZ of the tile's first output channel; pixel i's at gradients + gradientOffsets[i].
/// - inputs: X at the tap and the tile's first input channel; pixel i's at inputs + inputOffsets[i].
/// - Reads 6 gradients and `floatWeightGradientTileLanes` inputs per pixel whatever `rows` and `lanes` (the
///   extra lanes are computed and dropped), so both maps need that much readable memory past their last value.
/// - The AVX-512 build holds 6 x 32 sums in 12 16-lane registers: per pixel, two vector loads and six
///   broadcasts feed 12 multiply-adds of twice the width, so each byte read does twice the work. Each sum is
///   still the same chain of multiply-adds over the pixels in order: the same bits as the 16-lane build.
@inline(never)
public func floatWeightGradientTile(gradients: UnsafePointer<Float>, gradientOffsets: UnsafePointer<Int>,
                                    inputs: UnsafePointer<Float>, inputOffsets: UnsafePointer<Int>, count: Int,
                                    sums: UnsafeMutablePointer<Float>, sumStride: Int, rows: Int, lanes: Int) {
    #if SONOQUANT_AVX512
    var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a10 = SIMD16<Float>(), a11 = SIMD16<Float>()
    var a20 = SIMD16<Float>(), a21 = SIMD16<Float>(), a30 = SIMD16<Float>(), a31 = SIMD16<Float>()
    var a40 = SIMD16<Float>(), a41 = SIMD16<Float>(), a50 = SIMD16<Float>(), a51 = SIMD16<Float>()
    for i in 0..<count {
        let x = UnsafeRawPointer(inputs + inputOffsets[i]), g = gradients + gradientOffsets[i]
        let x0 = x.loadUnaligned(as: SIMD16<Float>.self), x1 = x.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
        let g0 = SIMD16<Float>(repeating: g[0]); a00 = a00.addingProduct(g0, x0); a01 = a01.addingProduct(g0, x1)
        let g1 = SIMD16<Float>(repeating: g[1]); a10 = a10.addingProduct(g1, x0); a11 = a11.addingProduct(g1, x1)
        let g2 = SIMD16<Float>(repeating: g[2]); a20 = a20.addingProduct(g2, x0); a21 = a21.addingProduct(g2, x1)
        let g3 = SIMD16<Float>(repeating: g[3]); a30 = a30.addingProduct(g3, x0); a31 = a31.addingProduct(g3, x1)
        let g4 = SIMD16<Float>(repeating: g[4]); a40 = a40.addingProduct(g4, x0); a41 = a41.addingProduct(g4, x1)
        let g5 = SIMD16<Float>(repeating: g[5]); a50 = a50.addingProduct(g5, x0); a51 = a51.addingProduct(g5, x1)
    }
    @inline(__always) func add(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ row: UnsafeMutablePointer<Float>) {
        addRow(low.lowHalf, low.highHalf, row, lanes)
        if lanes > 16 { addRow(high.lowHalf, high.highHalf, row + 16, lanes - 16) }
    }
    add(a00, a01, sums)
    if rows > 1 { add(a10, a11, sums + sumStride) }
    if rows > 2 { add(a20, a21, sums + 2 * sumStride) }
    if rows > 3 { add(a30, a31, sums + 3 * sumStride) }
    if rows > 4 { add(a40, a41, sums + 4 * sumStride) }
    if rows > 5 { add(a50, a51, sums + 5 * sumStride) }
    #else
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
    #endif
}

/// sums[0..<lanes] += the first `lanes` of (low, high).
@inline(__always)
func addRow(_ low: SIMD8<Float>, _ high: SIMD8<Float>, _ sums: UnsafeMutablePointer<Float>, _ lanes: Int) {
    storeLanes(loadLanes(sums, count: lanes) + low, sums, count: lanes)
    storeLanes(loadLanes(sums + 8, count: lanes - 8) + high, sums + 8, count: lanes - 8)
}
