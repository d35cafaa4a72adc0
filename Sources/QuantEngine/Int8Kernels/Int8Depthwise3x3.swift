/// int8 depthwise 3x3 convolution, stride 1 or 2 (MobileNetV2's per-channel filters).
///
/// The input is staged as int16 (x - zero point) with a one-pixel zero border and channels padded to a
/// multiple of 16, so a 16-channel slice of any tap is one vector load. Per output pixel and 16 channels:
/// nine widening multiply-adds into int32 (`vpmulld` on AVX2, `smlal` on NEON), then the shared
/// requantization epilogue. Rows are split across threads. Checked bit for bit against
/// `referenceQuantizedConv`.
public final class Int8Depthwise3x3 {
    public let stride: Int
    public let channels: Int
    /// Channels rounded up to a multiple of 16.
    let stagedChannels: Int
    /// [tap][stagedChannels], int32 (already widened: the loop is load-bound on the input).
    let weights: [Int32]
    let requant: PackedRequantization

    public init(_ p: QuantizedConvParameters) {
        precondition(p.kind == .depthwise && p.kernel == 3, "Int8Depthwise3x3: needs a depthwise 3x3 conv")
        stride = p.stride; channels = p.outChannels
        stagedChannels = (p.outChannels + 15) & ~15
        var packed = [Int32](repeating: 0, count: 9 * stagedChannels)
        for c in 0..<p.outChannels { for t in 0..<9 { packed[t * stagedChannels + c] = Int32(p.weights[c * 9 + t]) } }
        weights = packed
        requant = PackedRequantization(p, paddedCount: stagedChannels)
    }

    public func outputSize(_ n: Int) -> Int { (n + 2 - 3) / stride + 1 }

    public func scratchCount(height: Int, width: Int) -> Int { (height + 2) * (width + 2) * stagedChannels }

    public func run(input: UnsafePointer<Int8>, height: Int, width: Int, output: UnsafeMutablePointer<Int8>,
                    scratch: UnsafeMutablePointer<Int16>, threads: Int, inputZeroPoint: Int32) {
        let cp = stagedChannels
        stageInt16(input, height: height, width: width, channels: channels, zeroPoint: inputZeroPoint,
                   pad: 1, paddedChannels: cp, into: scratch, threads: threads)
        let outH = outputSize(height), outW = outputSize(width)
        let paddedWidth = width + 2
        let staged = UnsafePointer(scratch)
        let (stride, channels) = (self.stride, self.channels)
        let requant = self.requant  // a local copy: the hot loop reads it without touching `self`
        weights.withUnsafeBufferPointer { w in
        requant.withPointers { requant in
            let w = w.baseAddress!
            parallelChunks(outH, threads: threads) { rows in
                // int32 sums of one row x 16 channels, requantized by the shared row epilogue.
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: outW * 16) { sums in
                    let sums = sums.baseAddress!
                    for oy in rows {
                        var c0 = 0
                        while c0 < channels {
                            for ox in 0..<outW {
                                let origin = staged + (oy * stride * paddedWidth + ox * stride) * cp + c0
                                var acc0 = SIMD8<Int32>(), acc1 = SIMD8<Int32>()
                                for ky in 0..<3 {
                                    for kx in 0..<3 {
                                        // Two 8-lane halves, widened lane by lane (SIMDConversions.swift).
                                        let x = origin + (ky * paddedWidth + kx) * cp
                                        let k = w + (ky * 3 + kx) * cp + c0
                                        acc0 &+= widenToInt32(UnsafeRawPointer(x).loadUnaligned(as: SIMD8<Int16>.self)) &* load8(k)
                                        acc1 &+= widenToInt32(UnsafeRawPointer(x + 8).loadUnaligned(as: SIMD8<Int16>.self)) &* load8(k + 8)
                                    }
                                }
                                UnsafeMutableRawPointer(sums + ox * 16).storeBytes(of: acc0, as: SIMD8<Int32>.self)
                                UnsafeMutableRawPointer(sums + ox * 16 + 8).storeBytes(of: acc1, as: SIMD8<Int32>.self)
                            }
                            requantizeRow(sums, pixels: outW, channel: c0, valid: min(16, channels - c0),
                                          output: output + oy * outW * channels + c0, pixelStride: channels, requant)
                            c0 += 16
                        }
                    }
                }
            }
        }}
    }
}
