import XCTest
import QuantEngine
import TestSupport

/// Every SIMD float kernel against its plain-Swift reference on awkward shapes: channel counts that are
/// not multiples of 8 or 16, odd spatial sizes, stride 2, batches of 2. Agreement to float tolerance
/// (the kernels sum in another order, and may use fused multiply-add).
final class FloatKernelTests: XCTestCase {
    var random = TestRandom(seed: 42)

    func randomMap(images: Int, height: Int, width: Int, channels: Int) -> FeatureMapBuffer {
        FeatureMapBuffer(Tensor(shape: [images, channels, height, width], data: random.floats(images * channels * height * width)))
    }

    func randomConv(_ kind: ConvSpec.Kind, kernel: Int, stride: Int, in cin: Int, out cout: Int, _ activation: Activation) -> FoldedConv {
        let spec = ConvSpec(weightPrefix: "test", batchNormPrefix: nil, hasBias: true, kind: kind, kernel: kernel, stride: stride,
                            inChannels: cin, outChannels: cout, activation: activation, group: .head)
        return FoldedConv(spec: spec, weight: random.floats(spec.weightCount), bias: random.floats(cout))
    }

    /// Same interior to tolerance, and the kernel left the zero border alone.
    func assertClose(_ actual: FeatureMap, _ expected: FeatureMap, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let a = actual.tensor(), e = expected.tensor()
        let tolerance = 1e-5 * (1 + e.maxAbs) * 10
        XCTAssertLessThanOrEqual(a.maxAbsDifference(e), tolerance, what, file: file, line: line)
        var borderSum: Float = 0
        for n in 0..<actual.images {
            for y in -1...actual.height {
                for x in -1...actual.width where y < 0 || y == actual.height || x < 0 || x == actual.width {
                    for c in 0..<actual.channels { borderSum += abs(actual[n, y, x, c]) }
                }
            }
        }
        XCTAssertEqual(borderSum, 0, "\(what): the border was written", file: file, line: line)
    }

    func checkDense(kernel: Int, stride: Int, in cin: Int, out cout: Int, height: Int, width: Int, images: Int = 1,
                    _ activation: Activation, threads: Int = 2, file: StaticString = #filePath, line: UInt = #line) {
        let conv = randomConv(.standard, kernel: kernel, stride: stride, in: cin, out: cout, activation)
        let packed = PackedDenseConv(conv)
        let input = randomMap(images: images, height: height, width: width, channels: cin)
        let (oh, ow) = (packed.outputSize(height), packed.outputSize(width))
        let simd = FeatureMapBuffer(images: images, height: oh, width: ow, channels: cout)
        let reference = FeatureMapBuffer(images: images, height: oh, width: ow, channels: cout)
        denseConv(packed, input: input.map, output: simd.map, threads: threads)
        denseConvReference(conv, input: input.map, output: reference.map)
        assertClose(simd.map, reference.map, "dense \(kernel)x\(kernel)/\(stride) \(cin)->\(cout) at \(width)x\(height)", file: file, line: line)
    }

    func testDense3x3Stride1() {
        checkDense(kernel: 3, stride: 1, in: 5, out: 19, height: 7, width: 5, images: 2, .relu6)   // panels of 16 + 3
        checkDense(kernel: 3, stride: 1, in: 17, out: 32, height: 3, width: 11, .relu)
        checkDense(kernel: 3, stride: 1, in: 16, out: 1, height: 9, width: 6, .none, threads: 3)  // the head's shape
        checkDense(kernel: 3, stride: 1, in: 2, out: 9, height: 1, width: 1, .none)               // one pixel: all border
        checkDense(kernel: 3, stride: 1, in: 5, out: 1, height: 4, width: 7, .relu)               // 1 output, not a dot product
        checkDense(kernel: 3, stride: 2, in: 24, out: 1, height: 7, width: 11, .relu6)            // 1 output, dot product, stride 2
        checkDense(kernel: 3, stride: 1, in: 16, out: 1, height: 3, width: 10, images: 2, .none)
    }

    /// The AVX-512 build of the dense tile (16-lane accumulators, panels of 32 output channels) does each
    /// lane's multiply-adds in the order of the AVX2 build (8-lane accumulators, panels of 16), so the two
    /// paths give the same bits (on a CPU that has both): panels of 3 blocks (19, 24 outputs), 4 (32, 64), 4 + 1
    /// (40), 2 (16, and 4 + 2 = 48: the 12-pixel tile, tiles in pairs and an odd one), and input channels in
    /// chunks (300, 400, 700 inputs: the chunks do not depend on the panel width).
    func testDenseTileGivesTheSameBitsOnAVX2AndAVX512() throws {
        guard KernelPath.supported.contains(.avx2) && KernelPath.supported.contains(.avx512VNNI) else {
            throw XCTSkip("needs a CPU with AVX2 and AVX-512 VNNI")
        }
        for (kernel, stride, cin, cout, activation) in [(3, 1, 5, 19, Activation.relu6), (3, 2, 40, 32, .none), (1, 1, 17, 64, .relu),
                                                        (3, 1, 300, 24, .none), (3, 1, 700, 40, .relu),
                                                        (3, 1, 32, 16, .relu), (1, 1, 24, 48, .none), (3, 1, 400, 16, .none)] {
            let conv = randomConv(.standard, kernel: kernel, stride: stride, in: cin, out: cout, activation)
            let input = randomMap(images: 2, height: 9, width: 7, channels: cin)
            var outputs: [Tensor] = []
            for path in [KernelPath.avx2, .avx512VNNI] {
                let packed = PackedDenseConv(conv, path: path)
                let output = FeatureMapBuffer(images: 2, height: packed.outputSize(9), width: packed.outputSize(7), channels: cout)
                denseConv(packed, input: input.map, output: output.map, threads: 2)
                outputs.append(output.map.tensor())
            }
            XCTAssertEqual(outputs[0], outputs[1], "\(kernel)x\(kernel)/\(stride) \(cin)->\(cout)")
        }
    }

    /// Wide inputs split into chunks of input channels (K blocking): partial sums go through the output.
    func testDense3x3WithInputChannelChunks() {
        checkDense(kernel: 3, stride: 1, in: 700, out: 20, height: 5, width: 4, images: 2, .relu)
        checkDense(kernel: 3, stride: 1, in: 1376, out: 8, height: 2, width: 3, .relu6)
    }

    func testDense3x3Stride2() {
        checkDense(kernel: 3, stride: 2, in: 3, out: 24, height: 9, width: 7, .relu6)            // odd sides
        checkDense(kernel: 3, stride: 2, in: 1, out: 32, height: 8, width: 10, images: 2, .relu6) // gray first conv
    }

    func testPointwise() {
        checkDense(kernel: 1, stride: 1, in: 13, out: 40, height: 5, width: 7, .relu6)           // panels 16, 16, 8
        checkDense(kernel: 1, stride: 1, in: 24, out: 7, height: 3, width: 3, images: 2, .none)
        checkDense(kernel: 1, stride: 1, in: 1, out: 16, height: 2, width: 13, .relu)
    }

    func checkDepthwise(channels: Int, stride: Int, height: Int, width: Int, images: Int = 1, file: StaticString = #filePath, line: UInt = #line) {
        let conv = randomConv(.depthwise, kernel: 3, stride: stride, in: channels, out: channels, .relu6)
        let packed = PackedDepthwiseConv(conv)
        let input = randomMap(images: images, height: height, width: width, channels: channels)
        let (oh, ow) = (packed.outputSize(height), packed.outputSize(width))
        let simd = FeatureMapBuffer(images: images, height: oh, width: ow, channels: channels)
        let reference = FeatureMapBuffer(images: images, height: oh, width: ow, channels: channels)
        depthwiseConv3x3(packed, input: input.map, output: simd.map, threads: 2)
        depthwiseConv3x3Reference(conv, input: input.map, output: reference.map)
        assertClose(simd.map, reference.map, "depthwise \(channels) stride \(stride) at \(width)x\(height)", file: file, line: line)
    }

    func testDepthwise() {
        checkDepthwise(channels: 21, stride: 1, height: 5, width: 7, images: 2)  // 2 vectors + 5 scalar channels
        checkDepthwise(channels: 21, stride: 2, height: 7, width: 9)
        checkDepthwise(channels: 32, stride: 2, height: 8, width: 6)
        checkDepthwise(channels: 3, stride: 1, height: 1, width: 4)             // scalar only
    }

    func testElementwise() {
        let a = randomMap(images: 2, height: 3, width: 5, channels: 11), b = randomMap(images: 2, height: 3, width: 5, channels: 11)
        let sum = FeatureMapBuffer(images: 2, height: 3, width: 5, channels: 11), sumRef = FeatureMapBuffer(images: 2, height: 3, width: 5, channels: 11)
        addMaps(a.map, b.map, output: sum.map, threads: 2)
        addMapsReference(a.map, b.map, output: sumRef.map)
        assertClose(sum.map, sumRef.map, "add")

        let up = FeatureMapBuffer(images: 2, height: 6, width: 10, channels: 11), upRef = FeatureMapBuffer(images: 2, height: 6, width: 10, channels: 11)
        upsample2x(a.map, output: up.map, threads: 2)
        upsample2xReference(a.map, output: upRef.map)
        assertClose(up.map, upRef.map, "upsample")

        let c = randomMap(images: 2, height: 3, width: 5, channels: 3)
        let cat = FeatureMapBuffer(images: 2, height: 3, width: 5, channels: 14), catRef = FeatureMapBuffer(images: 2, height: 3, width: 5, channels: 14)
        concatChannels(a.map, c.map, output: cat.map, threads: 2)
        concatChannelsReference(a.map, c.map, output: catRef.map)
        assertClose(cat.map, catRef.map, "concat")
        XCTAssertEqual(cat.map[1, 2, 4, 11], c.map[1, 2, 4, 0])
    }

    func testMaxPool2x2() {
        // 21 channels: two vectors + five scalar channels; odd sides: the last row and column are dropped.
        for (images, height, width, channels, threads) in [(2, 6, 10, 21, 2), (1, 7, 5, 16, 3), (1, 2, 2, 3, 1)] {
            let input = randomMap(images: images, height: height, width: width, channels: channels)
            let simd = FeatureMapBuffer(images: images, height: height / 2, width: width / 2, channels: channels)
            let reference = FeatureMapBuffer(images: images, height: height / 2, width: width / 2, channels: channels)
            maxPool2x2(input.map, output: simd.map, threads: threads)
            maxPool2x2Reference(input.map, output: reference.map)
            // A maximum is exact: the same bits, and the border left alone.
            XCTAssertEqual(simd.map.tensor(), reference.map.tensor(), "max-pool \(width)x\(height)x\(channels)")
            assertClose(simd.map, reference.map, "max-pool border")
        }
        let known = FeatureMapBuffer(Tensor(shape: [1, 1, 2, 2], data: [-3, 2, 5, -1]))
        let pooled = FeatureMapBuffer(images: 1, height: 1, width: 1, channels: 1)
        maxPool2x2(known.map, output: pooled.map, threads: 1)
        XCTAssertEqual(pooled.map[0, 0, 0, 0], 5)
    }

    func checkTransposed(in cin: Int, out cout: Int, height: Int, width: Int, images: Int = 1, threads: Int = 2,
                         file: StaticString = #filePath, line: UInt = #line) {
        let conv = randomConv(.transposed, kernel: 2, stride: 2, in: cin, out: cout, .none)
        let packed = PackedTransposedConv2x2(conv)
        let input = randomMap(images: images, height: height, width: width, channels: cin)
        let simd = FeatureMapBuffer(images: images, height: 2 * height, width: 2 * width, channels: cout)
        let reference = FeatureMapBuffer(images: images, height: 2 * height, width: 2 * width, channels: cout)
        transposedConv2x2(packed, input: input.map, output: simd.map, threads: threads)
        transposedConv2x2Reference(conv, input: input.map, output: reference.map)
        assertClose(simd.map, reference.map, "transposed 2x2 \(cin)->\(cout) at \(width)x\(height)", file: file, line: line)
    }

    func testTransposedConv2x2() {
        checkTransposed(in: 5, out: 3, height: 3, width: 5, images: 2)        // 2 x 3 = 6 channels per row: one 8-lane block
        checkTransposed(in: 17, out: 12, height: 1, width: 7, threads: 3)     // 24 channels per row: a panel and a half
        checkTransposed(in: 32, out: 16, height: 4, width: 2)
        checkTransposed(in: 1, out: 9, height: 2, width: 3)
        // Known values: one input pixel, one channel, W[0][0] = [[1, 2], [3, 4]], bias 0.5.
        let spec = ConvSpec(weightPrefix: "t", batchNormPrefix: nil, hasBias: true, kind: .transposed, kernel: 2, stride: 2,
                            inChannels: 1, outChannels: 1, activation: .none, group: .head)
        let conv = FoldedConv(spec: spec, weight: [1, 2, 3, 4], bias: [0.5])
        let input = FeatureMapBuffer(Tensor(shape: [1, 1, 1, 1], data: [2]))
        let output = FeatureMapBuffer(images: 1, height: 2, width: 2, channels: 1)
        transposedConv2x2(PackedTransposedConv2x2(conv), input: input.map, output: output.map, threads: 1)
        XCTAssertEqual(output.map.tensor().data, [2.5, 4.5, 6.5, 8.5])
    }

    func testFeatureMapRoundTripsNCHW() {
        let t = Tensor(shape: [2, 3, 4, 5], data: random.floats(120))
        XCTAssertEqual(FeatureMapBuffer(t).map.tensor(), t)
    }
}

/// Winograd F(2x2, 3x3) against the direct-convolution reference.
final class WinogradTests: XCTestCase {
    func check(in cin: Int, out cout: Int, height: Int, width: Int, images: Int = 1, _ activation: Activation, threads: Int = 2,
               file: StaticString = #filePath, line: UInt = #line) {
        var random = TestRandom(seed: UInt64(cin * 1000 + cout))
        let spec = ConvSpec(weightPrefix: "test", batchNormPrefix: nil, hasBias: true, kind: .standard, kernel: 3, stride: 1,
                            inChannels: cin, outChannels: cout, activation: activation, group: .head)
        let conv = FoldedConv(spec: spec, weight: random.floats(spec.weightCount), bias: random.floats(cout))
        let packed = PackedWinogradConv(conv)
        let input = FeatureMapBuffer(Tensor(shape: [images, cin, height, width], data: random.floats(images * cin * height * width)))
        let fast = FeatureMapBuffer(images: images, height: height, width: width, channels: cout)
        let reference = FeatureMapBuffer(images: images, height: height, width: width, channels: cout)
        let scratch = packed.scratchCount(images: images, outputHeight: height, outputWidth: width)
        var transformed = [Float](repeating: 0, count: scratch.transformed), products = [Float](repeating: 0, count: scratch.products)
        transformed.withUnsafeMutableBufferPointer { t in
            products.withUnsafeMutableBufferPointer { p in
                winogradConv3x3(packed, input: input.map, output: fast.map, transformed: t.baseAddress!, products: p.baseAddress!, threads: threads)
            }
        }
        denseConvReference(conv, input: input.map, output: reference.map)
        // In blocks of tiles: the same arithmetic for every output, so the same bits.
        let blocked = FeatureMapBuffer(images: images, height: height, width: width, channels: cout)
        winogradConv3x3Blocked(packed, input: input.map, output: blocked.map, threads: threads)
        XCTAssertEqual(blocked.map.tensor().data, fast.map.tensor().data, "blocked winograd \(cin)->\(cout)", file: file, line: line)
        let a = fast.map.tensor(), e = reference.map.tensor()
        XCTAssertLessThanOrEqual(a.maxAbsDifference(e), 1e-4 * (1 + e.maxAbs), "winograd \(cin)->\(cout) at \(width)x\(height)", file: file, line: line)
        XCTAssertGreaterThan(e.maxAbs, 0.1)
        XCTAssertEqual(fast.map[0, -1, 0, 0], 0, "the border was written", file: file, line: line)
        XCTAssertEqual(fast.map[images - 1, height, width, cout - 1], 0, "the border was written", file: file, line: line)
    }

    func testAgreesWithDirectConvolution() {
        check(in: 8, out: 8, height: 2, width: 2, .none)
        check(in: 24, out: 40, height: 6, width: 10, images: 2, .relu)   // 2.5 panels of 16, 15 GEMM rows
        check(in: 16, out: 24, height: 4, width: 14, .relu6, threads: 3)
        check(in: 264, out: 16, height: 4, width: 6, .relu)
        check(in: 16, out: 16, height: 30, width: 26, images: 2, .relu6)  // 390 tiles: several blocks of 96, the last partial
    }

    /// `winogradWeightTransform` (all channel pairs at once, zero terms skipped) gives exactly the 3x3 -> 4x4
    /// transform U = G g Gᵀ summed term by term in (k, l) order, as the engine computed it per pair before.
    func testWeightTransformEqualsItsDefinitionBitForBit() {
        var random = TestRandom(seed: 11)
        let (cout, cin) = (24, 40)
        let weight = random.floats(cout * cin * 9)
        let u = winogradWeightTransform(weight, outChannels: cout, inChannels: cin)
        let G: [[Float]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        for pair in 0..<(cout * cin) {
            for i in 0..<4 {
                for j in 0..<4 {
                    var sum: Float = 0
                    for k in 0..<3 { for l in 0..<3 { sum += G[i][k] * weight[pair * 9 + k * 3 + l] * G[j][l] } }
                    XCTAssertEqual(u[i * 4 + j][pair], sum, "pair \(pair), point \(i * 4 + j)")
                }
            }
        }
    }

    func testSupportsOnlyWhatItComputes() {
        func spec(_ k: Int, _ s: Int, _ cin: Int, _ cout: Int) -> ConvSpec {
            ConvSpec(weightPrefix: "t", batchNormPrefix: nil, hasBias: false, kind: .standard, kernel: k, stride: s,
                     inChannels: cin, outChannels: cout, activation: .relu, group: .head)
        }
        XCTAssertTrue(PackedWinogradConv.supports(spec(3, 1, 32, 16), outputHeight: 8, outputWidth: 4))
        XCTAssertFalse(PackedWinogradConv.supports(spec(3, 1, 32, 16), outputHeight: 7, outputWidth: 4))
        XCTAssertFalse(PackedWinogradConv.supports(spec(3, 2, 32, 16), outputHeight: 8, outputWidth: 4))
        XCTAssertFalse(PackedWinogradConv.supports(spec(1, 1, 32, 16), outputHeight: 8, outputWidth: 4))
        XCTAssertFalse(PackedWinogradConv.supports(spec(3, 1, 30, 16), outputHeight: 8, outputWidth: 4))
        XCTAssertFalse(PackedWinogradConv.supports(spec(3, 1, 32, 1), outputHeight: 8, outputWidth: 4))
    }
}
