import ArgumentParser
import Foundation
import HC18
import QuantEngine
import Train

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune the MobileNetV2 U-Net on HC18 with one of the paper's strategies (float32, CPU).",
        discussion: """
        Trains the parameter groups a strategy names and freezes the rest. Groups: E = encoder, \
        D0..D4 = decoder blocks, H = segmentation head. Presets (trainable parameters):
          full-ft        E,D0-D4,H   6,628,945
          D-all          D0-D4,H     4,405,073   (the paper's best)
          D-all-frozenbn D0-D4,H     4,405,073   encoder BatchNorm in eval mode
          E              E           2,223,872
          D0             D0          3,761,152
          D01            D0-D1       4,240,896
          D012           D0-D2       4,365,568
          D234           D2-D4         164,032
          D4             D4              6,976
          D4+H           D4,H            7,121
          full-scratch   E,D0-D4,H   random encoder (torchvision init)
          rand-frozen-E  D0-D4,H     random encoder, frozen
          rand-frozen-D  E           random encoder trained, decoder and head frozen
          unet-baseline  E,D0-D3,H  31,037,633  the paper's plain U-Net
        unet-baseline is another architecture, trained from scratch with PyTorch's \
        default init; its sizes are multiples of 16, and --init takes only a full \
        unet-baseline checkpoint (no --init: random).
        --trainable E,D3,H trains any set instead. Frozen layers get no gradient and no update; their \
        BatchNorm still normalises with batch statistics and updates its running statistics (as in the \
        paper's code) unless --freeze-bn-stats.

        Each epoch: frames (squashed to WxH, preloaded once) in a seeded shuffled order, each augmented \
        (rotation uniform in +-25 degrees with reflected border, horizontal flip p=0.5, vertical flip \
        p=0.1; the mask follows the same geometry), BCE-with-logits, Adam (beta 0.9/0.999, eps 1e-8). \
        After each epoch the test split is evaluated (Dice, IoU, pixel accuracy, HC error). The run \
        directory gets metrics.csv, epoch-NN.safetensors (float16), model.safetensors (float32, latest), \
        evaluation.json and resume.safetensors (weights + Adam state, written atomically last), so an \
        interrupted run continues with --resume to the same result. Same seed and --threads give the \
        same weights bit for bit.

        Example (the paper's best strategy on its split):
          sonoquant train --strategy D-all --size 192x128 --epochs 20 \\
            --batch 10 --lr 1e-4 --seed 0 \\
            --data ../shared/hc18/training_set \\
            --split ../shared/hc18/splits/paper_split.csv \\
            --init ../shared/weights/mobilenet_v2_imagenet.safetensors \\
            --out runs/D-all-seed0
        """
    )

    @Option(help: ArgumentHelp("HC18 directory: frames, *_Annotation.png and training_set_pixel_size_and_HC.csv.", valueName: "dir"))
    var data: String?

    @Option(help: ArgumentHelp("Split file `filename,split`: trains on `train`, evaluates on `test`.", valueName: "split.csv"))
    var split: String?

    @OptionGroup var strategyOptions: StrategyOptions

    @OptionGroup var step: TrainingStepOptions

    @Option(help: "Epochs.")
    var epochs: Int = 20

    @Option(help: ArgumentHelp("How the learning rate moves over the run: constant (the paper's protocol) or cosine (from --lr down to 0 at the last step; --resume then needs the same --epochs).", valueName: "schedule"))
    var lrSchedule: LearningRateSchedule = .constant

    @Option(name: .customLong("init"), help: ArgumentHelp("Starting weights: an encoder-only file (torchvision names, e.g. ../shared/weights/mobilenet_v2_imagenet.safetensors; decoder and head start as PyTorch initialises them) or a full checkpoint.", valueName: "weights.safetensors"))
    var initWeights: String?

    @Option(help: ArgumentHelp("Run directory (created).", valueName: "dir"))
    var out: String?

    @Flag(help: "Continue the run in --out from its last completed epoch.")
    var resume = false

    @OptionGroup var threading: ThreadsOption

    @Option(help: ArgumentHelp("Train on only the first K training frames of the split (smoke tests).", valueName: "K"))
    var limitTrain: Int?

    @Option(help: ArgumentHelp("Evaluate on only the first K test frames.", valueName: "K"))
    var limitTest: Int?

    /// The older spelling of `sonoquant train-speed --steps N`, kept for the commands in dated records.
    @Option(help: .hidden)
    var measureSpeed: Int?

    /// Absurd options are refused before any data is read (a negative --limit-train used to trap, and
    /// --lr inf trained to a checkpoint of non-finite weights).
    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        if let limitTrain, limitTrain < 1 { throw ValidationError("--limit-train must be at least 1, got \(limitTrain)") }
        if let limitTest, limitTest < 1 { throw ValidationError("--limit-test must be at least 1, got \(limitTest)") }
        if let measureSpeed, measureSpeed < 1 { throw ValidationError("--measure-speed needs at least 1 step, got \(measureSpeed)") }
        if let out { try checkWritableDirectory(out, option: "--out") }
    }

    func run() throws {
        try reportingErrors {
            let strategy = try strategyOptions.resolved()
            if let steps = measureSpeed {
                try measureTrainingSpeed(strategy: strategy, step: step, threads: threading.count, steps: steps)
                return
            }
            guard let data, let split, let out else {
                throw ValidationError("--data, --split and --out are required to train")
            }
            let configuration = TrainingConfiguration(
                dataDirectory: data, splitCSV: split, strategy: strategy, width: step.size.width, height: step.size.height,
                epochs: epochs, batchSize: step.batch, learningRate: step.lr, seed: step.seed, initPath: initWeights,
                runDirectory: out, resume: resume, threads: threading.count, limitTrain: limitTrain, limitTest: limitTest,
                schedule: lrSchedule)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let commandLine = CommandLine.arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
            let previous = (try? String(contentsOfFile: out + "/command.txt", encoding: .utf8)) ?? ""
            try writeFileAtomically(path: out + "/command.txt", text: previous + commandLine + "\n")
            try TrainingRun(configuration: configuration) { line in
                print(line)
                fflush(nil)  // every output stream: Swift 6 refuses the global `stdout`
            }.run()
        }
    }

}

/// `--size`, `--batch`, `--lr` and `--seed`: one training step's shape and randomness (train, train-speed).
struct TrainingStepOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Network input size WxH (multiples of 32; 16 for unet-baseline).", valueName: "WxH"))
    var size: InputSize = InputSize(width: 192, height: 128)

    @Option(help: "Frames per batch.")
    var batch: Int = 10

    @Option(help: "Adam learning rate.")
    var lr: Float = 1e-4

    @Option(help: "Seed for the initialisation and the random streams (train: shuffling and augmentation; train-speed: the synthetic batch).")
    var seed: UInt64 = 0

    /// A --lr of inf used to train to a checkpoint of non-finite weights.
    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard lr.isFinite, lr > 0, lr <= 1 else { throw ValidationError("--lr must be a finite number in (0, 1], got \(lr)") }
    }
}

/// `--strategy`, `--trainable` and `--freeze-bn-stats`: which parameter groups train (train, train-speed).
struct StrategyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The fine-tuning preset (docs/TRAINING.md lists what each trains).", valueName: "name"))
    var strategy: Strategy = try! Strategy.preset("D-all")

    @Option(help: ArgumentHelp("Train exactly these groups instead of the preset's, e.g. E,D3,H or D0-D4,H.", valueName: "groups"))
    var trainable: String?

    @Flag(help: "Keep frozen groups' BatchNorm in eval mode (running statistics used and not updated).")
    var freezeBnStats = false

    func resolved() throws -> Strategy {
        let preset = strategy
        let groups = try trainable.map { try Strategy.groups($0) } ?? preset.trainable
        let customPrefix = preset.architecture == .mobileNetV2UNet ? (preset.randomEncoder ? "rand-" : "") : preset.architecture.rawValue + "-"
        let name = trainable == nil ? preset.name : "\(customPrefix)custom-\(Strategy.describe(groups))"
        return Strategy(name: freezeBnStats && !preset.freezeFrozenBatchNormStatistics ? name + "-frozenbn" : name,
                        trainable: groups, randomEncoder: preset.randomEncoder,
                        freezeFrozenBatchNormStatistics: preset.freezeFrozenBatchNormStatistics || freezeBnStats,
                        architecture: preset.architecture)
    }
}

struct TrainSpeedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-speed",
        abstract: "Training throughput: time training steps of a strategy on synthetic frames (no data needed).",
        discussion: """
        One warm-up step, then --steps timed steps (forward, backward, Adam) on a \
        batch of synthetic frames (uniform [0, 1], RGB) with a random 30% head \
        mask, from a seeded random initialisation: the work of a real step without \
        reading data. Prints the median step time, images/s, the fastest step and \
        the CPU time per step over all threads (hardly changed by other load). \
        scripts/bench-train.sh runs it beside PyTorch doing the same steps.

        Example:
          sonoquant train-speed --strategy D-all --size 192x128 --batch 10 \\
            --threads 2 --steps 5
        """
    )

    @OptionGroup var strategyOptions: StrategyOptions

    @OptionGroup var step: TrainingStepOptions

    @Option(help: "Timed steps (after one warm-up step).")
    var steps: Int = 5

    @OptionGroup var threading: ThreadsOption

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
    }

    func run() throws {
        try reportingErrors {
            try measureTrainingSpeed(strategy: try strategyOptions.resolved(), step: step, threads: threading.count, steps: steps)
        }
    }
}

/// Times `steps` training steps after one warm-up and prints one line (what `train-speed` reports).
func measureTrainingSpeed(strategy: Strategy, step: TrainingStepOptions, threads: Int, steps: Int) throws {
    let (size, batch, lr, seed) = (step.size, step.batch, step.lr, step.seed)
    try strategy.graph.checkFrameSize(width: size.width, height: size.height, subject: "--size \(size)", images: 2 * batch)
    keepFreedMemoryForReuse()
    let weights = try Initialization.initialWeights(architecture: strategy.architecture, initPath: nil, randomEncoder: true, seed: seed)
    let model = TrainableUNet(weights: weights, trainable: strategy.trainable,
                              freezeFrozenBatchNormStatistics: strategy.freezeFrozenBatchNormStatistics)
    var rng = SplitMix64(seed: seed)
    let (w, h) = (size.width, size.height)
    let input = Tensor(shape: [batch, 3, h, w], data: (0..<(batch * 3 * h * w)).map { _ in rng.uniform() })
    let target = Tensor(shape: [batch, 1, h, w], data: (0..<(batch * h * w)).map { _ in rng.uniform() < 0.3 ? 1 : 0 })
    var adam = Adam(learningRate: lr)
    var seconds: [Double] = []
    var cpuStart = 0.0
    for step in 0...steps {  // step 0 warms up
        if step == 1 { cpuStart = processCPUSeconds() }
        let start = Date()
        _ = model.lossAndGradients(input: input, targets: target, threads: threads)
        adam.update(model.trainableParameters, threads: threads)
        if step > 0 { seconds.append(Date().timeIntervalSince(start)) }
    }
    let cpuPerStep = (processCPUSeconds() - cpuStart) / Double(steps)
    let sorted = seconds.sorted()
    let median = sorted[sorted.count / 2]
    print(String(format: "sonoquant train %@ %dx%d batch %d threads %d: median step %.3f s = %.2f images/s (%d steps after 1 warm-up; min %.3f s; CPU %.3f s/step all threads; kernels %@)",
                 strategy.name, w, h, batch, threads, median, Double(batch) / median, steps, sorted[0], cpuPerStep, KernelPath.current.rawValue))
}

/// User + system CPU time of this process, all threads (load from other processes does not inflate it).
func processCPUSeconds() -> Double {
    Double(clock()) / Double(CLOCKS_PER_SEC)  // Linux: the whole process, every thread
}
