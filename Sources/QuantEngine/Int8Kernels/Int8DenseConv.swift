import Int8Microkernels

/// int8 dense convolution: conv 3x3 (stride 1 and 2) and pointwise 1x1, one microkernel for both.
///
/// Method (direct convolution, no im2col): the input is staged once as int16 (x - zero point) with a
/// zero border and channels padded to a multiple of 16 (`stageInt16`), so every tap of every output
/// pixel is a pointer offset and padding costs nothing; the taps of one kernel row are even adjacent in
/// memory, so the reduction dimension K = taps x channels is k runs of k x channels values, walked 16
/// at a time: one vector of 16 int16 inputs (one pixel) against one vector of 16 int16
/// weights (one output channel), accumulated in 8 int32 lanes, reduced horizontally once at the end.
///
/// Microkernel tile (Sources/Int8Microkernels/Int16DotTiles.swift, compiled per instruction set):
/// `microkernelPixels` output pixels of one row (2 on AVX2, 3 on NEON and VNNI) x 4 output channels, one
/// accumulator per pixel and output; one call computes one output row of one 16-output chunk. Weights are packed
/// [group of 4 outputs][tap][16-channel chunk][4 outputs][16], so a tile streams them linearly.
/// Work items are (16-output chunk, output row), chunk-major, so consecutive items reuse one chunk's
/// weights from cache; each item writes int32 sums for its row x 16 outputs to a small stack buffer
/// and requantizes them with the shared SIMD epilogue.
///
/// A convolution whose whole receptive field fits one 16-lane vector (taps x input channels <= 16: the
/// first layer, 3x3 taps of a gray frame) is staged differently, as patches: one vector per output pixel
/// holding its taps (im2col), and then runs as a 1x1 convolution. Staged the usual way, each of its 9 taps
/// would be a vector of 1 value and 15 zeros; int8 spent 6x the float kernel's time on that one layer.
///
/// The multiply-accumulate step is written per architecture (`multiplyAccumulate`); both give the same
/// exact int32 sums, so both agree bit for bit with `referenceQuantizedConv`:
///   - x86-64 (AVX2): pairs of int16 products summed into int32 = one `vpmaddwd`.
///   - arm64 (NEON): widening multiply-accumulate of the low and high halves = `smlal` + `smlal2`.
public final class Int8DenseConv {
    public let kernel: Int
    public let stride: Int
    public let inChannels: Int
    public let outChannels: Int
    /// The input staged as patches (see above) and run as a 1x1 convolution over them.
    public let stagesPatches: Bool
    /// Values per staged pixel, a multiple of 16: input channels rounded up, or one patch (16).
    let stagedChannels: Int
    /// Output channels rounded up to a multiple of 4 (the tile width).
    let groupedOutputs: Int
    let taps: Int
    /// Packed weights: int8 on x86-64 (sign-extended to int16 as they are loaded, `vpmovsxbw` from memory:
    /// no extra instruction and half the cache traffic of an int16 copy); int16 on arm64, where LLVM
    /// turned int8 loads into 4-byte loads + `sshll` but loads int16 as plain `ldp q` pairs.
    let weights: [PackedWeight]
    let requant: PackedRequantization
    /// The microkernels of the kernel path this convolution runs on.
    let kernels: Int8KernelTable

    static let chunkOutputs = 16

    public init(_ p: QuantizedConvParameters, path: KernelPath = .current) {
        precondition(p.kind == .standard, "Int8DenseConv: \(p.kind) parameters")
        kernels = .of(path)
        kernel = p.kernel; stride = p.stride; inChannels = p.inChannels; outChannels = p.outChannels
        taps = p.kernel * p.kernel
        stagesPatches = p.kernel > 1 && taps * p.inChannels <= 16
        stagedChannels = stagesPatches ? 16 : (p.inChannels + 15) & ~15
        groupedOutputs = (p.outChannels + 3) & ~3
        requant = PackedRequantization(p, paddedCount: (p.outChannels + 15) & ~15)
        // Patches run as a 1x1 convolution: one tap, whose channel t * inChannels + ic is tap t's channel ic.
        let cp = stagedChannels, packedTaps = stagesPatches ? 1 : taps
        var packed = [PackedWeight](repeating: 0, count: groupedOutputs * packedTaps * cp)
        for oc in 0..<p.outChannels {
            let group = oc / 4, lane = oc % 4
            for t in 0..<taps {
                for ic in 0..<p.inChannels {
                    let (tap, channel) = stagesPatches ? (0, t * p.inChannels + ic) : (t, ic)
                    let index = (((group * packedTaps + tap) * (cp / 16) + channel / 16) * 4 + lane) * 16 + channel % 16
                    packed[index] = PackedWeight(p.weights[(oc * p.inChannels + ic) * taps + t])
                }
            }
        }
        weights = packed
    }

    public var padding: Int { kernel / 2 }
    public func outputSize(_ n: Int) -> Int { (n + 2 * padding - kernel) / stride + 1 }

    /// Int16 scratch elements `run` needs for an input of this size.
    public func scratchCount(height: Int, width: Int) -> Int {
        stagesPatches ? outputSize(height) * outputSize(width) * stagedChannels
                      : (height + 2 * padding) * (width + 2 * padding) * stagedChannels
    }

    /// input: [height][width][inChannels] int8; output: [outH][outW][outChannels] int8.
    ///
    /// - Parameters:
    ///   - outputRowStride: elements from one output row to the next (default outW x outChannels); the
    ///     transposed conv writes every other row of a twice-as-tall image with it.
    ///   - inputIsStaged: the scratch already holds this input staged by an earlier call (same input, same
    ///     zero point, a conv with the same kernel and input channels), so staging is skipped.
    public func run(input: UnsafePointer<Int8>, height: Int, width: Int, output: UnsafeMutablePointer<Int8>,
                    scratch: UnsafeMutablePointer<Int16>, threads: Int, inputZeroPoint: Int32,
                    outputRowStride: Int? = nil, inputIsStaged: Bool = false) {
        let cp = stagedChannels
        let outH = outputSize(height), outW = outputSize(width)
        // The staged image the loop below walks: kernel, stride and width of the convolution it runs.
        let (kernel, stride, paddedWidth): (Int, Int, Int)
        if stagesPatches {
            precondition(!inputIsStaged, "Int8DenseConv: a patch-staged convolution stages its own input")
            stagePatches(input, height: height, width: width, zeroPoint: inputZeroPoint, into: scratch, threads: threads)
            (kernel, stride, paddedWidth) = (1, 1, outW)
        } else {
            if !inputIsStaged {
                stageInt16(input, height: height, width: width, channels: inChannels, zeroPoint: inputZeroPoint,
                           pad: padding, paddedChannels: cp, into: scratch, threads: threads)
            }
            (kernel, stride, paddedWidth) = (self.kernel, self.stride, width + 2 * padding)
        }
        let outputRowStride = outputRowStride ?? outW * outChannels
        // In the padded NHWC staging, the k taps of one kernel row (kx = 0..k-1) are adjacent: k * cp int16
        // in a row, and the packed weights follow the same (ky, kx, channel) order. So the reduction is k
        // contiguous segments of k * cp values each, not k * k short ones.
        let rowOffsets = (0..<kernel).map { ky in ky * paddedWidth * cp }
        let chunksPerRow = kernel * cp / 16
        let groupElements = kernel * kernel * cp * 4
        let staged = UnsafePointer(scratch)
        let chunks = (outChannels + Self.chunkOutputs - 1) / Self.chunkOutputs
        let (outChannels, groupedOutputs) = (self.outChannels, self.groupedOutputs)
        let (requant, gemmRow) = (self.requant, kernels.gemmRow)  // local copies: the loop reads them without touching `self`
        weights.withUnsafeBufferPointer { weightBuffer in
        requant.withPointers(kernels) { requant in
        rowOffsets.withUnsafeBufferPointer { offsets in
            parallelChunks(chunks * outH, threads: threads) { items in
                // int32 sums of one row x 16 outputs, requantized when the row chunk is done.
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: outW * Self.chunkOutputs) { sums in
                    let sums = sums.baseAddress!
                    for item in items {
                        let chunk = item / outH, oy = item % outH
                        let c0 = chunk * Self.chunkOutputs
                        let groups = (min(c0 + Self.chunkOutputs, groupedOutputs) - c0) / 4
                        gemmRow(staged + oy * stride * paddedWidth * cp, stride * cp, outW, weightBuffer.baseAddress! + (c0 / 4) * groupElements,
                                groups, groupElements, offsets.baseAddress!, kernel, chunksPerRow, sums, Self.chunkOutputs)
                        // Epilogue: bias, requantize, clamp, store the valid channels.
                        requant.row(sums, pixels: outW, channel: c0, valid: min(Self.chunkOutputs, outChannels - c0),
                                    output: output + oy * outputRowStride + c0, pixelStride: outChannels)
                    }
                }
            }
        }}}
    }
}

extension Int8DenseConv {
    /// Stages the input as patches: for output pixel (oy, ox), the 16 int16 at `(oy * outW + ox) * 16` are
    /// x - zero point of its taps in (ky, kx, channel) order, 0 for taps in the zero border and past the last.
    func stagePatches(_ input: UnsafePointer<Int8>, height: Int, width: Int, zeroPoint: Int32,
                      into staged: UnsafeMutablePointer<Int16>, threads: Int) {
        let outH = outputSize(height), outW = outputSize(width)
        let (kernel, stride, pad, channels) = (self.kernel, self.stride, padding, inChannels)
        parallelChunks(outH, threads: threads) { rows in
            for oy in rows {
                for ox in 0..<outW {
                    // Zero the patch, then write its taps in place (a SIMD16 built lane by lane with variable
                    // indices went through the stack and made this loop most of the layer's time).
                    let patch = staged + (oy * outW + ox) * 16
                    UnsafeMutableRawPointer(patch).storeBytes(of: SIMD16<Int16>(), as: SIMD16<Int16>.self)
                    // Wrapping arithmetic: the indices are bounded by the frame, and checked adds cost as much as the copy.
                    for ky in 0..<kernel {
                        let y = oy &* stride &+ ky &- pad
                        guard y >= 0 && y < height else { continue }
                        let row = input + y &* width &* channels
                        for kx in 0..<kernel {
                            let x = ox &* stride &+ kx &- pad
                            guard x >= 0 && x < width else { continue }
                            let source = row + x &* channels, target = patch + (ky &* kernel &+ kx) &* channels
                            for c in 0..<channels { target[c] = Int16(truncatingIfNeeded: Int32(source[c]) &- zeroPoint) }
                        }
                    }
                }
            }
        }
    }
}

/// The direct kernel's packed weight type: int8 on x86-64, int16 on arm64 (see `Int8DenseConv.weights`).
#if arch(arm64)
typealias PackedWeight = Int16
#else
typealias PackedWeight = Int8
#endif

extension Int8KernelTable {
    /// The row GEMM for the direct kernel's packed weight type.
    var gemmRow: Int16GemmRow<PackedWeight> {
        #if arch(arm64)
        return gemmRowInt16Weights
        #else
        return gemmRowInt8Weights
        #endif
    }
}
