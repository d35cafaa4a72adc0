// libFuzzer harness for the DICOM reader: any byte string through `decodeDICOM` (the file meta, the data
// set in each transfer syntax, sequences, encapsulated fragments, RLE and JPEG frames, ultrasound regions) and,
// when it decodes, the pixel-size lookup. Compiled by scripts/fuzz.sh into one module with Sources/DICOM.
// The contract under test: a consistent DICOMImage or a SonoQuantError; never a trap, an out-of-bounds read
// or an allocation without bound.
import Foundation
import ImageCodecs

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDICOM(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    guard let image = try? decodeDICOM(bytes: bytes, source: "fuzz-input") else { return 0 }
    precondition(!image.frames.isEmpty)
    for frame in image.frames {
        precondition(frame.width == image.frames[0].width && frame.height == image.frames[0].height)
        precondition(frame.pixels.count == frame.width * frame.height && frame.width > 0 && frame.height > 0)
    }
    var notes: [String] = []
    for point in [(0.0, 0.0), (Double(image.frames[0].width) / 2, Double(image.frames[0].height) / 2)] {
        if let size = try? image.pixelSize(atX: point.0, y: point.1, notes: &notes) {
            precondition(size.millimetres.isFinite && size.millimetres > 0)
        }
    }
    return 0
}
