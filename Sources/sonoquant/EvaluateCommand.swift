import ArgumentParser
import Foundation
import HC18
import QuantEngine

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score a model on the test frames of a split: Dice, IoU, pixel accuracy and HC error.",
        discussion: """
        Each test frame is squashed to WxH (PIL-style bilinear, antialiased when shrinking), run through \
        the model as one gray channel, and the prediction (logit > 0) is compared at WxH with the \
        annotation's filled head mask squashed the same way. Dice, IoU and pixel accuracy are per image, \
        then averaged. HC is measured on the largest predicted region (ellipse fitted in original-frame \
        coordinates) and compared with the CSV. A frame with no head found is listed, counted, and \
        its HC error is its whole reference HC (as if the head measured 0 mm). See docs/DATA.md.

        Prints the means and the five worst frames; --out writes every frame's row \
        as JSON.

        Example (the PyTorch-trained D-all model on the paper's 200 test frames):
          sonoquant evaluate \\
            --model fixtures/pytorch_D-all_192x128.safetensors --size 192x128 \\
            --data ../shared/hc18/training_set \\
            --split fixtures/hc18/paper_split.csv --out report.json
        """
    )

    @Option(help: ArgumentHelp("Model file: a float checkpoint (segmentation_models_pytorch names) or an int8 model.",
                               valueName: "model.safetensors"))
    var model: String

    @OptionGroup var splitData: SplitDataOptions

    @OptionGroup var sizeOptions: ModelSizeOptions

    @OptionGroup var threading: ThreadsOption

    @Option(help: ArgumentHelp("Write the full report (every frame) as JSON, atomically.", valueName: "report.json"))
    var out: String?

    func validate() throws {
        if let out { try checkWritableFile(out, option: "--out") }
    }

    func run() throws {
        try reportingErrors {
            let network = try loadSegmentationModel(path: model)
            let size = try sizeOptions.resolve(for: network, file: model)
            let dataset = try splitData.load()
            guard !dataset.test.isEmpty else { throw SonoQuantError(splitData.split, "no frame is marked `test`") }
            let start = Date()
            var report = try evaluate(model: network, dataset: dataset, samples: dataset.test,
                                      width: size.width, height: size.height, threads: threading.count)
            report.model = model
            let seconds = Date().timeIntervalSince(start)
            print("model \(model) (\(report.precision)), \(report.images) test frames at \(size), \(String(format: "%.1f", seconds)) s")
            print("  Dice              \(String(format: "%.4f ± %.4f", report.meanDice, report.diceStd))")
            print("  IoU               \(String(format: "%.4f", report.meanIoU))")
            print("  pixel accuracy    \(String(format: "%.4f", report.meanPixelAccuracy))")
            print("  HC error          \(String(format: "mean %.2f mm, median %.2f, 90th percentile %.2f, 95th %.2f", report.meanHCErrorMM, report.medianHCErrorMM, report.p90HCErrorMM, report.p95HCErrorMM))")
            print("  no head found     \(report.noHeadFound)")
            // What the review flag catches: of the frames whose HC is off by more than 10 mm, how many it flags;
            // how many frames within 2 mm it flags too; the HC error of the frames it lets through.
            let flagged = report.rows.filter(\.needsReview), passed = report.rows.filter { !$0.needsReview }
            let gross = report.rows.filter { $0.hcErrorMM > 10 }, close = report.rows.filter { $0.hcErrorMM <= 2 }
            print(String(format: "  frames to check   %d: %d of the %d off by > 10 mm, %d of the %d within 2 mm; the other %d: HC error mean %.2f mm",
                         flagged.count, gross.filter(\.needsReview).count, gross.count, close.filter(\.needsReview).count, close.count,
                         passed.count, passed.isEmpty ? 0 : passed.map(\.hcErrorMM).reduce(0, +) / Double(passed.count)))
            print("worst frames by Dice:")
            for row in report.rows.sorted(by: { $0.dice < $1.dice }).prefix(5) {
                let hc = row.hcMM.map { String(format: "%.1f mm", $0) } ?? "no head"
                print(String(format: "  %-10@ Dice %.4f  IoU %.4f  HC %@ (CSV %.1f mm)", row.name, row.dice, row.iou, hc, row.referenceHCmm))
            }
            if let out {
                try report.write(to: out)
                print("wrote \(out)")
            }
        }
    }
}
