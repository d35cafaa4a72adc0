// The strategy x precision harness (`sonoquant bench run --strategies ...`): for each strategy and seed, train
// into OUT/<strategy>-seed<seed>/ (a normal `train --out` run directory: resumed when it is partial, left
// alone when it has every epoch), then evaluate the float model, calibrate it to int8 on frames of the
// training split, evaluate the int8 model, and measure size, latency (float and int8, interleaved, at each
// thread count) and peak memory. Each run's measurements are cached in its directory (bench.json), and
// results.csv, results.json, REPORT.md and the plots are rewritten after every run, so an interrupted
// harness keeps what it has done and a rerun only does what is missing.
import Calibrate
import Foundation
import HC18
import QuantEngine
import Train

/// Everything a harness run is defined by.
public struct HarnessConfiguration {
    public var dataDirectory: String
    public var splitCSV: String
    public var width: Int
    public var height: Int
    public var epochs: Int
    public var strategies: [Strategy]
    public var seeds: [UInt64]
    public var outDirectory: String
    /// Encoder-only ImageNet file or full checkpoint for new runs (nil only for random-encoder strategies).
    public var initPath: String?
    public var batchSize: Int
    public var learningRate: Float
    /// Thread counts to time; training, calibration and evaluation use the largest.
    public var threads: [Int]
    /// Calibration frames, spread evenly over the training split (as `sonoquant calibrate` picks them).
    public var calibrationImages: Int
    public var observer: Observer
    public var latencyWarmup: Int
    public var latencyRounds: Int
    public var latencyRunsPerRound: Int
    /// Test frames drawn with their predicted and true ellipses, per run (PNG).
    public var overlayFrames: Int
    /// The PyTorch reference results (pytorch_reference_results.json), shown beside ours when given.
    public var referencePath: String?
    /// false = never train: measure the runs that have every epoch and list the others as pending (safe
    /// while another process is still training them).
    public var train: Bool
    public var command: String

    public init(dataDirectory: String, splitCSV: String, width: Int, height: Int, epochs: Int, strategies: [Strategy],
                seeds: [UInt64], outDirectory: String, initPath: String?, batchSize: Int = 10, learningRate: Float = 1e-4,
                threads: [Int] = [1, 2], calibrationImages: Int = 64, observer: Observer = .minmax, latencyWarmup: Int = 3,
                latencyRounds: Int = 10, latencyRunsPerRound: Int = 3, overlayFrames: Int = 3, referencePath: String? = nil,
                train: Bool = true, command: String = "") {
        self.dataDirectory = dataDirectory
        self.splitCSV = splitCSV
        self.width = width
        self.height = height
        self.epochs = epochs
        self.strategies = strategies
        self.seeds = seeds
        self.outDirectory = outDirectory
        self.initPath = initPath
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.threads = threads
        self.calibrationImages = calibrationImages
        self.observer = observer
        self.latencyWarmup = latencyWarmup
        self.latencyRounds = latencyRounds
        self.latencyRunsPerRound = latencyRunsPerRound
        self.overlayFrames = overlayFrames
        self.referencePath = referencePath
        self.train = train
        self.command = command
    }

    /// OUT/<strategy>-seed<seed>: the run directory of one strategy and seed.
    public func runDirectory(strategy: Strategy, seed: UInt64) -> String {
        outDirectory + "/\(strategy.name)-seed\(seed)"
    }

    /// What a cached measurement (bench.json) must agree with to be reused.
    func measurementKey(epochsDone: Int) -> String {
        "epochs=\(epochsDone) size=\(width)x\(height) data=\(dataDirectory) split=\(splitCSV) observer=\(observer.rawValue) "
            + "calibration=\(calibrationImages) threads=\(threads.map(String.init).joined(separator: ",")) "
            + "latency=\(latencyWarmup)+\(latencyRounds)x\(latencyRunsPerRound) overlays=\(overlayFrames) build=\(buildDescription)"
    }
}

/// How far a run directory's training is.
public enum TrainingState: Equatable {
    case notStarted
    case partial(epochsDone: Int)
    case finished(epochsDone: Int)
}

/// Reads a run directory's resume.safetensors (the record of completed epochs): absent = not started,
/// fewer than `epochs` epochs = partial (resume it), else finished (skip training).
public func trainingState(runDirectory: String, epochs: Int) throws -> TrainingState {
    let path = runDirectory + "/resume.safetensors"
    guard FileManager.default.fileExists(atPath: path) else { return .notStarted }
    let file = try SafeTensorsFile(path: path)
    guard let done = file.modelMetadata.epochsDone else {
        throw SonoQuantError(path, "has no sonoquant.epochs_done metadata: not a SonoQuant resume file")
    }
    return done >= epochs ? .finished(epochsDone: done) : .partial(epochsDone: done)
}

/// Latency of one model at one thread count, over all timed calls after the warm-up.
public struct HarnessLatency: Codable, Equatable {
    public var threads: Int
    public var runs: Int
    public var medianMS: Double
    public var p95MS: Double
    /// Process CPU time (all threads) per call: hardly changed by other load on the machine.
    public var cpuMSPerRun: Double

    public init(threads: Int, runs: Int, medianMS: Double, p95MS: Double, cpuMSPerRun: Double) {
        self.threads = threads; self.runs = runs; self.medianMS = medianMS; self.p95MS = p95MS; self.cpuMSPerRun = cpuMSPerRun
    }

    /// The record of measured calls (`interleavedLatency`).
    public init(_ stats: LatencyStats) {
        self.init(threads: stats.threads, runs: stats.runs, medianMS: stats.medianMS,
                  p95MS: quantile(stats.samplesMS.sorted(), 0.95), cpuMSPerRun: stats.cpuMSPerRun)
    }
}

/// Quantiles of the per-frame HC error, mm (`quantile`'s rule).
public struct HCErrorQuantiles: Codable, Equatable {
    public var median: Double
    public var p90: Double
    public var p95: Double

    public init(median: Double, p90: Double, p95: Double) { self.median = median; self.p90 = p90; self.p95 = p95 }
}

/// One precision (float32 or int8) of one trained run.
public struct PrecisionResult: Codable, Equatable {
    public var precision: Precision
    public var path: String
    public var fileBytes: Int
    public var images: Int
    public var dice: Summary
    public var iou: Summary
    public var pixelAccuracy: Summary
    /// |HC - reference HC| per frame, mm (no head found = the whole reference HC).
    public var hcErrorMM: Summary
    /// Its median and 90th / 95th percentiles: the mean hides whether a few frames fail badly or many a
    /// little. Absent in report.json files written before it existed.
    public var hcErrorQuantilesMM: HCErrorQuantiles?
    public var noHeadFound: Int
    public var latency: [HarnessLatency]
    public var peakRSSBytes: Int?

    public init(precision: Precision, path: String, fileBytes: Int, evaluation: EvaluationReport) {
        self.precision = precision
        self.path = path
        self.fileBytes = fileBytes
        images = evaluation.images
        dice = summarize(evaluation.rows.map(\.dice))
        iou = summarize(evaluation.rows.map(\.iou))
        pixelAccuracy = summarize(evaluation.rows.map(\.pixelAccuracy))
        hcErrorMM = summarize(evaluation.rows.map(\.hcErrorMM))
        hcErrorQuantilesMM = HCErrorQuantiles(median: evaluation.medianHCErrorMM, p90: evaluation.p90HCErrorMM, p95: evaluation.p95HCErrorMM)
        noHeadFound = evaluation.noHeadFound
        latency = []
        peakRSSBytes = nil
    }

    public func latency(threads: Int) -> HarnessLatency? { latency.first { $0.threads == threads } }
}

/// One epoch of a run's metrics.csv (the per-epoch test evaluation).
public struct EpochPoint: Codable, Equatable {
    public var epoch: Int
    public var trainLoss: Double
    public var dice: Double
    public var hcErrorMM: Double
    public var epochSeconds: Double

    public init(epoch: Int, trainLoss: Double, dice: Double, hcErrorMM: Double, epochSeconds: Double) {
        self.epoch = epoch; self.trainLoss = trainLoss; self.dice = dice; self.hcErrorMM = hcErrorMM; self.epochSeconds = epochSeconds
    }
}

/// A run's learning curve, from its metrics.csv.
public func readEpochCurve(path: String) throws -> [EpochPoint] {
    try EpochMetrics.read(csv: path).map {
        EpochPoint(epoch: $0.epoch, trainLoss: $0.trainLoss, dice: $0.dice, hcErrorMM: $0.hcErrorMM, epochSeconds: $0.epochSeconds)
    }
}

/// One strategy and seed: how it was trained and what each precision measured.
public struct HarnessRow: Codable, Equatable {
    public var strategy: String
    public var seed: UInt64
    public var runDirectory: String
    public var architecture: String
    public var trainableGroups: String
    public var trainableParameters: Int
    public var totalParameters: Int
    /// Epochs the measured model was trained for.
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Double
    /// Sum of the epochs' wall times (training + per-epoch evaluation), from metrics.csv.
    public var trainSeconds: Double
    public var curve: [EpochPoint]
    public var float: PrecisionResult
    public var int8: PrecisionResult
    /// Overlay PNGs, relative to the harness output directory.
    public var overlays: [String]
    public var measurementKey: String

    public init(strategy: String, seed: UInt64, runDirectory: String, architecture: String, trainableGroups: String,
                trainableParameters: Int, totalParameters: Int, epochs: Int, batchSize: Int, learningRate: Double,
                curve: [EpochPoint], float: PrecisionResult, int8: PrecisionResult, overlays: [String], measurementKey: String) {
        self.strategy = strategy
        self.seed = seed
        self.runDirectory = runDirectory
        self.architecture = architecture
        self.trainableGroups = trainableGroups
        self.trainableParameters = trainableParameters
        self.totalParameters = totalParameters
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.trainSeconds = curve.reduce(0) { $0 + $1.epochSeconds }
        self.curve = curve
        self.float = float
        self.int8 = int8
        self.overlays = overlays
        self.measurementKey = measurementKey
    }
}

/// All rows and how they were made: results.json.
public struct HarnessResults: Codable, Equatable {
    public var created: String
    public var host: String
    public var command: String
    public var data: String
    public var split: String
    public var width: Int
    public var height: Int
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Double
    public var seeds: [UInt64]
    public var strategies: [String]
    public var observer: String
    public var calibrationImages: Int
    public var threads: [Int]
    public var latencyMethod: String
    public var trainFrames: Int
    public var testFrames: Int
    /// Test frames whose fetus (NNN of NNN_HC, NNN_2HC, ...) also has a frame in the training split.
    public var testFramesSharingFetus: Int
    public var rows: [HarnessRow]
    /// Runs not measured because their training is not finished (only without training: `train` false),
    /// e.g. "full-ft seed 0: 7 of 20 epochs".
    public var pending: [String]
    public var reference: [ReferenceResult]
    /// Set only by `mergeHarnessResults`: the harness outputs these rows came from (nil = one harness run).
    public var sources: [HarnessSource]?
    /// Set only by `mergeStudy`: every cell of the plan with this size and split, done or not.
    public var cells: [CellOutcome]?

    public init(created: String, host: String, command: String, data: String, split: String, width: Int, height: Int,
                epochs: Int, batchSize: Int, learningRate: Double, seeds: [UInt64], strategies: [String], observer: String,
                calibrationImages: Int, threads: [Int], latencyMethod: String, trainFrames: Int, testFrames: Int,
                testFramesSharingFetus: Int, rows: [HarnessRow], pending: [String] = [], reference: [ReferenceResult],
                sources: [HarnessSource]? = nil) {
        self.created = created; self.host = host; self.command = command; self.data = data; self.split = split
        self.width = width; self.height = height; self.epochs = epochs; self.batchSize = batchSize
        self.learningRate = learningRate; self.seeds = seeds; self.strategies = strategies; self.observer = observer
        self.calibrationImages = calibrationImages; self.threads = threads; self.latencyMethod = latencyMethod
        self.trainFrames = trainFrames; self.testFrames = testFrames; self.testFramesSharingFetus = testFramesSharingFetus
        self.rows = rows; self.pending = pending; self.reference = reference; self.sources = sources
    }
}

/// The kernels this process runs, for the report: latency depends on them.
public var buildDescription: String {
    "kernels \(KernelPath.current.rawValue) (chosen at run time from the CPU; \(KernelPath.environmentVariable) forces one)"
}

/// Test frames of a split whose fetus also appears among its training frames.
public func testFramesSharingFetus(train: [HC18Sample], test: [HC18Sample]) -> Int {
    let trainFetuses = Set(train.map(\.patientID))
    return test.filter { trainFetuses.contains($0.patientID) }.count
}

/// Runs the harness; `peakRSS(modelPath)` measures one model's one-frame peak memory in a fresh process
/// (the command re-runs itself). Returns the results also written to OUT.
@discardableResult
public func runHarness(_ c: HarnessConfiguration, heldLock: DirectoryLock? = nil, peakRSS: (String) -> Int?,
                       log: @escaping (String) -> Void) throws -> HarnessResults {
    // `heldLock`: the caller already holds OUT's lock (a plan's cell, which records its state under it).
    precondition(heldLock == nil || heldLock!.directory == c.outDirectory, "heldLock must be the lock of the output directory")
    let lock = try heldLock ?? DirectoryLock(directory: c.outDirectory, purpose: "bench")
    defer { withExtendedLifetime(lock) {} }
    guard !c.strategies.isEmpty, !c.seeds.isEmpty, !c.threads.isEmpty, c.epochs >= 1, c.calibrationImages >= 1,
          c.latencyRounds >= 1, c.latencyRunsPerRound >= 1, c.latencyWarmup >= 0, c.overlayFrames >= 0 else {
        throw SonoQuantError("bench", "strategies, seeds, threads, epochs, calibration images and latency rounds must be given and positive")
    }
    try FileManager.default.createDirectory(atPath: c.outDirectory, withIntermediateDirectories: true)
    let dataset = try HC18Dataset(directory: c.dataDirectory, splitCSV: c.splitCSV)
    guard !dataset.train.isEmpty, !dataset.test.isEmpty else {
        throw SonoQuantError(c.splitCSV, "needs both train and test frames (has \(dataset.train.count) train, \(dataset.test.count) test)")
    }
    let reference = try c.referencePath.map { try readReferenceResults(path: $0) } ?? []
    let threads = c.threads.max()!
    // Frames are loaded only when a run has to be measured (a rerun over cached runs reads none).
    var test: [PreparedSample]?
    var calibration: [[Float]]?
    let created = ISO8601DateFormatter().string(from: Date())
    let latencyMethod = "synthetic \(c.width)x\(c.height) gray frame; per model and thread count \(c.latencyWarmup) warm-up calls, then "
        + "\(c.latencyRounds) rounds x \(c.latencyRunsPerRound) timed calls, float and int8 of one run interleaved; median and p95 of the timed calls"

    var rows: [HarnessRow] = []
    var pending: [String] = []
    func writeResults() throws {
        let results = HarnessResults(
            created: created, host: hostDescription() + "; " + buildDescription, command: c.command, data: c.dataDirectory, split: c.splitCSV,
            width: c.width, height: c.height, epochs: c.epochs, batchSize: c.batchSize, learningRate: Double(c.learningRate),
            seeds: c.seeds, strategies: c.strategies.map(\.name), observer: c.observer.rawValue,
            calibrationImages: min(c.calibrationImages, dataset.train.count), threads: c.threads, latencyMethod: latencyMethod,
            trainFrames: dataset.train.count, testFrames: dataset.test.count,
            testFramesSharingFetus: testFramesSharingFetus(train: dataset.train, test: dataset.test), rows: rows, pending: pending,
            reference: reference)
        try writeHarnessResults(results, to: c.outDirectory)
    }
    for strategy in c.strategies {
        for seed in c.seeds {
            let directory = c.runDirectory(strategy: strategy, seed: seed)
            let label = "\(strategy.name) seed \(seed)"
            let state = try trainingState(runDirectory: directory, epochs: c.epochs)
            if !c.train {
                var unfinished: String?
                switch state {
                case .finished: unfinished = nil
                case .partial(let done): unfinished = "\(done) of \(c.epochs) epochs"
                case .notStarted: unfinished = "not started"
                }
                if let unfinished {
                    pending.append("\(label): \(unfinished)")
                    log("\(label): training not finished (\(unfinished)); not measured (measuring only)")
                    try writeResults()
                    continue
                }
            }
            switch state {
            case .finished(let done): log("\(label): training done (\(done) epochs in \(directory)); checking its settings, not training")
            case .partial(let done): log("\(label): resuming \(directory) after epoch \(done) of \(c.epochs)")
            case .notStarted: log("\(label): training \(c.epochs) epochs into \(directory)")
            }
            // TrainingRun itself resumes a partial run, returns at once for a finished one, and refuses a run
            // directory whose resume file was made with other settings (strategy, size, batch, lr, seed).
            let training = TrainingConfiguration(
                dataDirectory: c.dataDirectory, splitCSV: c.splitCSV, strategy: strategy, width: c.width, height: c.height,
                epochs: c.epochs, batchSize: c.batchSize, learningRate: c.learningRate, seed: seed, initPath: c.initPath,
                runDirectory: directory, resume: state != .notStarted, threads: threads)
            if case .finished = state {} else {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let previous = (try? String(contentsOfFile: directory + "/command.txt", encoding: .utf8)) ?? ""
                try writeFileAtomically(path: directory + "/command.txt", text: previous + c.command + "\n")
            }
            try TrainingRun(configuration: training) { log("  " + $0) }.run()
            guard case .finished(let epochsDone) = try trainingState(runDirectory: directory, epochs: c.epochs) else {
                throw SonoQuantError(directory, "training ended without all \(c.epochs) epochs")
            }

            let key = c.measurementKey(epochsDone: epochsDone)
            if let cached = readCachedRow(directory: directory, key: key) {
                log("\(label): measurements of this model already in \(directory)/bench.json; reusing them")
                rows.append(cached)
            } else {
                if test == nil {
                    log("loading \(dataset.test.count) test frames at \(c.width)x\(c.height)")
                    test = try loadSamples(dataset.test, width: c.width, height: c.height, threads: threads)
                }
                if calibration == nil {
                    let count = min(c.calibrationImages, dataset.train.count)
                    log("loading \(count) calibration frames (evenly spaced over the training split)")
                    let chosen = (0..<count).map { dataset.train[$0 * dataset.train.count / count] }
                    calibration = try loadSamples(chosen, width: c.width, height: c.height, threads: threads).map(\.image)
                }
                let row = try measureRun(c, strategy: strategy, seed: seed, directory: directory, epochsDone: epochsDone,
                                         key: key, test: test!, calibration: calibration!, peakRSS: peakRSS, log: log)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try writeFileAtomically(path: directory + "/bench.json", bytes: [UInt8](try encoder.encode(row)))
                rows.append(row)
            }
            try writeResults()
            log("\(label): results so far written to \(c.outDirectory)/REPORT.md")
        }
    }
    return try JSONDecoder().decode(HarnessResults.self, from: Data(contentsOf: URL(fileURLWithPath: c.outDirectory + "/results.json")))
}

/// bench.json of a run directory when it was measured with the same settings and model; else nil.
func readCachedRow(directory: String, key: String) -> HarnessRow? {
    guard let data = FileManager.default.contents(atPath: directory + "/bench.json"),
          let row = try? JSONDecoder().decode(HarnessRow.self, from: data), row.measurementKey == key else { return nil }
    return row
}

private func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
}

/// Evaluate float, calibrate, evaluate int8, time both, probe their memory, draw overlays.
func measureRun(_ c: HarnessConfiguration, strategy: Strategy, seed: UInt64, directory: String, epochsDone: Int, key: String,
                test: [PreparedSample], calibration: [[Float]], peakRSS: (String) -> Int?,
                log: (String) -> Void) throws -> HarnessRow {
    let label = "\(strategy.name) seed \(seed)"
    let threads = c.threads.max()!
    let floatPath = directory + "/model.safetensors", int8Path = directory + "/model.int8.safetensors"
    let checkpoint = try SafeTensorsFile(path: floatPath)
    let architecture = strategy.architecture
    let graph = architecture.graph(inputChannels: 3)
    let weights = try ModelWeights(file: checkpoint, graph: graph)
    let float = FloatUNet(weights: weights)
    log("\(label): evaluating float32 on \(test.count) test frames")
    let floatReport = try evaluate(model: float, prepared: test, threads: threads)

    log("\(label): calibrating int8 (\(c.observer.rawValue), \(calibration.count) training frames)")
    let statistics = try collectStatistics(model: float, frames: calibration, width: c.width, height: c.height, threads: threads)
    let settings = CalibrationSettings(observer: c.observer, width: c.width, height: c.height)
    let calibrationInfo = CalibrationRecord(images: calibration.count, split: c.splitCSV, data: c.dataDirectory, histogramBins: settings.bins).json
    var provenance = ModelMetadata()
    provenance.sourceCheckpoint = floatPath
    provenance.strategy = strategy.name
    provenance.calibration = calibrationInfo
    try quantize(weights: weights, statistics: statistics, settings: settings, provenance: provenance).save(to: int8Path)
    // The int8 model as a board would load it: from its file.
    let int8 = try loadSegmentationModel(path: int8Path)
    log("\(label): evaluating int8 on \(test.count) test frames")
    let int8Report = try evaluate(model: int8, prepared: test, threads: threads)

    var floatResult = PrecisionResult(precision: float.precision, path: floatPath, fileBytes: fileSize(floatPath), evaluation: floatReport)
    var int8Result = PrecisionResult(precision: int8.precision, path: int8Path, fileBytes: fileSize(int8Path), evaluation: int8Report)
    for t in c.threads {
        log("\(label): latency at \(t) thread(s), float and int8 interleaved")
        let size = InputSize(width: c.width, height: c.height)
        let measured = try interleavedLatency([(float, size), (int8, size)], threads: t, warmup: c.latencyWarmup,
                                              rounds: c.latencyRounds, runsPerRound: c.latencyRunsPerRound)
        let (f, q) = (HarnessLatency(measured[0]), HarnessLatency(measured[1]))
        floatResult.latency.append(f)
        int8Result.latency.append(q)
    }
    log("\(label): peak memory of one-frame runs (float, int8)")
    floatResult.peakRSSBytes = peakRSS(floatPath)
    int8Result.peakRSSBytes = peakRSS(int8Path)

    var overlays: [String] = []
    if c.overlayFrames > 0 {
        let picks = (0..<min(c.overlayFrames, test.count)).map { $0 * test.count / min(c.overlayFrames, test.count) }
        for i in picks {
            let relative = "\(strategy.name)-seed\(seed)/frames/\(test[i].sample.name)-int8.png"
            try drawPredictionFrame(model: int8, prepared: test[i], row: int8Report.rows[i], to: c.outDirectory + "/" + relative)
            overlays.append(relative)
        }
    }
    let curve = try readEpochCurve(path: directory + "/metrics.csv")
    return HarnessRow(strategy: strategy.name, seed: seed, runDirectory: directory, architecture: architecture.rawValue,
                      trainableGroups: Strategy.describe(strategy.trainable),
                      trainableParameters: graph.parameterCount(groups: strategy.trainable), totalParameters: graph.totalParameterCount,
                      epochs: epochsDone, batchSize: c.batchSize, learningRate: Double(c.learningRate), curve: curve,
                      float: floatResult, int8: int8Result, overlays: overlays, measurementKey: key)
}

