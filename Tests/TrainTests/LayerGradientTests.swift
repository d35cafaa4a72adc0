import HC18
import QuantEngine
import Train
import XCTest
import TestSupport

/// Each layer's backward against central finite differences of its forward, on tiny maps. The scalar
/// probed is L = sum(output * R) for a fixed random R, so dL/doutput = R.
final class LayerGradientTests: XCTestCase {
    let graph = ModelGraph.mobileNetV2UNet(inputChannels: 3)
    func spec(_ prefix: String) -> ConvSpec { graph.convs.first { $0.weightPrefix == prefix }! }

    var rng = SplitMix64(seed: 7)
    func randomMap(_ c: Int, _ n: Int, _ h: Int, _ w: Int) -> FeatureBatch {
        FeatureBatch(channels: c, batch: n, height: h, width: w, data: (0..<(c * n * h * w)).map { _ in rng.uniform(-1, 1) })
    }
    func randomArray(_ count: Int, scale: Float = 0.3) -> [Float] { (0..<count).map { _ in scale * rng.uniform(-1, 1) } }

    func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

    /// Compares analytic gradient entries with (L(v + h) - L(v - h)) / 2h at a few indices.
    func checkNumerically(_ name: String, values: [Float], analytic: [Float], samples: Int = 12,
                          loss: ([Float]) -> Double, file: StaticString = #filePath, line: UInt = #line) {
        let h: Float = 1e-2
        var sampler = SplitMix64(seed: UInt64(values.count))
        for _ in 0..<samples {
            let i = Int(sampler.next() % UInt64(values.count))
            var plus = values, minus = values
            plus[i] += h
            minus[i] -= h
            let numeric = (loss(plus) - loss(minus)) / Double(2 * h)
            XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 2e-3 * max(1, abs(numeric)),
                           "\(name)[\(i)]", file: file, line: line)
        }
    }

    func checkDenseConv(_ prefix: String, height: Int, width: Int) {
        let s = spec(prefix)
        let x = randomMap(s.inChannels, 2, height, width)
        let weight = randomArray(s.weightCount)
        let bias = s.hasBias ? randomArray(s.outChannels) : nil
        let out = DenseConv.forward(x, weight: weight, bias: bias, spec: s, threads: 2)
        let r = randomArray(out.data.count, scale: 1)
        let dOut = FeatureBatch(channels: out.channels, batch: 2, height: out.height, width: out.width, data: r)
        let (dWeight, dInput) = DenseConv.backward(x: x, dOut: dOut, weight: weight, spec: s,
                                                   wantWeightGradient: true, wantInputGradient: true, threads: 2)
        checkNumerically("\(prefix) weight", values: weight, analytic: dWeight!) { w in
            dot(DenseConv.forward(x, weight: w, bias: bias, spec: s, threads: 2).data, r)
        }
        checkNumerically("\(prefix) input", values: x.data, analytic: dInput!.data) { v in
            var moved = x
            moved.data = v
            return dot(DenseConv.forward(moved, weight: weight, bias: bias, spec: s, threads: 2).data, r)
        }
    }

    /// The weight-gradient microkernel (`floatWeightGradientTile`) on every kernel path this CPU runs, against
    /// the plain-Swift definition, with channel counts that leave partial tiles (13 = 2 x 6 + 1 output
    /// channels, 19 = 16 + 3 input channels) and pixel counts past one cache block.
    func testWeightGradientMicrokernelMatchesReference() {
        for stride in [1, 2] {
            let x = randomMap(19, 2, 23, 30)
            let outHeight = (23 - 1) / stride + 1, outWidth = (30 - 1) / stride + 1
            let dOut = randomMap(13, 2, outHeight, outWidth)
            let reference = DenseConv.weightGradientReference(x: x, dOut: dOut, kernel: 3, stride: stride)
            for path in KernelPath.supported {
                for threads in [1, 2] {
                    let fast = DenseConv.weightGradient(x: x, dOut: dOut, kernel: 3, stride: stride, path: path, threads: threads)
                    let worst = zip(fast, reference).map { abs($0 - $1) / max(1, abs($1)) }.max()!
                    XCTAssertLessThan(worst, 1e-4, "stride \(stride), \(path.rawValue), \(threads) threads")
                }
            }
        }
    }

    /// The AVX-512 tile (6 x 32, 16-lane registers) sums each weight's products over the pixels in the order of
    /// the AVX2 tile (6 x 16, 8-lane halves), so the two paths give the same bits; input channel counts that
    /// leave partial 32- and 16-lane tiles (19, 40, 70).
    func testWeightGradientSameBitsOnAVX2AndAVX512() throws {
        guard KernelPath.supported.contains(.avx2) && KernelPath.supported.contains(.avx512VNNI) else {
            throw XCTSkip("needs a CPU with AVX2 and AVX-512 VNNI")
        }
        for cin in [19, 40, 70] {
            let x = randomMap(cin, 2, 11, 14), dOut = randomMap(13, 2, 11, 14)
            let avx2 = DenseConv.weightGradient(x: x, dOut: dOut, kernel: 3, stride: 1, path: .avx2, threads: 2)
            let avx512 = DenseConv.weightGradient(x: x, dOut: dOut, kernel: 3, stride: 1, path: .avx512VNNI, threads: 2)
            XCTAssertEqual(avx2, avx512, "\(cin) input channels")
        }
    }

    /// A 3x3 stride-1 convolution by its definition, in Double, on NHWC maps: the output, and the
    /// input gradient for an output gradient dZ (each output pixel's taps read zero outside the map).
    func directConv3x3(_ x: FeatureBatch, weight: [Float], outChannels cout: Int) -> [Float] {
        let (cin, n, h, w) = (x.channels, x.batch, x.height, x.width)
        var out = [Float](repeating: 0, count: cout * n * h * w)
        for o in 0..<cout { for image in 0..<n { for y in 0..<h { for xx in 0..<w {
            var sum = 0.0
            for c in 0..<cin { for ky in 0..<3 { for kx in 0..<3 {
                let (iy, ix) = (y + ky - 1, xx + kx - 1)
                guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                sum += Double(weight[((o * cin + c) * 3 + ky) * 3 + kx]) * Double(x.data[((image * h + iy) * w + ix) * cin + c])
            } } }
            out[((image * h + y) * w + xx) * cout + o] = Float(sum)
        } } } }
        return out
    }

    func directInputGradient3x3(_ dZ: FeatureBatch, weight: [Float], inChannels cin: Int) -> [Float] {
        let (cout, n, h, w) = (dZ.channels, dZ.batch, dZ.height, dZ.width)
        var dX = [Float](repeating: 0, count: cin * n * h * w)
        for c in 0..<cin { for image in 0..<n { for y in 0..<h { for xx in 0..<w {
            var sum = 0.0
            for o in 0..<cout { for ky in 0..<3 { for kx in 0..<3 {
                let (oy, ox) = (y - ky + 1, xx - kx + 1)
                guard oy >= 0 && oy < h && ox >= 0 && ox < w else { continue }
                sum += Double(weight[((o * cin + c) * 3 + ky) * 3 + kx]) * Double(dZ.data[((image * h + oy) * w + ox) * cout + o])
            } } }
            dX[((image * h + y) * w + xx) * cin + c] = Float(sum)
        } } } }
        return dX
    }

    /// The decoder's wide 3x3 convolutions run on Winograd F(2x2, 3x3) in all three directions
    /// (Sources/Train/WinogradConv.swift): forward, input gradient and weight gradient against the direct
    /// definitions: in blocks of tiles (several blocks, the last one partial: 60 tiles of 36 for 80 -> 32
    /// channels; one block for 128 -> 128 and 288 -> 128) and stage by stage over the whole map (1376 -> 256,
    /// a single 2x2 tile). The weight gradient is the same for 1 and 2 threads.
    func testWinogradConvolutionAgreesWithTheDirectDefinition() {
        for (prefix, height, width) in [("decoder.blocks.3.conv1.0", 10, 12), ("decoder.blocks.1.conv2.0", 6, 4),
                                        ("decoder.blocks.1.conv1.0", 4, 6), ("decoder.blocks.0.conv1.0", 2, 2)] {
            let s = spec(prefix)
            XCTAssertTrue(WinogradConv.applies(s, height: height, width: width), prefix)
            let x = randomMap(s.inChannels, 2, height, width)
            let weight = randomArray(s.weightCount)
            let out = DenseConv.forward(x, weight: weight, bias: nil, spec: s, threads: 2)
            let dOut = randomMap(s.outChannels, 2, height, width)
            let (dWeight, dInput) = DenseConv.backward(x: x, dOut: dOut, weight: weight, spec: s,
                                                       wantWeightGradient: true, wantInputGradient: true, threads: 2)
            func worst(_ a: [Float], _ e: [Float]) -> Float {
                let scale = 1 + e.map(abs).max()!
                return zip(a, e).map { abs($0 - $1) }.max()! / scale
            }
            XCTAssertLessThan(worst(out.data, directConv3x3(x, weight: weight, outChannels: s.outChannels)), 1e-5, "\(prefix) forward")
            XCTAssertLessThan(worst(dInput!.data, directInputGradient3x3(dOut, weight: weight, inChannels: s.inChannels)), 1e-5, "\(prefix) input gradient")
            XCTAssertLessThan(worst(dWeight!, DenseConv.weightGradientReference(x: x, dOut: dOut, kernel: 3, stride: 1)), 1e-5, "\(prefix) weight gradient")
            let oneThread = DenseConv.backward(x: x, dOut: dOut, weight: weight, spec: s, wantWeightGradient: true, wantInputGradient: false, threads: 1)
            XCTAssertEqual(oneThread.dWeight!, dWeight!, "\(prefix) weight gradient, 1 vs 2 threads")
        }
    }

    /// 1x1 convolutions run as GEMMs on the trainer's rows (DenseConv.pointwise / pointwiseBackward): output,
    /// input gradient and weight gradient against their definitions, with channel counts that leave partial
    /// tiles (19 = 16 + 3 inputs, 13 = 2 x 6 + 1 outputs) and the last pixel added on its own.
    func testPointwiseConvolutionAgreesWithTheDefinition() {
        let (cin, cout, n, h, w) = (19, 13, 2, 5, 7)
        let s = ConvSpec(weightPrefix: "pointwise", batchNormPrefix: nil, hasBias: false, kind: .standard, kernel: 1, stride: 1,
                         inChannels: cin, outChannels: cout, activation: .none, group: .encoder)
        let x = randomMap(cin, n, h, w), dOut = randomMap(cout, n, h, w)
        let weight = randomArray(cout * cin)
        let out = DenseConv.forward(x, weight: weight, bias: nil, spec: s, threads: 2)
        let (dWeight, dInput) = DenseConv.backward(x: x, dOut: dOut, weight: weight, spec: s,
                                                   wantWeightGradient: true, wantInputGradient: true, threads: 2)
        var worstOut: Float = 0, worstInput: Float = 0
        for p in 0..<(n * h * w) {
            for o in 0..<cout {
                let e = (0..<cin).reduce(0.0) { $0 + Double(weight[o * cin + $1]) * Double(x.data[p * cin + $1]) }
                worstOut = max(worstOut, abs(out.data[p * cout + o] - Float(e)))
            }
            for c in 0..<cin {
                let e = (0..<cout).reduce(0.0) { $0 + Double(weight[$1 * cin + c]) * Double(dOut.data[p * cout + $1]) }
                worstInput = max(worstInput, abs(dInput!.data[p * cin + c] - Float(e)))
            }
        }
        let reference = DenseConv.weightGradientReference(x: x, dOut: dOut, kernel: 1, stride: 1)
        let worstWeight = zip(dWeight!, reference).map { abs($0 - $1) / max(1, abs($1)) }.max()!
        XCTAssertLessThan(worstOut, 1e-5)
        XCTAssertLessThan(worstInput, 1e-5)
        XCTAssertLessThan(worstWeight, 1e-5)
    }

    func testDenseConv3x3Stride2() { checkDenseConv("encoder.features.0.0", height: 7, width: 6) }
    func testDenseConv3x3Stride1() { checkDenseConv("decoder.blocks.4.conv2.0", height: 5, width: 4) }
    func testDenseConv1x1() { checkDenseConv("encoder.features.1.conv.1", height: 3, width: 5) }
    func testHeadConvWithBias() { checkDenseConv("segmentation_head.0", height: 4, width: 5) }

    func checkDepthwise(_ prefix: String, height: Int, width: Int) {
        let s = spec(prefix)
        let x = randomMap(s.inChannels, 2, height, width)
        let weight = randomArray(s.weightCount)
        let out = DepthwiseConv.forward(x, weight: weight, spec: s, threads: 2)
        let r = randomArray(out.data.count, scale: 1)
        let dOut = FeatureBatch(channels: out.channels, batch: 2, height: out.height, width: out.width, data: r)
        let (dWeight, dInput) = DepthwiseConv.backward(x: x, dOut: dOut, weight: weight, spec: s,
                                                       wantWeightGradient: true, wantInputGradient: true, threads: 2)
        checkNumerically("\(prefix) weight", values: weight, analytic: dWeight!) { w in
            dot(DepthwiseConv.forward(x, weight: w, spec: s, threads: 2).data, r)
        }
        checkNumerically("\(prefix) input", values: x.data, analytic: dInput!.data) { v in
            var moved = x
            moved.data = v
            return dot(DepthwiseConv.forward(moved, weight: weight, spec: s, threads: 2).data, r)
        }
    }

    func testDepthwiseStride1() { checkDepthwise("encoder.features.1.conv.0.0", height: 5, width: 4) }
    func testDepthwiseStride2() { checkDepthwise("encoder.features.2.conv.1.0", height: 7, width: 6) }

    func testBatchNormTrainAndEvalMode() {
        let z = randomMap(3, 2, 3, 4)
        let gamma: [Float] = [1.3, -0.7, 0.5], beta: [Float] = [0.1, 0.2, -0.3]
        let runningMean: [Float] = [0.1, -0.2, 0.05], runningVar: [Float] = [0.8, 1.5, 0.3]
        let r = randomArray(z.data.count, scale: 1)
        for train in [true, false] {
            func run(_ z: FeatureBatch, _ g: [Float], _ b: [Float]) -> (FeatureBatch, BatchNormCache) {
                var y = z
                if train {
                    let cache = BatchNorm.trainForward(&y, gamma: g, beta: b, threads: 2).cache
                    return (y, cache)
                }
                let cache = BatchNorm.evalForward(&y, gamma: g, beta: b, runningMean: runningMean, runningVar: runningVar, keepCache: true, threads: 2)!
                return (y, cache)
            }
            let (_, cache) = run(z, gamma, beta)
            let dy = FeatureBatch(channels: 3, batch: 2, height: 3, width: 4, data: r)
            let (dz, dGamma, dBeta) = BatchNorm.backward(dy, cache: cache, gamma: gamma, wantInputGradient: true, threads: 2)
            let mode = train ? "train" : "eval"
            checkNumerically("BN \(mode) input", values: z.data, analytic: dz!.data, samples: 20) { v in
                var moved = z
                moved.data = v
                return dot(run(moved, gamma, beta).0.data, r)
            }
            checkNumerically("BN \(mode) gamma", values: gamma, analytic: dGamma, samples: 3) { g in dot(run(z, g, beta).0.data, r) }
            checkNumerically("BN \(mode) beta", values: beta, analytic: dBeta, samples: 3) { b in dot(run(z, gamma, b).0.data, r) }
        }
    }

    /// BatchNorm applies the layer's activation in its normalising pass: the same values as BatchNorm and then
    /// the activation on its own, bit for bit, in train and eval mode.
    func testBatchNormWithActivationEqualsBatchNormThenActivation() {
        let z = randomMap(11, 2, 3, 5)
        var scaled = z
        scaled.data = z.data.map { $0 * 9 }  // past 6 and below 0, so both clamps act
        let (gamma, beta) = (randomArray(11, scale: 6), randomArray(11, scale: 2))
        for activation in [Activation.relu, .relu6] {
            var fused = scaled, separate = scaled
            let fusedCache = BatchNorm.trainForward(&fused, gamma: gamma, beta: beta, activation: activation, threads: 2).cache
            let separateCache = BatchNorm.trainForward(&separate, gamma: gamma, beta: beta, threads: 2).cache
            ActivationLayer.forward(&separate, activation, threads: 2)
            XCTAssertEqual(fused.data, separate.data, "train mode, \(activation)")
            XCTAssertEqual(fusedCache.normalized, separateCache.normalized)
            var fusedEval = scaled, separateEval = scaled
            let (mean, variance) = (randomArray(11), randomArray(11).map { abs($0) + 0.5 })
            _ = BatchNorm.evalForward(&fusedEval, gamma: gamma, beta: beta, runningMean: mean, runningVar: variance, activation: activation,
                                      keepCache: false, threads: 2)
            _ = BatchNorm.evalForward(&separateEval, gamma: gamma, beta: beta, runningMean: mean, runningVar: variance, keepCache: false, threads: 2)
            ActivationLayer.forward(&separateEval, activation, threads: 2)
            XCTAssertEqual(fusedEval.data, separateEval.data, "eval mode, \(activation)")
            XCTAssertTrue(fused.data.contains(0) && (activation == .relu || fused.data.contains(6)))
        }
    }

    func testBatchNormRunningStatisticsUseUnbiasedVariance() {
        // One channel, values 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased var 5/3.
        var z = FeatureBatch(channels: 1, batch: 1, height: 2, width: 2, data: [1, 2, 3, 4])
        let (_, mean, variance) = BatchNorm.trainForward(&z, gamma: [1], beta: [0], threads: 1)
        var runningMean: [Float] = [0], runningVar: [Float] = [1]
        BatchNorm.updateRunningStatistics(runningMean: &runningMean, runningVar: &runningVar, mean: mean, biasedVariance: variance, count: 4)
        XCTAssertEqual(runningMean[0], 0.25, accuracy: 1e-6)
        XCTAssertEqual(runningVar[0], 0.9 + 0.1 * 5 / 3, accuracy: 1e-6)
        // Normalised with the biased variance and eps 1e-5.
        XCTAssertEqual(z.data[0], (1 - 2.5) / (1.25 + 1e-5).squareRoot(), accuracy: 1e-5)
    }

    func testActivationsPassGradientOnlyWhereUnclamped() {
        var y = FeatureBatch(channels: 1, batch: 1, height: 1, width: 5, data: [-1, 0.5, 3, 6.5, 7])
        let original = y
        ActivationLayer.forward(&y, .relu6, threads: 2)
        XCTAssertEqual(y.data, [0, 0.5, 3, 6, 6])
        var g = FeatureBatch(channels: 1, batch: 1, height: 1, width: 5, data: [1, 1, 1, 1, 1])
        ActivationLayer.backward(&g, output: y, .relu6, threads: 2)
        XCTAssertEqual(g.data, [0, 1, 1, 0, 0])
        var r = original
        ActivationLayer.forward(&r, .relu, threads: 2)
        var gr = FeatureBatch(channels: 1, batch: 1, height: 1, width: 5, data: [1, 1, 1, 1, 1])
        ActivationLayer.backward(&gr, output: r, .relu, threads: 2)
        XCTAssertEqual(gr.data, [0, 1, 1, 1, 1])
    }

    /// Upsample and concat are linear: their backward must be the adjoint, <A x, y> = <x, A^T y>.
    func testUpsampleAndConcatBackwardAreAdjoints() {
        let x = randomMap(3, 2, 3, 4)
        let y = randomMap(3, 2, 6, 8)
        XCTAssertEqual(dot(Upsample2x.forward(x, threads: 2).data, y.data), dot(x.data, Upsample2x.backward(y, threads: 2).data), accuracy: 1e-4)
        let a = randomMap(2, 2, 3, 4), b = randomMap(3, 2, 3, 4)
        let joined = Concat.forward(a, b, threads: 2)
        let g = randomMap(5, 2, 3, 4)
        let (ga, gb) = Concat.backward(g, firstChannels: 2, threads: 2)
        XCTAssertEqual(dot(joined.data, g.data), dot(a.data, ga.data) + dot(b.data, gb.data), accuracy: 1e-4)
    }

    func testBCEWithLogitsIsStableAndMatchesItsGradient() {
        let (loss, gradient) = BCEWithLogits.lossAndGradient(logits: [200, -200, 0, 1.5], targets: [0, 1, 1, 0])
        // Large logits of the wrong sign cost |x| each; no overflow.
        XCTAssertEqual(loss, (200 + 200 + log(2) + (1.5 + log1p(exp(-1.5)))) / 4, accuracy: 1e-9)
        XCTAssertEqual(gradient[0], 0.25, accuracy: 1e-7)
        XCTAssertEqual(gradient[1], -0.25, accuracy: 1e-7)
        XCTAssertEqual(gradient[2], -0.125, accuracy: 1e-7)
        let logits: [Float] = [0.3, -1.2, 2.0], targets: [Float] = [1, 0, 0.5]
        let (_, g) = BCEWithLogits.lossAndGradient(logits: logits, targets: targets)
        checkNumerically("BCE", values: logits, analytic: g, samples: 3) { l in BCEWithLogits.lossAndGradient(logits: l, targets: targets).loss }
    }
}

