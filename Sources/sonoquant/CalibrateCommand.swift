import ArgumentParser
import Calibrate
import Foundation
import HC18
import QuantEngine

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Quantize a float checkpoint to an int8 model file (post-training, static, per-channel).",
        discussion: """
        BatchNorm is folded into each convolution; weights become int8 symmetric per output channel; \
        every activation becomes int8 asymmetric per tensor with a range chosen by the observer from the \
        float model's activations on N frames of the TRAIN split (never the test split). Biases are int32 \
        with scale s_in * s_w; requantization is fixed point (TFLite/gemmlowp); ReLU/ReLU6 are clamps. \
        The model takes the uint8 gray frame directly (real = byte / 255) and returns float logits. \
        See docs/QUANTIZATION.md.

        Observers:
          minmax      [min, max] of everything seen
          percentile  the (100-p)th and p-th percentiles (--percentile,
                      default 99.99)
          entropy     TensorRT-style: the clip range minimising
                      KL(observed || quantized) over the histogram
          mse         the clip range minimising the squared quantization
                      error over the histogram

        The calibration frames are N frames spread evenly over the train split (in split-file order). \
        On the paper split, minmax kept D-all's Dice within 0.01 points of float (docs/QUANTIZATION.md). \
        The result runs with `sonoquant forward` / `evaluate` like a float model.

        Example:
          sonoquant calibrate \\
            --model fixtures/pytorch_D-all_192x128.safetensors --size 192x128 \\
            --data ../shared/hc18/training_set \\
            --split fixtures/hc18/paper_split.csv \\
            --images 64 --observer minmax --out D-all.int8.safetensors
        """)

    @Option(help: ArgumentHelp("Float checkpoint, F32 or F16: unet-mobilenet_v2 (segmentation_models_pytorch names) or unet-baseline (scripts/peers/unet_baseline.py names); the architecture is detected.", valueName: "ckpt.safetensors"))
    var model: String

    @OptionGroup var splitData: SplitDataOptions

    @Option(help: ArgumentHelp("Network input size WxH to calibrate at, recorded in the int8 model (multiples of 32; 16 for unet-baseline). Default: the size the checkpoint records (train writes it); required for a PyTorch checkpoint.", valueName: "WxH"))
    var size: InputSize?

    @Option(help: "Number of calibration frames from the train split.")
    var images: Int = 64

    @Option(help: "How activation ranges are chosen (see Observers above).")
    var observer: Observer = .minmax

    @Option(help: "Percentile for --observer percentile (the range is [100-p, p]).")
    var percentile: Double = 99.99

    @Option(help: "Fine-tuning strategy recorded in the model's metadata (default: the checkpoint's own `sonoquant.strategy`, else unknown).")
    var strategy: String?

    @OptionGroup var threading: ThreadsOption

    @Option(help: ArgumentHelp("Where to write the int8 model (atomically).", valueName: "model.int8.safetensors"))
    var out: String

    func validate() throws {
        guard images >= 1 else { throw ValidationError("--images must be at least 1") }
        try refuseOverwritingInput(output: out, option: "--out", inputs: [(model, "--model")])
        try checkWritableFile(out, option: "--out")
        guard percentile > 50, percentile <= 100 else { throw ValidationError("--percentile must be in (50, 100]") }
    }

    func run() throws {
        try reportingErrors {
            let checkpoint = try SafeTensorsFile(path: model)
            let graph = try ModelGraph.of(checkpoint, inputChannels: 3)
            let weights = try ModelWeights(file: checkpoint, graph: graph)
            let float = FloatUNet(weights: weights, inputSize: checkpoint.modelMetadata.size)
            let size = try float.inputSize(requested: size, subject: model)
            let (width, height) = (size.width, size.height)
            let dataset = try splitData.load()
            guard !dataset.train.isEmpty else { throw SonoQuantError(splitData.split, "the split has no train frames to calibrate on") }
            let count = min(images, dataset.train.count)
            let chosen = (0..<count).map { dataset.train[$0 * dataset.train.count / count] }
            let start = Date()
            var frames: [[Float]] = []
            for (i, sample) in chosen.enumerated() {
                frames.append(try loadSample(sample, width: width, height: height).image)
                progress("loading frames \(i + 1)/\(count)")
            }
            let statistics = try collectStatistics(model: float, frames: frames, width: width, height: height, threads: threading.count) { pass, frame in
                progress("pass \(pass)/2 (\(pass == 1 ? "min/max" : "histograms")): frame \(frame)/\(count)")
            }
            let settings = CalibrationSettings(observer: observer, percentile: percentile, width: width, height: height)
            let calibration = CalibrationRecord(images: count, split: splitData.split, data: splitData.data, histogramBins: settings.bins).json
            var provenance = ModelMetadata()
            provenance.sourceCheckpoint = model
            provenance.strategy = strategy ?? checkpoint.modelMetadata.strategy ?? "unknown"
            provenance.calibration = calibration
            provenance.hcScale = checkpoint.modelMetadata.hcScale
            let int8 = quantize(weights: weights, statistics: statistics, settings: settings, provenance: provenance)
            try int8.save(to: out)
            if isatty(2) != 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            let bytes = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
            print("wrote \(out): int8 model, observer \(observer.rawValue), \(count) calibration frames at \(width)x\(height), \(bytes) bytes, \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
    }

    /// One self-overwriting status line on a terminal; nothing when stderr is a file or pipe (logs stay short).
    private func progress(_ text: String) {
        guard isatty(2) != 0 else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[Kcalibrate: \(text)".utf8))
    }
}
