/// The int16 microkernel of the int8 dense convolutions (`Int8DenseConv`, `Int8Winograd3x3`): int32 dot
/// products of int16 pixels (x - zero point, staged by the caller) with int8 or int16 weights.
///
/// This directory is compiled once per instruction set, as separate modules from the same files
/// (Package.swift): `Int8Microkernels` (the baseline: SSE2 on x86-64, NEON on arm64),
/// `Int8MicrokernelsAVX2` (-target-cpu haswell) and `Int8MicrokernelsAVX512VNNI` (-target-cpu cascadelake,
/// where LLVM fuses `vpmaddwd` + `vpaddd` into `vpdpwssd`). `KernelPath` picks one at run time. So that the
/// copies stay apart when linked into one binary: no file names its module, the entry points are
/// non-generic and `@inline(never)`, and everything they call is inlined into them (a generic left out of
/// line would be emitted as a weak specialisation in every copy, and the linker would keep just one:
/// AVX2 code on the baseline path, or baseline code on the AVX2 path; scripts/check-kernel-isolation.sh
/// checks the linked binary for both).
///
/// Method: the caller stages its input so that the reduction of one output pixel is `segments` contiguous
/// runs of `chunks` x 16 int16 values (one run per kernel row; one run for a 1x1 conv or a Winograd GEMM),
/// and packs the weights [group of 4 outputs][segment][16-value chunk][4 outputs][16]. One vector of 16
/// inputs (one pixel) against one vector of 16 weights (one output channel) accumulates in 8 int32 lanes,
/// reduced horizontally once at the end. The multiply-accumulate step is written per architecture
/// (`multiplyAccumulate`); both give the same exact int32 sums (wrapping), so every copy agrees bit for bit
/// with `referenceQuantizedConv`:
///   - x86-64: pairs of int16 products summed into int32 = one `vpmaddwd` (`vpdpwssd` with VNNI).
///   - arm64 (NEON): widening multiply-accumulate of the low and high halves = `smlal` + `smlal2`.

/// One row of the GEMM: for each of `groups` groups of 4 output channels (weights `groupStride` elements
/// apart) and each of `count` pixels (`pixelStride` int16 apart from `pixels`), the 4 dot products, stored
/// at `sums + x * sumsStride + 4 * group`. Pixel x's reduction runs over `pixels + x * pixelStride +
/// segmentOffsets[s]` for s in 0..<segments, `chunks` x 16 values each.
@inline(never)
public func int16GemmRow(pixels: UnsafePointer<Int16>, pixelStride: Int, count: Int,
                         weights: UnsafePointer<Int8>, groups: Int, groupStride: Int,
                         segmentOffsets: UnsafePointer<Int>, segments: Int, chunks: Int,
                         sums: UnsafeMutablePointer<Int32>, sumsStride: Int) {
    gemmRow(pixels: pixels, pixelStride: pixelStride, count: count, weights: weights, groups: groups, groupStride: groupStride,
            segmentOffsets: segmentOffsets, segments: segments, chunks: chunks, sums: sums, sumsStride: sumsStride)
}

/// The same with int16 weights (Winograd's transformed weights; the direct kernel's on arm64).
@inline(never)
public func int16GemmRow(pixels: UnsafePointer<Int16>, pixelStride: Int, count: Int,
                         weights: UnsafePointer<Int16>, groups: Int, groupStride: Int,
                         segmentOffsets: UnsafePointer<Int>, segments: Int, chunks: Int,
                         sums: UnsafeMutablePointer<Int32>, sumsStride: Int) {
    gemmRow(pixels: pixels, pixelStride: pixelStride, count: count, weights: weights, groups: groups, groupStride: groupStride,
            segmentOffsets: segmentOffsets, segments: segments, chunks: chunks, sums: sums, sumsStride: sumsStride)
}

@inline(__always)
func gemmRow<Weight: MicrokernelWeight>(pixels: UnsafePointer<Int16>, pixelStride: Int, count: Int,
                                         weights: UnsafePointer<Weight>, groups: Int, groupStride: Int,
                                         segmentOffsets: UnsafePointer<Int>, segments: Int, chunks: Int,
                                         sums: UnsafeMutablePointer<Int32>, sumsStride: Int) {
    for group in 0..<groups {
        let groupWeights = weights + group * groupStride
        let out = sums + 4 * group
        var x0 = 0
        while x0 < count {
            // The last tile of a row repeats its final pixel instead of reading past the row.
            let p0 = pixels + min(x0, count - 1) * pixelStride
            let p1 = pixels + min(x0 + 1, count - 1) * pixelStride
            let p2 = pixels + min(x0 + 2, count - 1) * pixelStride
            let s = dotTile(p0, p1, p2, weights: groupWeights, segmentOffsets: segmentOffsets, segments: segments, chunks: chunks)
            UnsafeMutableRawPointer(out + x0 * sumsStride).storeBytes(of: s.0, as: SIMD4<Int32>.self)
            if x0 + 1 < count { UnsafeMutableRawPointer(out + (x0 + 1) * sumsStride).storeBytes(of: s.1, as: SIMD4<Int32>.self) }
            if microkernelPixels > 2 && x0 + 2 < count { UnsafeMutableRawPointer(out + (x0 + 2) * sumsStride).storeBytes(of: s.2, as: SIMD4<Int32>.self) }
            x0 += microkernelPixels
        }
    }
}

#if arch(arm64)
/// acc + the 16 products a[i] * w[i], folded into 8 lanes: NEON `smlal` (low halves) + `smlal2` (high halves).
@inline(__always)
func multiplyAccumulate(_ acc: SIMD8<Int32>, _ a: SIMD16<Int16>, _ w: SIMD16<Int16>) -> SIMD8<Int32> {
    acc &+ SIMD8<Int32>(truncatingIfNeeded: a.lowHalf) &* SIMD8<Int32>(truncatingIfNeeded: w.lowHalf)
        &+ SIMD8<Int32>(truncatingIfNeeded: a.highHalf) &* SIMD8<Int32>(truncatingIfNeeded: w.highHalf)
}
#else
/// acc + the 16 products a[i] * w[i], folded into 8 lanes as adjacent pairs: AVX2 `vpmaddwd` + `vpaddd`.
///
/// The shape matters (checked in the assembly, docs/QUANTIZATION.md): LLVM matches `vpmaddwd` when it
/// sees "multiply two sign-extended 16 x int16 vectors, add the even and odd lanes of the product".
/// Splitting the inputs into even/odd halves first (the textbook form) stops matching as soon as one
/// input vector feeds several multiplies (a register-blocked tile), and
/// `SIMD16<Int32>(truncatingIfNeeded:)` from SIMD16<Int16> is not inlined; `widen` below is both.
@inline(__always)
func multiplyAccumulate(_ acc: SIMD8<Int32>, _ a: SIMD16<Int16>, _ w: SIMD16<Int16>) -> SIMD8<Int32> {
    let products = widen(a) &* widen(w)
    return acc &+ (products.evenHalf &+ products.oddHalf)
}

/// Sign-extends 16 int16 lanes to int32, lane by lane (LLVM turns this into one `vpmovsxwd` per half,
/// or folds it into `vpmaddwd`).
@inline(__always)
func widen(_ a: SIMD16<Int16>) -> SIMD16<Int32> {
    SIMD16<Int32>(Int32(a[0]), Int32(a[1]), Int32(a[2]), Int32(a[3]), Int32(a[4]), Int32(a[5]), Int32(a[6]), Int32(a[7]),
                  Int32(a[8]), Int32(a[9]), Int32(a[10]), Int32(a[11]), Int32(a[12]), Int32(a[13]), Int32(a[14]), Int32(a[15]))
}
#endif

/// [sum of a's lanes, sum of b's, sum of c's, sum of d's].
@inline(__always)
func horizontalSums(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>, _ c: SIMD8<Int32>, _ d: SIMD8<Int32>) -> SIMD4<Int32> {
    let ab = SIMD8<Int32>(lowHalf: a.lowHalf &+ a.highHalf, highHalf: b.lowHalf &+ b.highHalf)
    let cd = SIMD8<Int32>(lowHalf: c.lowHalf &+ c.highHalf, highHalf: d.lowHalf &+ d.highHalf)
    let pairs = SIMD8<Int32>(lowHalf: ab.evenHalf &+ ab.oddHalf, highHalf: cd.evenHalf &+ cd.oddHalf)
    return pairs.evenHalf &+ pairs.oddHalf
}

@inlinable @inline(__always)
public func load16(_ p: UnsafePointer<Int16>) -> SIMD16<Int16> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Int16>.self) }

/// A packed weight type the microkernel reads 16 at a time as int16: int8 (the direct kernel on x86-64)
/// or int16 (the direct kernel on arm64, and the Winograd kernel's transformed weights everywhere).
protocol MicrokernelWeight {
    static func load16(_ p: UnsafePointer<Self>) -> SIMD16<Int16>
}

extension Int8: MicrokernelWeight {
    /// 16 int8 weights sign-extended to int16, lane by lane (one `vpmovsxbw` from memory on AVX2).
    @inline(__always)
    static func load16(_ p: UnsafePointer<Int8>) -> SIMD16<Int16> {
        widenToInt16(UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Int8>.self))
    }
}

extension Int16: MicrokernelWeight {
    /// 16 int16 weights (one `ldp q, q` on arm64, one `vmovdqu` on AVX2).
    @inline(__always)
    static func load16(_ p: UnsafePointer<Int16>) -> SIMD16<Int16> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Int16>.self) }
}

/// Pixels per microkernel call: 3 (`dotTile3x4`) where the registers allow it, 2 (`dotTile2x4`) on
/// x86-64 without VNNI. The 3 x 4 tile needs its 12 accumulators, 3 inputs and a weight in registers; AVX2's
/// `vpmaddwd` also needs a register for its product before the add, the 17th of 16, so LLVM kept one
/// accumulator on the stack and every step waited on a store and reload (perf: the hottest instruction of
/// the int8 engine). VNNI's `vpdpwssd` adds in place and NEON has 32 registers, so both keep 3 x 4.
#if arch(x86_64) && !SONOQUANT_VNNI
let microkernelPixels = 2
#else
let microkernelPixels = 3
#endif

/// The microkernel for this target: dot products of `microkernelPixels` pixels (p0, p1 and, for 3, p2)
/// x 4 output channels; the third result is zero when the tile has 2 pixels.
@inline(__always)
func dotTile<Weight: MicrokernelWeight>(
    _ p0: UnsafePointer<Int16>, _ p1: UnsafePointer<Int16>, _ p2: UnsafePointer<Int16>, weights: UnsafePointer<Weight>,
    segmentOffsets: UnsafePointer<Int>, segments: Int, chunks: Int
) -> (SIMD4<Int32>, SIMD4<Int32>, SIMD4<Int32>) {
    #if arch(x86_64) && !SONOQUANT_VNNI
    let s = dotTile2x4(p0, p1, weights: weights, segmentOffsets: segmentOffsets, segments: segments, chunks: chunks)
    return (s.0, s.1, SIMD4<Int32>())
    #else
    return dotTile3x4(p0, p1, p2, weights: weights, segmentOffsets: segmentOffsets, segments: segments, chunks: chunks)
    #endif
}

/// 2 pixels x 4 output channels: 8 accumulators, 2 inputs, a weight and the product fit 16 registers.
@inline(__always)
func dotTile2x4<Weight: MicrokernelWeight>(
    _ p0: UnsafePointer<Int16>, _ p1: UnsafePointer<Int16>, weights: UnsafePointer<Weight>,
    segmentOffsets: UnsafePointer<Int>, segments: Int, chunks: Int
) -> (SIMD4<Int32>, SIMD4<Int32>) {
    var a00 = SIMD8<Int32>(), a01 = SIMD8<Int32>(), a02 = SIMD8<Int32>(), a03 = SIMD8<Int32>()
    var a10 = SIMD8<Int32>(), a11 = SIMD8<Int32>(), a12 = SIMD8<Int32>(), a13 = SIMD8<Int32>()
    var w = weights
    for segment in 0..<segments {
        let o = segmentOffsets[segment]
        var q0 = p0 + o, q1 = p1 + o
        for _ in 0..<chunks {
            let x0 = load16(q0), x1 = load16(q1)
            q0 += 16; q1 += 16
            let w0 = Weight.load16(w)
            a00 = multiplyAccumulate(a00, x0, w0); a10 = multiplyAccumulate(a10, x1, w0)
            let w1 = Weight.load16(w + 16)
            a01 = multiplyAccumulate(a01, x0, w1); a11 = multiplyAccumulate(a11, x1, w1)
            let w2 = Weight.load16(w + 32)
            a02 = multiplyAccumulate(a02, x0, w2); a12 = multiplyAccumulate(a12, x1, w2)
            let w3 = Weight.load16(w + 48)
            a03 = multiplyAccumulate(a03, x0, w3); a13 = multiplyAccumulate(a13, x1, w3)
            w += 64
        }
    }
    return (horizontalSums(a00, a01, a02, a03), horizontalSums(a10, a11, a12, a13))
}

/// The microkernel: int32 dot products of 3 pixels x 4 output channels over `segments` contiguous runs
/// of `chunks` x 16 values (one run per kernel row). Generic over the weight type, specialised at each
/// call site (both are in this module, and the function is inlined into them).
@inline(__always)
func dotTile3x4<Weight: MicrokernelWeight>(
    _ p0: UnsafePointer<Int16>, _ p1: UnsafePointer<Int16>, _ p2: UnsafePointer<Int16>, weights: UnsafePointer<Weight>,
    segmentOffsets: UnsafePointer<Int>, segments: Int, chunks: Int
) -> (SIMD4<Int32>, SIMD4<Int32>, SIMD4<Int32>) {
    var a00 = SIMD8<Int32>(), a01 = SIMD8<Int32>(), a02 = SIMD8<Int32>(), a03 = SIMD8<Int32>()
    var a10 = SIMD8<Int32>(), a11 = SIMD8<Int32>(), a12 = SIMD8<Int32>(), a13 = SIMD8<Int32>()
    var a20 = SIMD8<Int32>(), a21 = SIMD8<Int32>(), a22 = SIMD8<Int32>(), a23 = SIMD8<Int32>()
    var w = weights
    for segment in 0..<segments {
        let o = segmentOffsets[segment]
        var q0 = p0 + o, q1 = p1 + o, q2 = p2 + o
        for _ in 0..<chunks {
            let x0 = load16(q0), x1 = load16(q1), x2 = load16(q2)
            q0 += 16; q1 += 16; q2 += 16
            let w0 = Weight.load16(w)
            a00 = multiplyAccumulate(a00, x0, w0); a10 = multiplyAccumulate(a10, x1, w0); a20 = multiplyAccumulate(a20, x2, w0)
            let w1 = Weight.load16(w + 16)
            a01 = multiplyAccumulate(a01, x0, w1); a11 = multiplyAccumulate(a11, x1, w1); a21 = multiplyAccumulate(a21, x2, w1)
            let w2 = Weight.load16(w + 32)
            a02 = multiplyAccumulate(a02, x0, w2); a12 = multiplyAccumulate(a12, x1, w2); a22 = multiplyAccumulate(a22, x2, w2)
            let w3 = Weight.load16(w + 48)
            a03 = multiplyAccumulate(a03, x0, w3); a13 = multiplyAccumulate(a13, x1, w3); a23 = multiplyAccumulate(a23, x2, w3)
            w += 64
        }
    }
    return (horizontalSums(a00, a01, a02, a03), horizontalSums(a10, a11, a12, a13), horizontalSums(a20, a21, a22, a23))
}
