// Summaries the report prints: mean, standard deviation and a bootstrap 95% interval of a mean, and the
// Pareto front of (cost, accuracy) points.
import HC18

/// Mean ± standard deviation of a set of values and a percentile-bootstrap confidence interval of the mean.
public struct Summary: Codable, Equatable {
    public var count: Int
    public var mean: Double
    /// Population standard deviation (divides by n): the spread of the values themselves, as `evaluate`
    /// reports it for test frames.
    public var std: Double
    /// The bootstrap interval of the mean (`confidence` of the resampled means lie inside).
    public var low: Double
    public var high: Double

    public init(count: Int, mean: Double, std: Double, low: Double, high: Double) {
        self.count = count; self.mean = mean; self.std = std; self.low = low; self.high = high
    }
}

/// The bootstrap the report uses everywhere: 1000 resamples, SplitMix64 seeded with 20240611, 95%.
/// Fixed so that the same per-frame values always print the same interval.
public enum Bootstrap {
    public static let resamples = 1000
    public static let seed: UInt64 = 20_240_611
    public static let confidence = 0.95
}

/// Mean, population std and the percentile bootstrap interval of the mean: `resamples` times draw n values
/// with replacement (indices from SplitMix64(seed), `next() % n`), take each resample's mean, and report the
/// (1 - confidence)/2 and (1 + confidence)/2 quantiles of those means (linear interpolation between ranks).
public func summarize(_ values: [Double], resamples: Int = Bootstrap.resamples, seed: UInt64 = Bootstrap.seed,
                      confidence: Double = Bootstrap.confidence) -> Summary {
    guard !values.isEmpty else { return Summary(count: 0, mean: .nan, std: .nan, low: .nan, high: .nan) }
    precondition(resamples >= 1 && confidence > 0 && confidence < 1)
    let n = values.count
    let mean = values.reduce(0, +) / Double(n)
    let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)).squareRoot()
    var random = SplitMix64(seed: seed)
    var means = [Double](repeating: 0, count: resamples)
    for r in 0..<resamples {
        var sum = 0.0
        for _ in 0..<n { sum += values[Int(random.next() % UInt64(n))] }
        means[r] = sum / Double(n)
    }
    means.sort()
    let tail = (1 - confidence) / 2
    return Summary(count: n, mean: mean, std: std,
                   low: quantile(means, tail), high: quantile(means, 1 - tail))
}

/// Mean and sample standard deviation (divides by n - 1; 0 for one value) of results over seeds.
public func meanAndSampleStd(_ values: [Double]) -> (mean: Double, std: Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let mean = values.reduce(0, +) / Double(values.count)
    guard values.count > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
    return (mean, variance.squareRoot())
}

/// Indices of the points no other point beats: a point is dominated when another has cost <= and
/// accuracy >= with at least one strictly better. Returned in order of increasing cost (ties: input order).
/// Points with a non-finite coordinate are never on the front.
public func paretoFront(cost: [Double], accuracy: [Double]) -> [Int] {
    precondition(cost.count == accuracy.count, "paretoFront: cost and accuracy differ in length")
    let candidates = cost.indices.filter { cost[$0].isFinite && accuracy[$0].isFinite }
    let front = candidates.filter { i in
        !candidates.contains { j in
            j != i && cost[j] <= cost[i] && accuracy[j] >= accuracy[i] && (cost[j] < cost[i] || accuracy[j] > accuracy[i])
        }
    }
    return front.sorted { cost[$0] != cost[$1] ? cost[$0] < cost[$1] : $0 < $1 }
}
