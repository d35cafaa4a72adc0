// libFuzzer harness for the image loaders: PNG (libpng simplified API) and JPEG (libjpeg via the C shim)
// from bytes, as `segment`, `evaluate` and the dataset read frames. Compiled by scripts/fuzz.sh into one
// module with Sources/ImageCodecs. The contract under test: any byte string decodes to a consistent
// GrayImage or throws SonoQuantError; it never traps, reads out of bounds or allocates without bound.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImages(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    // The signature dispatch, then each decoder on its own (so a JPEG seed also exercises the PNG
    // decoder's rejection path and vice versa).
    for decode in [decodeGrayImage, decodePNG, decodeJPEG] {
        if let image = try? decode(bytes, "fuzz-input") {
            precondition(image.pixels.count == image.width * image.height && image.width > 0 && image.height > 0)
            // Round trip through the encoder: what we decode we must be able to write back.
            if let png = try? encodePNG(image) {
                let again = try? decodePNG(bytes: png, source: "fuzz-reencoded")
                precondition(again == image, "PNG round trip changed the image")
            }
        }
    }
    return 0
}
