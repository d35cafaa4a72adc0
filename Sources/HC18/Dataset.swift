// HC18: the fetal head circumference data set (van den Heuvel et al., Zenodo 10.5281/zenodo.1327317).
//
// A data directory holds `NNN_HC.png` frames, their `NNN_HC_Annotation.png` outlines and
// `training_set_pixel_size_and_HC.csv` (`filename,pixel size(mm),head circumference (mm)`).
// A split file is `filename,split` with split `train` or `test`.
import Foundation
import QuantEngine

/// One frame of the data set and what is known about it.
public struct HC18Sample: Equatable, Codable, Sendable {
    /// The frame's file name without extension, e.g. "010_2HC".
    public var name: String
    /// Millimetres per pixel (the same along both axes).
    public var pixelSizeMM: Double
    /// The sonographer's head circumference from the CSV, in mm.
    public var referenceHCmm: Double
    public var imagePath: String
    public var annotationPath: String

    public init(name: String, pixelSizeMM: Double, referenceHCmm: Double, imagePath: String, annotationPath: String) {
        self.name = name
        self.pixelSizeMM = pixelSizeMM
        self.referenceHCmm = referenceHCmm
        self.imagePath = imagePath
        self.annotationPath = annotationPath
    }

    /// The fetus this frame belongs to: the number before the first "_" ("010" for "010_2HC").
    /// Frames of one fetus must stay on one side of a split.
    public var patientID: String { HC18.patientID(ofFrame: name) }
}

/// "010" for "010_2HC.png", "010_HC", ...
public func patientID(ofFrame filename: String) -> String {
    String(filename.split(separator: "_", maxSplits: 1).first ?? Substring(filename))
}

/// The frames of one data directory, divided into train and test by a split file.
public struct HC18Dataset: Sendable {
    public static let pixelSizeCSVName = "training_set_pixel_size_and_HC.csv"

    public let directory: String
    public let train: [HC18Sample]
    public let test: [HC18Sample]
    /// Every frame listed in the pixel-size CSV, in CSV order (whether or not the split names it).
    public let all: [HC18Sample]

    /// Reads the pixel-size CSV in `directory` and the split CSV. Every frame the split names must be
    /// in the pixel-size CSV and exist on disk (with its annotation); errors name the file and line.
    public init(directory: String, splitCSV: String) throws {
        self.directory = directory
        let all = try readPixelSizeCSV(directory: directory)
        self.all = all
        let byFilename = Dictionary(uniqueKeysWithValues: all.map { ($0.name + ".png", $0) })
        var train: [HC18Sample] = [], test: [HC18Sample] = []
        for (line, filename, split) in try readSplitCSV(path: splitCSV) {
            guard let sample = byFilename[filename] else {
                throw SonoQuantError(splitCSV, "line \(line): \(filename) is not in \(directory)/\(Self.pixelSizeCSVName)", kind: .badData)
            }
            for path in [sample.imagePath, sample.annotationPath] where !FileManager.default.fileExists(atPath: path) {
                throw SonoQuantError(splitCSV, "line \(line): \(filename) is listed but \(path) does not exist", kind: .badData)
            }
            if split == "train" { train.append(sample) } else { test.append(sample) }
        }
        self.train = train
        self.test = test
    }
}

private func readLines(path: String) throws -> [Substring] {
    guard let data = FileManager.default.contents(atPath: path) else {
        let exists = FileManager.default.fileExists(atPath: path)
        throw SonoQuantError(path, exists ? "cannot read file" : "no such file", kind: exists ? .unreadable : .fileNotFound)
    }
    guard let text = String(data: data, encoding: .utf8) else { throw SonoQuantError(path, "not UTF-8 text", kind: .badData) }
    return text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
}

/// `filename,pixel size(mm),head circumference (mm)` -> samples with paths inside `directory`.
public func readPixelSizeCSV(directory: String) throws -> [HC18Sample] {
    let path = (directory as NSString).appendingPathComponent(HC18Dataset.pixelSizeCSVName)
    var samples: [HC18Sample] = []
    var seen = Set<String>()
    for (index, line) in try readLines(path: path).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if index == 0 || trimmed.isEmpty { continue }  // header
        let fields = trimmed.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard fields.count == 3, fields[0].hasSuffix(".png") else {
            throw SonoQuantError(path, "line \(index + 1): expected `filename.png,pixel size,head circumference`, got `\(trimmed)`", kind: .badData)
        }
        guard let pixel = Double(fields[1]), pixel.isFinite, pixel > 0,
              let hc = Double(fields[2]), hc.isFinite, hc >= 0 else {
            throw SonoQuantError(path, "line \(index + 1): pixel size and head circumference must be positive numbers, got `\(trimmed)`", kind: .badData)
        }
        guard seen.insert(fields[0]).inserted else { throw SonoQuantError(path, "line \(index + 1): \(fields[0]) is listed twice", kind: .badData) }
        let name = String(fields[0].dropLast(4))
        samples.append(HC18Sample(
            name: name, pixelSizeMM: pixel, referenceHCmm: hc,
            imagePath: (directory as NSString).appendingPathComponent(name + ".png"),
            annotationPath: (directory as NSString).appendingPathComponent(name + "_Annotation.png")))
    }
    if samples.isEmpty { throw SonoQuantError(path, "no frames listed", kind: .badData) }
    return samples
}

/// `filename,split` rows (header first) -> (line number, filename, "train" | "test").
public func readSplitCSV(path: String) throws -> [(line: Int, filename: String, split: String)] {
    var rows: [(line: Int, filename: String, split: String)] = []
    var seen = Set<String>()
    for (index, line) in try readLines(path: path).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if index == 0 || trimmed.isEmpty { continue }
        let fields = trimmed.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard fields.count == 2, fields[1] == "train" || fields[1] == "test" else {
            throw SonoQuantError(path, "line \(index + 1): expected `filename,train|test`, got `\(trimmed)`", kind: .badData)
        }
        guard seen.insert(fields[0]).inserted else { throw SonoQuantError(path, "line \(index + 1): \(fields[0]) is listed twice", kind: .badData) }
        rows.append((index + 1, fields[0], fields[1]))
    }
    if rows.isEmpty { throw SonoQuantError(path, "no frames listed", kind: .badData) }
    return rows
}

// MARK: - Patient-grouped split

/// A split in which all frames of one fetus (`NNN_HC`, `NNN_2HC`, `NNN_3HC`) fall on the same side.
///
/// Patients are shuffled with a seeded SplitMix64 Fisher-Yates shuffle (deterministic across runs
/// and platforms), then taken into the test side in that order while the test side holds fewer than
/// round(testFraction * frames) frames. Returns (filename, "train" | "test") in the input order.
public func patientGroupedSplit(filenames: [String], testFraction: Double, seed: UInt64) -> [(filename: String, split: String)] {
    var patients: [String] = []
    var framesPerPatient: [String: Int] = [:]
    for filename in filenames {
        let patient = patientID(ofFrame: filename)
        if framesPerPatient[patient] == nil { patients.append(patient) }
        framesPerPatient[patient, default: 0] += 1
    }
    patients.sort()
    var generator = SplitMix64(seed: seed)
    if patients.count > 1 {
        for i in stride(from: patients.count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            patients.swapAt(i, j)
        }
    }
    let target = Int((testFraction * Double(filenames.count)).rounded())
    var testPatients = Set<String>()
    var testFrames = 0
    for patient in patients where testFrames < target {
        testPatients.insert(patient)
        testFrames += framesPerPatient[patient]!
    }
    return filenames.map { ($0, testPatients.contains(patientID(ofFrame: $0)) ? "test" : "train") }
}

/// The split file text (`filename,split` header, one row per frame).
public func splitCSVText(_ rows: [(filename: String, split: String)]) -> String {
    "filename,split\n" + rows.map { "\($0.filename),\($0.split)\n" }.joined()
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seedable generator with a fixed output sequence.
/// The project's one random generator: the split shuffles with it, and the trainer (which extends it with
/// uniform/normal draws) saves `state` in its resume file.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
