import ArgumentParser
import Bench
import Foundation
import QuantEngine

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Compare model files: accuracy, size, latency and memory per strategy and precision.",
        discussion: """
        For every --model NAME=PATH (a float checkpoint or an int8 model file) this measures, on the test
        frames of --split:
          - Dice, IoU, pixel accuracy and HC mean absolute error (the `evaluate` pipeline);
          - trainable parameters of the model's fine-tuning strategy (from the file's metadata, or from
            NAME when it starts with a preset name such as D-all or full-ft), and the file size;
          - median latency of one frame per thread count, timed in rounds that visit every model in turn
            (so other load on the machine falls on all of them alike);
          - peak resident memory of a separate process that loads the model and runs one frame.
        and writes REPORT.md (a markdown table), report.json and plot.svg (Dice against latency and
        against file size) into --out, each atomically.

        Example (the reference D-all checkpoint and its int8 model):
          sonoquant bench --model "D-all float=fixtures/pytorch_D-all_192x128.safetensors" \\
              --model "D-all int8=dall.int8.safetensors" --data ../shared/hc18/training_set \\
              --split ../shared/hc18/splits/paper_split.csv --size 192x128 --threads 1,2 --out bench/
        """
    )

    @Option(name: .customLong("model"), parsing: .singleValue,
            help: ArgumentHelp("A model to compare, as NAME=PATH (repeat for each model).", valueName: "name=model.safetensors"))
    var models: [String] = []

    @Option(help: ArgumentHelp("HC18 frames, annotations and pixel-size CSV.", valueName: "directory"))
    var data: String

    @Option(help: ArgumentHelp("Split CSV (filename,split); its test frames are scored.", valueName: "split.csv"))
    var split: String

    @Option(help: ArgumentHelp("Network input size WxH (multiples of 32).", valueName: "WxH"))
    var size: String = "192x128"

    @Option(help: ArgumentHelp("Comma-separated thread counts to time.", valueName: "n,n,..."))
    var threads: String = "1,2"

    @Option(help: "Latency rounds (each times every model).")
    var rounds: Int = 10

    @Option(help: "Timed calls per model per round.")
    var runsPerRound: Int = 3

    @Option(help: ArgumentHelp("Output directory for REPORT.md, report.json and plot.svg.", valueName: "directory"))
    var out: String

    func parsedSize() throws -> (width: Int, height: Int) { try parseFrameSize(size) }

    func parsedThreads() throws -> [Int] { try parseThreadCounts(threads) }

    func validate() throws {
        _ = try parsedSize()
        _ = try parsedThreads()
        guard !models.isEmpty else { throw ValidationError("give at least one --model NAME=PATH") }
        guard rounds >= 1, runsPerRound >= 1 else { throw ValidationError("--rounds and --runs-per-round must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let (width, height) = try parsedSize()
            let specs = try models.map { try BenchModelSpec(parsing: $0) }
            let names = specs.map(\.name)
            if Set(names).count != names.count { throw SonoQuantError("--model", "two models have the same name") }
            let command = (["sonoquant"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") ? "\"\($0)\"" : $0 }.joined(separator: " ")
            let configuration = BenchConfiguration(models: specs, dataDirectory: data, splitCSV: split, width: width, height: height,
                                                   threads: try parsedThreads(), rounds: rounds, runsPerRound: runsPerRound, command: command)
            let report = try runBench(configuration, peakRSS: { spec in
                probePeakRSS(model: spec.path, width: width, height: height)
            }, progress: { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) })
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try writeBenchReport(report, to: out)
            print(benchMarkdown(report))
            print("wrote \(out)/REPORT.md, report.json, plot.svg")
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
    @Option var size: String = "192x128"

    func run() throws {
        try reportingErrors {
            let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2 else { throw SonoQuantError("--size \(size)", "expected WxH") }
            let network = try loadSegmentationModel(path: model)
            _ = try network.logits(for: syntheticFrame(width: parts[0], height: parts[1], channels: 1), threads: 1)
            guard let bytes = peakResidentBytes() else { throw SonoQuantError("/proc/self/status", "peak memory (VmHWM) not available") }
            print(bytes)
        }
    }
}
