import ArgumentParser
import Calibrate
import Deploy
import Foundation
import HC18
import QuantEngine
import Train

// `--observer NAME`: ArgumentParser lists the values in the help and refuses others.
extension Observer: ExpressibleByArgument {}
extension LearningRateSchedule: ExpressibleByArgument {}

// `--strategy NAME`: a preset by name (any case); ArgumentParser lists the presets in the help and refuses others.
extension Strategy: ExpressibleByArgument {
    public init?(argument: String) {
        guard let preset = try? Strategy.preset(argument) else { return nil }
        self = preset
    }
    public var defaultValueDescription: String { name }
    public static var allValueStrings: [String] { presetNames }
}

// `--size WxH` is the engine's `InputSize`.
extension InputSize: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension InputSize {
    /// Checks the size against the model's architecture before any frame is read: each halves the frame a
    /// fixed number of times (`graph.sizeMultiple`: 32 for the MobileNetV2 U-Net, 16 for unet-baseline).
    func check(for graph: ModelGraph) throws {
        try graph.checkFrameSize(width: width, height: height, subject: "--size \(self)")
    }
}

/// `--size` and `--any-size` for the commands that run a model file and report its accuracy or HC.
struct ModelSizeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Network input size WxH (multiples of 32; 16 for unet-baseline). Default: the size the model file records (train and calibrate write it); required for a PyTorch checkpoint.", valueName: "WxH"))
    var size: InputSize?

    @Flag(name: .customLong("any-size"), help: "Run an int8 model at a --size other than the one it was calibrated at (its activation ranges, and the HC, shift with the size).")
    var anySize = false

    /// The size to run `model` at (see `SegmentationModel.inputSize(requested:)`).
    func resolve(for model: SegmentationModel, file: String) throws -> InputSize {
        try model.inputSize(requested: size, allowingOtherSize: anySize, subject: file)
    }
}

/// `--data DIR --split CSV`: the HC18 frames and which are `train` and which `test`, for the commands that
/// read a split (calibrate, evaluate, hc-scale, bench compare). Each command's overview says which side it reads.
struct SplitDataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("HC18 directory: frames, *_Annotation.png and training_set_pixel_size_and_HC.csv.", valueName: "dir"))
    var data: String

    @Option(help: ArgumentHelp("Split CSV (filename,split; `sonoquant split` writes one): calibrate and hc-scale read its `train` frames, evaluate and bench score its `test` frames.", valueName: "split.csv"))
    var split: String

    /// The frames of the split (an error names the file that is wrong).
    func load() throws -> HC18Dataset { try HC18Dataset(directory: data, splitCSV: split) }
}

/// `--threads N`, the threads a command runs on (default: every core), checked once for every command.
struct ThreadsOption: ParsableArguments {
    @Option(name: .customLong("threads"), help: ArgumentHelp("Threads to run on (default: every core). Results do not depend on it, training included.", valueName: "n"))
    var requested: Int?

    var count: Int { requested ?? availableCores }

    func validate() throws {
        if let requested, requested < 1 { throw ValidationError("--threads must be at least 1, got \(requested)") }
    }
}

/// Parses `--threads` text such as 1,2 into positive thread counts.
func parseThreadCounts(_ text: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
        throw ValidationError("--threads must be a comma-separated list of positive counts, got \(text)")
    }
    return values.map { $0! }
}

// `--pixel-size-priority file|option`.
extension PixelSizePriority: ExpressibleByArgument {}
