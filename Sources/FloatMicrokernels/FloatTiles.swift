/// The float engine's microkernels, compiled once per instruction set (portable and AVX2 + FMA) from these
/// files, like the int8 ones (Sources/Int8Microkernels/Int16DotTiles.swift says how the copies stay apart).
/// `PackedDenseConv`, `PackedWinogradConv` and `PackedDepthwiseConv` (Sources/QuantEngine/FloatKernels)
/// pack the weights and walk the pixels; these compute.

/// The widest panel `floatDenseTile` takes, in 8-lane blocks: 2 (16 output channels, 12 accumulators of 8
/// lanes), or 4 on AVX-512 (32 output channels, 12 accumulators of 16 lanes). `PackedDenseConv` packs its
/// output channels in panels of this width.
#if SONOQUANT_AVX512
public let floatDenseTileBlocks = 4
#else
public let floatDenseTileBlocks = 2
#endif

/// One tile of the dense convolution's indirect GEMM (XNNPACK's igemm): 6 output pixels x one panel of
/// `blocks` 8-lane blocks of output channels (1 or 2; also 3 or 4 on AVX-512), in up to 12 vector
/// accumulators. Each step of K loads the panel's weights and broadcasts one input value per pixel: on
/// AVX2 8 loads per 12 multiply-adds, on AVX-512 with 4 blocks 8 loads per 12 multiply-adds of 16 lanes.
///
/// - inputs[i]: pixel i's input position; tap t of it is at inputs[i] + taps[t], channel c at + c.
/// - outputs[i]: pixel i's output, already at the tile's first output channel; `outputLanes` of them exist
///   (8 x blocks, or fewer in the last panel). Pixels at index >= valid are computed but not stored.
/// - weights: the panel, [tap][input channel][block] vectors; bias: its `blocks` bias vectors.
/// - Sums input channels channelStart..<channelEnd of every tap, starting from the bias or (`accumulate`) from
///   the partial sums already in the outputs; clamps to [lower, upper] only when `finish`.
///
/// Every tile adds each lane's products in the same order (tap, then input channel), so panels of any width
/// give the same bits.
@inline(never)
public func floatDenseTile(inputs: UnsafePointer<UnsafePointer<Float>>, outputs: UnsafePointer<UnsafeMutablePointer<Float>>, valid: Int,
                           weights: UnsafePointer<SIMD8<Float>>, blocks: Int, bias: UnsafePointer<SIMD8<Float>>,
                           taps: UnsafePointer<Int>, tapCount: Int, inChannels: Int, channelStart: Int, channelEnd: Int,
                           outputLanes: Int, accumulate: Bool, finish: Bool, lower: Float, upper: Float) {
    switch blocks {
    case 1:
        tile6x8(inputs, outputs, valid, weights, bias, taps, tapCount, inChannels, channelStart, channelEnd, outputLanes, accumulate, finish, lower, upper)
    case 2:
        #if SONOQUANT_AVX512
        tile6x16Wide(inputs, outputs, valid, weights, bias, taps, tapCount, inChannels, channelStart, channelEnd, outputLanes, accumulate, finish, lower, upper)
        #else
        tile6x16(inputs, outputs, valid, weights, bias, taps, tapCount, inChannels, channelStart, channelEnd, outputLanes, accumulate, finish, lower, upper)
        #endif
    #if SONOQUANT_AVX512
    case 3:
        tile6x24Wide(inputs, outputs, valid, weights, bias, taps, tapCount, inChannels, channelStart, channelEnd, outputLanes, accumulate, finish, lower, upper)
    case 4:
        tile6x32Wide(inputs, outputs, valid, weights, bias, taps, tapCount, inChannels, channelStart, channelEnd, outputLanes, accumulate, finish, lower, upper)
    #endif
    default:
        preconditionFailure("floatDenseTile: a panel of \(blocks) blocks; this build's panels have 1 to \(floatDenseTileBlocks)")
    }
}

@inline(__always)
func tile6x16(_ inputs: UnsafePointer<UnsafePointer<Float>>, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>>, _ valid: Int,
              _ weights: UnsafePointer<SIMD8<Float>>, _ bias: UnsafePointer<SIMD8<Float>>, _ taps: UnsafePointer<Int>, _ tapCount: Int,
              _ inChannels: Int, _ channelStart: Int, _ channelEnd: Int, _ outputLanes: Int, _ accumulate: Bool, _ finish: Bool,
              _ lower: Float, _ upper: Float) {
    let rest = outputLanes - 8  // lanes of the second block that exist
    let o0 = outputs[0], o1 = outputs[1], o2 = outputs[2], o3 = outputs[3], o4 = outputs[4], o5 = outputs[5]
    var a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51: SIMD8<Float>
    if accumulate {
        a00 = loadVector(o0); a01 = loadLanes(o0 + 8, count: rest)
        a10 = loadVector(o1); a11 = loadLanes(o1 + 8, count: rest)
        a20 = loadVector(o2); a21 = loadLanes(o2 + 8, count: rest)
        a30 = loadVector(o3); a31 = loadLanes(o3 + 8, count: rest)
        a40 = loadVector(o4); a41 = loadLanes(o4 + 8, count: rest)
        a50 = loadVector(o5); a51 = loadLanes(o5 + 8, count: rest)
    } else {
        let bias0 = bias[0], bias1 = bias[1]
        a00 = bias0; a01 = bias1; a10 = bias0; a11 = bias1; a20 = bias0; a21 = bias1
        a30 = bias0; a31 = bias1; a40 = bias0; a41 = bias1; a50 = bias0; a51 = bias1
    }
    let p0 = inputs[0], p1 = inputs[1], p2 = inputs[2], p3 = inputs[3], p4 = inputs[4], p5 = inputs[5]
    for t in 0..<tapCount {
        let offset = taps[t]
        let q0 = p0 + offset, q1 = p1 + offset, q2 = p2 + offset, q3 = p3 + offset, q4 = p4 + offset, q5 = p5 + offset
        var w = weights + (t * inChannels + channelStart) * 2
        for c in channelStart..<channelEnd {
            let w0 = w[0], w1 = w[1]
            w += 2
            let x0 = SIMD8<Float>(repeating: q0[c]); a00 = multiplyAdd(a00, x0, w0); a01 = multiplyAdd(a01, x0, w1)
            let x1 = SIMD8<Float>(repeating: q1[c]); a10 = multiplyAdd(a10, x1, w0); a11 = multiplyAdd(a11, x1, w1)
            let x2 = SIMD8<Float>(repeating: q2[c]); a20 = multiplyAdd(a20, x2, w0); a21 = multiplyAdd(a21, x2, w1)
            let x3 = SIMD8<Float>(repeating: q3[c]); a30 = multiplyAdd(a30, x3, w0); a31 = multiplyAdd(a31, x3, w1)
            let x4 = SIMD8<Float>(repeating: q4[c]); a40 = multiplyAdd(a40, x4, w0); a41 = multiplyAdd(a41, x4, w1)
            let x5 = SIMD8<Float>(repeating: q5[c]); a50 = multiplyAdd(a50, x5, w0); a51 = multiplyAdd(a51, x5, w1)
        }
    }
    if finish {
        a00 = clamp(a00, lower, upper); a01 = clamp(a01, lower, upper); a10 = clamp(a10, lower, upper); a11 = clamp(a11, lower, upper)
        a20 = clamp(a20, lower, upper); a21 = clamp(a21, lower, upper); a30 = clamp(a30, lower, upper); a31 = clamp(a31, lower, upper)
        a40 = clamp(a40, lower, upper); a41 = clamp(a41, lower, upper); a50 = clamp(a50, lower, upper); a51 = clamp(a51, lower, upper)
    }
    storeVector(a00, o0); storeLanes(a01, o0 + 8, count: rest)
    if valid > 1 { storeVector(a10, o1); storeLanes(a11, o1 + 8, count: rest) }
    if valid > 2 { storeVector(a20, o2); storeLanes(a21, o2 + 8, count: rest) }
    if valid > 3 { storeVector(a30, o3); storeLanes(a31, o3 + 8, count: rest) }
    if valid > 4 { storeVector(a40, o4); storeLanes(a41, o4 + 8, count: rest) }
    if valid > 5 { storeVector(a50, o5); storeLanes(a51, o5 + 8, count: rest) }
}

#if SONOQUANT_AVX512
/// `tile6x16` with one 16-lane accumulator per pixel (the AVX-512 build): the panel's two weight vectors sit
/// side by side, so each step of K is one 16-lane load, 6 broadcasts and 6 multiply-adds on 512-bit
/// registers instead of 12 on 256-bit ones. Every lane does the same multiply-adds in the same order as in
/// `tile6x16`, so the two give the same bits; CPUs with full-width AVX-512 units (Zen 5, Intel server cores)
/// do the work in fewer cycles.
@inline(__always)
func tile6x16Wide(_ inputs: UnsafePointer<UnsafePointer<Float>>, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>>, _ valid: Int,
                  _ weights: UnsafePointer<SIMD8<Float>>, _ bias: UnsafePointer<SIMD8<Float>>, _ taps: UnsafePointer<Int>, _ tapCount: Int,
                  _ inChannels: Int, _ channelStart: Int, _ channelEnd: Int, _ outputLanes: Int, _ accumulate: Bool, _ finish: Bool,
                  _ lower: Float, _ upper: Float) {
    let rest = outputLanes - 8  // lanes of the second block that exist
    let o0 = outputs[0], o1 = outputs[1], o2 = outputs[2], o3 = outputs[3], o4 = outputs[4], o5 = outputs[5]
    @inline(__always) func load(_ o: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
        SIMD16(lowHalf: loadVector(o), highHalf: loadLanes(o + 8, count: rest))
    }
    var a0, a1, a2, a3, a4, a5: SIMD16<Float>
    if accumulate {
        a0 = load(o0); a1 = load(o1); a2 = load(o2); a3 = load(o3); a4 = load(o4); a5 = load(o5)
    } else {
        let b = SIMD16(lowHalf: bias[0], highHalf: bias[1])
        a0 = b; a1 = b; a2 = b; a3 = b; a4 = b; a5 = b
    }
    let p0 = inputs[0], p1 = inputs[1], p2 = inputs[2], p3 = inputs[3], p4 = inputs[4], p5 = inputs[5]
    for t in 0..<tapCount {
        let offset = taps[t]
        let q0 = p0 + offset, q1 = p1 + offset, q2 = p2 + offset, q3 = p3 + offset, q4 = p4 + offset, q5 = p5 + offset
        var w = UnsafeRawPointer(weights + (t * inChannels + channelStart) * 2)
        for c in channelStart..<channelEnd {
            let wc = w.loadUnaligned(as: SIMD16<Float>.self)
            w += MemoryLayout<SIMD16<Float>>.size
            a0 = a0.addingProduct(SIMD16(repeating: q0[c]), wc)
            a1 = a1.addingProduct(SIMD16(repeating: q1[c]), wc)
            a2 = a2.addingProduct(SIMD16(repeating: q2[c]), wc)
            a3 = a3.addingProduct(SIMD16(repeating: q3[c]), wc)
            a4 = a4.addingProduct(SIMD16(repeating: q4[c]), wc)
            a5 = a5.addingProduct(SIMD16(repeating: q5[c]), wc)
        }
    }
    @inline(__always) func store(_ a: SIMD16<Float>, _ o: UnsafeMutablePointer<Float>) {
        var low = a.lowHalf, high = a.highHalf
        if finish { low = clamp(low, lower, upper); high = clamp(high, lower, upper) }
        storeVector(low, o); storeLanes(high, o + 8, count: rest)
    }
    store(a0, o0)
    if valid > 1 { store(a1, o1) }
    if valid > 2 { store(a2, o2) }
    if valid > 3 { store(a3, o3) }
    if valid > 4 { store(a4, o4) }
    if valid > 5 { store(a5, o5) }
}

/// 6 pixels x 32 output channels (a panel of 4 blocks, AVX-512): two 16-lane accumulators per pixel, so each
/// step of K is two 16-lane weight loads, 6 broadcasts and 12 multiply-adds, enough independent sums to keep
/// both of Zen 5's 512-bit FMA pipes busy (`tile6x16Wide` has 6, fewer than the pipes' latency hides).
@inline(__always)
func tile6x32Wide(_ inputs: UnsafePointer<UnsafePointer<Float>>, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>>, _ valid: Int,
                  _ weights: UnsafePointer<SIMD8<Float>>, _ bias: UnsafePointer<SIMD8<Float>>, _ taps: UnsafePointer<Int>, _ tapCount: Int,
                  _ inChannels: Int, _ channelStart: Int, _ channelEnd: Int, _ outputLanes: Int, _ accumulate: Bool, _ finish: Bool,
                  _ lower: Float, _ upper: Float) {
    let rest = outputLanes - 24  // lanes of the fourth block that exist
    let o0 = outputs[0], o1 = outputs[1], o2 = outputs[2], o3 = outputs[3], o4 = outputs[4], o5 = outputs[5]
    @inline(__always) func loadLow(_ o: UnsafeMutablePointer<Float>) -> SIMD16<Float> { SIMD16(lowHalf: loadVector(o), highHalf: loadVector(o + 8)) }
    @inline(__always) func loadHigh(_ o: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
        SIMD16(lowHalf: loadVector(o + 16), highHalf: loadLanes(o + 24, count: rest))
    }
    var a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5: SIMD16<Float>
    if accumulate {
        a0 = loadLow(o0); a1 = loadLow(o1); a2 = loadLow(o2); a3 = loadLow(o3); a4 = loadLow(o4); a5 = loadLow(o5)
        b0 = loadHigh(o0); b1 = loadHigh(o1); b2 = loadHigh(o2); b3 = loadHigh(o3); b4 = loadHigh(o4); b5 = loadHigh(o5)
    } else {
        let low = SIMD16(lowHalf: bias[0], highHalf: bias[1]), high = SIMD16(lowHalf: bias[2], highHalf: bias[3])
        a0 = low; a1 = low; a2 = low; a3 = low; a4 = low; a5 = low
        b0 = high; b1 = high; b2 = high; b3 = high; b4 = high; b5 = high
    }
    let p0 = inputs[0], p1 = inputs[1], p2 = inputs[2], p3 = inputs[3], p4 = inputs[4], p5 = inputs[5]
    for t in 0..<tapCount {
        let offset = taps[t]
        let q0 = p0 + offset, q1 = p1 + offset, q2 = p2 + offset, q3 = p3 + offset, q4 = p4 + offset, q5 = p5 + offset
        var w = UnsafeRawPointer(weights + (t * inChannels + channelStart) * 4)
        for c in channelStart..<channelEnd {
            let wl = w.loadUnaligned(as: SIMD16<Float>.self), wh = w.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            w += 2 * MemoryLayout<SIMD16<Float>>.size
            let x0 = SIMD16<Float>(repeating: q0[c]); a0 = a0.addingProduct(x0, wl); b0 = b0.addingProduct(x0, wh)
            let x1 = SIMD16<Float>(repeating: q1[c]); a1 = a1.addingProduct(x1, wl); b1 = b1.addingProduct(x1, wh)
            let x2 = SIMD16<Float>(repeating: q2[c]); a2 = a2.addingProduct(x2, wl); b2 = b2.addingProduct(x2, wh)
            let x3 = SIMD16<Float>(repeating: q3[c]); a3 = a3.addingProduct(x3, wl); b3 = b3.addingProduct(x3, wh)
            let x4 = SIMD16<Float>(repeating: q4[c]); a4 = a4.addingProduct(x4, wl); b4 = b4.addingProduct(x4, wh)
            let x5 = SIMD16<Float>(repeating: q5[c]); a5 = a5.addingProduct(x5, wl); b5 = b5.addingProduct(x5, wh)
        }
    }
    @inline(__always) func store(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ o: UnsafeMutablePointer<Float>) {
        var (l0, l1, l2, l3) = (a.lowHalf, a.highHalf, b.lowHalf, b.highHalf)
        if finish { l0 = clamp(l0, lower, upper); l1 = clamp(l1, lower, upper); l2 = clamp(l2, lower, upper); l3 = clamp(l3, lower, upper) }
        storeVector(l0, o); storeVector(l1, o + 8); storeVector(l2, o + 16); storeLanes(l3, o + 24, count: rest)
    }
    store(a0, b0, o0)
    if valid > 1 { store(a1, b1, o1) }
    if valid > 2 { store(a2, b2, o2) }
    if valid > 3 { store(a3, b3, o3) }
    if valid > 4 { store(a4, b4, o4) }
    if valid > 5 { store(a5, b5, o5) }
}

/// 12 pixels x 16 output channels (a panel of 2 blocks, AVX-512): `tile6x16Wide` for two tiles of 6 pixels at
/// once, so 12 16-lane accumulators instead of 6 keep both FMA pipes busy (the layers with 16 output channels,
/// decoder block 4's, ran at about 40% of the rate of the wide ones). One weight load feeds 12 multiply-adds.
/// Each lane's sum is formed in the same order as in the 6-pixel tiles, so the bits are theirs. `valid` counts
/// the 12 pixels: the first tile's 6 are always stored, the second's up to `valid - 6`.
#if SONOQUANT_AVX512
@inline(never)
public func floatDenseTile12x16(inputs: UnsafePointer<UnsafePointer<Float>>, outputs: UnsafePointer<UnsafeMutablePointer<Float>>, valid: Int,
                                weights: UnsafePointer<SIMD8<Float>>, blocks: Int, bias: UnsafePointer<SIMD8<Float>>,
                                taps: UnsafePointer<Int>, tapCount: Int, inChannels: Int, channelStart: Int, channelEnd: Int,
                                outputLanes: Int, accumulate: Bool, finish: Bool, lower: Float, upper: Float) {
    precondition(blocks == 2, "floatDenseTile12x16: the panel must have 2 blocks")
    let rest = outputLanes - 8  // lanes of the second block that exist
    @inline(__always) func load(_ o: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
        SIMD16(lowHalf: loadVector(o), highHalf: loadLanes(o + 8, count: rest))
    }
    let o0 = outputs[0], o1 = outputs[1], o2 = outputs[2], o3 = outputs[3], o4 = outputs[4], o5 = outputs[5]
    let o6 = outputs[6], o7 = outputs[7], o8 = outputs[8], o9 = outputs[9], o10 = outputs[10], o11 = outputs[11]
    var a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11: SIMD16<Float>
    if accumulate {
        a0 = load(o0); a1 = load(o1); a2 = load(o2); a3 = load(o3); a4 = load(o4); a5 = load(o5)
        a6 = load(o6); a7 = load(o7); a8 = load(o8); a9 = load(o9); a10 = load(o10); a11 = load(o11)
    } else {
        let b = SIMD16(lowHalf: bias[0], highHalf: bias[1])
        a0 = b; a1 = b; a2 = b; a3 = b; a4 = b; a5 = b; a6 = b; a7 = b; a8 = b; a9 = b; a10 = b; a11 = b
    }
    let p0 = inputs[0], p1 = inputs[1], p2 = inputs[2], p3 = inputs[3], p4 = inputs[4], p5 = inputs[5]
    let p6 = inputs[6], p7 = inputs[7], p8 = inputs[8], p9 = inputs[9], p10 = inputs[10], p11 = inputs[11]
    for t in 0..<tapCount {
        let offset = taps[t]
        let q0 = p0 + offset, q1 = p1 + offset, q2 = p2 + offset, q3 = p3 + offset, q4 = p4 + offset, q5 = p5 + offset
        let q6 = p6 + offset, q7 = p7 + offset, q8 = p8 + offset, q9 = p9 + offset, q10 = p10 + offset, q11 = p11 + offset
        var w = UnsafeRawPointer(weights + (t * inChannels + channelStart) * 2)
        for c in channelStart..<channelEnd {
            let wc = w.loadUnaligned(as: SIMD16<Float>.self)
            w += MemoryLayout<SIMD16<Float>>.size
            a0 = a0.addingProduct(SIMD16(repeating: q0[c]), wc)
            a1 = a1.addingProduct(SIMD16(repeating: q1[c]), wc)
            a2 = a2.addingProduct(SIMD16(repeating: q2[c]), wc)
            a3 = a3.addingProduct(SIMD16(repeating: q3[c]), wc)
            a4 = a4.addingProduct(SIMD16(repeating: q4[c]), wc)
            a5 = a5.addingProduct(SIMD16(repeating: q5[c]), wc)
            a6 = a6.addingProduct(SIMD16(repeating: q6[c]), wc)
            a7 = a7.addingProduct(SIMD16(repeating: q7[c]), wc)
            a8 = a8.addingProduct(SIMD16(repeating: q8[c]), wc)
            a9 = a9.addingProduct(SIMD16(repeating: q9[c]), wc)
            a10 = a10.addingProduct(SIMD16(repeating: q10[c]), wc)
            a11 = a11.addingProduct(SIMD16(repeating: q11[c]), wc)
        }
    }
    @inline(__always) func store(_ a: SIMD16<Float>, _ o: UnsafeMutablePointer<Float>) {
        var low = a.lowHalf, high = a.highHalf
        if finish { low = clamp(low, lower, upper); high = clamp(high, lower, upper) }
        storeVector(low, o); storeLanes(high, o + 8, count: rest)
    }
    store(a0, o0); store(a1, o1); store(a2, o2); store(a3, o3); store(a4, o4); store(a5, o5)
    if valid > 6 { store(a6, o6) }
    if valid > 7 { store(a7, o7) }
    if valid > 8 { store(a8, o8) }
    if valid > 9 { store(a9, o9) }
    if valid > 10 { store(a10, o10) }
    if valid > 11 { store(a11, o11) }
}
#endif

/// 6 pixels x 24 output channels (a last panel of 3 blocks, AVX-512): a 16-lane and an 8-lane accumulator
/// per pixel.
@inline(__always)
func tile6x24Wide(_ inputs: UnsafePointer<UnsafePointer<Float>>, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>>, _ valid: Int,
                  _ weights: UnsafePointer<SIMD8<Float>>, _ bias: UnsafePointer<SIMD8<Float>>, _ taps: UnsafePointer<Int>, _ tapCount: Int,
                  _ inChannels: Int, _ channelStart: Int, _ channelEnd: Int, _ outputLanes: Int, _ accumulate: Bool, _ finish: Bool,
                  _ lower: Float, _ upper: Float) {
    let rest = outputLanes - 16  // lanes of the third block that exist
    let o0 = outputs[0], o1 = outputs[1], o2 = outputs[2], o3 = outputs[3], o4 = outputs[4], o5 = outputs[5]
    @inline(__always) func loadLow(_ o: UnsafeMutablePointer<Float>) -> SIMD16<Float> { SIMD16(lowHalf: loadVector(o), highHalf: loadVector(o + 8)) }
    var a0, a1, a2, a3, a4, a5: SIMD16<Float>
    var b0, b1, b2, b3, b4, b5: SIMD8<Float>
    if accumulate {
        a0 = loadLow(o0); a1 = loadLow(o1); a2 = loadLow(o2); a3 = loadLow(o3); a4 = loadLow(o4); a5 = loadLow(o5)
        b0 = loadLanes(o0 + 16, count: rest); b1 = loadLanes(o1 + 16, count: rest); b2 = loadLanes(o2 + 16, count: rest)
        b3 = loadLanes(o3 + 16, count: rest); b4 = loadLanes(o4 + 16, count: rest); b5 = loadLanes(o5 + 16, count: rest)
    } else {
        let low = SIMD16(lowHalf: bias[0], highHalf: bias[1]), high = bias[2]
        a0 = low; a1 = low; a2 = low; a3 = low; a4 = low; a5 = low
        b0 = high; b1 = high; b2 = high; b3 = high; b4 = high; b5 = high
    }
    let p0 = inputs[0], p1 = inputs[1], p2 = inputs[2], p3 = inputs[3], p4 = inputs[4], p5 = inputs[5]
    for t in 0..<tapCount {
        let offset = taps[t]
        let q0 = p0 + offset, q1 = p1 + offset, q2 = p2 + offset, q3 = p3 + offset, q4 = p4 + offset, q5 = p5 + offset
        var w = UnsafeRawPointer(weights + (t * inChannels + channelStart) * 3)
        for c in channelStart..<channelEnd {
            let wl = w.loadUnaligned(as: SIMD16<Float>.self), wh = w.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
            w += 3 * MemoryLayout<SIMD8<Float>>.size
            let x0 = q0[c]; a0 = a0.addingProduct(SIMD16(repeating: x0), wl); b0 = b0.addingProduct(SIMD8(repeating: x0), wh)
            let x1 = q1[c]; a1 = a1.addingProduct(SIMD16(repeating: x1), wl); b1 = b1.addingProduct(SIMD8(repeating: x1), wh)
            let x2 = q2[c]; a2 = a2.addingProduct(SIMD16(repeating: x2), wl); b2 = b2.addingProduct(SIMD8(repeating: x2), wh)
            let x3 = q3[c]; a3 = a3.addingProduct(SIMD16(repeating: x3), wl); b3 = b3.addingProduct(SIMD8(repeating: x3), wh)
            let x4 = q4[c]; a4 = a4.addingProduct(SIMD16(repeating: x4), wl); b4 = b4.addingProduct(SIMD8(repeating: x4), wh)
            let x5 = q5[c]; a5 = a5.addingProduct(SIMD16(repeating: x5), wl); b5 = b5.addingProduct(SIMD8(repeating: x5), wh)
        }
    }
    @inline(__always) func store(_ a: SIMD16<Float>, _ b: SIMD8<Float>, _ o: UnsafeMutablePointer<Float>) {
        var (l0, l1, l2) = (a.lowHalf, a.highHalf, b)
        if finish { l0 = clamp(l0, lower, upper); l1 = clamp(l1, lower, upper); l2 = clamp(l2, lower, upper) }
        storeVector(l0, o); storeVector(l1, o + 8); storeLanes(l2, o + 16, count: rest)
    }
    store(a0, b0, o0)
    if valid > 1 { store(a1, b1, o1) }
    if valid > 2 { store(a2, b2, o2) }
    if valid > 3 { store(a3, b3, o3) }
    if valid > 4 { store(a4, b4, o4) }
    if valid > 5 { store(a5, b5, o5) }
}
#endif

/// 6 pixels x 8 output channels: the last panel when it has a single block (e.g. 24 channels).
@inline(__always)
func tile6x8(_ inputs: UnsafePointer<UnsafePointer<Float>>, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>>, _ valid: Int,
             _ weights: UnsafePointer<SIMD8<Float>>, _ bias: UnsafePointer<SIMD8<Float>>, _ taps: UnsafePointer<Int>, _ tapCount: Int,
             _ inChannels: Int, _ channelStart: Int, _ channelEnd: Int, _ outputLanes: Int, _ accumulate: Bool, _ finish: Bool,
             _ lower: Float, _ upper: Float) {
    let count = outputLanes
    let o0 = outputs[0], o1 = outputs[1], o2 = outputs[2], o3 = outputs[3], o4 = outputs[4], o5 = outputs[5]
    var a0, a1, a2, a3, a4, a5: SIMD8<Float>
    if accumulate {
        a0 = loadLanes(o0, count: count); a1 = loadLanes(o1, count: count)
        a2 = loadLanes(o2, count: count); a3 = loadLanes(o3, count: count)
        a4 = loadLanes(o4, count: count); a5 = loadLanes(o5, count: count)
    } else {
        let bias0 = bias[0]
        a0 = bias0; a1 = bias0; a2 = bias0; a3 = bias0; a4 = bias0; a5 = bias0
    }
    let p0 = inputs[0], p1 = inputs[1], p2 = inputs[2], p3 = inputs[3], p4 = inputs[4], p5 = inputs[5]
    for t in 0..<tapCount {
        let offset = taps[t]
        let q0 = p0 + offset, q1 = p1 + offset, q2 = p2 + offset, q3 = p3 + offset, q4 = p4 + offset, q5 = p5 + offset
        var w = weights + t * inChannels + channelStart
        for c in channelStart..<channelEnd {
            let w0 = w[0]
            w += 1
            a0 = multiplyAdd(a0, SIMD8<Float>(repeating: q0[c]), w0)
            a1 = multiplyAdd(a1, SIMD8<Float>(repeating: q1[c]), w0)
            a2 = multiplyAdd(a2, SIMD8<Float>(repeating: q2[c]), w0)
            a3 = multiplyAdd(a3, SIMD8<Float>(repeating: q3[c]), w0)
            a4 = multiplyAdd(a4, SIMD8<Float>(repeating: q4[c]), w0)
            a5 = multiplyAdd(a5, SIMD8<Float>(repeating: q5[c]), w0)
        }
    }
    if finish {
        a0 = clamp(a0, lower, upper); a1 = clamp(a1, lower, upper); a2 = clamp(a2, lower, upper)
        a3 = clamp(a3, lower, upper); a4 = clamp(a4, lower, upper); a5 = clamp(a5, lower, upper)
    }
    storeLanes(a0, o0, count: count)
    if valid > 1 { storeLanes(a1, o1, count: count) }
    if valid > 2 { storeLanes(a2, o2, count: count) }
    if valid > 3 { storeLanes(a3, o3, count: count) }
    if valid > 4 { storeLanes(a4, o4, count: count) }
    if valid > 5 { storeLanes(a5, o5, count: count) }
}

/// One output row of a depthwise 3x3 convolution for one block of 8 channels: `count` pixels, input
/// windows centred at `input + x * inputStep` (taps at `taps[0..<9]` from the centre), outputs at
/// `output + x * outputStep`; `weights` holds the block's 9 tap vectors.
@inline(never)
public func floatDepthwise3x3Row(input: UnsafePointer<Float>, inputStep: Int, output: UnsafeMutablePointer<Float>, outputStep: Int, count: Int,
                                 taps: UnsafePointer<Int>, weights: UnsafePointer<SIMD8<Float>>, bias: SIMD8<Float>, lower: Float, upper: Float) {
    let t0 = taps[0], t1 = taps[1], t2 = taps[2], t3 = taps[3], t5 = taps[5], t6 = taps[6], t7 = taps[7], t8 = taps[8]
    let w0 = weights[0], w1 = weights[1], w2 = weights[2], w3 = weights[3], w4 = weights[4]
    let w5 = weights[5], w6 = weights[6], w7 = weights[7], w8 = weights[8]
    var x = input, y = output
    for _ in 0..<count {
        var acc = multiplyAdd(bias, loadVector(x + t0), w0)
        acc = multiplyAdd(acc, loadVector(x + t1), w1)
        acc = multiplyAdd(acc, loadVector(x + t2), w2)
        acc = multiplyAdd(acc, loadVector(x + t3), w3)
        acc = multiplyAdd(acc, loadVector(x), w4)
        acc = multiplyAdd(acc, loadVector(x + t5), w5)
        acc = multiplyAdd(acc, loadVector(x + t6), w6)
        acc = multiplyAdd(acc, loadVector(x + t7), w7)
        acc = multiplyAdd(acc, loadVector(x + t8), w8)
        storeVector(clamp(acc, lower, upper), y)
        x += inputStep
        y += outputStep
    }
}
