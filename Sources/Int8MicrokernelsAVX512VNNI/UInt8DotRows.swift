import X86DotProductIntrinsics

/// The 4-way dot-product microkernel of the int8 dense convolutions on AVX-512 VNNI (`vpdpbusd`: each int32
/// lane adds the 4 products of 4 unsigned bytes with 4 signed bytes, twice the products per instruction of
/// the int16 kernel's `vpmaddwd`/`vpdpwssd`). `Int8DotProductConv` stages and packs for it.
///
/// Layout ("broadcast" GEMM, as MLAS and oneDNN do it): the caller stages pixels as unsigned bytes x + 128
/// (see `Int8DotProductConv` for the exact correction in the bias), channels padded to a multiple of 4, so
/// the reduction of one output pixel is `segments` contiguous runs of `steps` x 4 bytes (one run per kernel
/// row). Weights are packed per block of 16 output channels as [segment][step][16 outputs][4 bytes]: one
/// step is two 32-byte weight vectors (8 outputs x 4 bytes each), and each pixel's 4 bytes of that step are
/// broadcast to all 8 lanes. An accumulator then holds 8 finished output channels of one pixel: no
/// horizontal sums. Tile: 8 pixels x 16 outputs = 16 accumulators, which AVX-512VL's 32 ymm registers hold
/// with the weights and broadcasts.
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
    while x0 < count {
        // The last tile of a row repeats its final pixel instead of reading past the row.
        @inline(__always) func pixel(_ i: Int) -> UnsafePointer<UInt8> { pixels + min(x0 + i, count - 1) * pixelStride }
        let p0 = pixel(0), p1 = pixel(1), p2 = pixel(2), p3 = pixel(3), p4 = pixel(4), p5 = pixel(5), p6 = pixel(6), p7 = pixel(7)
        var a00 = SIMD8<Int32>(), a01 = SIMD8<Int32>(), a10 = SIMD8<Int32>(), a11 = SIMD8<Int32>()
        var a20 = SIMD8<Int32>(), a21 = SIMD8<Int32>(), a30 = SIMD8<Int32>(), a31 = SIMD8<Int32>()
        var a40 = SIMD8<Int32>(), a41 = SIMD8<Int32>(), a50 = SIMD8<Int32>(), a51 = SIMD8<Int32>()
        var a60 = SIMD8<Int32>(), a61 = SIMD8<Int32>(), a70 = SIMD8<Int32>(), a71 = SIMD8<Int32>()
        var w = UnsafeRawPointer(weights)
        for segment in 0..<segments {
            let o = segmentOffsets[segment]
            var i = o
            for _ in 0..<steps {
                let w0 = w.loadUnaligned(as: SIMD8<Int32>.self), w1 = w.loadUnaligned(fromByteOffset: 32, as: SIMD8<Int32>.self)
                w += 64
                var b = broadcast4(p0 + i)
                a00 = dotProductAccumulate(a00, unsignedBytes: b, signedBytes: w0); a01 = dotProductAccumulate(a01, unsignedBytes: b, signedBytes: w1)
                b = broadcast4(p1 + i)
                a10 = dotProductAccumulate(a10, unsignedBytes: b, signedBytes: w0); a11 = dotProductAccumulate(a11, unsignedBytes: b, signedBytes: w1)
                b = broadcast4(p2 + i)
                a20 = dotProductAccumulate(a20, unsignedBytes: b, signedBytes: w0); a21 = dotProductAccumulate(a21, unsignedBytes: b, signedBytes: w1)
                b = broadcast4(p3 + i)
                a30 = dotProductAccumulate(a30, unsignedBytes: b, signedBytes: w0); a31 = dotProductAccumulate(a31, unsignedBytes: b, signedBytes: w1)
                b = broadcast4(p4 + i)
                a40 = dotProductAccumulate(a40, unsignedBytes: b, signedBytes: w0); a41 = dotProductAccumulate(a41, unsignedBytes: b, signedBytes: w1)
                b = broadcast4(p5 + i)
                a50 = dotProductAccumulate(a50, unsignedBytes: b, signedBytes: w0); a51 = dotProductAccumulate(a51, unsignedBytes: b, signedBytes: w1)
                b = broadcast4(p6 + i)
                a60 = dotProductAccumulate(a60, unsignedBytes: b, signedBytes: w0); a61 = dotProductAccumulate(a61, unsignedBytes: b, signedBytes: w1)
                b = broadcast4(p7 + i)
                a70 = dotProductAccumulate(a70, unsignedBytes: b, signedBytes: w0); a71 = dotProductAccumulate(a71, unsignedBytes: b, signedBytes: w1)
                i += 4
            }
        }
        @inline(__always) func store(_ i: Int, _ low: SIMD8<Int32>, _ high: SIMD8<Int32>) {
            guard x0 + i < count else { return }
            let out = UnsafeMutableRawPointer(sums + (x0 + i) * sumsStride)
            out.storeBytes(of: low, as: SIMD8<Int32>.self)
            out.storeBytes(of: high, toByteOffset: 32, as: SIMD8<Int32>.self)
        }
        store(0, a00, a01); store(1, a10, a11); store(2, a20, a21); store(3, a30, a31)
        store(4, a40, a41); store(5, a50, a51); store(6, a60, a61); store(7, a70, a71)
        x0 += 8
    }
}

/// The 4 bytes at p in every int32 lane (`vpbroadcastd` from memory).
@inline(__always)
func broadcast4(_ p: UnsafePointer<UInt8>) -> SIMD8<Int32> {
    SIMD8<Int32>(repeating: UnsafeRawPointer(p).loadUnaligned(as: Int32.self))
}
