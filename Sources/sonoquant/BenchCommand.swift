import ArgumentParser
import Bench
import Calibrate
import Foundation
import HC18
import QuantEngine
import Train

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Which strategy to deploy: accuracy, size, latency and memory per fine-tuning strategy and precision.",
        discussion: """
        bench run trains, quantizes and measures strategies; bench plan \
        writes the same grid as cells for a cluster (a Slurm job array) or a \
        shell loop; bench compare measures given model files; bench merge \
        joins run outputs, or a plan's cells, into one report. The older spelling (`bench --strategies ...`, `bench --model \
        ...`, `bench --merge ...`) still works and does the same.
        """,
        subcommands: [BenchRunCommand.self, BenchPlanCommand.self, BenchCompareCommand.self, BenchMergeCommand.self, BenchLegacyCommand.self],
        defaultSubcommand: BenchLegacyCommand.self
    )
}

/// How `bench run`, `bench plan` and `bench compare` time the models. Optional so that `bench run --plan`
/// can tell a given option (refused: the plan fixes it) from a default.
struct BenchLatencyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Comma-separated thread counts to time; training uses the largest. Default: 1,2.", valueName: "n,n,..."))
    var threads: String?

    @Option(help: "Latency rounds, each timing every model. Default: 10.")
    var rounds: Int?

    @Option(help: "Timed calls per model per round. Default: 3.")
    var runsPerRound: Int?

    func threadCounts() throws -> [Int] { try parseThreadCounts(threads ?? "1,2") }
    var roundCount: Int { rounds ?? 10 }
    var runsPerRoundCount: Int { runsPerRound ?? 3 }

    /// The options given on the command line.
    var given: [String] {
        [threads.map { _ in "--threads" }, rounds.map { _ in "--rounds" }, runsPerRound.map { _ in "--runs-per-round" }].compactMap { $0 }
    }

    func validate() throws {
        _ = try threadCounts()
        guard roundCount >= 1, runsPerRoundCount >= 1 else { throw ValidationError("--rounds and --runs-per-round must be at least 1") }
    }
}

/// The grid (strategies x seeds x sizes x splits) and how each of its runs trains and is measured: `bench run`
/// runs it, `bench plan` writes it down for a scheduler. Optional for the same reason as the latency options.
struct BenchGridOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Comma-separated presets, or `all`.", valueName: "S,S,...|all"))
    var strategies: String?

    @Option(help: ArgumentHelp("Comma-separated seeds. Default: 0.", valueName: "n,n,..."))
    var seeds: String?

    @Option(help: ArgumentHelp("HC18 frames, annotations and pixel-size CSV.", valueName: "dir"))
    var data: String?

    @Option(help: ArgumentHelp("Split CSV (filename,split): trains on `train`, scores `test`. bench plan: comma-separated, one grid axis.", valueName: "split.csv"))
    var split: String?

    @Option(help: ArgumentHelp("Network input size WxH (multiples of 32; 16 for unet-baseline). Default: 192x128. bench plan: comma-separated, one grid axis.", valueName: "WxH"))
    var size: String?

    @Option(help: "Epochs per run (a run directory with fewer is resumed to this many). Default: 20.")
    var epochs: Int?

    @Option(name: .customLong("init"), help: ArgumentHelp("Starting weights for new runs (ImageNet encoder or full checkpoint).", valueName: "encoder.safetensors"))
    var initWeights: String?

    @Option(help: "Frames per training batch. Default: 10 (the paper's).")
    var batch: Int?

    @Option(help: "Adam learning rate. Default: 1e-4 (the paper's).")
    var lr: Float?

    @Option(help: "int8 calibration frames from the training split. Default: 64.")
    var images: Int?

    @Option(help: "Activation observer for int8. Default: minmax.")
    var observer: Observer?

    @Option(help: "Test frames drawn with predicted and true ellipses per run. Default: 3.")
    var frames: Int?

    @Option(help: ArgumentHelp("PyTorch reference results shown beside ours (default: fixtures/pytorch_reference_results.json if present).", valueName: "file.json"))
    var reference: String?

    var given: [String] {
        let named: [(String, Bool)] = [
            ("--strategies", strategies != nil), ("--seeds", seeds != nil), ("--data", data != nil), ("--split", split != nil),
            ("--size", size != nil), ("--epochs", epochs != nil), ("--init", initWeights != nil), ("--batch", batch != nil),
            ("--lr", lr != nil), ("--images", images != nil), ("--observer", observer != nil), ("--frames", frames != nil),
            ("--reference", reference != nil),
        ]
        return named.filter(\.1).map(\.0)
    }

    func validate() throws {
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1, got \(batch)") }
        if let lr, !(lr.isFinite && lr > 0) { throw ValidationError("--lr must be a finite positive number, got \(lr)") }
        if let images, images < 1 { throw ValidationError("--images must be at least 1, got \(images)") }
        if let frames, frames < 0 { throw ValidationError("--frames must be at least 0, got \(frames)") }
        _ = try sizes()
    }

    func sizes() throws -> [InputSize] {
        try (size ?? "192x128").split(separator: ",").map { text in
            guard let size = InputSize(text.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--size \(text): expected WxH, e.g. 192x128")
            }
            return size
        }
    }

    func strategyList() throws -> [Strategy] {
        guard let strategies else { throw ValidationError("give --strategies (comma-separated presets, or all)") }
        return strategies.lowercased() == "all"
            ? Strategy.presets
            : try strategies.split(separator: ",").map { try Strategy.preset($0.trimmingCharacters(in: .whitespaces)) }
    }

    func seedList() throws -> [UInt64] {
        try (seeds ?? "0").split(separator: ",").map { text -> UInt64 in
            guard let seed = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--seeds \(seeds ?? ""): expected comma-separated non-negative integers")
            }
            return seed
        }
    }

    func splitList() throws -> [String] {
        guard let split else { throw ValidationError("give --split (a split CSV: filename,split)") }
        return split.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The settings every run shares. `absolutePaths`: a plan's tasks run in whatever directory the scheduler gives.
    func settings(latency: BenchLatencyOptions, absolutePaths: Bool) throws -> StudySettings {
        guard let data else { throw ValidationError("give --data (the HC18 frames directory)") }
        let path = { (p: String) in absolutePaths ? URL(fileURLWithPath: p).standardizedFileURL.path : p }
        let referenceFile = reference ?? ["fixtures/pytorch_reference_results.json", "../shared/reference/pytorch_reference_results.json"]
            .first { FileManager.default.fileExists(atPath: $0) }
        return StudySettings(
            data: path(data), initPath: initWeights.map(path), reference: referenceFile.map(path), epochs: epochs ?? 20,
            batchSize: batch ?? 10, learningRate: lr ?? 1e-4, calibrationImages: images ?? 64, observer: observer ?? .minmax,
            overlayFrames: frames ?? 3, threads: try latency.threadCounts(), latencyRounds: latency.roundCount,
            latencyRunsPerRound: latency.runsPerRoundCount)
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
        Training uses the largest --threads count.

        With --plan DIR (written by `bench plan`) the grid and every setting \
        come from DIR/plan.json: --cell N runs cell N alone into \
        DIR/cells/<name>/ (what one Slurm array task does; run again, it \
        resumes), without --cell every cell runs in turn. Then `bench merge \
        --plan DIR` makes the report.

        Example:
          sonoquant bench run --strategies D-all,full-ft --seeds 0,1 \\
            --data ../shared/hc18/training_set \\
            --split ../shared/hc18/splits/paper_split.csv \\
            --size 192x128 --epochs 20 --out runs/bench \\
            --init ../shared/weights/mobilenet_v2_imagenet.safetensors
          for n in 0 1 2; do sonoquant bench run --plan runs/study --cell $n; done
        """
    )

    @OptionGroup var grid: BenchGridOptions
    @OptionGroup var latency: BenchLatencyOptions

    @Option(help: ArgumentHelp("Output directory: the report and the run directories.", valueName: "dir"))
    var out: String?

    @Flag(help: "Never train; measure the runs that have every epoch and list the others as pending (safe while another process trains them).")
    var measureOnly = false

    @Option(help: ArgumentHelp("A plan directory (`bench plan`): run its cells instead of a grid given here.", valueName: "dir"))
    var plan: String?

    @Option(help: ArgumentHelp("With --plan: run only this cell (0-based, Slurm's array task ID).", valueName: "n"))
    var cell: Int?

    @Option(help: ArgumentHelp("With --plan: the CPUs this run may use (sbatch.sh passes SLURM_CPUS_PER_TASK); training uses this many threads and latency is timed at the plan's counts below it and at it.", valueName: "n"))
    var cpus: Int?

    func validate() throws {
        if let cpus, cpus < 1 { throw ValidationError("--cpus must be at least 1, got \(cpus)") }
        if let cell, cell < 0 { throw ValidationError("--cell must be at least 0, got \(cell)") }
        if plan != nil {
            let refused = grid.given + latency.given + (out != nil ? ["--out"] : []) + (measureOnly ? ["--measure-only"] : [])
            if !refused.isEmpty {
                throw ValidationError("\(refused.joined(separator: ", ")): with --plan the plan fixes the grid, the settings and the output directories")
            }
        } else {
            if cell != nil || cpus != nil { throw ValidationError("--cell and --cpus need --plan DIR") }
            guard out != nil else { throw ValidationError("give --out (the output directory), or --plan DIR") }
            try checkWritableDirectory(out!, option: "--out")
            _ = try grid.strategyList()
            if try grid.sizes().count != 1 || grid.splitList().count != 1 {
                throw ValidationError("several sizes or splits: write them as a plan (`bench plan`) and run its cells")
            }
        }
    }

    func run() throws {
        try reportingErrors {
            if let plan { try runPlanCells(plan: plan) } else { try runBenchHarness() }
        }
    }

    private func runBenchHarness() throws {
        let out = out!, size = try grid.sizes()[0]
        let settings = try grid.settings(latency: latency, absolutePaths: false)
        let configuration = HarnessConfiguration(
            dataDirectory: settings.data, splitCSV: try grid.splitList()[0], width: size.width, height: size.height, epochs: settings.epochs,
            strategies: try grid.strategyList(), seeds: try grid.seedList(), outDirectory: out, initPath: settings.initPath,
            batchSize: settings.batchSize, learningRate: settings.learningRate, threads: settings.threads,
            calibrationImages: settings.calibrationImages, observer: settings.observer, latencyRounds: settings.latencyRounds,
            latencyRunsPerRound: settings.latencyRunsPerRound, overlayFrames: settings.overlayFrames, referencePath: settings.reference,
            train: !measureOnly, command: benchCommandLine)
        print("bench: report will be at \(out)/REPORT.md (rewritten after every run)")
        if settings.reference == nil {
            // The defaults are relative to the working directory: say so, or a report made elsewhere
            // silently lacks the PyTorch column.
            print("bench: no PyTorch reference here (fixtures/pytorch_reference_results.json, ../shared/reference/...); "
                  + "the report will show ours only: run from the repository or pass --reference FILE")
        }
        fflush(nil)  // every output stream: Swift 6 refuses the global `stdout`
        let results = try runHarness(configuration, peakRSS: { path in
            probePeakRSS(model: path, width: size.width, height: size.height)
        }, log: benchLog)
        print("bench: \(results.rows.count) runs; wrote \(out)/REPORT.md, results.csv, results.json, *.svg")
    }

    /// One cell, or every cell in turn (a failed cell does not stop the others; the exit status says).
    private func runPlanCells(plan directory: String) throws {
        let plan = try StudyPlan.read(directory: directory)
        let indices = try cell.map { [try plan.cell($0, planFile: directory + "/" + StudyPlan.fileName).index] } ?? plan.cells.map(\.index)
        var failed: [Int] = []
        for index in indices {
            let size = (plan.cells[index].width, plan.cells[index].height)
            do {
                try runStudyCell(planDirectory: directory, index: index, cpus: cpus, command: benchCommandLine,
                                 peakRSS: { probePeakRSS(model: $0, width: size.0, height: size.1) },
                                 describe: oneLineDescription, log: benchLog)
            } catch {
                if indices.count == 1 { throw error }
                benchLog(oneLineDescription(error))
                failed.append(index)
            }
        }
        if !failed.isEmpty {
            throw SonoQuantError(directory, "cells \(failed.map(String.init).joined(separator: ", ")) failed (their cell.json and the log above say why); the others are done")
        }
        print("bench: \(indices.count) cell\(indices.count == 1 ? "" : "s") done; report: sonoquant bench merge --plan \(directory) --out DIR")
    }
}

private func benchLog(_ line: String) {
    print("bench: " + line)
    fflush(nil)
}

/// An error as the one line `reportingErrors` prints (without `error: `).
func oneLineDescription(_ error: Error) -> String {
    if let error = error as? SonoQuantError { return "\(error.subject): \(error.problem)" }
    return "\(error)"
}

struct BenchPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Write the study grid as independent cells and a Slurm job-array script.",
        discussion: """
        A cell is one strategy x seed x size x split; --size and --split take \
        comma-separated lists here. Writes DIR/plan.json (the cells and the \
        settings they share, with absolute paths), DIR/cells.txt (one line per \
        cell) and DIR/sbatch.sh: one array task per cell, at most --max-running \
        at once, --cpus-per-task each (passed to the cell as its thread count), \
        a log per cell in DIR/logs/, and a failed task requeued up to --requeues \
        times (a requeued cell resumes from its last finished epoch). A plan \
        already in DIR is kept: the same grid again only rewrites sbatch.sh, \
        another grid is refused.

        The three commands of a study on a cluster (DIR on a filesystem every \
        node sees):
          sonoquant bench plan --strategies all --seeds 0,1,2 \\
            --size 192x128,288x192 --data hc18/training_set \\
            --split hc18/splits/paper_split.csv --epochs 20 \\
            --init weights/mobilenet_v2_imagenet.safetensors --out study
          sbatch study/sbatch.sh
          sonoquant bench merge --plan study --out study/report
        Without Slurm, the same cells in a shell loop:
          for n in $(seq 0 $(( $(wc -l < study/cells.txt) - 1 ))); do
            sonoquant bench run --plan study --cell $n; done
        """
    )

    @OptionGroup var grid: BenchGridOptions
    @OptionGroup var latency: BenchLatencyOptions

    @Option(help: ArgumentHelp("The plan directory (cells, logs and sbatch.sh go here).", valueName: "dir"))
    var out: String

    @Option(help: "Slurm: at most this many cells run at once.")
    var maxRunning: Int = 4

    @Option(help: "Slurm: CPUs per cell (its training threads). Default: the largest --threads count.")
    var cpusPerTask: Int?

    @Option(help: ArgumentHelp("Slurm: time limit per cell attempt (a cell cut by it resumes when requeued).", valueName: "HH:MM:SS"))
    var time: String = "04:00:00"

    @Option(help: "Slurm: partition (default: the cluster's default).")
    var partition: String?

    @Option(help: "Slurm: requeue a failed cell at most this many times.")
    var requeues: Int = 2

    @Option(help: ArgumentHelp("The sonoquant executable the tasks run, on a path every node sees. Default: this one.", valueName: "path"))
    var sonoquant: String?

    func validate() throws {
        try checkWritableDirectory(out, option: "--out")
        _ = try grid.strategyList()
        _ = try grid.splitList()
        guard maxRunning >= 1, requeues >= 0 else { throw ValidationError("--max-running must be at least 1 and --requeues at least 0") }
        if let cpusPerTask, cpusPerTask < 1 { throw ValidationError("--cpus-per-task must be at least 1, got \(cpusPerTask)") }
        let parts = time.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else {
            throw ValidationError("--time \(time): expected minutes, MM:SS or HH:MM:SS")
        }
    }

    func run() throws {
        try reportingErrors {
            let settings = try grid.settings(latency: latency, absolutePaths: true)
            let splits = try grid.splitList().map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            let sizes = try grid.sizes()
            let strategies = try grid.strategyList()
            // Every size against every architecture, and every split read, before anything is written: a cell
            // that cannot start should fail here, not hours into a cluster allocation.
            for strategy in strategies {
                for size in sizes { try size.check(for: strategy.architecture.graph(inputChannels: 3)) }
            }
            for split in splits {
                let dataset = try HC18Dataset(directory: settings.data, splitCSV: split)
                guard !dataset.train.isEmpty, !dataset.test.isEmpty else {
                    throw SonoQuantError(split, "needs both train and test frames (has \(dataset.train.count) train, \(dataset.test.count) test)")
                }
            }
            let plan = StudyPlan(settings: settings, strategies: strategies.map(\.name), seeds: try grid.seedList(), sizes: sizes, splits: splits)
            let lock = try DirectoryLock(directory: out, purpose: "bench plan")
            defer { withExtendedLifetime(lock) {} }
            let directory = URL(fileURLWithPath: out).standardizedFileURL.path
            let planFile = directory + "/" + StudyPlan.fileName
            if FileManager.default.fileExists(atPath: planFile) {
                guard try StudyPlan.read(directory: directory) == plan else {
                    throw SonoQuantError(planFile, "holds another plan; it is not replaced (its cells may have run): choose another --out")
                }
                print("bench: \(planFile) already holds this plan; sbatch.sh rewritten")
            } else {
                try writeFileAtomically(path: planFile, bytes: try plan.encoded())
                let lines = plan.cells.map { "\($0.index)\t\($0.name)\tcells/\($0.name)" }
                try writeFileAtomically(path: directory + "/cells.txt", text: lines.joined(separator: "\n") + "\n")
            }
            try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
            let executable = URL(fileURLWithPath: sonoquant ?? CommandLine.arguments[0]).standardizedFileURL.resolvingSymlinksInPath().path
            let slurm = SlurmSettings(executable: executable, maxRunning: maxRunning, cpusPerTask: cpusPerTask ?? settings.threads.max()!,
                                      timeLimit: time, partition: partition, requeues: requeues)
            try writeFileAtomically(path: directory + "/sbatch.sh", text: sbatchScript(plan: plan, planDirectory: directory, slurm: slurm))
            chmod(directory + "/sbatch.sh", 0o755)
            print("bench: \(plan.cells.count) cells in \(planFile) (list: \(directory)/cells.txt)")
            print("bench: on Slurm:      sbatch \(directory)/sbatch.sh")
            print("bench: without it:   sonoquant bench run --plan \(directory) --cell N   (N = 0..\(plan.cells.count - 1))")
            print("bench: then:          sonoquant bench merge --plan \(directory) --out \(directory)/report")
        }
    }
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

        Each model runs at the input size its file records (train and \
        calibrate write it), so models trained at different sizes compare in \
        one table and one plot: the choice of input size for a board. --size \
        runs every model at one size instead (an int8 model only at the size \
        it was calibrated at, unless --any-size).

        Example:
          sonoquant bench compare \\
            --model D-all-float=models/D-all.f16.safetensors \\
            --model D-all-int8=models/D-all.int8.safetensors \\
            --data ../shared/hc18/training_set \\
            --split ../shared/hc18/splits/paper_split.csv \\
            --threads 1,2 --out bench/
        """
    )

    @Option(name: .customLong("model"), parsing: .singleValue,
            help: ArgumentHelp("A model to compare, as NAME=PATH (repeat for each model).", valueName: "name=model.safetensors"))
    var models: [String]

    @OptionGroup var splitData: SplitDataOptions

    @OptionGroup var modelSize: ModelSizeOptions

    @OptionGroup var latency: BenchLatencyOptions

    @Option(help: ArgumentHelp("Output directory.", valueName: "dir"))
    var out: String

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one --model NAME=PATH") }
        try checkWritableDirectory(out, option: "--out")
    }

    func run() throws { try reportingErrors { try runBenchCompare() } }

    private func runBenchCompare() throws {
        let lock = try DirectoryLock(directory: out, purpose: "bench compare")
        defer { withExtendedLifetime(lock) {} }
        let specs = try models.map { try BenchModelSpec(parsing: $0) }
        let names = specs.map(\.name)
        if Set(names).count != names.count { throw SonoQuantError("--model", "two models have the same name") }
        let configuration = BenchConfiguration(models: specs, dataDirectory: splitData.data, splitCSV: splitData.split,
                                               size: modelSize.size, allowingOtherSize: modelSize.anySize,
                                               threads: try latency.threadCounts(), rounds: latency.roundCount,
                                               runsPerRound: latency.runsPerRoundCount, command: benchCommandLine)
        let report = try runBench(configuration, peakRSS: { spec, size in
            probePeakRSS(model: spec.path, width: size.width, height: size.height)
        }, progress: { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) })
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try writeBenchReport(report, to: out)
        print(benchMarkdown(report))
        print("wrote \(out)/REPORT.md, report.json, plot.svg")
    }
}

struct BenchMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the outputs of several bench runs, or the cells of a plan, into one report.",
        discussion: """
        One report from runs made at different times or on several machines, \
        for when a full study does not fit one. The rows are taken as measured \
        (nothing is trained or timed again; a later DIR's row replaces an \
        earlier one's for the same strategy and seed), the test-frame PNGs are \
        copied, and REPORT.md ends with which run came from which DIR and host. \
        The DIRs must share split, size, epochs, batch, lr, observer and \
        calibration frames.

        --plan DIR merges the plan's cells instead: one report per size and \
        split (in OUT itself when the plan has one of each, else in \
        OUT/<WxH>-<split>/), each with a table of its cells: done, failed (with \
        the error), interrupted (killed or cut by a time limit), running or \
        missing. The report is written with the cells that are done; the exit \
        status is 1 while any cell is not done, unless --allow-incomplete.

        Examples:
          sonoquant bench merge runs/monday runs/tuesday --out runs/full
          sonoquant bench merge --plan runs/study --out runs/study/report
        """
    )

    @Argument(help: ArgumentHelp("Output directories of `bench run`.", valueName: "dir"))
    var directories: [String] = []

    @Option(help: ArgumentHelp("A plan directory (`bench plan`): merge its cells.", valueName: "dir"))
    var plan: String?

    @Flag(help: "With --plan: exit 0 even when some cells are not done.")
    var allowIncomplete = false

    @Option(help: ArgumentHelp("Where the merged report goes.", valueName: "dir"))
    var out: String

    func validate() throws {
        guard directories.isEmpty != (plan == nil) else {
            throw ValidationError("give the bench run directories to merge, or --plan DIR (not both)")
        }
        if allowIncomplete && plan == nil { throw ValidationError("--allow-incomplete goes with --plan") }
        try checkWritableDirectory(out, option: "--out")
    }

    func run() throws {
        try reportingErrors {
            let lock = try DirectoryLock(directory: out, purpose: "bench merge")
            defer { withExtendedLifetime(lock) {} }
            if let plan {
                try mergePlan(plan)
            } else {
                let merged = try mergeHarnessOutputs(directories: directories, outDirectory: out, command: benchCommandLine)
                print("bench: merged \(merged.rows.count) runs from \(directories.count) outputs; wrote \(out)/REPORT.md, results.csv, results.json, *.svg")
            }
        }
    }

    private func mergePlan(_ plan: String) throws {
        let outcomes = try mergeStudy(planDirectory: plan, outDirectory: out, command: benchCommandLine)
        for state in [CellOutcome.State.done, .running, .failed, .interrupted, .missing] {
            let cells = outcomes.filter { $0.state == state }
            if !cells.isEmpty { print("bench: \(state.rawValue): \(cells.count) (cells \(cells.map { String($0.cell) }.joined(separator: ", ")))") }
        }
        for outcome in outcomes where outcome.state != .done { print("bench:   cell \(outcome.cell) \(outcome.name): \(outcome.state.rawValue), \(outcome.note)") }
        let notDone = outcomes.filter { $0.state != .done }.count
        print("bench: wrote \(out)/REPORT.md (results.csv, results.json, *.svg) with the \(outcomes.count - notDone) done cell(s)")
        fflush(nil)  // the list above before the error line
        if notDone > 0 && !allowIncomplete {
            throw SonoQuantError(plan, "\(notDone) of \(outcomes.count) cells are not done (listed above; their rows are missing from the report)")
        }
    }
}

/// The spelling before the subcommands: one of --strategies, --model or --merge chooses the mode. Kept
/// so that scripts and records that use it still run; it passes its arguments to the subcommand.
struct BenchLegacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "legacy",
        abstract: "bench --strategies / --model / --merge: the older spelling of bench run / compare / merge.",
        shouldDisplay: false
    )

    @Argument(parsing: .allUnrecognized) var arguments: [String] = []

    func run() throws {
        let has = { (name: String) in arguments.contains { $0 == name || $0.hasPrefix(name + "=") } }
        let modes = [has("--strategies"), has("--model"), has("--merge")].filter { $0 }.count
        guard modes == 1 else {
            throw ValidationError("give one of --strategies (bench run), --model NAME=PATH (bench compare) or --merge DIR,DIR (bench merge)")
        }
        if has("--merge") {
            // --merge A,B -> merge A B
            var rest: [String] = [], directories: [String] = []
            var i = 0
            while i < arguments.count {
                let argument = arguments[i]
                if argument == "--merge", i + 1 < arguments.count {
                    directories += arguments[i + 1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    i += 2
                    continue
                } else if argument.hasPrefix("--merge=") {
                    directories += argument.dropFirst("--merge=".count).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                } else {
                    rest.append(argument)
                }
                i += 1
            }
            let command = try BenchMergeCommand.parse(directories + rest)
            try command.run()
        } else if has("--strategies") {
            let command = try BenchRunCommand.parse(arguments)
            try command.run()
        } else {
            let command = try BenchCompareCommand.parse(arguments)
            try command.run()
        }
    }
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
