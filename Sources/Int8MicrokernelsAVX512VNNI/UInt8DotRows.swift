import X86DotProductIntrinsics

/// The 4-way dot-product microkernel of the int8 dense convolutions on AVX-512 VNNI (`vpdpbusd`: each int32
/// lane adds the 4 products of 4 unsigned bytes with 4 signed bytes, twice the products per instruction of
/// the int16 kernel's `vpmaddwd`/`vpdpwssd`). `Int8DotProductConv` stages and packs for it.
///
/// Layout ("broadcast" GEMM, as MLAS and oneDNN do it): the caller stages pixels as unsigned bytes x + 128
/// (see `Int8DotProductConv` for the exact correction in the bias), channels padded to a multiple of 4, so
/// the reduction of one output pixel is `segments` contiguous runs of `steps` x 4 bytes (one run per kernel
/// row). Weights are packed per block of 16 output channels as [segment][step][16 outputs][4 bytes]: one
/// step is one 64-byte weight vector (16 outputs x 4 bytes), and each pixel's 4 bytes of that step are
/// broadcast to all 16 lanes. An accumulator then holds 16 finished output channels of one pixel: no
/// horizontal sums. Tiles: 8 pixels x 16 outputs = 8 zmm accumulators, and 4 x 16 for the ends of rows.
///
/// Exact: products and sums wrap in int32 (as the scalar reference's sums would, were they to overflow), so
/// the sums equal the reference's bit for bit.

/// sums[x * sumsStride + o] for o in 0..<16 and x in 0..<count: pixel x (at `pixels + x * pixelStride`)
/// against one block's weights, over `segmentOffsets[s] + 4 * step` for s in 0..<segments, step in 0..<steps.
@inline(never)
public func uint8DotGemmRow(pixels: UnsafePointer<UInt8>, pixelStride: Int, count: Int, weights: UnsafePointer<Int8>,
                            segmentOffsets: UnsafePointer<Int>, segments: Int, steps: Int,
                            sums: UnsafeMutablePointer<Int32>, sumsStride: Int) {
    var x0 = 0
    while x0 + 8 <= count {
        tile8x16(pixels + x0 * pixelStride, pixelStride: pixelStride, weights: weights, segmentOffsets: segmentOffsets, segments: segments,
                 steps: steps, sums: sums + x0 * sumsStride, sumsStride: sumsStride, valid: 8)
        x0 += 8
    }
    // The rest (1 to 7 pixels) in tiles of 4, the last repeating its final pixel instead of reading past the row:
    // a 12-pixel row (the widest decoder layer's) is 8 + 4, not 16 with 4 wasted.
    while x0 < count {
        tile4x16(pixels + x0 * pixelStride, pixelStride: pixelStride, weights: weights, segmentOffsets: segmentOffsets, segments: segments,
                 steps: steps, sums: sums + x0 * sumsStride, sumsStride: sumsStride, valid: min(4, count - x0))
        x0 += 4
    }
}

/// 8 pixels x 16 outputs: one 16-lane (512-bit) accumulator per pixel, the block's 64 weight bytes as one vector
/// and each pixel's 4 bytes broadcast to 16 lanes: 8 `vpdpbusd zmm` per step (it was two 8-lane halves per
/// pixel, 16 `vpdpbusd ymm`: the same integer sums in half the instructions, which CPUs with full-width
/// AVX-512 units run in half the cycles).
@inline(__always)
func tile8x16(_ first: UnsafePointer<UInt8>, pixelStride: Int, weights: UnsafePointer<Int8>, segmentOffsets: UnsafePointer<Int>,
              segments: Int, steps: Int, sums: UnsafeMutablePointer<Int32>, sumsStride: Int, valid: Int) {
    let p0 = first, p1 = first + pixelStride, p2 = first + 2 * pixelStride, p3 = first + 3 * pixelStride
    let p4 = first + 4 * pixelStride, p5 = first + 5 * pixelStride, p6 = first + 6 * pixelStride, p7 = first + 7 * pixelStride
    var a0 = SIMD16<Int32>(), a1 = SIMD16<Int32>(), a2 = SIMD16<Int32>(), a3 = SIMD16<Int32>()
    var a4 = SIMD16<Int32>(), a5 = SIMD16<Int32>(), a6 = SIMD16<Int32>(), a7 = SIMD16<Int32>()
    var w = UnsafeRawPointer(weights)
    for segment in 0..<segments {
        var i = segmentOffsets[segment]
        for _ in 0..<steps {
            let wv = w.loadUnaligned(as: SIMD16<Int32>.self)
            w += 64
            a0 = dotProductAccumulate(a0, unsignedBytes: broadcast4x16(p0 + i), signedBytes: wv)
            a1 = dotProductAccumulate(a1, unsignedBytes: broadcast4x16(p1 + i), signedBytes: wv)
            a2 = dotProductAccumulate(a2, unsignedBytes: broadcast4x16(p2 + i), signedBytes: wv)
            a3 = dotProductAccumulate(a3, unsignedBytes: broadcast4x16(p3 + i), signedBytes: wv)
            a4 = dotProductAccumulate(a4, unsignedBytes: broadcast4x16(p4 + i), signedBytes: wv)
            a5 = dotProductAccumulate(a5, unsignedBytes: broadcast4x16(p5 + i), signedBytes: wv)
            a6 = dotProductAccumulate(a6, unsignedBytes: broadcast4x16(p6 + i), signedBytes: wv)
            a7 = dotProductAccumulate(a7, unsignedBytes: broadcast4x16(p7 + i), signedBytes: wv)
            i += 4
        }
    }
    store16(a0, sums); store16(a1, sums + sumsStride); store16(a2, sums + 2 * sumsStride); store16(a3, sums + 3 * sumsStride)
    store16(a4, sums + 4 * sumsStride); store16(a5, sums + 5 * sumsStride); store16(a6, sums + 6 * sumsStride); store16(a7, sums + 7 * sumsStride)
}

/// 4 pixels x 16 outputs, for row ends; pixels at index >= valid repeat the last valid one and are not stored.
@inline(__always)
func tile4x16(_ first: UnsafePointer<UInt8>, pixelStride: Int, weights: UnsafePointer<Int8>, segmentOffsets: UnsafePointer<Int>,
              segments: Int, steps: Int, sums: UnsafeMutablePointer<Int32>, sumsStride: Int, valid: Int) {
    let p0 = first, p1 = first + min(1, valid - 1) * pixelStride
    let p2 = first + min(2, valid - 1) * pixelStride, p3 = first + min(3, valid - 1) * pixelStride
    var a0 = SIMD16<Int32>(), a1 = SIMD16<Int32>(), a2 = SIMD16<Int32>(), a3 = SIMD16<Int32>()
    var w = UnsafeRawPointer(weights)
    for segment in 0..<segments {
        var i = segmentOffsets[segment]
        for _ in 0..<steps {
            let wv = w.loadUnaligned(as: SIMD16<Int32>.self)
            w += 64
            a0 = dotProductAccumulate(a0, unsignedBytes: broadcast4x16(p0 + i), signedBytes: wv)
            a1 = dotProductAccumulate(a1, unsignedBytes: broadcast4x16(p1 + i), signedBytes: wv)
            a2 = dotProductAccumulate(a2, unsignedBytes: broadcast4x16(p2 + i), signedBytes: wv)
            a3 = dotProductAccumulate(a3, unsignedBytes: broadcast4x16(p3 + i), signedBytes: wv)
            i += 4
        }
    }
    store16(a0, sums)
    if valid > 1 { store16(a1, sums + sumsStride) }
    if valid > 2 { store16(a2, sums + 2 * sumsStride) }
    if valid > 3 { store16(a3, sums + 3 * sumsStride) }
}

/// Stores one pixel's 16 sums (outputs 0-15).
@inline(__always)
func store16(_ v: SIMD16<Int32>, _ p: UnsafeMutablePointer<Int32>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Int32>.self)
}

/// The 4 bytes at p in every one of 16 int32 lanes (`vpbroadcastd` from memory).
@inline(__always)
func broadcast4x16(_ p: UnsafePointer<UInt8>) -> SIMD16<Int32> {
    SIMD16<Int32>(repeating: UnsafeRawPointer(p).loadUnaligned(as: Int32.self))
}

/// A convolution with one output channel (the segmentation head, 16 -> 1), one output row: there the 16-output
/// tile above would waste 15 of its 16 lanes, so the lanes hold 8 neighbouring pixels instead. The caller
/// stages the input planar by 4-channel groups, [row][group][pixel][4 bytes] (`Int8DotProductConv`), so that
/// the 4 bytes of 8 consecutive pixels are one 32-byte load, and each tap's 4 weight bytes are broadcast.
///
/// sums[x * sumsStride] for x in 0..<count = Σ over kernel rows ky, groups g and taps kx of the dot product
/// of pixel x + kx's bytes in row ky, group g (`rows + ky * rowBytes + g * groupBytes + (x + kx) * 4`) with
/// weight word `weights[(ky * kernel + kx) * groups + g]`; kernel 1 or 3. Rows must hold 7 pixels of slack past
/// the last one read, so the last group of 8 never reads out of bounds.
@inline(never)
public func uint8DotSingleOutputRow(rows: UnsafePointer<UInt8>, rowBytes: Int, groupBytes: Int, groups: Int, kernel: Int,
                                    count: Int, weights: UnsafePointer<Int32>, sums: UnsafeMutablePointer<Int32>, sumsStride: Int) {
    var x0 = 0
    while x0 < count {
        // One accumulator per tap column kx (kernel <= 3), so consecutive dot products do not wait on each other.
        var a0 = SIMD8<Int32>(), a1 = SIMD8<Int32>(), a2 = SIMD8<Int32>()
        for ky in 0..<kernel {
            for g in 0..<groups {
                let base = UnsafeRawPointer(rows + ky * rowBytes + g * groupBytes + x0 * 4)
                let w = weights + ky * kernel * groups + g
                a0 = dotProductAccumulate(a0, unsignedBytes: base.loadUnaligned(as: SIMD8<Int32>.self), signedBytes: SIMD8(repeating: w[0]))
                if kernel > 1 {
                    a1 = dotProductAccumulate(a1, unsignedBytes: base.loadUnaligned(fromByteOffset: 4, as: SIMD8<Int32>.self),
                                              signedBytes: SIMD8(repeating: w[groups]))
                    a2 = dotProductAccumulate(a2, unsignedBytes: base.loadUnaligned(fromByteOffset: 8, as: SIMD8<Int32>.self),
                                              signedBytes: SIMD8(repeating: w[2 * groups]))
                }
            }
        }
        let total = a0 &+ a1 &+ a2
        for i in 0..<min(8, count - x0) { sums[(x0 + i) * sumsStride] = total[i] }
        x0 += 8
    }
}
