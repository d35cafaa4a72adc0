// Segmentation metrics and HC error of a model on a set of HC18 frames.
//
// Conventions (the PyTorch reference's): the prediction is logit > 0 (probability > 0.5) at the
// network's WxH; metrics are computed per image at WxH against the squashed ground-truth mask
// (`loadSample`), then averaged over images (not pooled over pixels).
// - Dice = 2 |P and G| / (|P| + |G|), IoU = |P and G| / |P or G|; both 1 when P and G are empty.
// - Pixel accuracy = fraction of the W*H pixels where P equals G.
// - HC: `measureHC` on P (largest 8-connected region, ellipse mapped back to the original frame)
//   times the pixel size; error = |HC - CSV HC| in mm.
// - No head found (P empty, or no ellipse fits its boundary): the row says so (`hcMM` absent,
//   `headFound` false) and its HC error is the whole reference circumference, as if the head measured
//   0 mm. Such frames are counted in `noHeadFound` and included in the mean HC error, so a model
//   cannot look better by failing to find heads.
import Foundation
import QuantEngine

/// Dice, IoU and pixel accuracy of one binary prediction against one binary target.
public struct SegmentationMetrics: Equatable, Sendable {
    public var dice: Double
    public var iou: Double
    public var pixelAccuracy: Double

    /// `predicted` and `target` are 0/1 (nonzero = head) masks of equal size.
    public init(predicted: [UInt8], target: [UInt8]) {
        precondition(predicted.count == target.count && !target.isEmpty, "SegmentationMetrics: mask sizes differ or are empty")
        var both = 0, predictedCount = 0, targetCount = 0
        for i in 0..<target.count {
            let p = predicted[i] != 0, t = target[i] != 0
            if p { predictedCount += 1 }
            if t { targetCount += 1 }
            if p && t { both += 1 }
        }
        let union = predictedCount + targetCount - both
        dice = predictedCount + targetCount == 0 ? 1 : 2 * Double(both) / Double(predictedCount + targetCount)
        iou = union == 0 ? 1 : Double(both) / Double(union)
        pixelAccuracy = Double(target.count - (union - both)) / Double(target.count)
    }
}

/// One evaluated frame.
public struct EvaluationRow: Codable, Equatable, Sendable {
    public var name: String
    public var dice: Double
    public var iou: Double
    public var pixelAccuracy: Double
    /// Whether a head (a region with an ellipse) was found in the prediction.
    public var headFound: Bool
    /// Measured HC in mm; absent when no head was found.
    public var hcMM: Double?
    public var referenceHCmm: Double
    /// |hcMM - referenceHCmm|, or referenceHCmm when no head was found.
    public var hcErrorMM: Double
    /// The ellipse in original-frame pixels, when found.
    public var ellipse: Ellipse?
    /// Why a sonographer should check this frame's HC (`HCMeasurement.reviewReasons`; a frame with no head
    /// found is always one to check); empty when nothing is doubtful. Absent in rows written before it existed.
    public var reviewReasons: [String]?

    /// Flagged for review: no head found, or a doubtful measurement.
    public var needsReview: Bool { !headFound || !(reviewReasons ?? []).isEmpty }
}

/// The metrics of one prediction: `logits` (H*W, before the sigmoid) against a prepared sample.
/// `hcScale`: the model's HC factor (`SegmentationModel.hcScale`), applied to the HC in mm.
public func evaluationRow(logits: [Float], prepared: PreparedSample, hcScale: Double = 1) -> EvaluationRow {
    let predicted: [UInt8] = logits.map { $0 > 0 ? 1 : 0 }
    let target: [UInt8] = prepared.mask.map { $0 >= 0.5 ? 1 : 0 }
    let metrics = SegmentationMetrics(predicted: predicted, target: target)
    let sample = prepared.sample
    let measurement = measureHC(mask: predicted, width: prepared.width, height: prepared.height,
                                originalWidth: prepared.originalWidth, originalHeight: prepared.originalHeight,
                                pixelSizeMM: sample.pixelSizeMM * hcScale)
    return EvaluationRow(
        name: sample.name, dice: metrics.dice, iou: metrics.iou, pixelAccuracy: metrics.pixelAccuracy,
        headFound: measurement != nil, hcMM: measurement?.hcMM, referenceHCmm: sample.referenceHCmm,
        hcErrorMM: measurement.map { abs($0.hcMM - sample.referenceHCmm) } ?? sample.referenceHCmm,
        ellipse: measurement?.ellipse, reviewReasons: measurement?.reviewReasons ?? ["no head found"])
}

/// Per-image rows and their means.
public struct EvaluationReport: Codable, Equatable, Sendable {
    /// The model file, when known (set by the caller).
    public var model: String?
    public var precision: Precision
    public var width: Int
    public var height: Int
    public var images: Int
    public var meanDice: Double
    /// Population standard deviation of the per-image Dice.
    public var diceStd: Double
    public var meanIoU: Double
    public var meanPixelAccuracy: Double
    /// Mean absolute HC error in mm over all images (no-head images count with their full reference HC).
    public var meanHCErrorMM: Double
    /// The median, 90th and 95th percentile of the same per-image errors: the mean is dominated by a few
    /// failures (one small head can add a quarter of a millimetre to it), these show the typical frame.
    public var medianHCErrorMM: Double
    public var p90HCErrorMM: Double
    public var p95HCErrorMM: Double
    /// Images in which no head was found.
    public var noHeadFound: Int
    public var hcPolicy: String
    public var rows: [EvaluationRow]

    public static let noHeadPolicy = "no head found: HC error = reference HC (as if 0 mm), included in meanHCErrorMM"

    public init(rows: [EvaluationRow], precision: Precision, width: Int, height: Int, model: String? = nil) {
        func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
        self.model = model
        self.precision = precision
        self.width = width
        self.height = height
        self.images = rows.count
        self.rows = rows
        meanDice = mean(rows.map(\.dice))
        let m = meanDice
        diceStd = mean(rows.map { ($0.dice - m) * ($0.dice - m) }).squareRoot()
        meanIoU = mean(rows.map(\.iou))
        meanPixelAccuracy = mean(rows.map(\.pixelAccuracy))
        meanHCErrorMM = mean(rows.map(\.hcErrorMM))
        let errors = rows.map(\.hcErrorMM).sorted()
        medianHCErrorMM = quantile(errors, 0.5)
        p90HCErrorMM = quantile(errors, 0.9)
        p95HCErrorMM = quantile(errors, 0.95)
        noHeadFound = rows.filter { !$0.headFound }.count
        hcPolicy = Self.noHeadPolicy
    }

    /// Pretty, key-sorted JSON.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Writes the JSON report atomically.
    public func write(to path: String) throws {
        try writeFileAtomically(path: path, bytes: [UInt8](jsonData()))
    }
}

/// Runs `model` on already prepared samples (one frame at a time, 1-channel gray input) and scores them.
public func evaluate(model: SegmentationModel, prepared: [PreparedSample], threads: Int) throws -> EvaluationReport {
    guard let first = prepared.first else { throw SonoQuantError("evaluate", "no frames to evaluate", kind: .badData) }
    var rows: [EvaluationRow] = []
    rows.reserveCapacity(prepared.count)
    for p in prepared {
        precondition(p.width == first.width && p.height == first.height, "evaluate: samples of different sizes")
        let input = Tensor(shape: [1, 1, p.height, p.width], data: p.image)
        let logits = try model.logits(for: input, threads: threads)
        guard logits.shape == [1, 1, p.height, p.width] else {
            throw SonoQuantError(p.sample.name, "model returned logits of shape \(logits.shape), expected [1, 1, \(p.height), \(p.width)]")
        }
        rows.append(evaluationRow(logits: logits.data, prepared: p, hcScale: model.hcScale))
    }
    return EvaluationReport(rows: rows, precision: model.precision, width: first.width, height: first.height)
}

/// Loads `samples` at width x height and evaluates `model` on them. (`dataset` is the agreed
/// signature; the samples carry their own paths, so only they are read.)
public func evaluate(model: SegmentationModel, dataset: HC18Dataset, samples: [HC18Sample],
                     width: Int, height: Int, threads: Int) throws -> EvaluationReport {
    let prepared = try loadSamples(samples, width: width, height: height, threads: threads)
    return try evaluate(model: model, prepared: prepared, threads: threads)
}

/// Loads many samples, decoding on `threads` threads; the first error (in sample order) is thrown.
public func loadSamples(_ samples: [HC18Sample], width: Int, height: Int, threads: Int) throws -> [PreparedSample] {
    var results = [Result<PreparedSample, Error>?](repeating: nil, count: samples.count)
    let lock = NSLock()
    parallelChunks(samples.count, threads: threads) { range in
        for i in range {
            let result = Result { try loadSample(samples[i], width: width, height: height) }
            lock.lock(); results[i] = result; lock.unlock()
        }
    }
    return try results.map { try $0!.get() }
}

/// The q-quantile (q in 0...1) of sorted values by linear interpolation between closest ranks (NumPy's
/// default: rank (n - 1) q); 0 for no values. The one quantile rule of the project (latency, bootstrap, HC).
public func quantile(_ sorted: [Double], _ q: Double) -> Double {
    guard let first = sorted.first else { return 0 }
    guard sorted.count > 1 else { return first }
    let rank = Double(sorted.count - 1) * q
    let low = Int(rank.rounded(.down)), high = min(low + 1, sorted.count - 1)
    return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
}
