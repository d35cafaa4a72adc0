// Post-training quantization: run the float model on calibration frames, observe every activation,
// choose each activation's int8 range with an observer, and quantize the weights (QuantEngine's Int8Model).
import Foundation
import QuantEngine

/// How an activation's real range [a, b] is chosen from what calibration saw.
public enum Observer: String, CaseIterable, Codable, Sendable {
    /// [min, max] over all calibration values: nothing clipped, coarsest steps.
    case minmax
    /// The p-th and (100 - p)-th percentiles (p = 99.99 by default): clips rare outliers.
    case percentile
    /// TensorRT-style entropy calibration: the clip range whose 255-level quantized histogram has the
    /// smallest KL divergence from the observed one.
    case entropy
    /// The clip range with the smallest mean squared quantization error (clipping + rounding) over the histogram.
    case mse
}

/// What calibration saw of one graph value: min and max (pass 1), then a histogram over [min, max] (pass 2).
public struct ActivationStatistics: Sendable {
    public private(set) var minimum: Float = .infinity
    public private(set) var maximum: Float = -.infinity
    public private(set) var histogram: [Double] = []
    /// The histogram spans [histogramLow, histogramHigh] (min and max, widened to include 0).
    public private(set) var histogramLow: Float = 0
    public private(set) var histogramHigh: Float = 0

    public init() {}

    public mutating func observeRange(_ values: [Float]) {
        var lo = minimum, hi = maximum
        for v in values { lo = min(lo, v); hi = max(hi, v) }
        minimum = lo; maximum = hi
    }

    /// Fixes the histogram's range from the observed min and max; call after pass 1.
    public mutating func startHistogram(bins: Int = 2048) {
        histogramLow = min(minimum.isFinite ? minimum : 0, 0)
        histogramHigh = max(maximum.isFinite ? maximum : 0, 0)
        if !(histogramHigh > histogramLow) { histogramHigh = histogramLow + 1e-6 }
        histogram = [Double](repeating: 0, count: bins)
    }

    public mutating func observeHistogram(_ values: [Float]) {
        let bins = histogram.count
        let scale = Float(bins) / (histogramHigh - histogramLow)
        histogram.withUnsafeMutableBufferPointer { h in
            for v in values {
                let index = Int(((v - histogramLow) * scale).rounded(.down))
                h[min(max(index, 0), bins - 1)] += 1
            }
        }
    }

    var binWidth: Float { (histogramHigh - histogramLow) / Float(histogram.count) }
    func binCenter(_ i: Int) -> Float { histogramLow + (Float(i) + 0.5) * binWidth }

    /// The range this observer chooses.
    public func range(_ observer: Observer, percentile: Double = 99.99) -> ClosedRange<Float> {
        guard minimum.isFinite, maximum.isFinite else { return 0...0 }
        switch observer {
        case .minmax:
            return minimum...maximum
        case .percentile:
            return percentileRange(percentile)
        case .entropy:
            return bestCandidate { a, b in klDivergence(low: a, high: b) }
        case .mse:
            return bestCandidate { a, b in quantizationError(low: a, high: b) }
        }
    }

    func percentileRange(_ p: Double) -> ClosedRange<Float> {
        let total = histogram.reduce(0, +)
        guard total > 0 else { return minimum...maximum }
        let lowTarget = total * (1 - p / 100), highTarget = total * p / 100
        var cumulative = 0.0
        var low = minimum, high = maximum
        var foundLow = false
        for (i, count) in histogram.enumerated() {
            cumulative += count
            if !foundLow && cumulative > lowTarget {
                low = max(minimum, histogramLow + Float(i) * binWidth)  // left edge of the bin
                foundLow = true
            }
            if cumulative >= highTarget {
                high = min(maximum, histogramLow + Float(i + 1) * binWidth)  // right edge of the bin
                break
            }
        }
        return min(low, high)...max(low, high)
    }

    /// Candidate clip ranges [alpha * low, alpha * high] for alpha from 1/16 to 1 (TensorRT searches
    /// thresholds from 128 to 2048 of 2048 bins, the same span); the one with the smallest cost wins.
    func bestCandidate(_ cost: (Float, Float) -> Double) -> ClosedRange<Float> {
        let low = min(minimum, 0), high = max(maximum, 0)
        var best = low...high
        var bestCost = Double.infinity
        let steps = 240
        for step in 0...steps {
            let alpha = 1.0 / 16 + (15.0 / 16) * Float(step) / Float(steps)
            let a = alpha * low, b = alpha * high
            guard b > a else { continue }
            let c = cost(a, b)
            if c < bestCost { bestCost = c; best = a...b }
        }
        return best
    }

    /// Sum over bins of count * (center - dequantize(quantize(center)))^2, with the engine's own quantizer.
    func quantizationError(low: Float, high: Float) -> Double {
        let q = ActivationQuantization(min: low, max: high)
        var error = 0.0
        for (i, count) in histogram.enumerated() where count > 0 {
            let x = binCenter(i)
            let d = Double(x - q.dequantize(q.quantize(x)))
            error += count * d * d
        }
        return error
    }

    /// KL(P || Q), as TensorRT computes it: P = the histogram sliced to [low, high] with the clipped
    /// outliers added to the edge bins; Q = the sliced histogram WITHOUT the outliers, merged into the 255
    /// int8 steps of that range and spread evenly over each step's non-empty bins. Clipping mass that
    /// matters therefore shows up as divergence at the edges; empty Q bins get a small epsilon.
    ///
    /// One departure: the bin holding 0 is replaced by the mean of its neighbours. After a ReLU most values
    /// are exactly 0 (75% in some layers here), which the zero point represents exactly; left in, that
    /// spike dominates the divergence and drives the search to clip 10-15% of the non-zero values.
    func klDivergence(low: Float, high: Float) -> Double {
        let first = max(0, Int(((low - histogramLow) / binWidth).rounded(.down)))
        let last = min(histogram.count - 1, Int(((high - histogramLow) / binWidth).rounded(.up)) - 1)
        guard last > first else { return .infinity }
        var histogram = self.histogram
        let zeroBin = min(histogram.count - 1, max(0, Int((-histogramLow / binWidth).rounded(.down))))
        let neighbours = [zeroBin - 1, zeroBin + 1].filter { histogram.indices.contains($0) }
        histogram[zeroBin] = neighbours.map { histogram[$0] }.reduce(0, +) / Double(max(1, neighbours.count))
        let sliced = Array(histogram[first...last])
        var p = sliced
        p[0] += histogram[..<first].reduce(0, +)
        p[p.count - 1] += histogram[(last + 1)...].reduce(0, +)
        let pTotal = p.reduce(0, +)
        guard pTotal > 0 else { return .infinity }
        let levels = 255
        let n = sliced.count
        let level = (0..<n).map { min(levels - 1, $0 * levels / n) }
        var levelMass = [Double](repeating: 0, count: levels), levelBins = [Int](repeating: 0, count: levels)
        for i in 0..<n where sliced[i] > 0 { levelMass[level[i]] += sliced[i]; levelBins[level[i]] += 1 }
        var q = [Double](repeating: 0, count: n)
        for i in 0..<n where sliced[i] > 0 { q[i] = levelMass[level[i]] / Double(levelBins[level[i]]) }
        let qTotal = q.reduce(0, +)
        guard qTotal > 0 else { return .infinity }
        let epsilon = 1e-4
        var kl = 0.0
        for i in 0..<n where p[i] > 0 {
            let pi = p[i] / pTotal
            let qi = max(q[i] / qTotal, epsilon * pi)
            kl += pi * log(pi / qi)
        }
        return kl
    }
}

/// Calibration settings recorded in the int8 model's metadata.
public struct CalibrationSettings: Sendable {
    public var observer: Observer
    public var percentile: Double
    public var width: Int
    public var height: Int
    public var bins: Int

    public init(observer: Observer, percentile: Double = 99.99, width: Int, height: Int, bins: Int = 2048) {
        self.observer = observer; self.percentile = percentile
        self.width = width; self.height = height; self.bins = bins
    }
}

/// What an int8 model records about its calibration: the JSON value of `sonoquant.calibration`.
public struct CalibrationRecord: Codable, Equatable, Sendable {
    public var images: Int
    public var split: String
    /// The HC18 frames directory.
    public var data: String?
    public var selection: String
    public var histogramBins: Int

    enum CodingKeys: String, CodingKey {
        case images, split, data, selection
        case histogramBins = "histogram_bins"
    }

    /// `images` frames spread evenly over the training split of `split`, as `calibrate` and `bench` pick them.
    public init(images: Int, split: String, data: String?, histogramBins: Int) {
        self.images = images; self.split = split; self.data = data
        selection = "evenly spaced over the train split"
        self.histogramBins = histogramBins
    }

    /// Compact JSON with sorted keys (every string escaped by the encoder).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// Observes every graph value of the float model on the frames (gray, height * width values in [0, 1])
/// and returns the statistics per value. Two passes: min/max, then histograms over that range.
public func collectStatistics(model: FloatUNet, frames: [[Float]], width: Int, height: Int, bins: Int = 2048, threads: Int,
                              progress: ((_ pass: Int, _ frame: Int) -> Void)? = nil) throws -> [ActivationStatistics] {
    var statistics = [ActivationStatistics](repeating: ActivationStatistics(), count: model.graph.values.count)
    for (i, frame) in frames.enumerated() {
        guard frame.count == width * height else { throw SonoQuantError("calibration frame \(i)", "has \(frame.count) values, expected \(width) x \(height)") }
        // The int8 engine sees the frame as bytes: calibrate on exactly those values.
        let bytes = frame.map { Float(ActivationQuantization.frameByte($0)) / 255 }
        _ = try model.run(Tensor(shape: [1, 1, height, width], data: bytes), threads: threads) { value, tensor in
            statistics[value].observeRange(tensor.data)
        }
        progress?(1, i + 1)
    }
    for v in statistics.indices { statistics[v].startHistogram(bins: bins) }
    for (i, frame) in frames.enumerated() {
        let bytes = frame.map { Float(ActivationQuantization.frameByte($0)) / 255 }
        _ = try model.run(Tensor(shape: [1, 1, height, width], data: bytes), threads: threads) { value, tensor in
            statistics[value].observeHistogram(tensor.data)
        }
        progress?(2, i + 1)
    }
    return statistics
}

/// Quantizes float weights to an int8 model with activation ranges chosen by the observer.
/// `provenance` (source checkpoint, strategy, calibration record, HC factor) gets the settings added.
public func quantize(weights: ModelWeights, statistics: [ActivationStatistics], settings: CalibrationSettings,
                     provenance: ModelMetadata) -> Int8Model {
    let ranges = statistics.map { $0.range(settings.observer, percentile: settings.percentile) }
    var metadata = provenance
    metadata.observer = settings.observer.rawValue
    metadata.percentile = settings.observer == .percentile ? settings.percentile : nil
    metadata.size = InputSize(width: settings.width, height: settings.height)
    metadata.input = "{\"width\":\(settings.width),\"height\":\(settings.height),\"channels\":1,\"dtype\":\"uint8\",\"layout\":\"HW row-major gray frame\",\"scale\":\"1/255\",\"int8\":\"byte - 128\"}"
    metadata.preprocessing = "gray frame squashed to WxH (bilinear, antialiased when shrinking; HC18 loadSample), bytes used directly (real = byte / 255)"
    return Int8Model(quantizing: weights, ranges: ranges, metadata: metadata)
}
