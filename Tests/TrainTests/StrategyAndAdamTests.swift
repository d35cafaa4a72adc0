import QuantEngine
import Train
import XCTest
import TestSupport

final class StrategyTests: XCTestCase {
    /// Trainable parameter counts of every preset, from the model the trainer builds (the paper's numbers).
    func testPresetTrainableCounts() throws {
        let expected: [String: Int] = [
            "full-ft": 6_628_945, "D-all": 4_405_073, "D-all-frozenbn": 4_405_073, "E": 2_223_872,
            "D0": 3_761_152, "D01": 4_240_896, "D012": 4_365_568, "D234": 164_032, "D4": 6_976, "D4+H": 7_121,
            "full-scratch": 6_628_945, "rand-frozen-E": 4_405_073, "rand-frozen-D": 2_223_872,
            "unet-baseline": 31_037_633,
        ]
        XCTAssertEqual(Set(Strategy.presetNames), Set(expected.keys))
        // The baseline's model is built once, in BaselineLayerTests; here its graph's count.
        let baseline = try Strategy.preset("unet-baseline")
        XCTAssertEqual(baseline.graph.parameterCount(groups: baseline.trainable), expected["unet-baseline"])
        let weights = try Initialization.initialWeights(initPath: nil, randomEncoder: true, seed: 0)
        for strategy in Strategy.presets where strategy.architecture == .mobileNetV2UNet {
            let model = TrainableUNet(weights: weights, trainable: strategy.trainable)
            XCTAssertEqual(model.trainableParameterCount, expected[strategy.name], strategy.name)
            XCTAssertEqual(weights.graph.parameterCount(groups: strategy.trainable), expected[strategy.name], strategy.name)
        }
        XCTAssertTrue(try Strategy.preset("d-all-frozenbn").freezeFrozenBatchNormStatistics)
        XCTAssertTrue(try Strategy.preset("full-scratch").randomEncoder)
    }

    func testTrainableListParsing() throws {
        XCTAssertEqual(try Strategy.groups("E,D3,H"), [.encoder, .decoderBlock(3), .head])
        XCTAssertEqual(try Strategy.groups("D0-D4, h"), [.decoderBlock(0), .decoderBlock(1), .decoderBlock(2), .decoderBlock(3), .decoderBlock(4), .head])
        XCTAssertEqual(Strategy.describe([.head, .decoderBlock(2), .encoder]), "E,D2,H")
        XCTAssertThrowsError(try Strategy.groups("E,D7"))
        XCTAssertThrowsError(try Strategy.preset("D5"))
    }

    /// With a frozen encoder (D-all), encoder parameters get no gradient and, by default, frozen BatchNorm
    /// still updates running statistics; with frozen statistics (D-all-frozenbn) they stay unchanged.
    func testFrozenGroupsAndFrozenStatistics() throws {
        let weights = try ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet(inputChannels: 3))
        let step = try SafeTensorsFile(path: Fixtures.path("train_step_fixture.safetensors"))
        let input = try step.tensor("input"), target = try step.tensor("target")
        let before = weights.tensor("encoder.features.0.1.running_mean").data
        for frozenStatistics in [false, true] {
            let strategy = try Strategy.preset(frozenStatistics ? "D-all-frozenbn" : "D-all")
            let model = TrainableUNet(weights: weights, trainable: strategy.trainable,
                                      freezeFrozenBatchNormStatistics: strategy.freezeFrozenBatchNormStatistics)
            _ = model.lossAndGradients(input: input, targets: target, threads: 2)
            for p in model.parameters where p.group == .encoder { XCTAssertTrue(p.gradient.allSatisfy { $0 == 0 }, p.name) }
            let head = model.parameters.first { $0.name == "segmentation_head.0.weight" }!
            XCTAssertGreaterThan(head.gradient.map(abs).max()!, 0)
            let after = model.runningStatistics["encoder.features.0.1.running_mean"]!
            XCTAssertEqual(after == before, frozenStatistics)
            // Decoder BatchNorm (trainable) always runs in train mode.
            XCTAssertNotEqual(model.runningStatistics["decoder.blocks.4.conv1.1.running_mean"]!,
                              weights.tensor("decoder.blocks.4.conv1.1.running_mean").data)
        }
    }
}

final class AdamTests: XCTestCase {
    /// Two Adam steps on one parameter, against values computed by hand from PyTorch's update rule.
    func testAdamStepsMatchHandComputedValues() throws {
        let weights = try Initialization.initialWeights(initPath: nil, randomEncoder: true, seed: 3)
        let model = TrainableUNet(weights: weights, trainable: [.head])
        let bias = model.parameters.first { $0.name == "segmentation_head.0.bias" }!
        bias.value = [0.5]
        var adam = Adam(learningRate: 0.1)
        bias.gradient = [2.0]
        adam.update(model.trainableParameters)
        // t = 1: m = 0.2, v = 0.004; m_hat = 2, v_hat = 4; p = 0.5 - 0.1 * 2 / (2 + 1e-8) = 0.4.
        XCTAssertEqual(bias.value[0], 0.4, accuracy: 1e-6)
        bias.gradient = [-1.0]
        adam.update(model.trainableParameters)
        // t = 2: m = 0.9*0.2 - 0.1 = 0.08, v = 0.999*0.004 + 0.001 = 0.004996;
        // step = 0.1 / (1 - 0.81) = 0.526316; denom = sqrt(0.004996) / sqrt(1 - 0.998001) + 1e-8 = 1.580892;
        // p = 0.4 - 0.526316 * 0.08 / 1.580892 = 0.373366.
        XCTAssertEqual(bias.value[0], 0.373366, accuracy: 1e-5)
        XCTAssertEqual(adam.step, 2)
        // Frozen parameters are never touched.
        let frozen = model.parameters.first { $0.name == "decoder.blocks.4.conv2.0.weight" }!
        XCTAssertEqual(frozen.value, weights.tensor("decoder.blocks.4.conv2.0.weight").data)
    }

    /// The cosine schedule starts at the base rate, is at half of it midway and reaches 0 at the last step;
    /// constant is the base rate throughout.
    func testLearningRateSchedules() {
        XCTAssertEqual(LearningRateSchedule.constant.rate(base: 1e-4, stepsTaken: 777, totalSteps: 800), 1e-4)
        XCTAssertEqual(LearningRateSchedule.cosine.rate(base: 1e-4, stepsTaken: 0, totalSteps: 800), 1e-4)
        XCTAssertEqual(LearningRateSchedule.cosine.rate(base: 1e-4, stepsTaken: 400, totalSteps: 800), 5e-5, accuracy: 1e-12)
        XCTAssertEqual(LearningRateSchedule.cosine.rate(base: 1e-4, stepsTaken: 200, totalSteps: 800),
                       Float(1e-4 * 0.5 * (1 + 0.5.squareRoot())), accuracy: 1e-12)
        XCTAssertEqual(LearningRateSchedule.cosine.rate(base: 1e-4, stepsTaken: 800, totalSteps: 800), 0)
    }
}
