import Foundation
import HC18
import QuantEngine

/// Everything a training run is defined by. Two runs with the same configuration and thread count give
/// the same weights bit for bit (resumed or not).
public struct TrainingConfiguration {
    public var dataDirectory: String
    public var splitCSV: String
    public var strategy: Strategy
    public var width: Int
    public var height: Int
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Float
    /// How the rate moves over the run's epochs x steps (constant: the paper's protocol).
    public var schedule: LearningRateSchedule
    public var seed: UInt64
    /// Encoder-only ImageNet file or a full checkpoint; nil = everything random (only for random-encoder strategies).
    public var initPath: String?
    public var runDirectory: String
    public var resume: Bool
    public var threads: Int
    /// Use only the first K training frames (smoke tests); nil = all.
    public var limitTrain: Int?
    /// Evaluate on only the first K test frames; nil = all.
    public var limitTest: Int?

    public init(dataDirectory: String, splitCSV: String, strategy: Strategy, width: Int, height: Int, epochs: Int,
                batchSize: Int, learningRate: Float, seed: UInt64, initPath: String?, runDirectory: String,
                resume: Bool, threads: Int, limitTrain: Int? = nil, limitTest: Int? = nil, schedule: LearningRateSchedule = .constant) {
        self.dataDirectory = dataDirectory
        self.splitCSV = splitCSV
        self.strategy = strategy
        self.width = width
        self.height = height
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.schedule = schedule
        self.seed = seed
        self.initPath = initPath
        self.runDirectory = runDirectory
        self.resume = resume
        self.threads = threads
        self.limitTrain = limitTrain
        self.limitTest = limitTest
    }

    /// What must agree for `--resume` to continue a run. Paths may change; so may the thread count, but then
    /// the continued run is no longer bit-identical to an uninterrupted one. A cosine schedule depends on the
    /// run's length, so then --epochs must agree too (a constant rate lets a run be extended).
    var identity: String {
        let schedulePart = schedule == .constant ? "" : " schedule=\(schedule.rawValue) epochs=\(epochs)"
        return "strategy=\(strategy.name) trainable=\(Strategy.describe(strategy.trainable)) randomEncoder=\(strategy.randomEncoder) "
            + "frozenStatistics=\(strategy.freezeFrozenBatchNormStatistics) size=\(width)x\(height) batch=\(batchSize) "
            + "lr=\(learningRate) seed=\(seed) limitTrain=\(limitTrain.map(String.init) ?? "all")" + schedulePart
    }
}

/// One row of metrics.csv.
public struct EpochMetrics: Equatable {
    public var epoch: Int
    public var trainLoss: Double
    public var dice: Double
    public var diceStd: Double
    public var iou: Double
    public var pixelAccuracy: Double
    public var hcErrorMM: Double
    public var noHeadFound: Int
    public var imagesPerSecond: Double
    public var epochSeconds: Double

    static let csvHeader = "epoch,train_loss,test_dice,test_dice_std,test_iou,test_pixel_accuracy,test_hc_error_mm,test_no_head_found,train_images_per_s,epoch_seconds"

    var csvRow: String {
        String(format: "%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,%d,%.3f,%.1f", epoch, trainLoss, dice, diceStd, iou, pixelAccuracy,
               hcErrorMM, noHeadFound, imagesPerSecond, epochSeconds)
    }

    init(epoch: Int, trainLoss: Double, dice: Double, diceStd: Double, iou: Double, pixelAccuracy: Double, hcErrorMM: Double,
         noHeadFound: Int, imagesPerSecond: Double, epochSeconds: Double) {
        self.epoch = epoch; self.trainLoss = trainLoss; self.dice = dice; self.diceStd = diceStd; self.iou = iou
        self.pixelAccuracy = pixelAccuracy; self.hcErrorMM = hcErrorMM; self.noHeadFound = noHeadFound
        self.imagesPerSecond = imagesPerSecond; self.epochSeconds = epochSeconds
    }

    init?(csvRow: String) {
        let f = csvRow.split(separator: ",").map(String.init)
        guard f.count == 10, let e = Int(f[0]), let l = Double(f[1]), let d = Double(f[2]), let ds = Double(f[3]),
              let i = Double(f[4]), let p = Double(f[5]), let h = Double(f[6]), let n = Int(f[7]), let s = Double(f[8]),
              let t = Double(f[9]) else { return nil }
        self.init(epoch: e, trainLoss: l, dice: d, diceStd: ds, iou: i, pixelAccuracy: p, hcErrorMM: h, noHeadFound: n,
                  imagesPerSecond: s, epochSeconds: t)
    }

    /// The rows of a run's metrics.csv, as `TrainingRun` writes it (the one reader of that file: the trainer's
    /// resume and the bench harness use it); an error names the file and the line.
    public static func read(csv path: String) throws -> [EpochMetrics] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw SonoQuantError(path, exists ? "cannot read file" : "no such file", kind: exists ? .unreadable : .fileNotFound)
        }
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard lines.first == csvHeader else {
            throw SonoQuantError(path, "not a metrics.csv of this version: the header is not `\(csvHeader)`", kind: .badData)
        }
        return try lines.dropFirst().enumerated().map { index, line in
            guard let row = EpochMetrics(csvRow: line) else {
                throw SonoQuantError(path, "line \(index + 2): expected 10 numeric fields, got `\(line)`", kind: .badData)
            }
            return row
        }
    }
}

/// A training run: data preloaded once, epochs of shuffled augmented batches, Adam, evaluation on the test
/// split after each epoch, atomic checkpoints and a resume file. Files in the run directory:
/// - `resume.safetensors`: weights, running statistics, Adam moments and step, epochs done, metrics so far
///   (written last each epoch, atomically: whatever happens, it describes a completed epoch);
/// - `epoch-NN.safetensors`: the checkpoint after epoch NN (float16, smp names; loads in PyTorch);
/// - `model.safetensors`: the latest checkpoint in float32;
/// - `metrics.csv`, `evaluation.json` (the latest per-image test report), `command.txt`.
public final class TrainingRun {
    public let configuration: TrainingConfiguration
    let log: (String) -> Void

    public init(configuration: TrainingConfiguration, log: @escaping (String) -> Void) {
        self.configuration = configuration
        self.log = log
    }

    var resumePath: String { configuration.runDirectory + "/resume.safetensors" }

    /// Trains (or continues) and returns the metrics of every epoch.
    @discardableResult
    public func run() throws -> [EpochMetrics] {
        let c = configuration
        guard c.epochs >= 1, c.batchSize >= 1, c.learningRate > 0, c.threads >= 1 else {
            throw SonoQuantError("train", "epochs, batch, lr and threads must be positive")
        }
        try c.strategy.graph.checkFrameSize(width: c.width, height: c.height, subject: "--size \(c.width)x\(c.height)", images: 2 * c.batchSize)
        try FileManager.default.createDirectory(atPath: c.runDirectory, withIntermediateDirectories: true)
        keepFreedMemoryForReuse()
        let lock = try DirectoryLock(directory: c.runDirectory, purpose: "train \(c.strategy.name) seed \(c.seed)")
        defer { withExtendedLifetime(lock) {} }

        // Start or resume.
        var adam = Adam(learningRate: c.learningRate)
        var history: [EpochMetrics] = []
        var weights: ModelWeights
        if FileManager.default.fileExists(atPath: resumePath) {
            guard c.resume else {
                throw SonoQuantError(c.runDirectory, "already holds a run (resume.safetensors); pass --resume to continue it or choose another --out")
            }
            let state = try ResumeState.load(path: resumePath, configuration: c)
            weights = state.weights
            adam = state.adam
            history = state.history
            log("resuming \(c.runDirectory) after epoch \(history.count) (Adam step \(adam.step))")
        } else {
            // A fresh run writes these: if they are here without a resume file, they are someone else's.
            let foreign = ((try? FileManager.default.contentsOfDirectory(atPath: c.runDirectory)) ?? []).filter {
                ["model.safetensors", "metrics.csv", "evaluation.json"].contains($0) || ($0.hasPrefix("epoch-") && $0.hasSuffix(".safetensors"))
            }.sorted()
            if !foreign.isEmpty {
                throw SonoQuantError(c.runDirectory, "holds \(foreign.prefix(3).joined(separator: ", ")) of another run but no resume.safetensors; refusing to replace them: choose an empty --out")
            }
            // --resume promises to continue: starting from scratch instead would silently lose that intent.
            if c.resume {
                throw SonoQuantError(c.runDirectory, "--resume: no resume.safetensors here, so there is no run to continue; drop --resume to start one")
            }
            if c.initPath == nil && !c.strategy.randomEncoder {
                throw SonoQuantError("--init", "strategy \(c.strategy.name) fine-tunes a pretrained encoder: give --init ENCODER.safetensors (e.g. ../shared/weights/mobilenet_v2_imagenet.safetensors) or a full checkpoint")
            }
            weights = try Initialization.initialWeights(architecture: c.strategy.architecture, initPath: c.initPath,
                                                        randomEncoder: c.strategy.randomEncoder, seed: c.seed)
        }
        if history.count >= c.epochs {
            log("all \(c.epochs) epochs already done in \(c.runDirectory)")
            return history
        }
        let model = TrainableUNet(weights: weights, trainable: c.strategy.trainable,
                                  freezeFrozenBatchNormStatistics: c.strategy.freezeFrozenBatchNormStatistics)

        // Data, preloaded once at the training size.
        let dataset = try HC18Dataset(directory: c.dataDirectory, splitCSV: c.splitCSV)
        let trainSamples = Array(dataset.train.prefix(c.limitTrain ?? dataset.train.count))
        let testSamples = Array(dataset.test.prefix(c.limitTest ?? dataset.test.count))
        guard !trainSamples.isEmpty else { throw SonoQuantError(c.splitCSV, "no training frames in the split") }
        guard !testSamples.isEmpty else { throw SonoQuantError(c.splitCSV, "no test frames in the split") }
        let loadStart = Date()
        let train = try loadSamples(trainSamples, width: c.width, height: c.height, threads: c.threads)
        let test = try loadSamples(testSamples, width: c.width, height: c.height, threads: c.threads)
        log(String(format: "%@: %d trainable parameters (%@); %d train / %d test frames at %dx%d loaded in %.1f s; kernels %@",
                   c.strategy.name, model.trainableParameterCount, Strategy.describe(c.strategy.trainable),
                   train.count, test.count, c.width, c.height, Date().timeIntervalSince(loadStart), KernelPath.current.rawValue))

        let stepsPerEpoch = (train.count + c.batchSize - 1) / c.batchSize
        let runStart = Date()
        var imagesThisRun = 0
        for epoch in history.count..<c.epochs {
            let epochStart = Date()
            var order = Array(0..<train.count)
            var shuffleRandom = SplitMix64.stream(seed: c.seed, epoch: epoch, purpose: 2)
            for i in stride(from: order.count - 1, to: 0, by: -1) {  // Fisher-Yates
                order.swapAt(i, Int(shuffleRandom.next() % UInt64(i + 1)))
            }
            var augmentRandom = SplitMix64.stream(seed: c.seed, epoch: epoch, purpose: 3)
            var lossSum = 0.0
            var lastReport = Date()
            for step in 0..<stepsPerEpoch {
                let batch = Array(order[(step * c.batchSize)..<min(order.count, (step + 1) * c.batchSize)])
                let (input, target) = Self.makeBatch(batch.map { train[$0] }, width: c.width, height: c.height, rng: &augmentRandom, threads: c.threads)
                let (loss, _) = model.lossAndGradients(input: input, targets: target, threads: c.threads)
                guard loss.isFinite else {
                    let saved = FileManager.default.fileExists(atPath: resumePath)
                        ? "the last good state is in resume.safetensors, after epoch \(epoch)"
                        : "no epoch had finished, so nothing was saved; try a smaller --lr"
                    throw SonoQuantError(c.runDirectory, "loss became \(loss) at epoch \(epoch + 1), step \(step + 1) of \(stepsPerEpoch); stopped (\(saved))")
                }
                adam.learningRate = c.schedule.rate(base: c.learningRate, stepsTaken: adam.step, totalSteps: c.epochs * stepsPerEpoch)
                adam.update(model.trainableParameters, threads: c.threads)
                lossSum += loss * Double(batch.count)
                imagesThisRun += batch.count
                if Date().timeIntervalSince(lastReport) >= 10 || step == stepsPerEpoch - 1 {
                    lastReport = Date()
                    let rate = Double(imagesThisRun) / Date().timeIntervalSince(runStart)
                    let remaining = Double((c.epochs - epoch) * train.count - (step + 1) * c.batchSize) / rate
                    log(String(format: "epoch %d/%d  step %d/%d  loss %.4f  %.2f images/s  ETA %@",
                               epoch + 1, c.epochs, step + 1, stepsPerEpoch, loss, rate, Self.duration(max(0, remaining))))
                }
            }
            let trainSeconds = Date().timeIntervalSince(epochStart)

            // Evaluate on the test split with the inference engine (eval-mode BatchNorm, folded).
            let checkpoint = model.weights()
            let report = try evaluate(model: FloatUNet(weights: checkpoint), prepared: test, threads: c.threads)
            let metrics = EpochMetrics(epoch: epoch + 1, trainLoss: lossSum / Double(train.count), dice: report.meanDice,
                                       diceStd: report.diceStd, iou: report.meanIoU, pixelAccuracy: report.meanPixelAccuracy,
                                       hcErrorMM: report.meanHCErrorMM, noHeadFound: report.noHeadFound,
                                       imagesPerSecond: Double(train.count) / trainSeconds,
                                       epochSeconds: Date().timeIntervalSince(epochStart))
            history.append(metrics)
            log(String(format: "epoch %d/%d done: train loss %.4f  test Dice %.4f  IoU %.4f  pixel acc %.4f  HC error %.2f mm  (%.0f s)",
                       epoch + 1, c.epochs, metrics.trainLoss, metrics.dice, metrics.iou, metrics.pixelAccuracy,
                       metrics.hcErrorMM, metrics.epochSeconds))

            // Checkpoints first, the resume file last: it only ever names a fully written epoch.
            var metadata = ModelMetadata()
            metadata.strategy = c.strategy.name
            metadata.epoch = epoch + 1
            metadata.size = InputSize(width: c.width, height: c.height)
            metadata.trainable = Strategy.describe(c.strategy.trainable)
            try checkpoint.save(to: c.runDirectory + String(format: "/epoch-%02d.safetensors", epoch + 1), halfPrecision: true, metadata: metadata)
            try checkpoint.save(to: c.runDirectory + "/model.safetensors", metadata: metadata)
            try report.write(to: c.runDirectory + "/evaluation.json")
            try writeFileAtomically(path: c.runDirectory + "/metrics.csv",
                                    text: ([EpochMetrics.csvHeader] + history.map(\.csvRow)).joined(separator: "\n") + "\n")
            try ResumeState.save(path: resumePath, configuration: c, weights: checkpoint, adam: adam, history: history)
        }
        return history
    }

    /// Augments each frame (identical geometry for its mask) and stacks the batch: input [B, 3, H, W] (gray
    /// replicated to RGB, as the PyTorch reference feeds it), target [B, 1, H, W].
    /// The augmentations are drawn in sample order (the stream stays the same), then applied one image per
    /// work item.
    static func makeBatch(_ samples: [PreparedSample], width: Int, height: Int, rng: inout SplitMix64, threads: Int) -> (Tensor, Tensor) {
        let plane = width * height
        let augmentations = samples.map { _ in Augmentation.random(&rng) }
        var input = [Float](repeating: 0, count: samples.count * 3 * plane)
        var target = [Float](repeating: 0, count: samples.count * plane)
        input.withUnsafeMutableBufferPointer { input in target.withUnsafeMutableBufferPointer { target in
            let (inputBase, targetBase) = (input.baseAddress!, target.baseAddress!)
            parallelChunks(samples.count, threads: threads) { items in
                for b in items {
                    let (image, mask) = augmentations[b].apply(image: samples[b].image, mask: samples[b].mask, width: width, height: height)
                    for channel in 0..<3 { (inputBase + (b * 3 + channel) * plane).update(from: image, count: plane) }
                    (targetBase + b * plane).update(from: mask, count: plane)
                }
            }
        } }
        return (Tensor(shape: [samples.count, 3, height, width], data: input), Tensor(shape: [samples.count, 1, height, width], data: target))
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" : "\(s / 60)m\(String(format: "%02d", s % 60))s"
    }
}

/// The resume file: one safetensors file holding the weights (smp names), Adam's moments
/// (`adam.m.<name>`, `adam.v.<name>`) and, in its metadata, the Adam step, the run's identity and the
/// metrics of the epochs done. Randomness needs no saved state: each epoch's shuffling and augmentation
/// streams are derived from (seed, epoch), so continuing at an epoch boundary replays them exactly.
enum ResumeState {
    static func save(path: String, configuration: TrainingConfiguration, weights: ModelWeights, adam: Adam, history: [EpochMetrics]) throws {
        var metadata = ModelMetadata()
        metadata.format = .trainResume
        metadata.run = configuration.identity
        metadata.epochsDone = history.count
        metadata.adamStep = adam.step
        metadata.metrics = history.map(\.csvRow).joined(separator: "\n")
        var writer = SafeTensorsWriter(metadata: metadata)
        for (name, tensor) in weights.tensors.sorted(by: { $0.key < $1.key }) { writer.add(name, tensor) }
        for (name, m) in adam.firstMoment.sorted(by: { $0.key < $1.key }) {
            writer.add("adam.m." + name, floats: m, shape: [m.count])
            writer.add("adam.v." + name, floats: adam.secondMoment[name]!, shape: [m.count])
        }
        try writer.write(to: path)
    }

    static func load(path: String, configuration: TrainingConfiguration) throws
        -> (weights: ModelWeights, adam: Adam, history: [EpochMetrics]) {
        let file = try SafeTensorsFile(path: path)
        let metadata = file.modelMetadata
        guard metadata.format == .trainResume else {
            throw SonoQuantError(path, "not a SonoQuant resume file")
        }
        let saved = metadata.run ?? "?"
        guard saved == configuration.identity else {
            throw SonoQuantError(path, "this run was started with different settings:\n  saved: \(saved)\n  now:   \(configuration.identity)")
        }
        let graph = configuration.strategy.graph
        var tensors: [String: Tensor] = [:]
        for (name, shape) in graph.expectedTensorShapes { tensors[name] = try file.tensor(name, shape: shape) }
        var adam = Adam(learningRate: configuration.learningRate)
        guard let step = metadata.adamStep else { throw SonoQuantError(path, "missing Adam step") }
        adam.step = step
        for name in file.entries.keys where name.hasPrefix("adam.m.") {
            let parameter = String(name.dropFirst("adam.m.".count))
            adam.firstMoment[parameter] = try file.tensor(name).data
            adam.secondMoment[parameter] = try file.tensor("adam.v." + parameter).data
        }
        let rows = (metadata.metrics ?? "").split(separator: "\n").map(String.init)
        let history = try rows.map { row -> EpochMetrics in
            guard let m = EpochMetrics(csvRow: row) else { throw SonoQuantError(path, "bad metrics row '\(row)'") }
            return m
        }
        guard history.count == metadata.epochsDone else { throw SonoQuantError(path, "epoch count and metrics disagree") }
        return (ModelWeights(graph: graph, tensors: tensors), adam, history)
    }
}
