import Int8Microkernels

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
    /// The epilogue of the kernel path this convolution runs on.
    let kernels: Int8KernelTable

    public init(_ p: QuantizedConvParameters, path: KernelPath = .current) {
        precondition(p.kind == .depthwise && p.kernel == 3, "Int8Depthwise3x3: needs a depthwise 3x3 conv")
        kernels = .of(path)
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
        let (requant, depthwise3x3Row) = (self.requant, kernels.depthwise3x3Row)  // local copies: the loop reads them without touching `self`
        weights.withUnsafeBufferPointer { w in
        requant.withPointers(kernels) { requant in
            let w = w.baseAddress!
            parallelChunks(outH, threads: threads) { rows in
                // int32 sums of one row x 16 channels, requantized by the shared row epilogue.
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: outW * 16) { sums in
                    let sums = sums.baseAddress!
                    for oy in rows {
                        var c0 = 0
                        while c0 < channels {
                            depthwise3x3Row(staged + oy * stride * paddedWidth * cp + c0, stride * cp, outW, paddedWidth * cp, cp, w + c0, sums)
                            requant.row(sums, pixels: outW, channel: c0, valid: min(16, channels - c0),
                                        output: output + oy * outW * channels + c0, pixelStride: channels)
                            c0 += 16
                        }
                    }
                }
            }
        }}
    }
}
