import Dispatch
import HC18
import QuantEngine
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Latency of one model call, in milliseconds, over repeated runs after warm-up.
public struct LatencyStats: Codable, Equatable {
    public let threads: Int
    public let runs: Int
    public let medianMS: Double
    public let p10MS: Double
    public let p90MS: Double
    public let minMS: Double
    /// Every timed run, in order.
    public let samplesMS: [Double]
    /// Process CPU time (user + system, all threads) per timed run. Unlike wall time it hardly grows when
    /// other processes share the cores, so it shows the work done; with several threads it includes
    /// time spent waiting actively.
    public let cpuMSPerRun: Double

    public init(threads: Int, samplesMS: [Double], cpuMSPerRun: Double) {
        precondition(!samplesMS.isEmpty, "LatencyStats: no samples")
        self.threads = threads
        self.runs = samplesMS.count
        self.samplesMS = samplesMS
        let sorted = samplesMS.sorted()
        medianMS = quantile(sorted, 0.5)
        p10MS = quantile(sorted, 0.1)
        p90MS = quantile(sorted, 0.9)
        minMS = sorted[0]
        self.cpuMSPerRun = cpuMSPerRun
    }

}

/// Times `model.logits` on one synthetic frame of `width` x `height` (a smooth gray pattern in [0, 1],
/// replicated over `channels`): `warmup` untimed calls (the first plans the arena), then `runs` timed ones.
/// Float and int8 models are timed the same way, on the same input.
public func measureLatency(model: SegmentationModel, width: Int, height: Int, channels: Int = 1, threads: Int,
                           warmup: Int = 5, runs: Int = 50) throws -> LatencyStats {
    precondition(runs >= 1 && warmup >= 0 && threads >= 1)
    let input = syntheticFrame(width: width, height: height, channels: channels)
    for _ in 0..<warmup { _ = try model.logits(for: input, threads: threads) }
    var samples: [Double] = []
    samples.reserveCapacity(runs)
    let cpuStart = processCPUSeconds()
    for _ in 0..<runs {
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try model.logits(for: input, threads: threads)
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    let cpuMS = (processCPUSeconds() - cpuStart) * 1000 / Double(runs)
    return LatencyStats(threads: threads, samplesMS: samples, cpuMSPerRun: cpuMS)
}

/// Times several models side by side: `warmup` untimed calls each, then `rounds` rounds that each time
/// `runsPerRound` calls of every model in turn, so load from other processes falls on all models alike.
/// Each model runs at its own size. Per model: every timed call's wall time, and its CPU time per call
/// averaged over the rounds. The one timing loop of `bench compare` and the bench harness.
public func interleavedLatency(_ models: [(model: SegmentationModel, size: InputSize)], threads: Int,
                               warmup: Int, rounds: Int, runsPerRound: Int) throws -> [LatencyStats] {
    precondition(rounds >= 1 && runsPerRound >= 1)
    for (model, size) in models where warmup > 0 {
        _ = try measureLatency(model: model, width: size.width, height: size.height, threads: threads, warmup: warmup - 1, runs: 1)
    }
    var samples = [[Double]](repeating: [], count: models.count)
    var cpuMS = [Double](repeating: 0, count: models.count)
    for _ in 0..<rounds {
        for (i, (model, size)) in models.enumerated() {
            let stats = try measureLatency(model: model, width: size.width, height: size.height, threads: threads,
                                           warmup: 0, runs: runsPerRound)
            samples[i] += stats.samplesMS
            cpuMS[i] += stats.cpuMSPerRun / Double(rounds)
        }
    }
    return models.indices.map { LatencyStats(threads: threads, samplesMS: samples[$0], cpuMSPerRun: cpuMS[$0]) }
}

/// User + system CPU time of this process so far, all threads, in seconds.
public func processCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// A deterministic frame [1, channels, height, width] with values in [0, 1] (a bright ellipse on a ramp),
/// so timings do not depend on a data set being present.
public func syntheticFrame(width: Int, height: Int, channels: Int) -> Tensor {
    var plane = [Float](repeating: 0, count: width * height)
    for y in 0..<height {
        for x in 0..<width {
            let u = (Float(x) / Float(width) - 0.5) / 0.35, v = (Float(y) / Float(height) - 0.5) / 0.3
            let ramp = 0.2 * Float(y) / Float(height)
            plane[y * width + x] = min(1, ramp + (abs(u * u + v * v - 1) < 0.1 ? 0.7 : 0.1))
        }
    }
    return Tensor(shape: [1, channels, height, width], data: Array([[Float]](repeating: plane, count: channels).joined()))
}
