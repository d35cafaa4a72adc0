/// The trainer's layout changes between its channel-major maps ([C][N][H][W]: one row of pixels per
/// channel) and the engine's NHWC (channels innermost), compiled per instruction set with the other float
/// kernels: on the portable path the 8 x 8 transpose below spills half its registers, on AVX2 it fits.
///
/// Both kernels move an 8-channel strip: 8 channel rows of `count` pixels <-> `count` pixels of 8
/// channels, 8 pixels at a time through `transpose8x8`, the last `count % 8` pixels one by one.

/// Channel rows -> pixels: target[i * targetStride + k] = source[k * sourceStride + i] for k < 8, i < count.
@inline(never)
public func floatChannelRowsToPixels(source: UnsafePointer<Float>, sourceStride: Int,
                                     target: UnsafeMutablePointer<Float>, targetStride: Int, count: Int) {
    let s = sourceStride, t = targetStride
    var i = 0
    while i + 8 <= count {
        let r = source + i, out = target + i * t
        let v = transpose8x8(loadVector(r), loadVector(r + s), loadVector(r + 2 * s), loadVector(r + 3 * s),
                             loadVector(r + 4 * s), loadVector(r + 5 * s), loadVector(r + 6 * s), loadVector(r + 7 * s))
        storeVector(v.0, out); storeVector(v.1, out + t); storeVector(v.2, out + 2 * t); storeVector(v.3, out + 3 * t)
        storeVector(v.4, out + 4 * t); storeVector(v.5, out + 5 * t); storeVector(v.6, out + 6 * t); storeVector(v.7, out + 7 * t)
        i += 8
    }
    for i in i..<count {
        for k in 0..<8 { target[i * t + k] = source[k * s + i] }
    }
}

/// Pixels -> channel rows: target[k * targetStride + i] = source[i * sourceStride + k] for k < 8, i < count.
@inline(never)
public func floatPixelsToChannelRows(source: UnsafePointer<Float>, sourceStride: Int,
                                     target: UnsafeMutablePointer<Float>, targetStride: Int, count: Int) {
    let s = sourceStride, t = targetStride
    var i = 0
    while i + 8 <= count {
        let p = source + i * s, out = target + i
        let v = transpose8x8(loadVector(p), loadVector(p + s), loadVector(p + 2 * s), loadVector(p + 3 * s),
                             loadVector(p + 4 * s), loadVector(p + 5 * s), loadVector(p + 6 * s), loadVector(p + 7 * s))
        storeVector(v.0, out); storeVector(v.1, out + t); storeVector(v.2, out + 2 * t); storeVector(v.3, out + 3 * t)
        storeVector(v.4, out + 4 * t); storeVector(v.5, out + 5 * t); storeVector(v.6, out + 6 * t); storeVector(v.7, out + 7 * t)
        i += 8
    }
    for i in i..<count {
        for k in 0..<8 { target[k * t + i] = source[i * s + k] }
    }
}

/// The 8 x 8 block of rows r0...r7 transposed: result j holds lane j of every row.
///
/// Three passes of one perfect unshuffle of the 64 values (each pair of rows split into its even and its
/// odd lanes, all the even halves first) rotate every value's 6-bit index (row, lane) right by one bit;
/// three rotations swap row and lane. Each split is a shuffle of two registers (24 in all), where
/// gathering one pixel's 8 channels took 8 scalar loads and 7 inserts.
@inline(__always)
func transpose8x8(_ r0: SIMD8<Float>, _ r1: SIMD8<Float>, _ r2: SIMD8<Float>, _ r3: SIMD8<Float>,
                  _ r4: SIMD8<Float>, _ r5: SIMD8<Float>, _ r6: SIMD8<Float>, _ r7: SIMD8<Float>)
    -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
    @inline(__always) func unshuffle(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> (even: SIMD8<Float>, odd: SIMD8<Float>) {
        let both = SIMD16(lowHalf: a, highHalf: b)
        return (both.evenHalf, both.oddHalf)
    }
    var rows = (r0, r1, r2, r3, r4, r5, r6, r7)
    for _ in 0..<3 {
        let a = unshuffle(rows.0, rows.1), b = unshuffle(rows.2, rows.3), c = unshuffle(rows.4, rows.5), d = unshuffle(rows.6, rows.7)
        rows = (a.even, b.even, c.even, d.even, a.odd, b.odd, c.odd, d.odd)
    }
    return rows
}
