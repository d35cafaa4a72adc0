import ArgumentParser
import Deploy
import Foundation
import DICOM
import ImageCodecs
import QuantEngine

struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Find the fetal head in ultrasound frames: mask, overlay and head circumference per frame.",
        discussion: """
        For each frame given (PNGs, JPEGs or DICOM files of any size, and every \
        .png/.jpg/.jpeg/.dcm in each directory given; HC18 `*_Annotation.png` files \
        are skipped) this writes to --out:
          NAME_mask.png     head (255) / background (0) at the frame's own size
          NAME_overlay.png  the frame, head tinted, fitted ellipse in green
          NAME.json         HC in mm, gestational age from it (Hadlock 1984,
                            with a note outside the 14-42 weeks it was
                            fitted on), the ellipse (centre, semi-axes,
                            angle; in original-frame pixels), needsReview and
                            reviewReasons (no head found, a boundary that is
                            not an ellipse, or the head split over regions),
                            the time taken per step, and notes
          summary.json      every frame, and the mean HC error when the CSV
                            gives reference HCs

        The frame is squashed to the network input size (the size the model file \
        records: train and calibrate write it; --size for a PyTorch checkpoint; an \
        int8 model runs only at its calibration size unless --any-size), the model \
        (a float checkpoint or an int8 model file) predicts head where its logit is \
        > 0, the largest head region is kept and an ellipse is fitted to its \
        boundary in the original frame: the steps `evaluate` and `bench` score, so \
        the HC errors agree.

        Pixel size: --pixel-size applies to every frame; --pixel-csv reads HC18's \
        `filename,pixel size(mm)[,head circumference (mm)]`. A frame without a pixel \
        size gets its HC in pixels only (hcMM absent, a note in its JSON). A frame \
        where no head is found gets headFound false, an empty mask and an overlay \
        without ellipse; that is a result, not an error. A frame that cannot be read \
        (corrupt, truncated, not an image) is reported on stderr and listed under \
        `failures` in summary.json; the other frames are still processed, and the \
        exit status is then 1.

        DICOM (.dcm): single frames and cine loops (every frame segmented, as \
        NAME_f001...; summary.json's `loops` gives each loop's median HC over the \
        frames with a head and no review flag), 8-bit gray, RGB or YBR, \
        uncompressed, JPEG baseline or RLE. The pixel size comes from the file: \
        the ultrasound region (0018,6011) that contains the head and measures \
        cm, else PixelSpacing (0028,0030), else the options; the JSON's \
        pixelSizeSource says which. When the file and an option disagree the \
        frame fails, unless --pixel-size-priority says which wins. Nothing from \
        the file but its name goes into the outputs.

        Examples:
          sonoquant segment 002_HC.png --model D-all.int8.safetensors \\
              --pixel-size 0.0620 --out seg/
          sonoquant segment frames/*.png --model D-all.int8.safetensors \\
              --pixel-size 0.12 --out seg/
          sonoquant segment ../shared/hc18/training_set \\
              --model D-all.int8.safetensors --out seg/ --pixel-csv \\
              ../shared/hc18/training_set/training_set_pixel_size_and_HC.csv
        """
    )

    @Argument(help: ArgumentHelp("Frames (.png, .jpg, .dcm) and directories of frames, any number.", valueName: "frame-or-directory"))
    var inputs: [String]

    @Option(help: ArgumentHelp("Model file: float checkpoint or int8 model.", valueName: "model.safetensors"))
    var model: String

    @Option(name: .customLong("pixel-size"), help: ArgumentHelp("Pixel size in mm, for every frame.", valueName: "mm"))
    var pixelSize: Double?

    @Option(name: .customLong("pixel-csv"), help: ArgumentHelp("Pixel sizes per frame (HC18's CSV format).", valueName: "file.csv"))
    var pixelCSV: String?

    @Option(name: .customLong("pixel-size-priority"), help: ArgumentHelp("When a DICOM file's pixel size and --pixel-size/--pixel-csv disagree: which wins (default: neither, the frame fails).", valueName: "file|option"))
    var pixelSizePriority: PixelSizePriority?

    @OptionGroup var sizeOptions: ModelSizeOptions

    @OptionGroup var threading: ThreadsOption

    @Option(help: ArgumentHelp("Output directory (created if missing).", valueName: "dir"))
    var out: String

    func validate() throws {
        if pixelSize != nil && pixelCSV != nil { throw ValidationError("give --pixel-size or --pixel-csv, not both") }
        // Ultrasound pixels are tenths of a millimetre; beyond 10 mm the HC would be meaningless (and 1e308
        // made it infinite, which ended the whole batch in the JSON encoder).
        if let pixelSize, !(pixelSize.isFinite && pixelSize > 0 && pixelSize <= 10) {
            throw ValidationError("--pixel-size must be a number of millimetres in (0, 10], got \(pixelSize)")
        }
        // Writing NAME_mask.png beside the frames would overwrite a frame of that name and, on a rerun,
        // segment the outputs as new frames.
        try checkWritableDirectory(out, option: "--out")
        guard !inputs.isEmpty else { throw ValidationError("give at least one frame or directory of frames") }
        for input in inputs where canonicalPath(out) == canonicalPath(input) {
            throw ValidationError("--out \(out) is the frame directory \(input): the masks and overlays would mix with the frames; choose another --out")
        }
    }

    func run() throws {
        var anyFailed = false
        try reportingErrors {
            let frames = try inputs.flatMap { try segmentationInputs(path: $0) }
            let table = try pixelCSV.map { try readPixelSizeTable(path: $0) }
            let network = try loadSegmentationModel(path: model)
            let segmenter = try Segmenter(model: network, modelName: model, size: sizeOptions.resolve(for: network, file: model), threads: threading.count)
            if pixelSize == nil && pixelCSV == nil && !frames.contains(where: isDICOMPath) {
                FileHandle.standardError.write(Data("note: no --pixel-size or --pixel-csv: HC is reported in pixels only\n".utf8))
            }
            let summary = try segmentFrames(frames, with: segmenter, scale: { file in
                if let pixelSize { return (FrameScale(pixelSizeMM: pixelSize, source: .option), nil) }
                guard let table, let pixelCSV else { return (nil, nil) }
                return table[file].map { ($0, nil) } ?? (nil, "\(file) is not listed in \(pixelCSV)")
            }, dicomPriority: pixelSizePriority, outDirectory: out, log: { line in
                if line.hasPrefix("error: ") {
                    FileHandle.standardError.write(Data((line + "\n").utf8))
                } else {
                    print(line)
                }
            })
            var line = "\(summary.frames) frames, head found in \(summary.headsFound)"
            if !summary.failures.isEmpty { line += ", \(summary.failures.count) failed" }
            if let mean = summary.meanHCErrorMM {
                line += String(format: "; mean |HC error| %.3f mm over %d frames with a reference HC", mean, summary.framesWithReference)
            }
            if let loops = summary.loops { line += "; \(loops.count) cine loop(s)" }
            if let median = summary.medianTotalMS { line += String(format: "; median %.1f ms per frame", median) }
            print(line + " -> \((out as NSString).appendingPathComponent("summary.json"))")
            anyFailed = !summary.failures.isEmpty
        }
        if anyFailed { throw ExitCode.failure }
    }
}
