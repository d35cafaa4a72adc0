import ArgumentParser
import Bench
import Calibrate
import Foundation
import QuantEngine
import Train

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Which strategy to deploy: accuracy, size, latency and memory per fine-tuning strategy and precision.",
        discussion: """
        bench run trains, quantizes and measures strategies; bench compare \
        measures given model files; bench merge joins run outputs into one \
        report. The older spelling (`bench --strategies ...`, `bench --model \
        ...`, `bench --merge ...`) still works and does the same.
        """,
        subcommands: [BenchRunCommand.self, BenchCompareCommand.self, BenchMergeCommand.self, BenchLegacyCommand.self],
        defaultSubcommand: BenchLegacyCommand.self
    )
}

/// What `bench run` and `bench compare` score on and how they time: the data, the split, the size and
/// the latency protocol.
struct BenchScoringOptions: ParsableArguments {
    @Option(help: ArgumentHelp("HC18 frames, annotations and pixel-size CSV.", valueName: "dir"))
    var data: String

    @Option(help: ArgumentHelp("Split CSV (filename,split): run trains on `train`; both score `test`.", valueName: "split.csv"))
    var split: String

    @Option(help: ArgumentHelp("Network input size WxH (multiples of 32; 16 for unet-baseline).", valueName: "WxH"))
    var size: InputSize = InputSize(width: 192, height: 128)

    @Option(help: ArgumentHelp("Comma-separated thread counts to time (run: the largest also trains).", valueName: "n,n,..."))
    var threads: String = "1,2"

    @Option(help: "Latency rounds (each times every model).")
    var rounds: Int = 10

    @Option(help: "Timed calls per model per round.")
    var runsPerRound: Int = 3

    @Option(help: ArgumentHelp("Output directory (run: also the run directories).", valueName: "dir"))
    var out: String

    func parsedThreads() throws -> [Int] { try parseThreadCounts(threads) }

    func validate() throws {
        _ = try parsedThreads()
        try checkWritableDirectory(out, option: "--out")
        guard rounds >= 1, runsPerRound >= 1 else { throw ValidationError("--rounds and --runs-per-round must be at least 1") }
    }
}

/// `bench run`'s grid and training settings.
struct BenchHarnessOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Comma-separated presets, or `all`.", valueName: "S,S,...|all"))
    var strategies: String

    @Option(help: ArgumentHelp("Comma-separated seeds.", valueName: "n,n,..."))
    var seeds: String = "0"

    @Option(help: "Epochs per run (a run directory with fewer is resumed to this many).")
    var epochs: Int = 20

    @Option(name: .customLong("init"), help: ArgumentHelp("Starting weights for new runs (ImageNet encoder or full checkpoint).", valueName: "encoder.safetensors"))
    var initWeights: String?

    @Option(help: "Frames per training batch.")
    var batch: Int = 10

    @Option(help: "Adam learning rate.")
    var lr: Float = 1e-4

    @Option(help: "int8 calibration frames from the training split.")
    var images: Int = 64

    @Option(help: "Activation observer for int8.")
    var observer: Observer = .minmax

    @Option(help: "Test frames drawn with predicted and true ellipses per run.")
    var frames: Int = 3

    @Option(help: ArgumentHelp("PyTorch reference results shown beside ours (default: fixtures/pytorch_reference_results.json if present).", valueName: "file.json"))
    var reference: String?

    @Flag(help: "Never train; measure the runs that have every epoch and list the others as pending (safe while another process trains them).")
    var measureOnly = false

    func validate() throws {
        guard epochs >= 1, batch >= 1, lr > 0, images >= 1, frames >= 0 else {
            throw ValidationError("--epochs, --batch, --lr and --images must be positive, --frames at least 0")
        }
    }
}

/// The command line as run, quoted where needed, for the reports.
private var benchCommandLine: String {
    (["sonoquant"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") || $0.contains("|") ? "\"\($0)\"" : $0 }.joined(separator: " ")
}

struct BenchRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train, quantize and measure each strategy and seed; one report for all.",
        discussion: """
        For strategy S and seed N it trains into OUT/S-seedN/ (a normal \
        `sonoquant train --out` directory: a partial run is resumed, a finished \
        one is not trained again), evaluates the float model on the test split, \
        calibrates it to int8 (--observer, --images frames of the training \
        split), evaluates the int8 model, and measures file sizes, latency \
        (float and int8 interleaved at each --threads count: median and p95 \
        after warm-up, plus CPU time) and peak memory. It writes \
        OUT/results.csv, results.json and REPORT.md (the paper's table shape; \
        per-frame mean ± std with a bootstrap 95% interval; mean ± std over \
        seeds; the PyTorch reference beside ours), plots (dice_vs_params.svg, \
        dice_vs_int8_latency.svg with the Pareto front, epoch_curves.svg) and \
        test frames with predicted and true ellipses (PNG). The files are \
        rewritten after every run and each run's measurements are kept in \
        OUT/S-seedN/bench.json: an interrupted run keeps what is done, and the \
        same command again does only what is missing.
        --strategies all = every preset:
          \(Strategy.presetNames.joined(separator: " "))
        --measure-only trains nothing: it measures the finished runs and lists \
        the others as pending (safe while another process trains them). \
        Training uses the largest --threads count; --batch and --lr default to \
        the paper's 10 and 1e-4.

        Example:
          sonoquant bench run --strategies D-all,full-ft --seeds 0,1 \\
            --data ../shared/hc18/training_set \\
            --split ../shared/hc18/splits/paper_split.csv \\
            --size 192x128 --epochs 20 --out runs/bench \\
            --init ../shared/weights/mobilenet_v2_imagenet.safetensors
        """
    )

    @OptionGroup var harness: BenchHarnessOptions
    @OptionGroup var scoring: BenchScoringOptions

    func run() throws { try reportingErrors { try runBenchHarness(harness, scoring) } }
}

struct BenchCompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Measure given model files side by side on the test frames of a split.",
        discussion: """
        Float checkpoints or int8 model files, scored on the test frames of \
        --split: Dice, IoU, pixel accuracy, HC error, trainable parameters (from \
        the file's metadata or NAME's preset prefix), file size, latency \
        interleaved across the models, peak memory. Writes OUT/REPORT.md, \
        report.json and plot.svg.

        Example:
          sonoquant bench compare \\
            --model D-all-float=models/D-all.f16.safetensors \\
            --model D-all-int8=models/D-all.int8.safetensors \\
            --data ../shared/hc18/training_set \\
            --split ../shared/hc18/splits/paper_split.csv \\
            --size 192x128 --threads 1,2 --out bench/
        """
    )

    @Option(name: .customLong("model"), parsing: .singleValue,
            help: ArgumentHelp("A model to compare, as NAME=PATH (repeat for each model).", valueName: "name=model.safetensors"))
    var models: [String]

    @OptionGroup var scoring: BenchScoringOptions

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one --model NAME=PATH") }
    }

    func run() throws { try reportingErrors { try runBenchCompare(models, scoring) } }
}

struct BenchMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the outputs of several bench runs into one report.",
        discussion: """
        One report from runs made at different times or on several machines, \
        for when a full study does not fit one. The rows are taken as measured \
        (nothing is trained or timed again; a later DIR's row replaces an \
        earlier one's for the same strategy and seed), the test-frame PNGs are \
        copied, and REPORT.md ends with which run came from which DIR and host. \
        The DIRs must share split, size, epochs, batch, lr, observer and \
        calibration frames.

        Example:
          sonoquant bench merge runs/monday runs/tuesday --out runs/full
        """
    )

    @Argument(help: ArgumentHelp("Output directories of `bench run`.", valueName: "dir"))
    var directories: [String]

    @Option(help: ArgumentHelp("Where the merged report goes.", valueName: "dir"))
    var out: String

    func validate() throws {
        guard !directories.isEmpty else { throw ValidationError("give the bench run directories to merge") }
        try checkWritableDirectory(out, option: "--out")
    }

    func run() throws { try reportingErrors { try runBenchMerge(directories, out: out) } }
}

/// The spelling before the subcommands: one of --strategies, --model or --merge chooses the mode. Kept
/// so that scripts and records that use it still run; it does exactly what the subcommand does.
struct BenchLegacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "legacy",
        abstract: "bench --strategies / --model / --merge: the older spelling of bench run / compare / merge.",
        shouldDisplay: false
    )

    @Option(name: .customLong("model"), parsing: .singleValue, help: "As `bench compare --model`.")
    var models: [String] = []
    @Option(help: "As `bench merge DIR DIR ...`, comma-separated.")
    var merge: String?
    @Option var strategies: String?
    @Option var seeds: String = "0"
    @Option var epochs: Int = 20
    @Option(name: .customLong("init")) var initWeights: String?
    @Option var batch: Int = 10
    @Option var lr: Float = 1e-4
    @Option var images: Int = 64
    @Option var observer: Observer = .minmax
    @Option var frames: Int = 3
    @Option var reference: String?
    @Flag var measureOnly = false
    @Option var data: String?
    @Option var split: String?
    @Option var size: InputSize = InputSize(width: 192, height: 128)
    @Option var threads: String = "1,2"
    @Option var rounds: Int = 10
    @Option var runsPerRound: Int = 3
    @Option var out: String

    func validate() throws {
        guard [!models.isEmpty, strategies != nil, merge != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give one of --strategies (bench run), --model NAME=PATH (bench compare) or --merge DIR,DIR (bench merge)")
        }
        if merge == nil, data == nil || split == nil {
            throw ValidationError("--data and --split are needed to train and to score test frames")
        }
    }

    func run() throws {
        try reportingErrors {
            if let merge {
                try runBenchMerge(merge.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }, out: out)
                return
            }
            let scoring = try BenchScoringOptions.parse(["--data", data!, "--split", split!, "--size", size.description, "--threads", threads,
                                                         "--rounds", String(rounds), "--runs-per-round", String(runsPerRound), "--out", out])
            if let strategies {
                var arguments = ["--strategies", strategies, "--seeds", seeds, "--epochs", String(epochs), "--batch", String(batch),
                                 "--lr", String(lr), "--images", String(images), "--observer", observer.rawValue, "--frames", String(frames)]
                if let initWeights { arguments += ["--init", initWeights] }
                if let reference { arguments += ["--reference", reference] }
                if measureOnly { arguments.append("--measure-only") }
                let harness = try BenchHarnessOptions.parse(arguments)
                try runBenchHarness(harness, scoring)
            } else {
                try runBenchCompare(models, scoring)
            }
        }
    }
}

func runBenchHarness(_ h: BenchHarnessOptions, _ s: BenchScoringOptions) throws {
    let (width, height, out) = (s.size.width, s.size.height, s.out)
    let chosen = h.strategies.lowercased() == "all"
        ? Strategy.presets
        : try h.strategies.split(separator: ",").map { try Strategy.preset($0.trimmingCharacters(in: .whitespaces)) }
    let seedList = try h.seeds.split(separator: ",").map { text -> UInt64 in
        guard let seed = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
            throw SonoQuantError("--seeds \(h.seeds)", "expected comma-separated non-negative integers")
        }
        return seed
    }
    let referenceFile = h.reference ?? ["fixtures/pytorch_reference_results.json", "../shared/reference/pytorch_reference_results.json"]
        .first { FileManager.default.fileExists(atPath: $0) }
    let configuration = HarnessConfiguration(
        dataDirectory: s.data, splitCSV: s.split, width: width, height: height, epochs: h.epochs, strategies: chosen, seeds: seedList,
        outDirectory: out, initPath: h.initWeights, batchSize: h.batch, learningRate: h.lr, threads: try s.parsedThreads(),
        calibrationImages: h.images, observer: h.observer, latencyRounds: s.rounds, latencyRunsPerRound: s.runsPerRound,
        overlayFrames: h.frames, referencePath: referenceFile, train: !h.measureOnly, command: benchCommandLine)
    print("bench: report will be at \(out)/REPORT.md (rewritten after every run)")
    if referenceFile == nil {
        // The defaults are relative to the working directory: say so, or a report made elsewhere
        // silently lacks the PyTorch column.
        print("bench: no PyTorch reference here (fixtures/pytorch_reference_results.json, ../shared/reference/...); "
              + "the report will show ours only: run from the repository or pass --reference FILE")
    }
    fflush(nil)  // every output stream: Swift 6 refuses the global `stdout`
    let results = try runHarness(configuration, peakRSS: { path in
        probePeakRSS(model: path, width: width, height: height)
    }, log: { line in
        print("bench: " + line)
        fflush(nil)
    })
    print("bench: \(results.rows.count) runs; wrote \(out)/REPORT.md, results.csv, results.json, *.svg")
}

func runBenchCompare(_ models: [String], _ s: BenchScoringOptions) throws {
    let out = s.out
    let lock = try DirectoryLock(directory: out, purpose: "bench compare")
    defer { withExtendedLifetime(lock) {} }
    let (width, height) = (s.size.width, s.size.height)
    let specs = try models.map { try BenchModelSpec(parsing: $0) }
    let names = specs.map(\.name)
    if Set(names).count != names.count { throw SonoQuantError("--model", "two models have the same name") }
    let configuration = BenchConfiguration(models: specs, dataDirectory: s.data, splitCSV: s.split, width: width, height: height,
                                           threads: try s.parsedThreads(), rounds: s.rounds, runsPerRound: s.runsPerRound, command: benchCommandLine)
    let report = try runBench(configuration, peakRSS: { spec in
        probePeakRSS(model: spec.path, width: width, height: height)
    }, progress: { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) })
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    try writeBenchReport(report, to: out)
    print(benchMarkdown(report))
    print("wrote \(out)/REPORT.md, report.json, plot.svg")
}

func runBenchMerge(_ directories: [String], out: String) throws {
    let lock = try DirectoryLock(directory: out, purpose: "bench merge")
    defer { withExtendedLifetime(lock) {} }
    let merged = try mergeHarnessOutputs(directories: directories, outDirectory: out, command: benchCommandLine)
    print("bench: merged \(merged.rows.count) runs from \(directories.count) outputs; wrote \(out)/REPORT.md, results.csv, results.json, *.svg")
}

/// Runs `sonoquant bench-probe` (this same executable) on one model and reads its peak RSS.
private func probePeakRSS(model: String, width: Int, height: Int) -> Int? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
    process.arguments = ["bench-probe", "--model", model, "--size", "\(width)x\(height)"]
    let pipe = Pipe()
    process.standardOutput = pipe
    do { try process.run() } catch { return nil }
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return Int(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
}

/// `bench`'s helper process: loads one model, runs one synthetic frame on one thread and prints its
/// peak resident memory in bytes (what a board needs to run one frame).
struct BenchProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-probe",
        abstract: "Print the peak memory (bytes) of loading a model and running one frame (used by bench).",
        shouldDisplay: false
    )

    @Option var model: String
    @Option var size: InputSize = InputSize(width: 192, height: 128)

    func run() throws {
        try reportingErrors {
            let network = try loadSegmentationModel(path: model)
            _ = try network.logits(for: syntheticFrame(width: size.width, height: size.height, channels: 1), threads: 1)
            guard let bytes = peakResidentBytes() else { throw SonoQuantError("/proc/self/status", "peak memory (VmHWM) not available") }
            print(bytes)
        }
    }
}
