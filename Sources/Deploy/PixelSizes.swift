// Pixel sizes for `segment`: one size for every frame, or a CSV per frame.
import DICOM
import Foundation
import QuantEngine

/// What is known about one frame's scale: its pixel size in mm and, when the CSV gives it, the
/// sonographer's head circumference (then `segment` also reports its error).
public struct FrameScale: Equatable, Sendable {
    public var pixelSizeMM: Double
    public var referenceHCmm: Double?
    /// Where the pixel size came from, for the JSON (nil: given by a library caller).
    public var source: PixelSizeSource?
    /// The DICOM ultrasound region it came from (index in the file's sequence).
    public var ultrasoundRegion: Int?

    public init(pixelSizeMM: Double, referenceHCmm: Double? = nil, source: PixelSizeSource? = nil, ultrasoundRegion: Int? = nil) {
        self.pixelSizeMM = pixelSizeMM
        self.referenceHCmm = referenceHCmm
        self.source = source
        self.ultrasoundRegion = ultrasoundRegion
    }
}

/// Which pixel size wins when a DICOM file gives one and `--pixel-size` or `--pixel-csv` gives another.
public enum PixelSizePriority: String, Sendable, CaseIterable {
    case file, option
}

/// The pixel size of one DICOM frame: the file's (the ultrasound region containing `point`, the head centre,
/// else PixelSpacing) and the options' (`option`), reconciled. They must agree (to 1e-6, relative) unless
/// `priority` says which wins; a disagreement without it is an error for the frame. `notes` says what was
/// passed over.
public func dicomFrameScale(_ image: DICOMImage, point: (x: Double, y: Double), option: FrameScale?, priority: PixelSizePriority?,
                            notes: inout [String]) throws -> FrameScale? {
    guard let file = try image.pixelSize(atX: point.x, y: point.y, notes: &notes) else { return option }
    let fromFile = FrameScale(pixelSizeMM: file.millimetres, referenceHCmm: option?.referenceHCmm, source: file.source,
                              ultrasoundRegion: file.regionIndex)
    guard let option else { return fromFile }
    let optionName = option.source?.rawValue.replacingOccurrences(of: "option ", with: "") ?? "the option"
    if abs(option.pixelSizeMM - file.millimetres) <= 1e-6 * file.millimetres { return fromFile }
    let origin = file.source == .ultrasoundRegion ? "its ultrasound region \(file.regionIndex!)" : "its PixelSpacing"
    switch priority {
    case .file?:
        notes.append("\(optionName) gives \(option.pixelSizeMM) mm; the file's \(file.millimetres) mm is used (--pixel-size-priority file)")
        return fromFile
    case .option?:
        notes.append("the file gives \(file.millimetres) mm (\(origin)); \(optionName)'s \(option.pixelSizeMM) mm is used (--pixel-size-priority option)")
        return option
    case nil:
        throw SonoQuantError(image.source, "pixel size conflict: the file gives \(file.millimetres) mm (\(origin)), \(optionName) gives \(option.pixelSizeMM) mm; say which wins with --pixel-size-priority file|option", kind: .badInput)
    }
}

/// Reads a pixel-size CSV keyed by file name: HC18's `filename,pixel size(mm)[,head circumference (mm)]`
/// (the training set's file has three columns, the test set's two). A first line that does not parse
/// as numbers is a header. Keys are file names without directories (`010_HC.png`).
public func readPixelSizeTable(path: String) throws -> [String: FrameScale] {
    guard let data = FileManager.default.contents(atPath: path) else {
        let exists = FileManager.default.fileExists(atPath: path)
        throw SonoQuantError(path, exists ? "cannot read file" : "no such file", kind: exists ? .unreadable : .fileNotFound)
    }
    guard let text = String(data: data, encoding: .utf8) else { throw SonoQuantError(path, "not UTF-8 text", kind: .badData) }
    var table: [String: FrameScale] = [:]
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    for (index, line) in lines.enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { continue }
        let fields = trimmed.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let numbers = fields.dropFirst().map { Double($0) }
        if index == 0 && (numbers.isEmpty || numbers.contains(nil)) { continue }  // header
        guard fields.count == 2 || fields.count == 3, !fields[0].isEmpty,
              let pixel = numbers[0], pixel.isFinite, pixel > 0 else {
            throw SonoQuantError(path, "line \(index + 1): expected `filename,pixel size(mm)[,head circumference (mm)]` with a positive pixel size, got `\(trimmed)`", kind: .badData)
        }
        var reference: Double? = nil
        if fields.count == 3 {
            guard let hc = numbers[1], hc.isFinite, hc >= 0 else {
                throw SonoQuantError(path, "line \(index + 1): head circumference must be a non-negative number, got `\(fields[2])`", kind: .badData)
            }
            reference = hc
        }
        guard table[fields[0]] == nil else { throw SonoQuantError(path, "line \(index + 1): \(fields[0]) is listed twice", kind: .badData) }
        table[fields[0]] = FrameScale(pixelSizeMM: pixel, referenceHCmm: reference, source: .csv)
    }
    if table.isEmpty { throw SonoQuantError(path, "no frames listed", kind: .badData) }
    return table
}
