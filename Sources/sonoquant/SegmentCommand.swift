import ArgumentParser
import Deploy
import Foundation
import ImageCodecs
import QuantEngine

struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Find the fetal head in ultrasound frames: mask, overlay and head circumference per frame.",
        discussion: """
        For each frame (a PNG or JPEG of any size, or every .png/.jpg/.jpeg in a directory; HC18
        `*_Annotation.png` files are skipped) this writes to --out:
          NAME_mask.png     the head (255) / background (0) at the frame's own size
          NAME_overlay.png  the frame with the head tinted and the fitted ellipse drawn in green
          NAME.json         HC in mm, the ellipse (centre, semi-axes, angle; original-frame pixels),
                            the time taken per step, and notes
        and summary.json for the whole run (mean HC error when the CSV gives reference HCs).

        The frame is squashed to --size (the size the model was trained at), the model (a float
        checkpoint or an int8 model file) predicts head where its logit is > 0, the largest head region
        is kept and an ellipse is fitted to its boundary in the original frame: these are the steps
        `evaluate` and `bench` score, so the HC errors agree.

        Pixel size: --pixel-size applies to every frame; --pixel-csv reads HC18's
        `filename,pixel size(mm)[,head circumference (mm)]`. A frame without a pixel size gets its HC in
        pixels only (hcMM absent, a note in its JSON). A frame where no head is found gets headFound
        false, an empty mask and an overlay without ellipse; that is a result, not an error.
        A frame that cannot be read is listed under `failures` in summary.json, the other frames are
        still processed, and the exit status is 1.

        Examples:
          sonoquant segment scan.png --model dall.int8.safetensors --pixel-size 0.12 --out seg/
          sonoquant segment ../shared/hc18/training_set --model dall.int8.safetensors \\
              --pixel-csv ../shared/hc18/training_set/training_set_pixel_size_and_HC.csv --out seg/
        """
    )

    @Argument(help: ArgumentHelp("A frame (.png, .jpg) or a directory of frames.", valueName: "frame-or-directory"))
    var input: String

    @Option(help: ArgumentHelp("Model file: float checkpoint or int8 model.", valueName: "model.safetensors"))
    var model: String

    @Option(name: .customLong("pixel-size"), help: ArgumentHelp("Pixel size in mm, for every frame.", valueName: "mm"))
    var pixelSize: Double?

    @Option(name: .customLong("pixel-csv"), help: ArgumentHelp("Pixel sizes per frame (HC18's CSV format).", valueName: "file.csv"))
    var pixelCSV: String?

    @Option(help: ArgumentHelp("Network input size WxH (multiples of 32): the size the model was trained at.", valueName: "WxH"))
    var size: String = "192x128"

    @Option(help: "Threads for the model (default: all cores).")
    var threads: Int = availableCores

    @Option(help: ArgumentHelp("Output directory (created if missing).", valueName: "directory"))
    var out: String

    func parsedSize() throws -> (width: Int, height: Int) {
        let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
            throw ValidationError("--size must look like 192x128 (width x height), got \(size)")
        }
        return (parts[0], parts[1])
    }

    func validate() throws {
        _ = try parsedSize()
        if pixelSize != nil && pixelCSV != nil { throw ValidationError("give --pixel-size or --pixel-csv, not both") }
        if let pixelSize, !(pixelSize.isFinite && pixelSize > 0) {
            throw ValidationError("--pixel-size must be a positive number of millimetres, got \(pixelSize)")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        var anyFailed = false
        try reportingErrors {
            let (width, height) = try parsedSize()
            let frames = try segmentationInputs(path: input)
            let table = try pixelCSV.map { try readPixelSizeTable(path: $0) }
            let network = try loadSegmentationModel(path: model)
            let segmenter = try Segmenter(model: network, modelName: model, width: width, height: height, threads: threads)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            if pixelSize == nil && pixelCSV == nil {
                FileHandle.standardError.write(Data("note: no --pixel-size or --pixel-csv: HC is reported in pixels only\n".utf8))
            }

            // Output names come from the frame's file name without extension; two inputs must not collide.
            var stems = Set<String>()
            for frame in frames {
                let stem = ((frame as NSString).lastPathComponent as NSString).deletingPathExtension
                guard stems.insert(stem).inserted else {
                    throw SonoQuantError(frame, "another frame in the input has the same name (\(stem)); their outputs would overwrite each other")
                }
            }

            var results: [SegmentationResult] = []
            var failures: [SegmentFailure] = []
            for frame in frames {
                let file = (frame as NSString).lastPathComponent
                let stem = (file as NSString).deletingPathExtension
                var scale = pixelSize.map { FrameScale(pixelSizeMM: $0) }
                if let table { scale = table[file] }
                do {
                    var segmented = try segmenter.segment(path: frame, scale: scale)
                    if table != nil && scale == nil {
                        segmented.result.notes.append("\(file) is not listed in \(pixelCSV ?? "")")
                    }
                    let base = (out as NSString).appendingPathComponent(stem)
                    try writePNG(segmented.mask, to: base + "_mask.png")
                    try writePNG(segmented.overlay, to: base + "_overlay.png")
                    try writeFileAtomically(path: base + ".json", text: prettyJSON(segmented.result))
                    results.append(segmented.result)
                    print(describe(segmented.result, file: file))
                } catch let error as SonoQuantError where frames.count > 1 {
                    // One unreadable frame does not stop a directory run; it is listed and fails the exit status.
                    failures.append(SegmentFailure(frame: frame, error: error.description))
                    FileHandle.standardError.write(Data("error: \(error.subject): \(error.problem)\n".utf8))
                }
            }
            let summary = SegmentSummary(model: model, precision: network.precision, networkWidth: width, networkHeight: height,
                                         results: results, failures: failures)
            try writeFileAtomically(path: (out as NSString).appendingPathComponent("summary.json"), text: prettyJSON(summary))
            var line = "\(summary.frames) frames, head found in \(summary.headsFound)"
            if !failures.isEmpty { line += ", \(failures.count) failed" }
            if let mean = summary.meanHCErrorMM {
                line += String(format: "; mean |HC error| %.3f mm over %d frames with a reference HC", mean, summary.framesWithReference)
            }
            if let median = summary.medianTotalMS { line += String(format: "; median %.1f ms per frame", median) }
            print(line + " -> \(out)/summary.json")
            anyFailed = !failures.isEmpty
        }
        if anyFailed { throw ExitCode.failure }
    }

    private func describe(_ r: SegmentationResult, file: String) -> String {
        guard r.headFound, let hcPixels = r.hcPixels, let e = r.ellipse else {
            var text = "\(file): no head found"
            if let error = r.hcErrorMM { text += String(format: " (counts as HC error %.2f mm)", error) }
            return text
        }
        var text = file + ": HC "
        if let hc = r.hcMM { text += String(format: "%.2f mm", hc) } else { text += String(format: "%.1f px", hcPixels) }
        if let reference = r.referenceHCmm, let error = r.hcErrorMM {
            text += String(format: " (reference %.2f, error %.2f)", reference, error)
        }
        text += String(format: ", ellipse centre (%.1f, %.1f) semi-axes %.1f x %.1f px at %.1f deg, %.1f ms",
                       e.centerX, e.centerY, e.semiMajorAxis, e.semiMinorAxis, e.angleDegrees, r.timeMS.totalMS)
        return text
    }
}
