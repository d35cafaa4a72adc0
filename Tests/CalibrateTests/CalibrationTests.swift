import Foundation
import XCTest
import Calibrate
import HC18
import QuantEngine
import TestSupport

enum CalibrationFixtures {
    static let weights: ModelWeights = try! ModelWeights(loading: Fixtures.path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())

    /// Activation statistics of the D-all model on 8 train frames of the fixture split at 192x128, once for all tests.
    static let statistics: [ActivationStatistics] = {
        let dataset = try! HC18Dataset(directory: Fixtures.path("hc18/training_set"), splitCSV: Fixtures.path("hc18/split.csv"))
        let frames = dataset.train.prefix(8).map { try! loadSample($0, width: 192, height: 128).image }
        return try! collectStatistics(model: FloatUNet(weights: weights), frames: Array(frames), width: 192, height: 128, threads: 2)
    }()

    static func model(_ observer: Observer) -> Int8Model {
        quantize(weights: weights, statistics: statistics, settings: CalibrationSettings(observer: observer, width: 192, height: 128),
                 provenance: try! ModelMetadata(entries: ["sonoquant.source_checkpoint": "fixtures/pytorch_D-all_192x128.safetensors",
                                                          "sonoquant.strategy": "D-all"], source: "test"))
    }
}

final class CalibrationTests: XCTestCase {
    func testInt8LogitsTrackFloatOnAFixtureFrame() throws {
        let fixture = try SafeTensorsFile(path: Fixtures.path("forward_dall.safetensors"))
        let input = try fixture.tensor("input_192x128"), reference = try fixture.tensor("logits_192x128")
        for observer in Observer.allCases {
            let net = Int8UNet(model: CalibrationFixtures.model(observer))
            let logits = try net.logits(for: input, threads: 2)
            var signAgreement = 0, absError: Float = 0
            for i in 0..<logits.count {
                if (logits.data[i] > 0) == (reference.data[i] > 0) { signAgreement += 1 }
                absError += abs(logits.data[i] - reference.data[i])
            }
            let agreement = Double(signAgreement) / Double(logits.count)
            let meanError = absError / Float(logits.count)
            print("observer \(observer): mask agreement \(agreement), mean |logit error| \(meanError), max |ref| \(reference.maxAbs)")
            XCTAssertGreaterThan(agreement, 0.99, "\(observer)")
        }
    }
}
