import HC18
import QuantEngine
import Train
import XCTest
import TestSupport

/// The two layers the baseline U-Net adds (2x2 max-pool, 2x2 stride-2 transposed conv): finite differences
/// at tiny sizes, PyTorch's own forward and backward (fixtures/baseline_layers.safetensors, made by
/// scripts/peers/make_baseline_layer_fixture.py), and the unet-baseline preset end to end.
final class BaselineLayerTests: XCTestCase {
    var rng = SplitMix64(seed: 11)
    func randomArray(_ count: Int, scale: Float = 1) -> [Float] { (0..<count).map { _ in scale * rng.uniform(-1, 1) } }
    func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

    let transposedSpec = ConvSpec(weightPrefix: "up", batchNormPrefix: nil, hasBias: true, kind: .transposed, kernel: 2, stride: 2,
                                  inChannels: 6, outChannels: 4, activation: .none, group: .decoderBlock(0))

    /// (L(v + h) - L(v - h)) / 2h against the analytic gradient at every index (the layers are tiny).
    func checkNumerically(_ name: String, values: [Float], analytic: [Float], h: Float, loss: ([Float]) -> Double,
                          file: StaticString = #filePath, line: UInt = #line) {
        for i in values.indices {
            var plus = values, minus = values
            plus[i] += h
            minus[i] -= h
            let numeric = (loss(plus) - loss(minus)) / Double(2 * h)
            XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 2e-3 * max(1, abs(numeric)), "\(name)[\(i)]", file: file, line: line)
        }
    }

    func testTransposedConvGradientsMatchFiniteDifferences() {
        let s = transposedSpec
        let x = FeatureBatch(channels: 6, batch: 2, height: 3, width: 2, data: randomArray(6 * 2 * 3 * 2))
        let weight = randomArray(s.weightCount, scale: 0.5), bias = randomArray(4, scale: 0.5)
        let out = TransposedConv2x2.forward(x, weight: weight, bias: bias, spec: s, threads: 2)
        XCTAssertEqual([out.channels, out.batch, out.height, out.width], [4, 2, 6, 4])
        let r = randomArray(out.data.count)
        let dOut = FeatureBatch(channels: 4, batch: 2, height: 6, width: 4, data: r)
        let (dWeight, dInput) = TransposedConv2x2.backward(x: x, dOut: dOut, weight: weight, spec: s,
                                                           wantWeightGradient: true, wantInputGradient: true, threads: 2)
        checkNumerically("weight", values: weight, analytic: dWeight!, h: 1e-2) { w in
            dot(TransposedConv2x2.forward(x, weight: w, bias: bias, spec: s, threads: 2).data, r)
        }
        checkNumerically("input", values: x.data, analytic: dInput!.data, h: 1e-2) { v in
            var moved = x
            moved.data = v
            return dot(TransposedConv2x2.forward(moved, weight: weight, bias: bias, spec: s, threads: 1).data, r)
        }
    }

    func testMaxPoolGradientMatchesFiniteDifferences() {
        // Distinct values 0.1 apart (a shuffled ramp), so a step of 1e-2 never changes a window's winner.
        var values: [Float] = (0..<180).map { (i: Int) -> Float in Float(i) * 0.1 - 9 }
        for i in stride(from: values.count - 1, to: 0, by: -1) { values.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let x = FeatureBatch(channels: 3, batch: 2, height: 5, width: 6, data: values)
        let out = MaxPool2x2.forward(x, threads: 2)
        XCTAssertEqual([out.height, out.width], [2, 3])  // the odd last row is dropped
        let r = randomArray(out.data.count)
        let dx = MaxPool2x2.backward(x: x, dOut: FeatureBatch(channels: 3, batch: 2, height: 2, width: 3, data: r), threads: 2)
        checkNumerically("max-pool input", values: x.data, analytic: dx.data, h: 1e-2) { v in
            var moved = x
            moved.data = v
            return dot(MaxPool2x2.forward(moved, threads: 1).data, r)
        }
    }

    /// PyTorch's CPU rule: a later value wins only if strictly larger or NaN (checked in PyTorch 2.x:
    /// [1,1,1,1] -> top-left, [0,2,2,1] -> top-right, [0,1,2,2] -> bottom-left, [nan,3,nan,1] -> the second nan).
    func testMaxPoolTiesGoToTheFirstMaximumAsInPyTorch() {
        let windows: [[Float]] = [[1, 1, 1, 1], [0, 2, 2, 1], [0, 1, 2, 2], [.nan, 3, .nan, 1]]
        let expected: [[Float]] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
        for (window, want) in zip(windows, expected) {
            let x = FeatureBatch(channels: 1, batch: 1, height: 2, width: 2, data: window)
            let dx = MaxPool2x2.backward(x: x, dOut: FeatureBatch(channels: 1, batch: 1, height: 1, width: 1, data: [1]), threads: 1)
            XCTAssertEqual(dx.data, want, "\(window)")
        }
    }

    func testMaxPoolAndTransposedConvMatchPyTorch() throws {
        let file = try SafeTensorsFile(path: Fixtures.path("baseline_layers.safetensors"))
        func batch(_ name: String) throws -> FeatureBatch { FeatureBatch(nchw: try file.tensor(name)) }
        func assertClose(_ ours: [Float], _ theirs: [Float], _ name: String, tolerance: Float = 1e-5) {
            XCTAssertEqual(ours.count, theirs.count, name)
            let worst = zip(ours, theirs).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, tolerance * max(1, theirs.map(abs).max() ?? 0), name)
        }

        // Max-pool with many tied windows: exact (no arithmetic), ties routed as PyTorch routes them.
        let poolInput = try batch("pool.input")
        XCTAssertEqual(MaxPool2x2.forward(poolInput, threads: 2).nchw().data, try file.tensor("pool.output").data)
        let poolGradient = MaxPool2x2.backward(x: poolInput, dOut: try batch("pool.grad_output"), threads: 2)
        XCTAssertEqual(poolGradient.nchw().data, try file.tensor("pool.grad_input").data)

        // Transposed conv: weight [in, out, 2, 2] exactly as PyTorch stores it.
        let x = try batch("tconv.input")
        let weight = try file.tensor("tconv.weight"), bias = try file.tensor("tconv.bias").data
        XCTAssertEqual(weight.shape, transposedSpec.weightShape)
        let out = TransposedConv2x2.forward(x, weight: weight.data, bias: bias, spec: transposedSpec, threads: 2)
        assertClose(out.nchw().data, try file.tensor("tconv.output").data, "output")
        let dOut = try batch("tconv.grad_output")
        let (dWeight, dInput) = TransposedConv2x2.backward(x: x, dOut: dOut, weight: weight.data, spec: transposedSpec,
                                                           wantWeightGradient: true, wantInputGradient: true, threads: 2)
        assertClose(dWeight!, try file.tensor("tconv.grad_weight").data, "grad_weight")
        assertClose(dInput!.nchw().data, try file.tensor("tconv.grad_input").data, "grad_input")
        let dBias = (0..<4).map { o in (0..<dOut.pixels).reduce(Float(0)) { $0 + dOut.data[$1 * 4 + o] } }
        assertClose(dBias, try file.tensor("tconv.grad_bias").data, "grad_bias")
    }

    /// The size check follows the strategy's graph: multiples of 16 for the baseline, 32 for MobileNetV2.
    func testTrainingSizeMustSuitTheStrategysGraph() throws {
        let directory = try temporaryDirectory(self, "baseline-size")
        func run(_ strategy: String, _ width: Int, _ height: Int) throws {
            let configuration = TrainingConfiguration(
                dataDirectory: directory + "/no-data", splitCSV: directory + "/no-split.csv", strategy: try Strategy.preset(strategy),
                width: width, height: height, epochs: 1, batchSize: 2, learningRate: 1e-4, seed: 0, initPath: nil,
                runDirectory: directory + "/run-\(strategy)-\(width)x\(height)", resume: false, threads: 1)
            try TrainingRun(configuration: configuration) { _ in }.run()
        }
        assertSonoQuantError(try run("unet-baseline", 40, 32), subject: "--size 40x32", contains: "multiples of 16 for unet-baseline")
        assertSonoQuantError(try run("full-scratch", 48, 32), subject: "--size 48x32", contains: "multiples of 32 for unet-mobilenet_v2")
    }

    /// The preset builds the 31M-parameter model once: exact trainable count, PyTorch's default init bounds,
    /// and one training step at 32x16 (1x1 at the bottleneck) that gives every parameter a finite gradient.
    func testUNetBaselinePresetTrainsEveryParameter() throws {
        let strategy = try Strategy.preset("unet-baseline")
        XCTAssertEqual(strategy.architecture, .unetBaseline)
        XCTAssertEqual(strategy.graph.sizeMultiple, 16)
        XCTAssertTrue(Strategy.presets.filter { $0.name != "unet-baseline" }.allSatisfy { $0.architecture == .mobileNetV2UNet })
        let weights = try Initialization.initialWeights(architecture: strategy.architecture, initPath: nil,
                                                        randomEncoder: strategy.randomEncoder, seed: 1)
        XCTAssertEqual(weights.graph.architecture, .unetBaseline)
        // Conv2d(3, 64, 3): fan_in 27; ConvTranspose2d(128, 64, 2) ([128, 64, 2, 2]): PyTorch's fan_in 64 * 4.
        let first = weights.tensor("enc.0.0.weight").data, up = weights.tensor("dec.3.up.weight").data
        XCTAssertEqual(first.map(abs).max()!, 1 / Float(27).squareRoot(), accuracy: 0.01)
        XCTAssertEqual(up.map(abs).max()!, 1 / Float(256).squareRoot(), accuracy: 0.002)
        XCTAssertEqual(weights.tensor("final.bias").data[0].magnitude <= 1 / 8, true)
        XCTAssertEqual(weights.tensor("bott.4.running_var").data, [Float](repeating: 1, count: 1024))

        let model = TrainableUNet(weights: weights, trainable: strategy.trainable,
                                  freezeFrozenBatchNormStatistics: strategy.freezeFrozenBatchNormStatistics)
        XCTAssertEqual(model.trainableParameterCount, 31_037_633)
        XCTAssertEqual(model.trainableParameters.count, model.parameters.count)

        var data = SplitMix64(seed: 5)
        let input = Tensor(shape: [2, 3, 16, 32], data: (0..<(2 * 3 * 16 * 32)).map { _ in data.uniform() })
        let target = Tensor(shape: [2, 1, 16, 32], data: (0..<(2 * 16 * 32)).map { _ in data.uniform() < 0.3 ? 1 : 0 })
        let (loss, logits) = model.lossAndGradients(input: input, targets: target, threads: 2)
        XCTAssertEqual(logits.shape, [2, 1, 16, 32])
        XCTAssertTrue(loss.isFinite && loss > 0.3 && loss < 2, "loss \(loss)")
        for p in model.parameters {
            XCTAssertTrue(p.gradient.allSatisfy { $0.isFinite }, p.name)
            XCTAssertGreaterThan(p.gradient.map(abs).max()!, 0, p.name)
        }
        // The final bias gradient is the mean of (sigmoid(logit) - target) over every pixel.
        let sigmoidMinusTarget = zip(logits.data, target.data).reduce(0.0) { $0 + 1 / (1 + exp(-Double($1.0))) - Double($1.1) }
        XCTAssertEqual(Double(model.parameters.first { $0.name == "final.bias" }!.gradient[0]),
                       sigmoidMinusTarget / Double(logits.count), accuracy: 1e-6)
    }
}
