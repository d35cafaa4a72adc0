// A DICOM file as `segment` uses it: its frames as 8-bit gray images (converted as a PNG or JPEG frame is:
// RGB to gray with the same weights) and what the file says about the physical pixel size.
import Foundation
import ImageCodecs
import QuantEngine

/// One region of the Sequence of Ultrasound Regions (0018,6011): a rectangle of the frame (inclusive pixel
/// bounds) and its physical scale.
public struct UltrasoundRegion: Equatable, Sendable {
    public var minX0: Int
    public var minY0: Int
    public var maxX1: Int
    public var maxY1: Int
    /// PhysicalUnitsX/YDirection: 3 = cm (the only unit that makes a length); 0 none, 1 percent, 2 dB,
    /// 4 seconds, 5 hertz, 6 dB/seconds, 7 cm/sec, 8 cm², 9 cm²/s, 0xC degrees.
    public var unitsX: Int?
    public var unitsY: Int?
    public var deltaX: Double?
    public var deltaY: Double?

    public func contains(x: Double, y: Double) -> Bool {
        x >= Double(minX0) && x <= Double(maxX1) && y >= Double(minY0) && y <= Double(maxY1)
    }

    var area: Int { (maxX1 - minX0 + 1) * (maxY1 - minY0 + 1) }

    /// The region's pixel size in mm when it measures length in cm along both axes.
    var lengthScale: (x: Double, y: Double)? {
        guard unitsX == 3, unitsY == 3, let deltaX, let deltaY, deltaX.isFinite, deltaY.isFinite, deltaX > 0, deltaY > 0 else { return nil }
        return (deltaX * 10, deltaY * 10)
    }
}

/// Where a frame's pixel size came from (segment's JSON says it).
public enum PixelSizeSource: String, Codable, Sendable {
    /// The DICOM ultrasound region that contains the head (PhysicalDeltaX/Y in cm).
    case ultrasoundRegion = "dicom-ultrasound-region"
    /// The DICOM PixelSpacing (0028,0030).
    case pixelSpacing = "dicom-pixel-spacing"
    /// `--pixel-size`.
    case option = "option --pixel-size"
    /// `--pixel-csv`.
    case csv = "option --pixel-csv"
}

/// A pixel size the file gives for a point of the frame, with where it came from.
public struct FilePixelSize: Equatable, Sendable {
    public var millimetres: Double
    public var source: PixelSizeSource
    /// Which region (index in the sequence), for the JSON.
    public var regionIndex: Int?
}

/// A decoded DICOM file.
public struct DICOMImage: Sendable {
    public var source: String
    public var transferSyntax: TransferSyntax
    public var photometricInterpretation: String
    public var frames: [GrayImage]
    public var regions: [UltrasoundRegion]
    /// PixelSpacing (0028,0030): row spacing (between rows, i.e. along y) and column spacing, mm.
    public var pixelSpacingMM: (row: Double, column: Double)?

    /// The pixel size at frame point (x, y) (the head's centre): the ultrasound region that contains it and
    /// measures length in cm, else PixelSpacing, else nil. Non-square pixels are an error: HC is one length.
    /// `notes` gets why a region was passed over.
    public func pixelSize(atX x: Double, y: Double, notes: inout [String]) throws -> FilePixelSize? {
        let containing = regions.indices.filter { regions[$0].contains(x: x, y: y) }.sorted { regions[$0].area < regions[$1].area }
        for index in containing {
            let region = regions[index]
            guard let scale = region.lengthScale else {
                notes.append("ultrasound region \(index) contains the head but its units (x \(region.unitsX.map(String.init) ?? "none"), y \(region.unitsY.map(String.init) ?? "none")) are not cm: not used")
                continue
            }
            guard abs(scale.x - scale.y) <= 1e-9 * max(scale.x, scale.y) else {
                throw SonoQuantError(source, "ultrasound region \(index) has non-square pixels (\(scale.x) x \(scale.y) mm): HC needs one pixel size", kind: .badImage)
            }
            return FilePixelSize(millimetres: scale.x, source: .ultrasoundRegion, regionIndex: index)
        }
        if containing.isEmpty && !regions.isEmpty {
            notes.append(String(format: "no ultrasound region contains the head centre (%.0f, %.0f)", x, y))
        }
        if let spacing = pixelSpacingMM {
            guard spacing.row > 0, spacing.column > 0, abs(spacing.row - spacing.column) <= 1e-9 * max(spacing.row, spacing.column) else {
                throw SonoQuantError(source, "PixelSpacing (0028,0030) \(spacing.row)\\\(spacing.column) mm is not one positive square pixel size", kind: .badImage)
            }
            return FilePixelSize(millimetres: spacing.row, source: .pixelSpacing, regionIndex: nil)
        }
        return nil
    }
}

/// Frames and rows x columns x samples the reader accepts: far beyond any ultrasound loop, small enough
/// that a hostile header cannot make it allocate gigabytes.
public enum DICOMLimits {
    public static let maxFrames = 10_000
    public static let maxTotalPixels = 1_000_000_000
}

public func readDICOM(path: String) throws -> DICOMImage {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw SonoQuantError(path, "no such file", kind: .fileNotFound)
    }
    if isDirectory.boolValue { throw SonoQuantError(path, "is a directory, expected a DICOM file", kind: .unreadable) }
    if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber, size.intValue > ImageLimits.maxFileBytes {
        throw SonoQuantError(path, "file is \(size.intValue) bytes, larger than the \(ImageLimits.maxFileBytes)-byte limit", kind: .badImage)
    }
    guard let data = FileManager.default.contents(atPath: path) else { throw SonoQuantError(path, "cannot read file", kind: .unreadable) }
    return try decodeDICOM(bytes: [UInt8](data), source: path)
}

/// Whether bytes look like a DICOM file (the "DICM" marker after the preamble).
public func isDICOM(bytes: [UInt8]) -> Bool {
    bytes.count >= 132 && bytes[128..<132].elementsEqual(Array("DICM".utf8))
}

public func decodeDICOM(bytes: [UInt8], source: String) throws -> DICOMImage {
    let file = try DICOMDataSet(bytes: bytes, source: source)
    func required(_ tag: UInt32, _ name: String) throws -> Int {
        guard let value = try file.unsignedShort(tag, name) else { throw SonoQuantError(source, "no \(name) \(Tag.text(tag)) in the file", kind: .badImage) }
        return value
    }
    let rows = try required(Tag.rows, "Rows"), columns = try required(Tag.columns, "Columns")
    let samples = try file.unsignedShort(Tag.samplesPerPixel, "SamplesPerPixel") ?? 1
    let bitsAllocated = try file.unsignedShort(Tag.bitsAllocated, "BitsAllocated") ?? 8
    let photometric = file.text(Tag.photometricInterpretation) ?? (samples == 1 ? "MONOCHROME2" : "RGB")
    let planar = try file.unsignedShort(Tag.planarConfiguration, "PlanarConfiguration") ?? 0
    let frameCount = try file.numbers(Tag.numberOfFrames, "NumberOfFrames")?.first.map { Int(exactly: $0) ?? -1 } ?? 1

    guard rows >= 1, columns >= 1 else { throw SonoQuantError(source, "image has no pixels (\(columns)x\(rows))", kind: .badImage) }
    guard columns <= ImageLimits.maxSide, rows <= ImageLimits.maxSide else {
        throw SonoQuantError(source, "frame is \(columns)x\(rows), larger than the limit (\(ImageLimits.maxSide) per side)", kind: .badImage)
    }
    guard (1...DICOMLimits.maxFrames).contains(frameCount), frameCount * rows * columns <= DICOMLimits.maxTotalPixels else {
        throw SonoQuantError(source, "NumberOfFrames \(frameCount) is not in 1...\(DICOMLimits.maxFrames) or the loop exceeds \(DICOMLimits.maxTotalPixels) pixels", kind: .badImage)
    }
    guard bitsAllocated == 8 else {
        throw SonoQuantError(source, "\(bitsAllocated)-bit pixels: only 8-bit frames are read (what ultrasound machines write)", kind: .badImage)
    }
    guard samples == 1 || samples == 3 else { throw SonoQuantError(source, "SamplesPerPixel \(samples): expected 1 (gray) or 3 (color)", kind: .badImage) }
    let format = try PixelFormat(photometric: photometric, samples: samples, source: source, encapsulated: file.transferSyntax.isEncapsulated)

    let pixelData = try file.element(Tag.pixelData, "pixel data")
    var frames: [GrayImage] = []
    switch file.transferSyntax {
    case .implicitLittleEndian, .explicitLittleEndian:
        let frameBytes = rows * columns * samples
        guard pixelData.fragments.isEmpty, pixelData.value.count >= frameBytes * frameCount else {
            throw SonoQuantError(source, "pixel data has \(pixelData.value.count) bytes; \(frameCount) frame(s) of \(columns)x\(rows)x\(samples) need \(frameBytes * frameCount)", kind: .badImage)
        }
        for f in 0..<frameCount {
            let start = pixelData.value.startIndex + f * frameBytes
            frames.append(format.gray(Array(pixelData.value[start..<start + frameBytes]), width: columns, height: rows, planar: planar == 1))
        }
    case .rleLossless:
        let fragments = try frameFragments(pixelData, frameCount: frameCount, source: source, startsFrame: nil)
        for (f, fragment) in fragments.enumerated() {
            let planes = try decodeRLEFrame(fragment, width: columns, height: rows, samples: samples, source: source, frame: f)
            frames.append(format.gray(planes, width: columns, height: rows, planar: true))
        }
    case .jpegBaseline:
        let fragments = try frameFragments(pixelData, frameCount: frameCount, source: source, startsFrame: { $0.starts(with: [0xFF, 0xD8]) })
        for (f, fragment) in fragments.enumerated() {
            let name = frameCount == 1 ? source : "\(source) frame \(f + 1)"
            let image = try decodeJPEG(bytes: fragment, source: name)
            guard image.width == columns, image.height == rows else {
                throw SonoQuantError(name, "JPEG frame is \(image.width)x\(image.height) but the file says \(columns)x\(rows)", kind: .badImage)
            }
            frames.append(image)
        }
    }

    var regions: [UltrasoundRegion] = []
    if let sequence = file.elements[Tag.ultrasoundRegions] {
        for item in sequence.items {
            guard let x0 = try file.unsignedLong(Tag.regionMinX0, "RegionLocationMinX0", in: item),
                  let y0 = try file.unsignedLong(Tag.regionMinY0, "RegionLocationMinY0", in: item),
                  let x1 = try file.unsignedLong(Tag.regionMaxX1, "RegionLocationMaxX1", in: item),
                  let y1 = try file.unsignedLong(Tag.regionMaxY1, "RegionLocationMaxY1", in: item) else {
                throw SonoQuantError(source, "ultrasound region \(regions.count) has no location (0018,6018-601E)", kind: .badImage)
            }
            guard x0 <= x1, y0 <= y1 else {
                throw SonoQuantError(source, "ultrasound region \(regions.count) has bounds (\(x0), \(y0))-(\(x1), \(y1)) with min > max", kind: .badImage)
            }
            regions.append(UltrasoundRegion(
                minX0: x0, minY0: y0, maxX1: x1, maxY1: y1,
                unitsX: try file.unsignedShort(Tag.physicalUnitsX, "PhysicalUnitsXDirection", in: item),
                unitsY: try file.unsignedShort(Tag.physicalUnitsY, "PhysicalUnitsYDirection", in: item),
                deltaX: try file.double(Tag.physicalDeltaX, "PhysicalDeltaX", in: item),
                deltaY: try file.double(Tag.physicalDeltaY, "PhysicalDeltaY", in: item)))
        }
    }
    var spacing: (Double, Double)? = nil
    if let values = try file.numbers(Tag.pixelSpacing, "PixelSpacing") {
        guard values.count == 2 else { throw SonoQuantError(source, "PixelSpacing (0028,0030) has \(values.count) values, expected 2", kind: .badImage) }
        spacing = (values[0], values[1])
    }
    return DICOMImage(source: source, transferSyntax: file.transferSyntax, photometricInterpretation: photometric, frames: frames,
                      regions: regions, pixelSpacingMM: spacing)
}

/// How a frame's samples become gray.
private enum PixelFormat {
    case monochrome2, monochrome1, rgb, ybrFull

    init(photometric: String, samples: Int, source: String, encapsulated: Bool) throws {
        switch (photometric, samples) {
        case ("MONOCHROME2", 1): self = .monochrome2
        case ("MONOCHROME1", 1): self = .monochrome1
        case ("RGB", 3): self = .rgb
        case ("YBR_FULL", 3): self = .ybrFull
        // JPEG frames are converted by libjpeg; the photometric value only describes them.
        case ("YBR_FULL_422", 3) where encapsulated: self = .rgb
        default:
            throw SonoQuantError(source, "photometric interpretation \(photometric) with \(samples) sample(s) per pixel is not read (MONOCHROME1/2, RGB, YBR_FULL are)", kind: .badImage)
        }
    }

    /// Gray pixels of one frame's samples (interleaved, or planar: all of one sample, then the next).
    func gray(_ bytes: [UInt8], width: Int, height: Int, planar: Bool) -> GrayImage {
        let count = width * height
        var pixels = [UInt8](repeating: 0, count: count)
        switch self {
        case .monochrome2: pixels = Array(bytes.prefix(count))
        case .monochrome1: for i in 0..<count { pixels[i] = 255 - bytes[i] }
        case .rgb, .ybrFull:
            for i in 0..<count {
                let (a, b, c) = planar ? (bytes[i], bytes[count + i], bytes[2 * count + i]) : (bytes[3 * i], bytes[3 * i + 1], bytes[3 * i + 2])
                if self == .rgb {
                    pixels[i] = grayFromRGB(a, b, c)
                } else {
                    let (r, g, bl) = rgbFromYBRFull(y: a, cb: b, cr: c)
                    pixels[i] = grayFromRGB(r, g, bl)
                }
            }
        }
        return GrayImage(width: width, height: height, pixels: pixels)
    }
}

/// YBR_FULL (PS3.3 C.7.6.3.1.2, the JPEG/JFIF full-range YCbCr) to RGB, rounded and clamped.
func rgbFromYBRFull(y: UInt8, cb: UInt8, cr: UInt8) -> (UInt8, UInt8, UInt8) {
    let y = Double(y), cb = Double(cb) - 128, cr = Double(cr) - 128
    func clamp(_ v: Double) -> UInt8 { UInt8(max(0, min(255, v.rounded()))) }
    return (clamp(y + 1.402 * cr), clamp(y - 0.344136 * cb - 0.714136 * cr), clamp(y + 1.772 * cb))
}

/// The bytes of each frame of encapsulated pixel data: one fragment per frame when the counts agree; else
/// the basic offset table's frame starts; else (JPEG) a new frame at each fragment that starts with SOI.
private func frameFragments(_ pixelData: Element, frameCount: Int, source: String,
                            startsFrame: ((ArraySlice<UInt8>) -> Bool)?) throws -> [[UInt8]] {
    let fragments = pixelData.fragments
    guard !fragments.isEmpty else { throw SonoQuantError(source, "encapsulated pixel data has no fragments", kind: .badImage) }
    if fragments.count == frameCount { return fragments.map { Array($0) } }
    var frames: [[UInt8]] = []
    if let table = pixelData.offsetTable, table.count == 4 * frameCount {
        // Offsets from the first fragment's item tag; each fragment adds its 8-byte item header.
        let starts = (0..<frameCount).map { i -> Int in
            let s = table.startIndex + 4 * i
            return Int(UInt32(table[s]) | UInt32(table[s + 1]) << 8 | UInt32(table[s + 2]) << 16 | UInt32(table[s + 3]) << 24)
        }
        var position = 0
        for fragment in fragments {
            if starts.contains(position) { frames.append([]) }
            guard !frames.isEmpty else { throw SonoQuantError(source, "basic offset table does not start at the first fragment", kind: .badImage) }
            frames[frames.count - 1] += fragment
            position += 8 + fragment.count
        }
    } else if let startsFrame {
        for fragment in fragments {
            if startsFrame(fragment) || frames.isEmpty { frames.append([]) }
            frames[frames.count - 1] += fragment
        }
    } else {
        throw SonoQuantError(source, "\(fragments.count) pixel data fragments for \(frameCount) frames and no usable offset table", kind: .badImage)
    }
    guard frames.count == frameCount else {
        throw SonoQuantError(source, "pixel data holds \(frames.count) frames, NumberOfFrames says \(frameCount)", kind: .badImage)
    }
    return frames
}

/// One RLE Lossless frame (PS3.5 G): a 64-byte header (segment count, 15 offsets), one PackBits-style segment
/// per sample (8-bit). Returns the samples planar: all of sample 0, then 1, then 2.
public func decodeRLEFrame(_ bytes: [UInt8], width: Int, height: Int, samples: Int, source: String, frame: Int) throws -> [UInt8] {
    func fail(_ problem: String) -> SonoQuantError { SonoQuantError(source, "RLE frame \(frame + 1): \(problem)", kind: .badImage) }
    guard bytes.count >= 64 else { throw fail("shorter than its 64-byte header") }
    func u32(_ at: Int) -> Int { Int(UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24) }
    let segmentCount = u32(0)
    guard segmentCount == samples else { throw fail("\(segmentCount) segments, expected \(samples) (one per 8-bit sample)") }
    let count = width * height
    var output = [UInt8](repeating: 0, count: count * samples)
    for segment in 0..<segmentCount {
        let start = u32(4 + 4 * segment)
        let end = segment + 1 < segmentCount ? u32(8 + 4 * segment) : bytes.count
        guard start >= 64, start <= end, end <= bytes.count else { throw fail("segment \(segment) offsets \(start)..<\(end) are outside the frame's \(bytes.count) bytes") }
        var i = start, written = 0
        let base = segment * count
        while i < end && written < count {
            let n = Int(Int8(bitPattern: bytes[i]))
            i += 1
            if n >= 0 {
                let run = n + 1
                guard i + run <= end, written + run <= count else { throw fail("segment \(segment): a literal run overruns the data") }
                for k in 0..<run { output[base + written + k] = bytes[i + k] }
                i += run
                written += run
            } else if n > -128 {
                let run = 1 - n
                guard i < end, written + run <= count else { throw fail("segment \(segment): a repeat run overruns the frame") }
                for k in 0..<run { output[base + written + k] = bytes[i] }
                i += 1
                written += run
            }
        }
        guard written == count else { throw fail("segment \(segment) decodes to \(written) bytes, expected \(count)") }
    }
    return output
}
