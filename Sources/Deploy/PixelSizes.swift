// Pixel sizes for `segment`: one size for every frame, or a CSV per frame.
import Foundation
import QuantEngine

/// What is known about one frame's scale: its pixel size in mm and, when the CSV gives it, the
/// sonographer's head circumference (then `segment` also reports its error).
public struct FrameScale: Equatable, Sendable {
    public var pixelSizeMM: Double
    public var referenceHCmm: Double?

    public init(pixelSizeMM: Double, referenceHCmm: Double? = nil) {
        self.pixelSizeMM = pixelSizeMM
        self.referenceHCmm = referenceHCmm
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
        table[fields[0]] = FrameScale(pixelSizeMM: pixel, referenceHCmm: reference)
    }
    if table.isEmpty { throw SonoQuantError(path, "no frames listed", kind: .badData) }
    return table
}
