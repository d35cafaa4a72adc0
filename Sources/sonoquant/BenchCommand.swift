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
        Three modes.

        1. Harness (--strategies): train, quantize and measure each strategy \
        and seed. For strategy S and seed N it trains into OUT/S-seedN/ (a \
        normal `sonoquant train --out` directory: a partial run is resumed, a \
        finished one is not trained again), evaluates the float model on the \
        test split, calibrates it to int8 (--observer, --images frames of the \
        training split), evaluates the int8 model, and measures file sizes, \
        latency (float and int8 interleaved at each --threads count: median \
        and p95 after warm-up, plus CPU time) and peak memory. It writes \
        OUT/results.csv, results.json and REPORT.md (the paper's table shape; \
        per-frame mean ± std with a bootstrap 95% interval; mean ± std over \
        seeds; the PyTorch reference beside ours), plots (dice_vs_params.svg, \
        dice_vs_int8_latency.svg with the Pareto front, epoch_curves.svg) and \
        test frames with predicted and true ellipses (PNG). The files are \
        rewritten after every run and each run's measurements are kept in \
        OUT/S-seedN/bench.json: an interrupted harness keeps what is done, and \
        the same command again does only what is missing.
        --strategies all = every preset:
          \(Strategy.presetNames.joined(separator: " "))
        --measure-only trains nothing: it measures the finished runs and lists \
        the others as pending (safe while another process trains them). \
        Training uses the largest --threads count; --batch and --lr default to \
        the paper's 10 and 1e-4.

          sonoquant bench --strategies D-all,full-ft --seeds 0,1 \\
            --data ../shared/hc18/training_set \\
            --split ../shared/hc18/splits/paper_split.csv \\
            --size 192x128 --epochs 20 --out runs/bench \\
            --init ../shared/weights/mobilenet_v2_imagenet.safetensors

        2. Compare model files (--model NAME=PATH, repeatable): float \
        checkpoints or int8 model files, scored on the test frames of --split: \
        Dice, IoU, pixel accuracy, HC error, trainable parameters (from the \
        file's metadata or NAME's preset prefix), file size, latency \
        interleaved across the models, peak memory. Writes OUT/REPORT.md, \
        report.json and plot.svg.

          sonoquant bench \\
            --model D-all-float=fixtures/pytorch_D-all_192x128.safetensors \\
            --model D-all-int8=D-all.int8.safetensors \\
            --data ../shared/hc18/training_set \\
            --split ../shared/hc18/splits/paper_split.csv \\
            --size 192x128 --threads 1,2 --out bench/

        3. Merge harness outputs (--merge DIR,DIR,...): one report from \
        harness runs made at different times or on several machines, for \
        when a full run does not fit one. The rows are taken as measured \
        (nothing is trained or timed again; a later DIR's row replaces an \
        earlier one's for the same strategy and seed), the test-frame PNGs \
        are copied, and REPORT.md ends with which run came from which DIR and \
        host. The DIRs must share split, size, epochs, batch, lr, observer and \
        calibration frames. Needs only --out.

          sonoquant bench --merge runs/monday,runs/tuesday --out runs/full
        """
    )

    @Option(name: .customLong("model"), parsing: .singleValue,
            help: ArgumentHelp("Compare mode: a model to compare, as NAME=PATH (repeat for each model).", valueName: "name=model.safetensors"))
    var models: [String] = []

    @Option(help: ArgumentHelp("Merge mode: harness output directories to merge into one report in --out.", valueName: "dir,dir,..."))
    var merge: String?

    @Option(help: ArgumentHelp("Harness mode: comma-separated presets, or `all`.", valueName: "S,S,...|all"))
    var strategies: String?

    @Option(help: ArgumentHelp("Harness mode: comma-separated seeds.", valueName: "n,n,..."))
    var seeds: String = "0"

    @Option(help: "Harness mode: epochs per run (a run directory with fewer is resumed to this many).")
    var epochs: Int = 20

    @Option(name: .customLong("init"), help: ArgumentHelp("Harness mode: starting weights for new runs (ImageNet encoder or full checkpoint).", valueName: "encoder.safetensors"))
    var initWeights: String?

    @Option(help: "Harness mode: frames per training batch.")
    var batch: Int = 10

    @Option(help: "Harness mode: Adam learning rate.")
    var lr: Float = 1e-4

    @Option(help: "Harness mode: int8 calibration frames from the training split.")
    var images: Int = 64

    @Option(help: "Harness mode: activation observer for int8.")
    var observer: Observer = .minmax

    @Option(help: "Harness mode: test frames drawn with predicted and true ellipses per run.")
    var frames: Int = 3

    @Option(help: ArgumentHelp("Harness mode: PyTorch reference results shown beside ours (default: fixtures/pytorch_reference_results.json if present).", valueName: "file.json"))
    var reference: String?

    @Flag(help: "Harness mode: never train; measure the runs that have every epoch and list the others as pending (safe while another process trains them).")
    var measureOnly = false

    @Option(help: ArgumentHelp("HC18 frames, annotations and pixel-size CSV (harness and compare modes).", valueName: "dir"))
    var data: String?

    @Option(help: ArgumentHelp("Split CSV (filename,split): harness trains on `train`; harness and compare modes score `test`.", valueName: "split.csv"))
    var split: String?

    @Option(help: ArgumentHelp("Network input size WxH (multiples of 32; 16 for unet-baseline).", valueName: "WxH"))
    var size: InputSize = InputSize(width: 192, height: 128)

    @Option(help: ArgumentHelp("Comma-separated thread counts to time (harness: the largest also trains).", valueName: "n,n,..."))
    var threads: String = "1,2"

    @Option(help: "Latency rounds (each times every model).")
    var rounds: Int = 10

    @Option(help: "Timed calls per model per round.")
    var runsPerRound: Int = 3

    @Option(help: ArgumentHelp("Output directory (harness: also the run directories).", valueName: "dir"))
    var out: String

    func parsedThreads() throws -> [Int] { try parseThreadCounts(threads) }

    func validate() throws {
        _ = try parsedThreads()
        try checkWritableDirectory(out, option: "--out")
        guard [!models.isEmpty, strategies != nil, merge != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give one of --strategies (train and measure strategies), --model NAME=PATH (compare model files) "
                                  + "or --merge DIR,DIR (merge harness outputs)")
        }
        if merge == nil, data == nil || split == nil {
            throw ValidationError("--data and --split are needed to train and to score test frames")
        }
        guard rounds >= 1, runsPerRound >= 1 else { throw ValidationError("--rounds and --runs-per-round must be at least 1") }
        if strategies != nil {
            guard epochs >= 1, batch >= 1, lr > 0, images >= 1, frames >= 0 else {
                throw ValidationError("--epochs, --batch, --lr and --images must be positive, --frames at least 0")
            }
        }
    }

    var commandLine: String {
        (["sonoquant"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") || $0.contains("|") ? "\"\($0)\"" : $0 }.joined(separator: " ")
    }

    func run() throws {
        try reportingErrors {
            if let strategies {
                try runHarnessMode(strategies, data: data!, split: split!)
            } else if let merge {
                let directories = merge.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
                let lock = try DirectoryLock(directory: out, purpose: "bench --merge")
                defer { withExtendedLifetime(lock) {} }
                let merged = try mergeHarnessOutputs(directories: directories, outDirectory: out, command: commandLine)
                print("bench: merged \(merged.rows.count) runs from \(directories.count) outputs; wrote \(out)/REPORT.md, results.csv, results.json, *.svg")
            } else {
                try runCompareMode(data: data!, split: split!)
            }
        }
    }

    func runHarnessMode(_ list: String, data: String, split: String) throws {
        let (width, height) = (size.width, size.height)
        let chosen = list.lowercased() == "all"
            ? Strategy.presets
            : try list.split(separator: ",").map { try Strategy.preset($0.trimmingCharacters(in: .whitespaces)) }
        let seedList = try seeds.split(separator: ",").map { text -> UInt64 in
            guard let seed = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                throw SonoQuantError("--seeds \(seeds)", "expected comma-separated non-negative integers")
            }
            return seed
        }
        let referenceFile = reference ?? ["fixtures/pytorch_reference_results.json", "../shared/reference/pytorch_reference_results.json"]
            .first { FileManager.default.fileExists(atPath: $0) }
        let configuration = HarnessConfiguration(
            dataDirectory: data, splitCSV: split, width: width, height: height, epochs: epochs, strategies: chosen, seeds: seedList,
            outDirectory: out, initPath: initWeights, batchSize: batch, learningRate: lr, threads: try parsedThreads(),
            calibrationImages: images, observer: observer, latencyRounds: rounds, latencyRunsPerRound: runsPerRound,
            overlayFrames: frames, referencePath: referenceFile, train: !measureOnly, command: commandLine)
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
            fflush(nil)  // every output stream: Swift 6 refuses the global `stdout`
        })
        print("bench: \(results.rows.count) runs; wrote \(out)/REPORT.md, results.csv, results.json, *.svg")
    }

    func runCompareMode(data: String, split: String) throws {
        let lock = try DirectoryLock(directory: out, purpose: "bench --model")
        defer { withExtendedLifetime(lock) {} }
        let (width, height) = (size.width, size.height)
        let specs = try models.map { try BenchModelSpec(parsing: $0) }
        let names = specs.map(\.name)
        if Set(names).count != names.count { throw SonoQuantError("--model", "two models have the same name") }
        let configuration = BenchConfiguration(models: specs, dataDirectory: data, splitCSV: split, width: width, height: height,
                                               threads: try parsedThreads(), rounds: rounds, runsPerRound: runsPerRound, command: commandLine)
        let report = try runBench(configuration, peakRSS: { spec in
            probePeakRSS(model: spec.path, width: width, height: height)
        }, progress: { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) })
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try writeBenchReport(report, to: out)
        print(benchMarkdown(report))
        print("wrote \(out)/REPORT.md, report.json, plot.svg")
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
