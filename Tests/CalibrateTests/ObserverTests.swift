import XCTest
import Calibrate
import QuantEngine
import TestSupport

/// Observers on synthetic distributions with known answers.
final class ObserverTests: XCTestCase {
    private func statistics(_ values: [Float], bins: Int = 2048) -> ActivationStatistics {
        var s = ActivationStatistics()
        s.observeRange(values)
        s.startHistogram(bins: bins)
        s.observeHistogram(values)
        return s
    }

    /// Uniform values on [0, 1) plus a few far outliers at 100 and -100.
    private var uniformWithOutliers: [Float] {
        var values = (0..<100_000).map { Float($0) / 100_000 }
        values += [100, -100]
        return values
    }

    func testMinMaxKeepsEverything() {
        let r = statistics(uniformWithOutliers).range(.minmax)
        XCTAssertEqual(r.lowerBound, -100)
        XCTAssertEqual(r.upperBound, 100)
    }

    func testPercentileDropsRareOutliers() {
        let r = statistics(uniformWithOutliers).range(.percentile, percentile: 99.9)
        // 0.1% of 100,000 uniform values on [0, 1) lie above 0.999; bins are 200/2048 wide.
        XCTAssertEqual(r.upperBound, 1, accuracy: 0.1)
        XCTAssertEqual(r.lowerBound, 0, accuracy: 0.1)
    }

    func testMSEAndEntropyClipOutliersOfALongTail() {
        // A Laplace-like tail: most mass near 0, a few values out to 40.
        var rng = SplitMix(seed: 7)
        var values: [Float] = []
        for _ in 0..<200_000 { values.append(-log(Float(rng.unit()) + 1e-12)) }  // exponential(1): max ~ 12
        values.append(40)
        let s = statistics(values)
        let mse = s.range(.mse), entropy = s.range(.entropy)
        XCTAssertEqual(s.range(.minmax).upperBound, 40)
        // Both clip the lone outlier, and stay well above the bulk (exp(1): 99.9% below 6.9). MSE weighs the
        // one clipped value's error against 200,000 rounding errors, so it clips less than entropy does.
        XCTAssertLessThan(mse.upperBound, 35)
        XCTAssertGreaterThan(mse.upperBound, 5)
        XCTAssertLessThan(entropy.upperBound, 25)
        XCTAssertGreaterThan(entropy.upperBound, 5)
        XCTAssertEqual(mse.lowerBound, 0, accuracy: 1e-6)
    }

    func testMSEKeepsTheFullRangeOfAUniformDistribution() {
        let values = (0..<100_000).map { Float($0) / 100_000 * 6 }
        XCTAssertEqual(statistics(values).range(.mse).upperBound, 6, accuracy: 0.1)
        XCTAssertEqual(statistics(values).range(.entropy).upperBound, 6, accuracy: 0.3)
    }

    func testReLUSpikeAtZeroDoesNotDriveEntropyToClip() {
        // 75% exact zeros (as after a ReLU), the rest uniform on (0, 6].
        var values = [Float](repeating: 0, count: 75_000)
        values += (1...25_000).map { Float($0) / 25_000 * 6 }
        XCTAssertGreaterThan(statistics(values).range(.entropy).upperBound, 5)
    }

    func testQuantizationOfARangeIncludesZeroExactly() {
        let q = ActivationQuantization(min: 0.5, max: 6)
        XCTAssertEqual(q.zeroPoint, -128)
        XCTAssertEqual(q.dequantize(q.quantize(0)), 0)
        let s = ActivationQuantization(min: -3, max: 1)
        XCTAssertEqual(s.dequantize(s.quantize(0)), 0)
        XCTAssertEqual(s.scale, 4 / 255, accuracy: 1e-7)
    }
}

private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func unit() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    /// The calibration record is JSON made by the encoder: a path with quotes or backslashes stays valid.
    func testCalibrationRecordIsValidJSONForAnyPath() throws {
        let record = CalibrationRecord(images: 64, split: "/data/a \"b\"\\split.csv", data: "/data/hc18", histogramBins: 2048)
        XCTAssertEqual(record.json, #"{"data":"/data/hc18","histogram_bins":2048,"images":64,"selection":"evenly spaced over the train split","split":"/data/a \"b\"\\split.csv"}"#)
        XCTAssertEqual(try JSONDecoder().decode(CalibrationRecord.self, from: Data(record.json.utf8)), record)
    }
}
