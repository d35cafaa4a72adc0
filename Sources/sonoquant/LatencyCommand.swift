import ArgumentParser
import Bench
import Foundation
import QuantEngine

struct LatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Time one frame through a model: median, 10th and 90th percentile over many runs.",
        discussion: """
        Loads the model (a float checkpoint, or an int8 model file), runs a synthetic frame of the given \
        size a few times to warm up (the first call plans the activation arena), then times `--runs` \
        calls per thread count. Prints one line per thread count: wall-clock median, 10th and 90th \
        percentile and fastest run, and the process CPU time per run (all threads; it grows much less \
        than wall time when other processes share the cores). `--json` also writes every sample.

        Timings on a shared machine are noisy: compare engines in the same run, interleaved, as \
        scripts/bench-float.sh does, and quote medians.

        Example:
          sonoquant latency \\
            --model fixtures/pytorch_D-all_192x128.safetensors \\
            --size 192x128 --threads 1,2 --runs 50 --profile
        """
    )

    @Option(help: ArgumentHelp("Model file (float checkpoint or int8 model).", valueName: "model.safetensors"))
    var model: String

    @Option(help: ArgumentHelp("Frame size WxH (multiples of 32; 16 for unet-baseline). Default: the size the model file records; any size may be timed.", valueName: "WxH"))
    var size: InputSize?

    @Option(help: ArgumentHelp("Comma-separated thread counts to time.", valueName: "n,n,..."))
    var threads: String = "1,2"

    @Option(help: "Timed runs per thread count.")
    var runs: Int = 50

    @Option(help: "Untimed runs before timing.")
    var warmup: Int = 5

    @Option(help: "Input channels: 1 (gray, how frames are segmented) or 3 (RGB, as PyTorch and ONNX peers take it).")
    var channels: Int = 1

    @Flag(help: "Also print the time of every graph op (fastest of 5 runs), slowest first.")
    var profile = false

    @Option(help: ArgumentHelp("Also write the statistics and every sample as JSON here.", valueName: "file.json"))
    var json: String?

    func parsedThreads() throws -> [Int] { try parseThreadCounts(threads) }

    func validate() throws {
        _ = try parsedThreads()
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup cannot be negative") }
        guard channels == 1 || channels == 3 else { throw ValidationError("--channels must be 1 or 3") }
        if let json { try checkWritableFile(json, option: "--json") }
    }

    func run() throws {
        try reportingErrors {
            let network = try loadSegmentationModel(path: model)
            let size = try network.inputSize(requested: size, allowingOtherSize: true, subject: model)
            let (width, height) = (size.width, size.height)
            var results: [LatencyStats] = []
            for count in try parsedThreads() {
                let stats = try measureLatency(model: network, width: width, height: height, channels: channels,
                                               threads: count, warmup: warmup, runs: runs)
                results.append(stats)
                print(String(format: "%@ %dx%d C=%d kernels=%@ threads=%d: median %.2f ms (p10 %.2f, p90 %.2f, min %.2f) over %d runs; cpu %.2f ms/run",
                             network.precision.rawValue, width, height, channels, network.kernelPath.rawValue, count, stats.medianMS, stats.p10MS, stats.p90MS, stats.minMS, stats.runs,
                             stats.cpuMSPerRun))
            }
            if profile {
                for count in try parsedThreads() {
                    let frame = syntheticFrame(width: width, height: height, channels: channels)
                    let ops = try network.profile(frame, threads: count, repeats: 5)
                    let total = ops.reduce(0) { $0 + $1.milliseconds }
                    print(String(format: "profile, threads=%d: sum of ops %.2f ms", count, total))
                    for op in ops.sorted(by: { $0.milliseconds > $1.milliseconds }) {
                        print(String(format: "  %7.3f ms %5.1f%%  %@", op.milliseconds, 100 * op.milliseconds / total, op.op))
                    }
                }
            }
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try writeFileAtomically(path: json, bytes: Array(try encoder.encode(results)))
            }
        }
    }
}
