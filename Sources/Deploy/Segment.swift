// `segment`: a frame in, a head mask, an overlay and the head circumference out.
//
// Per frame, exactly the steps `evaluate` and `bench` score (so their HC error and segment's agree):
// 1. decode the PNG/JPEG as 8-bit gray (ImageCodecs) at its own size W0 x H0;
// 2. squash it to the network's W x H with HC18's PIL-exact bilinear resize, scale to [0, 1];
// 3. run the model (float or int8) on the 1-channel frame; head = logit > 0;
// 4. keep the largest 8-connected head region, fit the ellipse to its boundary mapped back to the
//    original frame (`measureHC`), circumference in pixels times the pixel size in mm.
// Outputs at the frame's own size: the mask (the largest region, enlarged with `resizeMask`: bilinear
// on 0/255, head where >= 128), and an overlay (the frame, the head tinted, the fitted ellipse drawn).
//
// Documented results instead of errors:
// - no pixel size for a frame: HC is reported in pixels only (`hcMM` absent) and `notes` says so;
// - no head found (empty prediction, or a region whose boundary fits no ellipse): `headFound` false,
//   no ellipse or HC, an empty mask and an overlay without ellipse. When the CSV gives a reference HC,
//   the HC error of such a frame is the whole reference (as if 0 mm were measured), as `evaluate` counts it.
import DICOM
import Dispatch
import Foundation
import HC18
import ImageCodecs
import QuantEngine

/// The fitted head ellipse in original-frame pixel coordinates (pixel centres at integers, y down).
public struct HeadEllipse: Codable, Equatable, Sendable {
    public var centerX: Double
    public var centerY: Double
    /// Half the long and short axes, in pixels.
    public var semiMajorAxis: Double
    public var semiMinorAxis: Double
    /// The long axis' angle from +x in degrees, [0, 180); positive turns clockwise on screen (y grows down).
    public var angleDegrees: Double

    public init(_ e: Ellipse) {
        centerX = e.centerX
        centerY = e.centerY
        semiMajorAxis = e.semiMajor
        semiMinorAxis = e.semiMinor
        angleDegrees = e.angle * 180 / Double.pi
    }
}

/// Wall-clock milliseconds of each step of one frame.
public struct SegmentTimings: Codable, Equatable, Sendable {
    /// Reading and decoding the file, squashing to the network size.
    public var decodeMS: Double
    /// The model call.
    public var inferenceMS: Double
    /// Largest region, ellipse fit, mask and overlay images (not writing them).
    public var measureMS: Double
    public var totalMS: Double
}

/// What `segment` writes as JSON for one frame.
public struct SegmentationResult: Codable, Equatable, Sendable {
    public var frame: String
    /// The frame's own size.
    public var width: Int
    public var height: Int
    /// The size the frame was squashed to for the network.
    public var networkWidth: Int
    public var networkHeight: Int
    public var model: String
    public var precision: Precision
    /// The kernel path that ran the model (`KernelPath`: portable, avx2, avx512-vnni, neon).
    public var kernels: String
    public var headFound: Bool
    /// 1-based frame number within a multi-frame DICOM file (a cine loop); absent for single frames.
    public var frameIndex: Int?
    /// Pixel size used for HC in mm; absent when none was given for this frame.
    public var pixelSizeMM: Double?
    /// Where it came from: the DICOM ultrasound region containing the head, the DICOM PixelSpacing,
    /// --pixel-size or --pixel-csv (absent: none, or given by a library caller).
    public var pixelSizeSource: PixelSizeSource?
    /// The DICOM ultrasound region (index in the file's Sequence of Ultrasound Regions) it came from.
    public var ultrasoundRegion: Int?
    /// Head circumference in mm (needs a pixel size).
    public var hcMM: Double?
    /// Head circumference in original-frame pixels.
    public var hcPixels: Double?
    /// Gestational age from `hcMM` by Hadlock 1984, with a note when the HC is outside the range the
    /// formula was fitted on (HC18's `Hadlock1984`; docs/DATA.md, "Gestational age"). Absent without hcMM.
    public var gestationalAge: GestationalAge?
    public var ellipse: HeadEllipse?
    /// The sonographer's HC from the pixel-size CSV, when it has one, and |hcMM - reference|
    /// (the whole reference when no head was found).
    public var referenceHCmm: Double?
    public var hcErrorMM: Double?
    /// Head pixels in the mask at the frame's own size.
    public var maskPixels: Int
    /// Whether a sonographer should check this frame: no head found, or a doubtful measurement
    /// (`reviewReasons`; docs/DATA.md, "Frames to check", says what the flag catches).
    public var needsReview: Bool
    /// Why the measurement is doubtful (`HCMeasurement.reviewReasons`); empty when it is not.
    public var reviewReasons: [String]
    public var timeMS: SegmentTimings
    public var notes: [String]
}

/// A segmented frame: the JSON record and the two images to write.
public struct FrameSegmentation: Sendable {
    public var result: SegmentationResult
    /// 0 = background, 255 = head, at the frame's own size.
    public var mask: GrayImage
    public var overlay: RGBImage
}

/// Runs one model on frames of any size; holds the model so that its arena is planned once.
public final class Segmenter: Sendable {
    public let model: SegmentationModel
    public let modelName: String
    public let width: Int
    public let height: Int
    public let threads: Int

    /// `size`: the network input size; by default the one the model's file records (the size it was trained
    /// or calibrated at), required for a file that records none. An int8 model refuses another size unless
    /// `allowingOtherSize` (`SegmentationModel.inputSize(requested:)`). `threads`: per frame.
    public init(model: SegmentationModel, modelName: String, size: InputSize? = nil, threads: Int, allowingOtherSize: Bool = false) throws {
        let size = try model.inputSize(requested: size, allowingOtherSize: allowingOtherSize, subject: modelName)
        self.model = model
        self.modelName = modelName
        self.width = size.width
        self.height = size.height
        self.threads = max(1, threads)
    }

    /// Reads and segments one image file.
    public func segment(path: String, scale: FrameScale?) throws -> FrameSegmentation {
        let start = DispatchTime.now().uptimeNanoseconds
        let frame = try readGrayImage(path: path)
        return try segment(frame: frame, name: path, scale: scale, startedAt: start)
    }

    /// Segments a decoded frame. `name` labels it in the result and in errors.
    public func segment(frame: GrayImage, name: String, scale: FrameScale?, startedAt: UInt64? = nil) throws -> FrameSegmentation {
        try segment(frame: frame, name: name, startedAt: startedAt) { _, _ in scale }
    }

    /// Segments a decoded frame whose pixel size may depend on where the head is (a DICOM file's ultrasound
    /// regions): `scale` gets the fitted ellipse (nil when no head was found) and may add notes; an error it
    /// throws is the frame's.
    public func segment(frame: GrayImage, name: String, startedAt: UInt64? = nil,
                        scale: (HeadEllipse?, inout [String]) throws -> FrameScale?) throws -> FrameSegmentation {
        let start = startedAt ?? DispatchTime.now().uptimeNanoseconds
        func milliseconds(since t: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6 }

        let squashed = resizeBilinear(frame, width: width, height: height)
        let input = Tensor(shape: [1, 1, height, width], data: squashed.pixels.map { Float($0) / 255 })
        let decodeMS = milliseconds(since: start)

        let inferenceStart = DispatchTime.now().uptimeNanoseconds
        let logits = try model.logits(for: input, threads: threads)
        guard logits.shape == [1, 1, height, width] else {
            throw SonoQuantError(modelName, "model returned logits of shape \(logits.shape), expected [1, 1, \(height), \(width)]")
        }
        let inferenceMS = milliseconds(since: inferenceStart)

        let measureStart = DispatchTime.now().uptimeNanoseconds
        let predicted: [UInt8] = logits.data.map { $0 > 0 ? 1 : 0 }
        var notes: [String] = []
        // Pixel size 1 gives the circumference in pixels; the mm figure is only reported with a real one.
        let measurement = measureHC(mask: predicted, width: width, height: height,
                                    originalWidth: frame.width, originalHeight: frame.height, pixelSizeMM: 1)
        var mask = [UInt8](repeating: 0, count: frame.width * frame.height)
        if measurement != nil {
            let region = largestRegion(mask: predicted, width: width, height: height).mask
            mask = resizeMask(region, width: width, height: height, toWidth: frame.width, toHeight: frame.height)
        } else {
            notes.append(predicted.contains(1)
                ? "no head found: the predicted region's boundary does not determine an ellipse"
                : "no head found: the model predicted no head pixel")
        }
        let maskImage = GrayImage(width: frame.width, height: frame.height, pixels: mask.map { $0 != 0 ? 255 : 0 })
        let overlay = drawOverlay(frame: frame, mask: mask, ellipse: measurement?.ellipse)

        let ellipse = measurement.map { HeadEllipse($0.ellipse) }
        let scale = try scale(ellipse, &notes)
        var hcMM: Double? = nil
        if let scale, let measurement { hcMM = measurement.circumferencePixels * scale.pixelSizeMM * model.hcScale }
        if model.hcScale != 1 && hcMM != nil {
            notes.append(String(format: "HC in mm multiplied by the model's HC scale %.4f (fitted on its training split)", model.hcScale))
        }
        if scale == nil { notes.append("no pixel size given for this frame: HC in pixels only") }
        var hcError: Double? = nil
        if let reference = scale?.referenceHCmm { hcError = hcMM.map { abs($0 - reference) } ?? reference }

        let result = SegmentationResult(
            frame: name, width: frame.width, height: frame.height, networkWidth: width, networkHeight: height,
            model: modelName, precision: model.precision, kernels: model.kernelPath.rawValue, headFound: measurement != nil,
            frameIndex: nil, pixelSizeMM: scale?.pixelSizeMM, pixelSizeSource: scale?.source, ultrasoundRegion: scale?.ultrasoundRegion, hcMM: hcMM, hcPixels: measurement?.circumferencePixels,
            gestationalAge: hcMM.flatMap { Hadlock1984.estimate(hcMM: $0) }, ellipse: ellipse,
            referenceHCmm: scale?.referenceHCmm, hcErrorMM: hcError,
            maskPixels: mask.reduce(0) { $0 + Int($1) },
            needsReview: measurement?.needsReview ?? true, reviewReasons: measurement?.reviewReasons ?? [],
            timeMS: SegmentTimings(decodeMS: decodeMS, inferenceMS: inferenceMS,
                                   measureMS: milliseconds(since: measureStart), totalMS: milliseconds(since: start)),
            notes: notes)
        return FrameSegmentation(result: result, mask: maskImage, overlay: overlay)
    }
}

/// The files `segment` reads from a path: the file itself, or every .png/.jpg/.jpeg/.dcm in a directory and
/// every file without an extension that is DICOM (not recursive; HC18 annotation files `*_Annotation.png`
/// skipped), sorted by name.
public func segmentationInputs(path: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw SonoQuantError(path, "no such file or directory", kind: .fileNotFound)
    }
    guard isDirectory.boolValue else { return [path] }
    let names: [String]
    do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
        throw SonoQuantError(path, "cannot list directory", kind: .unreadable)
    }
    let frames = names.filter { name in
        let lower = name.lowercased()
        guard !name.hasPrefix("."), !lower.hasSuffix("_annotation.png") else { return false }
        if [".png", ".jpg", ".jpeg", ".dcm", ".dicom"].contains(where: { lower.hasSuffix($0) }) { return true }
        // Scanners export DICOM files without an extension (IM_0001, DICOM/ST000/SE000/IM000): those count
        // when they carry the "DICM" marker.
        return !name.contains(".") && isDICOMPath((path as NSString).appendingPathComponent(name))
    }.sorted()
    if frames.isEmpty { throw SonoQuantError(path, "no .png, .jpg, .jpeg or .dcm frames in this directory", kind: .badData) }
    return frames.map { (path as NSString).appendingPathComponent($0) }
}

/// A .dcm/.dicom file name, or a file that starts like one (the "DICM" marker at byte 128). A .png, .jpg or
/// .jpeg name is taken at its word, so an image is not opened an extra time to be sniffed.
public func isDICOMPath(_ path: String) -> Bool {
    let lower = path.lowercased()
    if lower.hasSuffix(".dcm") || lower.hasSuffix(".dicom") { return true }
    if [".png", ".jpg", ".jpeg"].contains(where: { lower.hasSuffix($0) }) { return false }
    guard let handle = FileHandle(forReadingAtPath: path) else { return false }
    defer { try? handle.close() }
    return isDICOM(bytes: [UInt8](handle.readData(ofLength: 132)))
}

/// One frame that could not be segmented (unreadable, corrupt...), listed in the summary.
public struct SegmentFailure: Codable, Equatable, Sendable {
    public var frame: String
    public var error: String

    public init(frame: String, error: String) {
        self.frame = frame
        self.error = error
    }
}

/// `summary.json` of a `segment` run.
public struct SegmentSummary: Codable, Equatable, Sendable {
    public var model: String
    public var precision: Precision
    /// The kernel path that ran the model.
    public var kernels: String
    public var networkWidth: Int
    public var networkHeight: Int
    public var frames: Int
    public var headsFound: Int
    public var failures: [SegmentFailure]
    /// Frames whose reference HC is known (from the pixel-size CSV), and their mean |HC error| in mm,
    /// counting a frame with no head found with its whole reference HC (as `evaluate` does).
    public var framesWithReference: Int
    public var meanHCErrorMM: Double?
    public var medianTotalMS: Double?
    public var results: [SegmentationResult]
    /// One line per multi-frame DICOM file (cine loop); absent when there was none.
    public var loops: [LoopSummary]?

    public init(model: String, precision: Precision, kernels: String, networkWidth: Int, networkHeight: Int,
                results: [SegmentationResult], failures: [SegmentFailure]) {
        self.model = model
        self.precision = precision
        self.kernels = kernels
        self.networkWidth = networkWidth
        self.networkHeight = networkHeight
        self.results = results
        self.failures = failures
        frames = results.count + failures.count
        headsFound = results.filter(\.headFound).count
        let errors = results.compactMap(\.hcErrorMM)
        framesWithReference = errors.count
        meanHCErrorMM = errors.isEmpty ? nil : errors.reduce(0, +) / Double(errors.count)
        let times = results.map(\.timeMS.totalMS).sorted()
        medianTotalMS = times.isEmpty ? nil : quantile(times, 0.5)
        var loops: [LoopSummary] = []
        for (file, frames) in Dictionary(grouping: results.filter { $0.frameIndex != nil }, by: \.frame).sorted(by: { $0.key < $1.key }) {
            loops.append(LoopSummary(file: file, frames: frames.sorted { $0.frameIndex! < $1.frameIndex! }))
        }
        self.loops = loops.isEmpty ? nil : loops
    }
}

/// The result of a cine loop: each frame is measured on its own; the loop's HC is the median over the frames
/// with a head and no review flag (a sonographer would pick one of those), with their spread. When every
/// frame with a head is flagged, the median is over those and `onlyFlaggedFrames` says so.
public struct LoopSummary: Codable, Equatable, Sendable {
    public var file: String
    public var frames: Int
    public var headsFound: Int
    /// The frames the loop's HC is taken from.
    public var framesMeasured: Int
    public var medianHCmm: Double?
    public var minHCmm: Double?
    public var maxHCmm: Double?
    /// Gestational age from the median HC (Hadlock 1984), as for a single frame.
    public var gestationalAge: GestationalAge?
    /// The frame (1-based) whose HC is nearest the median: the one to show.
    public var representativeFrame: Int?
    /// True when the HC comes from frames that are all flagged for review (no unflagged frame has a head).
    public var onlyFlaggedFrames: Bool
    public var pixelSizeSource: PixelSizeSource?

    public init(file: String, frames results: [SegmentationResult]) {
        self.file = file
        frames = results.count
        headsFound = results.filter(\.headFound).count
        let withHead = results.filter { $0.headFound && $0.hcMM != nil }
        let unflagged = withHead.filter { !$0.needsReview }
        let measured = unflagged.isEmpty ? withHead : unflagged
        onlyFlaggedFrames = unflagged.isEmpty && !withHead.isEmpty
        framesMeasured = measured.count
        let values = measured.map { $0.hcMM! }.sorted()
        if !values.isEmpty {
            let median = quantile(values, 0.5)
            medianHCmm = median
            gestationalAge = Hadlock1984.estimate(hcMM: median)
            minHCmm = values.first
            maxHCmm = values.last
            representativeFrame = measured.min { abs($0.hcMM! - median) < abs($1.hcMM! - median) }?.frameIndex
        }
        pixelSizeSource = results.compactMap(\.pixelSizeSource).first
    }
}

/// Segments `frames` and writes, per frame, NAME_mask.png, NAME_overlay.png and NAME.json into
/// `outDirectory` (NAME: the file name without extension; NAME_f001... for the frames of a DICOM cine loop),
/// then summary.json. A frame that cannot be read or decoded is recorded in the summary's `failures` and the
/// run goes on; `log` gets one line per frame (results and failures). `scale(file name)` gives the options'
/// pixel size; a DICOM file's own pixel size is reconciled with it by `dicomFrameScale` (`dicomPriority`).
/// Throws for problems that concern the whole run (output not writable, two frames with the same NAME).
public func segmentFrames(_ frames: [String], with segmenter: Segmenter, scale: (String) -> (FrameScale?, note: String?),
                          dicomPriority: PixelSizePriority? = nil, outDirectory: String, log: (String) -> Void) throws -> SegmentSummary {
    var stems = Set<String>()
    for frame in frames {
        let stem = ((frame as NSString).lastPathComponent as NSString).deletingPathExtension
        guard stems.insert(stem).inserted else {
            throw SonoQuantError(frame, "another input frame has the same name (\(stem)); their outputs would overwrite each other", kind: .badData)
        }
    }
    do {
        try FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true)
    } catch {
        throw SonoQuantError(outDirectory, "cannot create the output directory", kind: .cannotWrite)
    }
    // Two `segment` runs into one directory would leave one run's masks beside the other's summary.json.
    let lock = try DirectoryLock(directory: outDirectory, purpose: "segment")
    defer { withExtendedLifetime(lock) {} }
    var results: [SegmentationResult] = []
    var failures: [SegmentFailure] = []
    func write(_ segmented: FrameSegmentation, stem: String, file: String, note: String?) throws {
        var result = segmented.result
        if let note, result.pixelSizeMM == nil { result.notes.append(note) }
        let base = (outDirectory as NSString).appendingPathComponent(stem)
        try writePNG(segmented.mask, to: base + "_mask.png")
        try writePNG(segmented.overlay, to: base + "_overlay.png")
        try writeFileAtomically(path: base + ".json", text: prettyJSON(result))
        results.append(result)
        log(describe(result, file: file))
    }
    func fail(_ frame: String, _ error: SonoQuantError) {
        failures.append(SegmentFailure(frame: frame, error: error.description))
        log("error: \(error.subject): \(error.problem)")
    }
    for frame in frames {
        let file = (frame as NSString).lastPathComponent
        let stem = (file as NSString).deletingPathExtension
        let (optionScale, note) = scale(file)
        if isDICOMPath(frame) {
            let image: DICOMImage
            do { image = try readDICOM(path: frame) } catch let error as SonoQuantError { fail(frame, error); continue }
            let loop = image.frames.count > 1
            for (index, picture) in image.frames.enumerated() {
                let label = loop ? "\(file) frame \(index + 1)" : file
                do {
                    var segmented = try segmenter.segment(frame: picture, name: frame) { ellipse, notes in
                        // The head's centre picks the region; without a head, the frame's centre.
                        let point = ellipse.map { ($0.centerX, $0.centerY) } ?? (Double(picture.width - 1) / 2, Double(picture.height - 1) / 2)
                        return try dicomFrameScale(image, point: point, option: optionScale, priority: dicomPriority, notes: &notes)
                    }
                    if loop { segmented.result.frameIndex = index + 1 }
                    try write(segmented, stem: loop ? String(format: "%@_f%03d", stem, index + 1) : stem, file: label, note: note)
                } catch let error as SonoQuantError {
                    fail(loop ? "\(frame) frame \(index + 1)" : frame, error)
                }
            }
            continue
        }
        let segmented: FrameSegmentation
        do {
            segmented = try segmenter.segment(path: frame, scale: optionScale)
        } catch let error as SonoQuantError {
            fail(frame, error)
            continue
        }
        try write(segmented, stem: stem, file: file, note: note)
    }
    let summary = SegmentSummary(model: segmenter.modelName, precision: segmenter.model.precision, kernels: segmenter.model.kernelPath.rawValue,
                                 networkWidth: segmenter.width, networkHeight: segmenter.height,
                                 results: results, failures: failures)
    try writeFileAtomically(path: (outDirectory as NSString).appendingPathComponent("summary.json"), text: prettyJSON(summary))
    return summary
}

/// One line for a segmented frame: HC (mm or pixels), reference and error when known, ellipse, time.
public func describe(_ r: SegmentationResult, file: String) -> String {
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
    if let ga = r.gestationalAge {
        text += String(format: ", GA %.1f weeks (%@, Hadlock 1984%@)", ga.weeks, ga.weeksAndDays, ga.withinFormulaRange ? "" : ", extrapolated")
    }
    text += String(format: ", ellipse centre (%.1f, %.1f) semi-axes %.1f x %.1f px at %.1f deg, %.1f ms",
                   e.centerX, e.centerY, e.semiMajorAxis, e.semiMinorAxis, e.angleDegrees, r.timeMS.totalMS)
    if r.needsReview { text += "; CHECK: " + r.reviewReasons.joined(separator: "; ") }
    return text
}

/// Pretty, key-sorted JSON text of any result.
public func prettyJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
}
