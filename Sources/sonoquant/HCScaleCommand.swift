import ArgumentParser
import Foundation
import HC18
import QuantEngine

struct HCScaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hc-scale",
        abstract: "Fit a model's head-circumference factor on the training split; write a copy of the model that carries it.",
        discussion: """
        A model can measure heads consistently large or small (full-ft: +1.3 mm \
        on its own training frames; docs/DATA.md, "HC bias"). This measures HC on \
        the `train` frames of --split, takes the median of reference / measured HC \
        over the frames with a head, and writes --out: the same tensors, with \
        `sonoquant.hc_scale` set to that factor (and how it was fitted). segment, \
        evaluate and bench multiply HC in mm by it; calibrate carries it from a \
        float checkpoint into the int8 model. The test frames are never used, so \
        the test-split HC error stays an honest estimate. A model that already \
        has a factor is refitted on top of it.

        Example:
          sonoquant hc-scale --model models/full-ft.int8.safetensors \\
            --data ../shared/hc18/training_set \\
            --split ../shared/hc18/splits/paper_split.csv \\
            --out full-ft.hc.int8.safetensors
        """
    )

    @Option(help: ArgumentHelp("Model file: float checkpoint or int8 model.", valueName: "model.safetensors"))
    var model: String

    @OptionGroup var splitData: SplitDataOptions

    @OptionGroup var sizeOptions: ModelSizeOptions

    @OptionGroup var threading: ThreadsOption

    @Option(help: ArgumentHelp("The model file to write (not --model itself).", valueName: "model.safetensors"))
    var out: String

    func validate() throws {
        try refuseOverwritingInput(output: out, option: "--out", inputs: [(model, "--model")])
        try checkWritableFile(out, option: "--out")
    }

    func run() throws {
        try reportingErrors {
            let file = try SafeTensorsFile(path: model)
            let network = try loadSegmentationModel(path: model)
            let size = try sizeOptions.resolve(for: network, file: model)
            let dataset = try splitData.load()
            guard dataset.train.count >= 20 else {
                throw SonoQuantError(splitData.split, "has \(dataset.train.count) training frames; fitting an HC factor needs at least 20")
            }
            let report = try evaluate(model: network, dataset: dataset, samples: dataset.train, width: size.width, height: size.height,
                                      threads: threading.count)
            let measured = report.rows.compactMap { row -> (reference: Double, hc: Double)? in
                guard row.headFound, let hc = row.hcMM, hc > 0 else { return nil }
                return (row.referenceHCmm, hc)
            }
            guard measured.count >= 20 else {
                throw SonoQuantError(model, "found a head in only \(measured.count) of \(report.rows.count) training frames: too few to fit an HC factor")
            }
            let ratios = measured.map { $0.reference / $0.hc }.sorted()
            let scale = quantile(ratios, 0.5) * network.hcScale
            guard (0.8...1.25).contains(scale) else {
                throw SonoQuantError(model, String(format: "the fitted HC factor %.4f is outside [0.8, 1.25]: the model is not measuring these heads", scale))
            }
            let signedBefore = measured.map { $0.hc - $0.reference }.reduce(0, +) / Double(measured.count)
            let signedAfter = measured.map { $0.hc * scale / network.hcScale - $0.reference }.reduce(0, +) / Double(measured.count)
            var metadata = file.modelMetadata
            metadata.hcScale = Double(ModelMetadata.storedHCScale(scale))!
            let fit: [String: Any] = ["frames": measured.count, "split": splitData.split, "selection": "train frames with a head",
                                      "statistic": "median of reference / measured HC"]
            metadata.hcScaleFit = String(decoding: try JSONSerialization.data(withJSONObject: fit, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
            var writer = SafeTensorsWriter(metadata: metadata, other: file.otherMetadata)
            writer.addTensors(of: file)
            try writer.write(to: out)
            // The written file is read back as a board would, before saying it is done.
            let written = try loadSegmentationModel(path: out)
            guard written.hcScale == metadata.hcScale else {
                throw SonoQuantError(out, "reads back HC scale \(written.hcScale), wrote \(scale)")
            }
            print(String(format: "HC scale %.6f from %d training frames; mean signed HC error %+.2f mm before, %+.2f mm after -> %@",
                         scale, measured.count, signedBefore, signedAfter, out))
        }
    }
}
