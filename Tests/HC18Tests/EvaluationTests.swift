import Foundation
import HC18
import QuantEngine
import XCTest
import TestSupport

/// A model that predicts the same logit everywhere.
final class ConstantModel: SegmentationModel {
    let precision = Precision.float32
    let graph = ModelGraph.mobileNetV2UNet(inputChannels: 1)
    let logit: Float
    init(logit: Float) { self.logit = logit }
    func logits(for input: Tensor, threads: Int) throws -> Tensor {
        Tensor(shape: [input.shape[0], 1, input.shape[2], input.shape[3]],
               data: [Float](repeating: logit, count: input.shape[0] * input.shape[2] * input.shape[3]))
    }
}

final class EvaluationTests: XCTestCase {
    func testMetricsOnKnownMasks() {
        // P = 3 pixels, G = 2 pixels, overlap 1 (of 8): Dice 2/5, IoU 1/4, accuracy 5/8.
        let m = SegmentationMetrics(predicted: [1, 1, 1, 0, 0, 0, 0, 0], target: [1, 0, 0, 1, 0, 0, 0, 0])
        XCTAssertEqual(m.dice, 0.4, accuracy: 1e-12)
        XCTAssertEqual(m.iou, 0.25, accuracy: 1e-12)
        XCTAssertEqual(m.pixelAccuracy, 0.625, accuracy: 1e-12)
        // Both empty: a perfect answer.
        XCTAssertEqual(SegmentationMetrics(predicted: [0, 0], target: [0, 0]), SegmentationMetrics(predicted: [1], target: [1]))
        XCTAssertEqual(SegmentationMetrics(predicted: [0, 0], target: [0, 0]).dice, 1)
    }

    /// The HC error's median and upper percentiles beside the mean (NumPy's linear-interpolation quantiles).
    func testHCErrorQuantiles() {
        XCTAssertEqual(quantile([1, 2, 3, 4], 0.5), 2.5)
        XCTAssertEqual(quantile([1, 2, 3, 4, 100], 0.9), 61.6, accuracy: 1e-9)  // numpy.percentile(..., 90)
        XCTAssertEqual(quantile([7], 0.95), 7)
        XCTAssertEqual(quantile([], 0.5), 0)
    }

    func testNoHeadFoundIsReportedNotFatal() throws {
        let dataset = try HC18Dataset(directory: Fixtures.hc18Frames, splitCSV: Fixtures.hc18Split)
        let samples = Array(dataset.test.prefix(2))
        let report = try evaluate(model: ConstantModel(logit: -1), dataset: dataset, samples: samples, width: 64, height: 64, threads: 2)
        XCTAssertEqual(report.images, 2)
        XCTAssertEqual(report.noHeadFound, 2)
        XCTAssertEqual(report.meanDice, 0)
        XCTAssertEqual(report.rows[0].hcMM, nil)
        XCTAssertEqual(report.rows[0].hcErrorMM, samples[0].referenceHCmm)  // the stated policy
        XCTAssertEqual(report.meanHCErrorMM, (samples[0].referenceHCmm + samples[1].referenceHCmm) / 2, accuracy: 1e-9)
        // Everything predicted as head: a region with no boundary inside the frame, no ellipse.
        let all = try evaluate(model: ConstantModel(logit: 1), dataset: dataset, samples: samples, width: 64, height: 64, threads: 1)
        XCTAssertEqual(all.noHeadFound, 2)
        // The report survives a JSON round trip (no NaN, absent HC stays absent).
        let decoded = try JSONDecoder().decode(EvaluationReport.self, from: report.jsonData())
        XCTAssertEqual(decoded, report)
    }

    /// The PyTorch-trained D-all checkpoint on the 8 fixture test frames at 192x128 (about 2 s).
    /// Values measured once with this code (float engine at commit 564816d); the full 200-frame
    /// result is in docs/DATA.md.
    func testDAllFixtureCheckpointOnFixtureTestFrames() throws {
        let dataset = try HC18Dataset(directory: Fixtures.hc18Frames, splitCSV: Fixtures.hc18Split)
        let model = try loadSegmentationModel(path: Fixtures.path("pytorch_D-all_192x128.safetensors"))
        let report = try evaluate(model: model, dataset: dataset, samples: dataset.test, width: 192, height: 128, threads: 2)
        XCTAssertEqual(report.images, 8)
        XCTAssertEqual(report.noHeadFound, 0)
        // A few pixels may flip if the float engine's summation order changes: small tolerances.
        XCTAssertEqual(report.meanDice, 0.8729, accuracy: 0.002)
        XCTAssertEqual(report.meanIoU, 0.8032, accuracy: 0.002)
        XCTAssertEqual(report.meanPixelAccuracy, 0.9755, accuracy: 0.001)
        XCTAssertEqual(report.meanHCErrorMM, 5.59, accuracy: 0.1)
        let byName = Dictionary(uniqueKeysWithValues: report.rows.map { ($0.name, $0) })
        XCTAssertEqual(byName["034_HC"]!.dice, 0.9691, accuracy: 0.002)
        XCTAssertEqual(byName["023_2HC"]!.dice, 0.4672, accuracy: 0.005)  // the model's hard case
        XCTAssertEqual(byName["208_HC"]!.hcMM!, 175.58, accuracy: 0.2)

        // PyTorch's own logits for 020_HC (fixtures/forward_dall.safetensors) score the same as ours.
        let forward = try SafeTensorsFile(path: Fixtures.path("forward_dall.safetensors"))
        let torchLogits = try forward.tensor("logits_192x128", shape: [1, 1, 128, 192]).data
        let prepared = try loadSample(dataset.test.first { $0.name == "020_HC" }!, width: 192, height: 128)
        let torchRow = evaluationRow(logits: torchLogits, prepared: prepared)
        XCTAssertEqual(torchRow.dice, byName["020_HC"]!.dice, accuracy: 0.001)
        XCTAssertEqual(torchRow.hcMM!, byName["020_HC"]!.hcMM!, accuracy: 0.1)
    }
}
