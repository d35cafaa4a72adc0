// Reading the DICOM files an ultrasound machine writes (PS3.10 files: 128-byte preamble, "DICM", the group-2
// file meta information in explicit VR little endian, then the data set in the file's transfer syntax).
// Only what `segment` needs is kept: the image pixel module (rows, columns, samples, photometric
// interpretation, bits, frames, pixel data), PixelSpacing and the Sequence of Ultrasound Regions. Nothing
// identifying (patient, study, dates) is read into memory beyond the raw bytes, so nothing can leak into
// outputs. Every length is checked against the bytes that are there: a corrupt or hostile file gives a
// one-line error naming the file, the element and the byte offset, never a trap.
import Foundation
import QuantEngine

/// The transfer syntaxes this reader decodes. Others (big endian, deflate, JPEG lossless, JPEG-LS, JPEG 2000,
/// video) are refused by name.
public enum TransferSyntax: String, Sendable, CaseIterable {
    case implicitLittleEndian = "1.2.840.10008.1.2"
    case explicitLittleEndian = "1.2.840.10008.1.2.1"
    case jpegBaseline = "1.2.840.10008.1.2.4.50"
    case rleLossless = "1.2.840.10008.1.2.5"

    var isEncapsulated: Bool { self == .jpegBaseline || self == .rleLossless }

    /// Names of the common syntaxes this reader does not decode, for the error message.
    static let unsupportedNames: [String: String] = [
        "1.2.840.10008.1.2.2": "explicit VR big endian (retired)",
        "1.2.840.10008.1.2.1.99": "deflated explicit VR little endian",
        "1.2.840.10008.1.2.4.51": "JPEG extended (12-bit)",
        "1.2.840.10008.1.2.4.57": "JPEG lossless",
        "1.2.840.10008.1.2.4.70": "JPEG lossless, first-order prediction",
        "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
        "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
        "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
        "1.2.840.10008.1.2.4.91": "JPEG 2000",
        "1.2.840.10008.1.2.4.100": "MPEG-2 video",
        "1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264 video",
    ]
}

/// Tags (group << 16 | element) this reader uses.
enum Tag {
    static let transferSyntax: UInt32 = 0x0002_0010
    static let samplesPerPixel: UInt32 = 0x0028_0002
    static let photometricInterpretation: UInt32 = 0x0028_0004
    static let planarConfiguration: UInt32 = 0x0028_0006
    static let numberOfFrames: UInt32 = 0x0028_0008
    static let rows: UInt32 = 0x0028_0010
    static let columns: UInt32 = 0x0028_0011
    static let pixelSpacing: UInt32 = 0x0028_0030
    static let bitsAllocated: UInt32 = 0x0028_0100
    static let bitsStored: UInt32 = 0x0028_0101
    static let pixelRepresentation: UInt32 = 0x0028_0103
    static let ultrasoundRegions: UInt32 = 0x0018_6011
    static let regionMinX0: UInt32 = 0x0018_6018
    static let regionMinY0: UInt32 = 0x0018_601A
    static let regionMaxX1: UInt32 = 0x0018_601C
    static let regionMaxY1: UInt32 = 0x0018_601E
    static let physicalUnitsX: UInt32 = 0x0018_6024
    static let physicalUnitsY: UInt32 = 0x0018_6026
    static let physicalDeltaX: UInt32 = 0x0018_602C
    static let physicalDeltaY: UInt32 = 0x0018_602E
    static let pixelData: UInt32 = 0x7FE0_0010
    static let item: UInt32 = 0xFFFE_E000
    static let itemDelimitation: UInt32 = 0xFFFE_E00D
    static let sequenceDelimitation: UInt32 = 0xFFFE_E0DD

    static func text(_ tag: UInt32) -> String { String(format: "(%04X,%04X)", tag >> 16, tag & 0xFFFF) }

    /// The VRs of the tags above, for implicit VR files (which do not say).
    static let implicitVR: [UInt32: String] = [
        samplesPerPixel: "US", photometricInterpretation: "CS", planarConfiguration: "US", numberOfFrames: "IS", rows: "US",
        columns: "US", pixelSpacing: "DS", bitsAllocated: "US", bitsStored: "US", pixelRepresentation: "US",
        ultrasoundRegions: "SQ", regionMinX0: "UL", regionMinY0: "UL", regionMaxX1: "UL", regionMaxY1: "UL",
        physicalUnitsX: "US", physicalUnitsY: "US", physicalDeltaX: "FD", physicalDeltaY: "FD", pixelData: "OW",
    ]
}

/// One data element: its VR and value bytes, or the items of a sequence, or the fragments of encapsulated
/// pixel data.
struct Element {
    var vr: String
    var value: ArraySlice<UInt8> = []
    var items: [[UInt32: Element]] = []
    /// Encapsulated pixel data: the basic offset table (first item) and the fragments after it.
    var offsetTable: ArraySlice<UInt8>? = nil
    var fragments: [ArraySlice<UInt8>] = []
    /// Byte offset of the element in the file, for messages.
    var offset: Int
}

/// A cursor over the file's bytes that never reads past the end.
struct ByteReader {
    let bytes: [UInt8]
    let source: String
    var offset: Int

    var remaining: Int { bytes.count - offset }

    func failure(_ problem: String, at position: Int? = nil) -> SonoQuantError {
        SonoQuantError(source, "\(problem) (byte \(position ?? offset))", kind: .badImage)
    }

    mutating func u16() throws -> UInt16 {
        guard remaining >= 2 else { throw failure("truncated: file ends inside an element header") }
        defer { offset += 2 }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    mutating func u32() throws -> UInt32 {
        guard remaining >= 4 else { throw failure("truncated: file ends inside an element header") }
        defer { offset += 4 }
        return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    mutating func take(_ count: Int, what: String) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw failure("truncated: \(what) is \(count) bytes but only \(max(0, remaining)) remain")
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }
}

let undefinedLength: UInt32 = 0xFFFF_FFFF
/// VRs whose explicit-VR header has 2 reserved bytes and a 4-byte length.
private let longVRs: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]
/// Sequences nest; a hostile file could nest without end.
private let maxDepth = 16

/// Parses elements until `end` (a defined length) or, when `end` is nil, until an item delimitation
/// (an item of undefined length) or the end of the file (the top-level data set).
/// `onlyGroup`: stop before the first element of another group (the file meta information is group 0002).
func parseDataSet(_ r: inout ByteReader, end: Int?, explicitVR: Bool, depth: Int, topLevel: Bool = false,
                  onlyGroup: UInt16? = nil) throws -> [UInt32: Element] {
    guard depth <= maxDepth else { throw r.failure("sequences nested deeper than \(maxDepth) levels") }
    var elements: [UInt32: Element] = [:]
    while true {
        if let end {
            if r.offset == end { break }
            guard r.offset < end else { throw r.failure("an element runs past the end of its item") }
        } else if r.remaining == 0 {
            guard topLevel else { throw r.failure("truncated: file ends inside a sequence item") }
            break
        }
        if let onlyGroup, r.remaining >= 2, UInt16(r.bytes[r.offset]) | UInt16(r.bytes[r.offset + 1]) << 8 != onlyGroup { break }
        let start = r.offset
        let tag = UInt32(try r.u16()) << 16 | UInt32(try r.u16())
        if tag == Tag.itemDelimitation {
            guard end == nil, !topLevel else { throw r.failure("unexpected item delimitation", at: start) }
            _ = try r.u32()
            break
        }
        let vr: String
        let length: UInt32
        if explicitVR && tag >> 16 != 0xFFFE {
            let vrBytes = try r.take(2, what: "the VR of \(Tag.text(tag))")
            guard vrBytes.allSatisfy({ (0x41...0x5A).contains($0) }) else {
                throw r.failure("element \(Tag.text(tag)) has no valid VR (bytes \(vrBytes.map { String(format: "%02x", $0) }.joined(separator: " "))): not explicit VR little endian as the file says", at: start)
            }
            vr = String(decoding: vrBytes, as: UTF8.self)
            if longVRs.contains(vr) {
                _ = try r.u16()
                length = try r.u32()
            } else {
                length = UInt32(try r.u16())
            }
        } else {
            vr = Tag.implicitVR[tag] ?? (tag >> 16 == 0xFFFE ? "" : "UN")
            length = try r.u32()
        }
        guard tag >> 16 != 0xFFFE else { throw r.failure("unexpected item tag \(Tag.text(tag)) outside a sequence", at: start) }
        var element = Element(vr: vr, offset: start)
        if tag == Tag.pixelData && length == undefinedLength {
            try parseEncapsulatedPixelData(&r, into: &element)
        } else if vr == "SQ" || length == undefinedLength {
            // A sequence (or an undefined-length UN, which holds implicit VR items).
            let sequenceEnd: Int? = length == undefinedLength ? nil : try endOffset(r, length, what: "sequence \(Tag.text(tag))")
            element.items = try parseSequenceItems(&r, end: sequenceEnd, explicitVR: explicitVR && vr != "UN", depth: depth + 1)
        } else {
            element.value = try r.take(Int(length), what: "the value of \(Tag.text(tag))")
        }
        elements[tag] = element
        // The pixel data ends the image: what follows (trailing padding, digital signatures) is not needed.
        if tag == Tag.pixelData && topLevel { break }
    }
    return elements
}

private func endOffset(_ r: ByteReader, _ length: UInt32, what: String) throws -> Int {
    guard Int(length) <= r.remaining else {
        throw r.failure("truncated: \(what) is \(length) bytes but only \(r.remaining) remain")
    }
    return r.offset + Int(length)
}

private func parseSequenceItems(_ r: inout ByteReader, end: Int?, explicitVR: Bool, depth: Int) throws -> [[UInt32: Element]] {
    var items: [[UInt32: Element]] = []
    while true {
        if let end, r.offset >= end {
            guard r.offset == end else { throw r.failure("an item runs past the end of its sequence") }
            break
        }
        let start = r.offset
        let tag = UInt32(try r.u16()) << 16 | UInt32(try r.u16())
        let length = try r.u32()
        if tag == Tag.sequenceDelimitation {
            guard end == nil else { throw r.failure("sequence delimitation inside a defined-length sequence", at: start) }
            break
        }
        guard tag == Tag.item else { throw r.failure("expected a sequence item, found \(Tag.text(tag))", at: start) }
        let itemEnd: Int? = length == undefinedLength ? nil : try endOffset(r, length, what: "a sequence item")
        items.append(try parseDataSet(&r, end: itemEnd, explicitVR: explicitVR, depth: depth))
    }
    return items
}

/// Encapsulated pixel data (PS3.5 A.4): items of defined length until the sequence delimitation; the first
/// is the basic offset table, the others are fragments of the compressed frames.
private func parseEncapsulatedPixelData(_ r: inout ByteReader, into element: inout Element) throws {
    var first = true
    while true {
        let start = r.offset
        let tag = UInt32(try r.u16()) << 16 | UInt32(try r.u16())
        let length = try r.u32()
        if tag == Tag.sequenceDelimitation { break }
        guard tag == Tag.item, length != undefinedLength else {
            throw r.failure("encapsulated pixel data: expected a fragment item, found \(Tag.text(tag))", at: start)
        }
        let value = try r.take(Int(length), what: "a pixel data fragment")
        if first { element.offsetTable = value } else { element.fragments.append(value) }
        first = false
    }
}

/// The parsed file: its transfer syntax and the elements of its data set.
struct DICOMDataSet {
    var transferSyntax: TransferSyntax
    var elements: [UInt32: Element]
    var source: String

    init(bytes: [UInt8], source: String) throws {
        self.source = source
        guard bytes.count >= 132, bytes[128..<132].elementsEqual(Array("DICM".utf8)) else {
            throw SonoQuantError(source, "not a DICOM file (no \"DICM\" marker at byte 128)", kind: .badImage)
        }
        var reader = ByteReader(bytes: bytes, source: source, offset: 132)
        // File meta information: group 0002, always explicit VR little endian.
        let meta = try parseDataSet(&reader, end: nil, explicitVR: true, depth: 0, topLevel: true, onlyGroup: 0x0002)
        guard let syntaxElement = meta[Tag.transferSyntax] else {
            throw SonoQuantError(source, "no transfer syntax (0002,0010) in the file meta information", kind: .badImage)
        }
        let uid = decodeText(syntaxElement.value)
        guard let syntax = TransferSyntax(rawValue: uid) else {
            let name = TransferSyntax.unsupportedNames[uid].map { " (\($0))" } ?? ""
            throw SonoQuantError(source, "transfer syntax \(uid)\(name) has no decoder here; supported: uncompressed little endian, JPEG baseline, RLE lossless", kind: .badImage)
        }
        transferSyntax = syntax
        elements = try parseDataSet(&reader, end: nil, explicitVR: syntax != .implicitLittleEndian, depth: 0, topLevel: true)
    }

    // MARK: Values

    func element(_ tag: UInt32, _ name: String) throws -> Element {
        guard let element = elements[tag] else { throw SonoQuantError(source, "no \(name) \(Tag.text(tag)) in the file", kind: .badImage) }
        return element
    }

    func unsignedShort(_ tag: UInt32, _ name: String, in set: [UInt32: Element]? = nil) throws -> Int? {
        guard let element = (set ?? elements)[tag] else { return nil }
        guard element.value.count == 2, ["US", "UN", "SS"].contains(element.vr) else {
            throw SonoQuantError(source, "\(name) \(Tag.text(tag)): expected a 2-byte US value, found VR \(element.vr) with \(element.value.count) bytes", kind: .badImage)
        }
        let v = element.value
        return Int(UInt16(v[v.startIndex]) | UInt16(v[v.startIndex + 1]) << 8)
    }

    func unsignedLong(_ tag: UInt32, _ name: String, in set: [UInt32: Element]) throws -> Int? {
        guard let element = set[tag] else { return nil }
        guard element.value.count == 4, ["UL", "UN"].contains(element.vr) else {
            throw SonoQuantError(source, "\(name) \(Tag.text(tag)): expected a 4-byte UL value, found VR \(element.vr) with \(element.value.count) bytes", kind: .badImage)
        }
        let v = element.value, s = v.startIndex
        return Int(UInt32(v[s]) | UInt32(v[s + 1]) << 8 | UInt32(v[s + 2]) << 16 | UInt32(v[s + 3]) << 24)
    }

    func double(_ tag: UInt32, _ name: String, in set: [UInt32: Element]) throws -> Double? {
        guard let element = set[tag] else { return nil }
        guard element.value.count == 8, ["FD", "UN"].contains(element.vr) else {
            throw SonoQuantError(source, "\(name) \(Tag.text(tag)): expected an 8-byte FD value, found VR \(element.vr) with \(element.value.count) bytes", kind: .badImage)
        }
        var bits: UInt64 = 0
        for (i, byte) in element.value.enumerated() { bits |= UInt64(byte) << (8 * UInt64(i)) }
        return Double(bitPattern: bits)
    }

    func text(_ tag: UInt32) -> String? { elements[tag].map { decodeText($0.value) } }

    /// A DS or IS value: decimal strings separated by backslashes.
    func numbers(_ tag: UInt32, _ name: String) throws -> [Double]? {
        guard let text = text(tag) else { return nil }
        let values = text.split(separator: "\\").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0?.isFinite ?? false }) else {
            throw SonoQuantError(source, "\(name) \(Tag.text(tag)): expected numbers, found \"\(text.prefix(40))\"", kind: .badImage)
        }
        return values.map { $0! }
    }
}

/// A text value without its padding (spaces, NUL).
func decodeText(_ bytes: ArraySlice<UInt8>) -> String {
    String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
}
