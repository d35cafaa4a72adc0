/// int8 dense convolution (3x3 stride 1 and 2, 1x1) on a 4-way int8 dot-product microkernel: AVX-512 VNNI's
/// `vpdpbusd` (Sources/Int8MicrokernelsAVX512VNNI/UInt8DotRows.swift), which multiplies 4 unsigned bytes
/// by 4 signed bytes per int32 lane: twice the products per instruction of the int16 kernel (`Int8DenseConv`).
///
/// The instruction wants unsigned activations, ours are int8 with a zero point. So the input is staged as
/// u = x + 128 (the int8 bit pattern with its top bit flipped) and the difference folded into the bias,
/// exactly:
///
///     Σ (x - zp) · w  =  Σ (x + 128) · w  -  (zp + 128) · Σ w
///
/// where Σ w runs over every tap and input channel of the output channel. Padding pixels are staged as
/// zp + 128 (real 0), so they contribute (zp + 128) · w, which the correction takes back: the border is
/// handled as the int16 kernel handles it, by staging, and the sums equal `referenceQuantizedConv`'s bit
/// for bit (int32 arithmetic wraps, and the true sum fits int32).
///
/// Layout: the staged image is [H + 2p][W + 2p][channels rounded up to 4] bytes, so a kernel row's taps
/// are one contiguous run of k x channels bytes, walked 4 bytes (one "step") at a time; weights are packed
/// [block of 16 outputs][kernel row][step][16 outputs][4 bytes], zero for padded channels and outputs.
/// Work items are (16-output block, output row), block-major, like the int16 kernel's.
///
/// One output channel (the segmentation head, stride 1): the 16-output tile would waste 15 of 16 lanes, so
/// the lanes hold 8 neighbouring pixels instead (`uint8DotSingleOutputRow`). The input is then staged planar by
/// 4-channel groups, [row][group][pixel][4 bytes], with 8 pixels of slack per row, and the weights are one
/// 4-byte word per (kernel row, tap, group).
public final class Int8DotProductConv {
    public let kernel: Int
    public let stride: Int
    public let inChannels: Int
    public let outChannels: Int
    /// The input zero point the bias correction was made for.
    let inputZeroPoint: Int32
    /// Bytes per staged pixel: input channels rounded up to a multiple of 4.
    let stagedChannels: Int
    /// 4-byte steps per kernel row: kernel x stagedChannels / 4.
    let steps: Int
    let blocks: Int
    /// Packed for the 16-output kernel (empty when the one-output form runs).
    let weights: [Int8]
    /// Bias already corrected by -(zp + 128) Σ w (see the type's comment).
    let requant: PackedRequantization
    let kernels: Int8KernelTable
    let gemmRow: Int8KernelTable.UInt8DotGemmRow
    /// The one-output-channel kernel, when this convolution uses it (see the type's comment).
    let singleOutputRow: Int8KernelTable.SingleOutputRow?
    /// Its weights: [ky][kx][group] words of 4 channel bytes.
    let singleOutputWeights: [Int32]

    /// nil if `path` has no 4-way dot-product kernel.
    public init?(_ p: QuantizedConvParameters, path: KernelPath = .current) {
        precondition(p.kind == .standard, "Int8DotProductConv: \(p.kind) parameters")
        kernels = .of(path)
        guard let gemmRow = kernels.dotProductGemmRow else { return nil }
        self.gemmRow = gemmRow
        kernel = p.kernel; stride = p.stride; inChannels = p.inChannels; outChannels = p.outChannels
        inputZeroPoint = p.inputZeroPoint
        let cp = (p.inChannels + 3) & ~3
        stagedChannels = cp
        steps = p.kernel * cp / 4
        blocks = (p.outChannels + 15) / 16
        let k = p.kernel, taps = k * k
        if p.outChannels == 1, p.stride == 1, p.kernel == 1 || p.kernel == 3, let row = kernels.dotProductSingleOutputRow {
            // The one-output form reads only its own words; the 16-output packing is not made.
            singleOutputRow = row
            let groups = cp / 4
            var words = [Int32](repeating: 0, count: taps * groups)
            for ky in 0..<k {
                for kx in 0..<k {
                    for g in 0..<groups {
                        var bytes: UInt32 = 0
                        for j in 0..<4 where g * 4 + j < p.inChannels {
                            bytes |= UInt32(UInt8(bitPattern: p.weights[((g * 4 + j) * k + ky) * k + kx])) << (8 * j)
                        }
                        words[(ky * k + kx) * groups + g] = Int32(bitPattern: bytes)
                    }
                }
            }
            singleOutputWeights = words
            weights = []
        } else {
            singleOutputRow = nil
            singleOutputWeights = []
            var packed = [Int8](repeating: 0, count: blocks * k * steps * 64)
            for oc in 0..<p.outChannels {
                let block = oc / 16, lane = oc % 16
                for ky in 0..<k {
                    for kx in 0..<k {
                        for c in 0..<p.inChannels {
                            let position = kx * cp + c  // byte within the kernel row's run
                            let index = (((block * k + ky) * steps + position / 4) * 16 + lane) * 4 + position % 4
                            packed[index] = p.weights[((oc * p.inChannels + c) * k + ky) * k + kx]
                        }
                    }
                }
            }
            weights = packed
        }
        var requant = PackedRequantization(p, paddedCount: blocks * 16)
        let correction = p.inputZeroPoint + 128
        for oc in 0..<p.outChannels {
            let sum = p.weights[(oc * p.inChannels * taps)..<((oc + 1) * p.inChannels * taps)].reduce(Int32(0)) { $0 &+ Int32($1) }
            requant.bias[oc] = requant.bias[oc] &- correction &* sum
        }
        self.requant = requant
    }

    public var padding: Int { kernel / 2 }
    public func outputSize(_ n: Int) -> Int { (n + 2 * padding - kernel) / stride + 1 }

    /// Int16 scratch elements `run` needs (the staged bytes, two per element).
    public func scratchCount(height: Int, width: Int) -> Int {
        let rowPixels = (width + 2 * padding) + (singleOutputRow == nil ? 0 : Self.slackPixels)
        return ((height + 2 * padding) * rowPixels * stagedChannels + 1) / 2
    }

    /// Pixels of slack per planar row: the single-output kernel's last group of 8 reads up to 7 past the row.
    static let slackPixels = 8

    /// input: [height][width][inChannels] int8; output: [outH][outW][outChannels] int8.
    public func run(input: UnsafePointer<Int8>, height: Int, width: Int, output: UnsafeMutablePointer<Int8>,
                    scratch: UnsafeMutablePointer<Int16>, threads: Int, inputZeroPoint: Int32) {
        precondition(inputZeroPoint == self.inputZeroPoint, "Int8DotProductConv: packed for input zero point \(self.inputZeroPoint)")
        let cp = stagedChannels, pad = padding
        let outH = outputSize(height), outW = outputSize(width)
        let paddedWidth = width + 2 * pad
        if let singleOutputRow {
            runSingleOutput(singleOutputRow, input: input, height: height, width: width, output: output, scratch: scratch, threads: threads)
            return
        }
        let staged = UnsafeMutableRawPointer(scratch).bindMemory(to: UInt8.self, capacity: (height + 2 * pad) * paddedWidth * cp)
        stageUnsigned(input, height: height, width: width, into: staged, threads: threads)
        let rowOffsets = (0..<kernel).map { ky in ky * paddedWidth * cp }
        let blockElements = kernel * steps * 64
        let (kernel, stride, steps, outChannels, gemmRow) = (self.kernel, self.stride, self.steps, self.outChannels, self.gemmRow)
        weights.withUnsafeBufferPointer { weightBuffer in
        requant.withPointers(kernels) { requant in
        rowOffsets.withUnsafeBufferPointer { offsets in
            parallelChunks(blocks * outH, threads: threads) { items in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: outW * 16) { sums in
                    let sums = sums.baseAddress!
                    for item in items {
                        let block = item / outH, oy = item % outH
                        gemmRow(staged + oy * stride * paddedWidth * cp, stride * cp, outW, weightBuffer.baseAddress! + block * blockElements,
                                offsets.baseAddress!, kernel, steps, sums, 16)
                        requant.row(sums, pixels: outW, channel: block * 16, valid: min(16, outChannels - block * 16),
                                    output: output + oy * outW * outChannels + block * 16, pixelStride: outChannels)
                    }
                }
            }
        }}}
    }

    /// The one-output-channel form (see the type's comment): planar staging, then one row of 8-pixel lanes.
    private func runSingleOutput(_ row: Int8KernelTable.SingleOutputRow, input: UnsafePointer<Int8>, height: Int, width: Int,
                                 output: UnsafeMutablePointer<Int8>, scratch: UnsafeMutablePointer<Int16>, threads: Int) {
        let pad = padding, groups = stagedChannels / 4, channels = inChannels
        let rowPixels = width + 2 * pad + Self.slackPixels
        let groupBytes = rowPixels * 4, rowBytes = groups * groupBytes
        let rows = height + 2 * pad
        let staged = UnsafeMutableRawPointer(scratch).bindMemory(to: UInt8.self, capacity: rows * rowBytes)
        let border = UInt8(truncatingIfNeeded: inputZeroPoint + 128)
        // Stage, one 4-byte word per pixel and group: the frame's pixels as x + 128 (the sign bit of each byte
        // flipped), the border and the slack as zp + 128 (real 0); bytes of padded channels 0 (their weights are 0).
        parallelChunks(rows, threads: threads) { range in
            for r in range {
                let y = r - pad
                for g in 0..<groups {
                    let plane = UnsafeMutableRawPointer(staged + r * rowBytes + g * groupBytes)
                    let present = min(4, channels - g * 4)
                    var borderWord: UInt32 = 0
                    for j in 0..<present { borderWord |= UInt32(border) << (8 * j) }
                    @inline(__always) func fill(_ pixels: Range<Int>) {
                        for x in pixels { plane.storeBytes(of: borderWord, toByteOffset: x * 4, as: UInt32.self) }
                    }
                    guard y >= 0 && y < height else { fill(0..<rowPixels); continue }
                    fill(0..<pad)
                    fill((pad + width)..<rowPixels)
                    let source = UnsafeRawPointer(input + y * width * channels + g * 4)
                    if present == 4 {
                        for x in 0..<width {
                            let word = source.loadUnaligned(fromByteOffset: x * channels, as: UInt32.self) ^ 0x8080_8080
                            plane.storeBytes(of: word, toByteOffset: (x + pad) * 4, as: UInt32.self)
                        }
                    } else {
                        for x in 0..<width {
                            var word: UInt32 = 0
                            for j in 0..<present { word |= UInt32(source.load(fromByteOffset: x * channels + j, as: UInt8.self) ^ 0x80) << (8 * j) }
                            plane.storeBytes(of: word, toByteOffset: (x + pad) * 4, as: UInt32.self)
                        }
                    }
                }
            }
        }
        let outH = outputSize(height), outW = outputSize(width), kernel = self.kernel
        singleOutputWeights.withUnsafeBufferPointer { words in
        requant.withPointers(kernels) { requant in
            parallelChunks(outH, threads: threads) { range in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: outW * 16) { sums in
                    let sums = sums.baseAddress!
                    for oy in range {
                        row(staged + oy * rowBytes, rowBytes, groupBytes, groups, kernel, outW, words.baseAddress!, sums, 16)
                        requant.row(sums, pixels: outW, channel: 0, valid: 1, output: output + oy * outW, pixelStride: 1)
                    }
                }
            }
        }}
    }

    /// Stages x + 128 as bytes with a border of zp + 128 (real 0) and the padded channels 0.
    func stageUnsigned(_ input: UnsafePointer<Int8>, height: Int, width: Int, into staged: UnsafeMutablePointer<UInt8>, threads: Int) {
        let (cp, pad, channels) = (stagedChannels, padding, inChannels)
        let paddedWidth = width + 2 * pad
        let border = UInt8(truncatingIfNeeded: inputZeroPoint + 128)
        var borderPixel = [UInt8](repeating: 0, count: cp)
        for c in 0..<channels { borderPixel[c] = border }
        borderPixel.withUnsafeBufferPointer { borderPixel in
            let borderPixel = borderPixel.baseAddress!
            @inline(__always) func fillBorder(_ p: UnsafeMutablePointer<UInt8>, pixels: Int) {
                for i in 0..<pixels { (p + i * cp).update(from: borderPixel, count: cp) }
            }
            for y in 0..<pad {
                fillBorder(staged + y * paddedWidth * cp, pixels: paddedWidth)
                fillBorder(staged + (pad + height + y) * paddedWidth * cp, pixels: paddedWidth)
            }
            parallelChunks(height, threads: threads) { rows in
                for y in rows {
                    let row = staged + (y + pad) * paddedWidth * cp
                    fillBorder(row, pixels: pad)
                    fillBorder(row + (pad + width) * cp, pixels: pad)
                    let source = UnsafeRawPointer(input + y * width * channels)
                    let target = row + pad * cp
                    if channels == cp {
                        // One run: flip the sign bit 16 bytes at a time.
                        let count = width * channels
                        var i = 0
                        while i + 16 <= count {
                            let v = source.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self) ^ SIMD16<UInt8>(repeating: 0x80)
                            UnsafeMutableRawPointer(target + i).storeBytes(of: v, as: SIMD16<UInt8>.self)
                            i += 16
                        }
                        while i < count { target[i] = source.load(fromByteOffset: i, as: UInt8.self) ^ 0x80; i += 1 }
                    } else {
                        for x in 0..<width {
                            for c in 0..<channels { target[x * cp + c] = source.load(fromByteOffset: x * channels + c, as: UInt8.self) ^ 0x80 }
                            for c in channels..<cp { target[x * cp + c] = 0 }
                        }
                    }
                }
            }
        }
    }
}
