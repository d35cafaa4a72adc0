import XCTest
import QuantEngine
import TestSupport

/// Every SIMD int8 kernel against its plain-Swift reference, bit for bit, on odd shapes.
final class Int8KernelTests: XCTestCase {
    private func randomConv(_ rng: inout TestRandom, kind: ConvSpec.Kind, kernel: Int, stride: Int,
                            inChannels: Int, outChannels: Int, fused: Bool) -> QuantizedConvParameters {
        let perOutput = (kind == .depthwise ? 1 : inChannels) * kernel * kernel
        let terms = kind == .transposed ? inChannels : perOutput  // products summed per output value
        let weights = (0..<(outChannels * perOutput)).map { _ in Int8(rng.int(-127...127)) }
        let bias = (0..<outChannels).map { _ in Int32(rng.int(-5_000...5_000)) }
        // Multipliers scaled to the sum's spread so outputs cover the whole int8 range (and clamp sometimes);
        // a few > 1 exercise the left shift.
        let spread = 127.0 * 127.0 * Double(terms).squareRoot() / 2
        let multipliers = (0..<outChannels).map { c in
            QuantizedMultiplier(c % 7 == 3 ? 1.5 + rng.unit() : (25 / spread) * (0.5 + rng.unit()))
        }
        let outZero = Int32(rng.int(-128...127))
        return QuantizedConvParameters(kind: kind, kernel: kernel, stride: stride, inChannels: inChannels, outChannels: outChannels,
                                       weights: weights, bias: bias, multipliers: multipliers,
                                       inputZeroPoint: Int32(rng.int(-128...127)), outputZeroPoint: outZero,
                                       outputMin: fused ? outZero : -128, outputMax: fused ? min(127, outZero + 100) : 127)
    }

    /// The kernel for `p` on `path`, run: for a dense conv, the int16 direct kernel and, on paths with 4-way
    /// dot products, `Int8DotProductConv` too (each labelled).
    private func runKernels(_ p: QuantizedConvParameters, input: [Int8], height: Int, width: Int, threads: Int,
                            path: KernelPath = .current) -> [(kernel: String, output: [Int8])] {
        let outH = p.outputSize(height), outW = p.outputSize(width)
        func run(_ scratchCount: Int, _ body: (UnsafePointer<Int8>, UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Int16>) -> Void) -> [Int8] {
            var output = [Int8](repeating: 0x55, count: outH * outW * p.outChannels)
            var scratch = [Int16](repeating: 0x7777, count: scratchCount)
            input.withUnsafeBufferPointer { i in output.withUnsafeMutableBufferPointer { o in scratch.withUnsafeMutableBufferPointer { s in
                body(i.baseAddress!, o.baseAddress!, s.baseAddress!)
            }}}
            return output
        }
        switch p.kind {
        case .standard:
            let conv = Int8DenseConv(p, path: path)
            var outputs = [("Int8DenseConv", run(conv.scratchCount(height: height, width: width)) {
                conv.run(input: $0, height: height, width: width, output: $1, scratch: $2, threads: threads, inputZeroPoint: p.inputZeroPoint)
            })]
            if let dot = Int8DotProductConv(p, path: path) {
                outputs.append(("Int8DotProductConv", run(dot.scratchCount(height: height, width: width)) {
                    dot.run(input: $0, height: height, width: width, output: $1, scratch: $2, threads: threads, inputZeroPoint: p.inputZeroPoint)
                }))
            }
            return outputs
        case .depthwise:
            let conv = Int8Depthwise3x3(p, path: path)
            return [("Int8Depthwise3x3", run(conv.scratchCount(height: height, width: width)) {
                conv.run(input: $0, height: height, width: width, output: $1, scratch: $2, threads: threads, inputZeroPoint: p.inputZeroPoint)
            })]
        case .transposed:
            let conv = Int8TransposedConv2x2(p, path: path)
            return [("Int8TransposedConv2x2", run(conv.scratchCount(height: height, width: width)) {
                conv.run(input: $0, height: height, width: width, output: $1, scratch: $2, threads: threads, inputZeroPoint: p.inputZeroPoint)
            })]
        }
    }

    private func checkConv(kind: ConvSpec.Kind, kernel: Int, strides: [Int], channels: [(Int, Int)], sizes: [(Int, Int)], seed: UInt64) {
        var rng = TestRandom(seed: seed)
        var seen = Set<Int8>()
        var outputs = 0, clamped = 0
        defer {
            // The outputs must cover the int8 range and mostly not sit at the clamps, or equality proves little.
            XCTAssertGreaterThan(seen.count, 200, "\(kind): outputs barely vary")
            XCTAssertLessThan(Double(clamped), 0.4 * Double(outputs), "\(kind): too many outputs clamped")
        }
        for stride in strides {
            for (cin, cout) in channels {
                for (h, w) in sizes {
                    let p = randomConv(&rng, kind: kind, kernel: kernel, stride: stride, inChannels: cin, outChannels: cout, fused: kind != .transposed && (cin + h) % 2 == 0)
                    let input = (0..<(h * w * cin)).map { _ in rng.int8() }
                    let expected = referenceQuantizedConv(p, input: input, height: h, width: w)
                    // Every kernel path this CPU runs (KernelPath.supported; the others are covered on CPUs that
                    // have them, and the portable one under emulation: scripts/check-kernel-paths.sh).
                    for path in KernelPath.supported {
                        for threads in [1, 2, 3] {
                            for (name, got) in runKernels(p, input: input, height: h, width: w, threads: threads, path: path) {
                                XCTAssertEqual(got, expected, "\(name) on \(path.rawValue): \(kind) k\(kernel) s\(stride) \(cin)->\(cout) \(h)x\(w) threads \(threads)")
                            }
                        }
                    }
                    seen.formUnion(expected)
                    outputs += expected.count
                    clamped += expected.filter { $0 == -128 || $0 == 127 || Int32($0) == p.outputMin || Int32($0) == p.outputMax }.count
                }
            }
        }
    }

    func testConv3x3MatchesReference() {
        // 1 input channel: the patch-staged path (the first layer's); 2 and more: the padded staging.
        checkConv(kind: .standard, kernel: 3, strides: [1, 2], channels: [(1, 17), (1, 32), (3, 33), (17, 16), (33, 3), (2, 1)],
                  sizes: [(7, 9), (5, 3), (1, 1), (8, 13)], seed: 11)
        var rng = TestRandom(seed: 13)
        func stagesPatches(_ cin: Int, kernel: Int) -> Bool {
            Int8DenseConv(randomConv(&rng, kind: .standard, kernel: kernel, stride: 1, inChannels: cin, outChannels: 8, fused: false)).stagesPatches
        }
        XCTAssertTrue(stagesPatches(1, kernel: 3))
        XCTAssertFalse(stagesPatches(2, kernel: 3), "18 values do not fit one 16-lane patch")
        XCTAssertFalse(stagesPatches(1, kernel: 1))
    }

    /// Winograd F(2x2, 3x3) in integers must equal the direct convolution exactly (its comment has the
    /// arithmetic). Channel minimum lowered to 1 so that odd, narrow shapes are covered too.
    func testWinograd3x3MatchesReferenceExactly() throws {
        var rng = TestRandom(seed: 19)
        func check(_ p: QuantizedConvParameters, input: [Int8], height h: Int, width w: Int, _ label: String, bandBytes: Int? = nil) throws {
          for path in KernelPath.supported {
            let conv = try XCTUnwrap(Int8Winograd3x3(p, minimumChannels: 1, bandBytes: bandBytes, path: path), label)
            XCTAssertTrue(conv.supports(height: h, width: w))
            let expected = referenceQuantizedConv(p, input: input, height: h, width: w)
            for threads in [1, 2, 3] {
                var output = [Int8](repeating: 0x55, count: expected.count)
                var scratch = [Int16](repeating: 0x7777, count: conv.scratchCount(height: h, width: w))
                input.withUnsafeBufferPointer { i in output.withUnsafeMutableBufferPointer { o in scratch.withUnsafeMutableBufferPointer { s in
                    conv.run(input: i.baseAddress!, height: h, width: w, output: o.baseAddress!, scratch: s.baseAddress!, threads: threads,
                             inputZeroPoint: p.inputZeroPoint)
                }}}
                XCTAssertEqual(output, expected, "\(label) on \(path.rawValue), threads \(threads)")
            }
          }
        }
        for (cin, cout) in [(1, 17), (17, 16), (33, 3), (16, 64), (70, 20)] {
            for (h, w) in [(2, 2), (4, 6), (8, 10), (6, 14)] {
                let p = randomConv(&rng, kind: .standard, kernel: 3, stride: 1, inChannels: cin, outChannels: cout, fused: (cin + h) % 2 == 0)
                let input = (0..<(h * w * cin)).map { _ in rng.int8() }
                try check(p, input: input, height: h, width: w, "\(cin)->\(cout) \(h)x\(w)")
                // Bands of one tile row (the smallest), as large frames run.
                try check(p, input: input, height: h, width: w, "\(cin)->\(cout) \(h)x\(w) one-row bands", bandBytes: 1)
            }
        }
        // The extremes: every x - zero point = -255 and every weight ±127, 96 channels; the transforms reach
        // their largest magnitudes (|V| = 1020, |U| = 1143) and the sums wrap through int32 on the way.
        let weights = (0..<(8 * 96 * 9)).map { i -> Int8 in i % 3 == 0 ? -127 : 127 }
        let extreme = QuantizedConvParameters(kind: .standard, kernel: 3, stride: 1, inChannels: 96, outChannels: 8, weights: weights,
                                              bias: [Int32](repeating: 0, count: 8), multipliers: (0..<8).map { _ in QuantizedMultiplier(1e-5) },
                                              inputZeroPoint: 127, outputZeroPoint: 0)
        try check(extreme, input: [Int8](repeating: -128, count: 4 * 4 * 96), height: 4, width: 4, "extremes")
        XCTAssertNotEqual(Set(referenceQuantizedConv(extreme, input: [Int8](repeating: -128, count: 4 * 4 * 96), height: 4, width: 4)).count, 1,
                          "border and interior pixels differ, so the check sees the padding")

        // Exactness needs 4 x 255 x sum|w| < 2^31: 1,900 channels of full-scale weights are beyond it (refused),
        // the same channels with small weights are not. Narrow or strided convs stay on the direct kernel.
        func conv(_ cin: Int, weight: Int8, kernel: Int = 3, stride: Int = 1) -> QuantizedConvParameters {
            QuantizedConvParameters(kind: .standard, kernel: kernel, stride: stride, inChannels: cin, outChannels: 1,
                                    weights: [Int8](repeating: weight, count: cin * kernel * kernel), bias: [0],
                                    multipliers: [QuantizedMultiplier(0.001)], inputZeroPoint: 0, outputZeroPoint: 0)
        }
        XCTAssertNil(Int8Winograd3x3(conv(1_900, weight: 127), minimumChannels: 1))
        XCTAssertNotNil(Int8Winograd3x3(conv(1_900, weight: 10), minimumChannels: 1))
        XCTAssertNil(Int8Winograd3x3(conv(64, weight: 1, stride: 2), minimumChannels: 1))
        XCTAssertNil(Int8Winograd3x3(conv(64, weight: 1, kernel: 1), minimumChannels: 1))
        XCTAssertNil(Int8Winograd3x3(conv(32, weight: 1)), "below the default channel minimum")
    }

    /// The largest sums a layer of the model can reach, on every dense kernel: x - zero point = +255 and -255
    /// everywhere, weights at ±127, 200 input channels (3x3: 1,800 products per output). The 4-way kernel
    /// stages x + 128 and corrects the bias by (zp + 128) Σw; both extremes of the zero point test that.
    func testDenseConvExtremesOnEveryPath() {
        for (zeroPoint, value) in [(Int32(-128), Int8(127)), (Int32(127), Int8(-128))] {
            for (kernel, stride) in [(3, 1), (3, 2), (1, 1)] {
                let cin = 200, cout = 20
                let weights = (0..<(cout * cin * kernel * kernel)).map { i -> Int8 in i % 5 == 0 ? -127 : 127 }
                let p = QuantizedConvParameters(kind: .standard, kernel: kernel, stride: stride, inChannels: cin, outChannels: cout, weights: weights,
                                                bias: (0..<cout).map { Int32($0 * 1_000) }, multipliers: (0..<cout).map { QuantizedMultiplier(2e-7 * Double(1 + $0)) },
                                                inputZeroPoint: zeroPoint, outputZeroPoint: 0)
                let input = [Int8](repeating: value, count: 5 * 11 * cin)
                let expected = referenceQuantizedConv(p, input: input, height: 5, width: 11)
                XCTAssertGreaterThan(Set(expected).count, 1, "border and interior pixels differ")
                for path in KernelPath.supported {
                    for (name, got) in runKernels(p, input: input, height: 5, width: 11, threads: 2, path: path) {
                        XCTAssertEqual(got, expected, "\(name) on \(path.rawValue): k\(kernel) s\(stride) zero point \(zeroPoint)")
                    }
                }
            }
        }
    }

    func testPointwiseMatchesReference() {
        checkConv(kind: .standard, kernel: 1, strides: [1], channels: [(17, 33), (33, 17), (3, 1), (96, 24), (24, 144)],
                  sizes: [(7, 9), (1, 5), (6, 6)], seed: 12)
    }

    func testDepthwise3x3MatchesReference() {
        checkConv(kind: .depthwise, kernel: 3, strides: [1, 2], channels: [(3, 3), (17, 17), (33, 33), (144, 144)],
                  sizes: [(7, 9), (5, 3), (1, 1), (8, 12)], seed: 13)
    }

    func testTransposedConv2x2MatchesReference() {
        // No fused activation: the baseline's transposed convs have none.
        checkConv(kind: .transposed, kernel: 2, strides: [2], channels: [(1, 17), (3, 33), (17, 16), (33, 3), (2, 1), (40, 24)],
                  sizes: [(7, 9), (5, 3), (1, 1), (2, 6)], seed: 17)
        // Known values: one pixel, one channel, W = [[1, 2], [3, 4]], input 3 at zero point 1 (x - zp = 2), bias 1,
        // multiplier 0.5, output zero point -1: (1 + 2 w) x 0.5 = 1.5, 2.5, 3.5, 4.5, ties rounded up (the high
        // multiply) = 2, 3, 4, 5; plus the zero point: 1, 2, 3, 4.
        let p = QuantizedConvParameters(kind: .transposed, kernel: 2, stride: 2, inChannels: 1, outChannels: 1, weights: [1, 2, 3, 4], bias: [1],
                                        multipliers: [QuantizedMultiplier(0.5)], inputZeroPoint: 1, outputZeroPoint: -1)
        XCTAssertEqual(referenceQuantizedTransposedConv(p, input: [3], height: 1, width: 1), [1, 2, 3, 4])
        XCTAssertEqual(runKernels(p, input: [3], height: 1, width: 1, threads: 1).first?.output, [1, 2, 3, 4])
    }

    func testMaxPool2x2MatchesReference() {
        var rng = TestRandom(seed: 18)
        for (h, w, c) in [(4, 6, 33), (7, 5, 16), (2, 2, 3), (6, 4, 64)] {
            let input = (0..<(h * w * c)).map { _ in rng.int8() }
            let expected = referenceMaxPool2x2(input, height: h, width: w, channels: c)
            for threads in [1, 2, 3] {
                var out = [Int8](repeating: 0x55, count: expected.count)
                input.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { o in
                    int8MaxPool2x2(i.baseAddress!, height: h, width: w, channels: c, output: o.baseAddress!, threads: threads)
                }}
                XCTAssertEqual(out, expected, "\(h)x\(w)x\(c) threads \(threads)")
            }
        }
        XCTAssertEqual(referenceMaxPool2x2([-128, 5, -3, 127, 0, -1, 7, -100], height: 2, width: 2, channels: 2), [7, 127])
    }

    func testAddMatchesReference() {
        var rng = TestRandom(seed: 14)
        for count in [1, 7, 8, 33, 1001] {
            let p = Int8AddParameters(aScale: Float(0.01 + rng.unit() * 0.1), aZeroPoint: Int32(rng.int(-128...127)),
                                      bScale: Float(0.01 + rng.unit() * 0.1), bZeroPoint: Int32(rng.int(-128...127)),
                                      outputScale: Float(0.02 + rng.unit() * 0.1), outputZeroPoint: Int32(rng.int(-128...127)))
            let a = (0..<count).map { _ in rng.int8() }, b = (0..<count).map { _ in rng.int8() }
            let expected = referenceAdd(a, b, p)
            for path in KernelPath.supported {
                for threads in [1, 2] {
                    var out = [Int8](repeating: 0, count: count)
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in out.withUnsafeMutableBufferPointer { o in
                        int8Add(ap.baseAddress!, bp.baseAddress!, count: count, output: o.baseAddress!, p, threads: threads, path: path)
                    }}}
                    XCTAssertEqual(out, expected, "count \(count) on \(path.rawValue)")
                }
            }
        }
        // Semantics on a known case: 0.5 + 0.25 at scale 0.05 = 0.75 / 0.05 = 15.
        let p = Int8AddParameters(aScale: 0.05, aZeroPoint: 0, bScale: 0.025, bZeroPoint: 10, outputScale: 0.05, outputZeroPoint: -3)
        XCTAssertEqual(p.add(10, 20), 12)
    }

    func testConcatMatchesReference() {
        var rng = TestRandom(seed: 15)
        for (ca, cb, pixels) in [(3, 17, 5), (33, 9, 7), (16, 16, 1), (1, 2, 9)] {
            let ra = Int8Rescale(inputScale: Float(0.01 + rng.unit()), inputZeroPoint: Int32(rng.int(-128...127)), outputScale: 0.5, outputZeroPoint: 7)
            let rb = ca == 16 ? Int8Rescale(inputScale: 0.5, inputZeroPoint: 7, outputScale: 0.5, outputZeroPoint: 7)
                              : Int8Rescale(inputScale: Float(0.01 + rng.unit()), inputZeroPoint: Int32(rng.int(-128...127)), outputScale: 0.5, outputZeroPoint: 7)
            let a = (0..<(ca * pixels)).map { _ in rng.int8() }, b = (0..<(cb * pixels)).map { _ in rng.int8() }
            let expected = referenceConcat(a, channelsA: ca, b, channelsB: cb, rescaleA: ra, rescaleB: rb)
            for path in KernelPath.supported {
                for threads in [1, 2] {
                    var out = [Int8](repeating: 0, count: expected.count)
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in out.withUnsafeMutableBufferPointer { o in
                        int8Concat(ap.baseAddress!, channelsA: ca, bp.baseAddress!, channelsB: cb, pixels: pixels, output: o.baseAddress!,
                                   rescaleA: ra, rescaleB: rb, threads: threads, path: path)
                    }}}
                    XCTAssertEqual(out, expected, "\(ca)+\(cb) x \(pixels) on \(path.rawValue)")
                }
            }
        }
        // Rescale semantics: 10 at (0.1, 0) is 1.0 -> at (0.25, 2) 4 + 2 = 6.
        XCTAssertEqual(Int8Rescale(inputScale: 0.1, inputZeroPoint: 0, outputScale: 0.25, outputZeroPoint: 2).apply(10), 6)
    }

    func testUpsampleMatchesReference() {
        var rng = TestRandom(seed: 16)
        for (h, w, c) in [(3, 5, 17), (1, 1, 3), (4, 7, 33)] {
            let input = (0..<(h * w * c)).map { _ in rng.int8() }
            let expected = referenceUpsample2x(input, height: h, width: w, channels: c)
            for threads in [1, 2] {
                var out = [Int8](repeating: 0, count: expected.count)
                input.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { o in
                    int8Upsample2x(i.baseAddress!, height: h, width: w, channels: c, output: o.baseAddress!, threads: threads)
                }}
                XCTAssertEqual(out, expected)
            }
        }
    }
}
