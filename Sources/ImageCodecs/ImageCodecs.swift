// ImageCodecs: 8-bit gray PNG/JPEG decoding and PNG encoding on top of libpng and libjpeg.
//
// Every failure (empty, truncated, corrupt, foreign or absurdly large file) is a `SonoQuantError`
// that names the file and the problem; nothing here traps or exits.
//
// Conventions
// - Decoding always gives 8-bit gray. PNG: palettes are expanded, alpha is dropped (not composited),
//   16-bit samples are scaled to 8 bits by libpng (v * 255 / 65535, rounded), colour becomes gray by
//   the ITU-R BT.601 luma L = (19595 R + 38470 G + 7471 B + 32768) >> 16, the integer form of
//   0.299 R + 0.587 G + 0.114 B that PIL's `convert("L")` uses. A PNG's gAMA chunk is honoured by
//   libpng only when it differs materially from sRGB (HC18 frames have none).
//   JPEG: libjpeg's gray output, which is the Y (luma) channel, the same BT.601 weights.
// - Any side over `ImageLimits.maxSide` or more than `ImageLimits.maxPixels` pixels is rejected
//   before the pixel buffer is allocated.
import CImageCodecs
import CJPEGShim
import Foundation
import QuantEngine

/// An 8-bit single-channel image, row-major, `pixels.count == width * height`.
public struct GrayImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height,
                     "GrayImage: \(pixels.count) pixels do not fill \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public subscript(x: Int, y: Int) -> UInt8 {
        get { pixels[y * width + x] }
        set { pixels[y * width + x] = newValue }
    }
}

/// An 8-bit RGB image, row-major and interleaved (R, G, B per pixel); used for overlays.
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) bytes do not fill \(width)x\(height)x3")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The gray image repeated in all three channels.
    public init(gray: GrayImage) {
        var rgb = [UInt8](repeating: 0, count: gray.pixels.count * 3)
        for i in 0..<gray.pixels.count {
            rgb[3 * i] = gray.pixels[i]
            rgb[3 * i + 1] = gray.pixels[i]
            rgb[3 * i + 2] = gray.pixels[i]
        }
        self.init(width: gray.width, height: gray.height, pixels: rgb)
    }
}

/// Limits that protect against absurd headers (a 100 kB file claiming 60000x60000 pixels).
public enum ImageLimits: Sendable {
    public static let maxSide = 16384
    public static let maxPixels = 100_000_000
    /// Files larger than this are not read at all.
    public static let maxFileBytes = 512 * 1024 * 1024
}

/// BT.601 luma in the integer form PIL uses for `convert("L")`.
@inline(__always)
public func grayFromRGB(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
    let red = UInt32(r) * 19595, green = UInt32(g) * 38470, blue = UInt32(b) * 7471
    return UInt8((red + green + blue + 0x8000) >> 16)
}

// MARK: - Decoding

/// Reads a PNG or JPEG file (recognised by its signature, not its extension) as 8-bit gray.
public func readGrayImage(path: String) throws -> GrayImage {
    try decodeGrayImage(bytes: readImageFile(path: path), source: path)
}

/// Decodes PNG or JPEG bytes (recognised by signature) as 8-bit gray; `source` names them in errors.
public func decodeGrayImage(bytes: [UInt8], source: String) throws -> GrayImage {
    if bytes.isEmpty { throw SonoQuantError(source, "empty file (0 bytes), expected a PNG or JPEG image", kind: .badImage) }
    if bytes.starts(with: pngSignature) { return try decodePNG(bytes: bytes, source: source) }
    if bytes.starts(with: [0xFF, 0xD8]) { return try decodeJPEG(bytes: bytes, source: source) }
    throw SonoQuantError(source, "not a PNG or JPEG image (unrecognised signature \(hexPrefix(bytes)))", kind: .badImage)
}

private let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

private func hexPrefix(_ bytes: [UInt8]) -> String {
    bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
}

private func readImageFile(path: String) throws -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw SonoQuantError(path, "no such file", kind: .fileNotFound)
    }
    if isDirectory.boolValue { throw SonoQuantError(path, "is a directory, expected an image file", kind: .unreadable) }
    let attributes = try? FileManager.default.attributesOfItem(atPath: path)
    if let size = attributes?[.size] as? NSNumber, size.intValue > ImageLimits.maxFileBytes {
        throw SonoQuantError(path, "file is \(size.intValue) bytes, larger than the \(ImageLimits.maxFileBytes)-byte limit for an image", kind: .badImage)
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw SonoQuantError(path, "cannot read file", kind: .unreadable)
    }
    return [UInt8](data)
}

private func checkDimensions(width: Int, height: Int, source: String) throws {
    if width <= 0 || height <= 0 { throw SonoQuantError(source, "image has no pixels (\(width)x\(height))", kind: .badImage) }
    if width > ImageLimits.maxSide || height > ImageLimits.maxSide || width * height > ImageLimits.maxPixels {
        throw SonoQuantError(source, "image is \(width)x\(height), larger than the limit (\(ImageLimits.maxSide) per side, \(ImageLimits.maxPixels) pixels)", kind: .badImage)
    }
}

/// libpng's simplified-API message buffer (a fixed C array) as a Swift string.
private func pngMessage(_ image: inout png_image) -> String {
    withUnsafeBytes(of: &image.message) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// PNG through libpng's simplified API (png_image_*), which catches libpng's internal longjmp
/// itself and reports errors as a return value, so no jump ever crosses Swift frames.
public func decodePNG(bytes: [UInt8], source: String) throws -> GrayImage {
    if bytes.isEmpty { throw SonoQuantError(source, "empty file (0 bytes), expected a PNG image", kind: .badImage) }
    var image = png_image()
    image.version = png_uint_32(PNG_IMAGE_VERSION)
    defer { png_image_free(&image) }
    let begun = bytes.withUnsafeBytes { raw in
        png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count)
    }
    guard begun != 0 else { throw SonoQuantError(source, "not a readable PNG: \(pngMessage(&image))", kind: .badImage) }
    let width = Int(image.width), height = Int(image.height)
    try checkDimensions(width: width, height: height, source: source)

    // Treat 16-bit samples as already gamma-encoded (as every viewer and PIL do) so libpng only
    // rescales them to 8 bits instead of converting "linear" light to sRGB.
    image.flags |= png_uint_32(PNG_IMAGE_FLAG_16BIT_sRGB)
    // An image with alpha is read with it: then libpng never composites, and we drop alpha ourselves. A
    // plain gray image (every HC18 frame) is read as it is stored, one byte per pixel: half the output of
    // the gray + alpha read, and no per-pixel copy after it (all 1,998 PNGs of the HC18 training set: 4.59 -> 4.04 s on one thread, the same pixels).
    let isColor = image.format & png_uint_32(PNG_FORMAT_FLAG_COLOR) != 0
    let hasAlpha = image.format & png_uint_32(PNG_FORMAT_FLAG_ALPHA) != 0
    // (PNG_FORMAT_RGBA / PNG_FORMAT_GA are compound macros Swift does not import.)
    let alpha = png_uint_32(PNG_FORMAT_FLAG_ALPHA), color = png_uint_32(PNG_FORMAT_FLAG_COLOR)
    // Gray without alpha: PNG_FORMAT_GRAY (0), one byte per pixel, which is already the result.
    let (format, channels): (png_uint_32, Int) = isColor ? (color | alpha, 4) : (hasAlpha ? (alpha, 2) : (0, 1))
    image.format = format
    var buffer = [UInt8](repeating: 0, count: width * height * channels)
    let finished = buffer.withUnsafeMutableBytes { raw in
        png_image_finish_read(&image, nil, raw.baseAddress, 0, nil)
    }
    guard finished != 0 else { throw SonoQuantError(source, "corrupt or truncated PNG: \(pngMessage(&image))", kind: .badImage) }
    if channels == 1 { return GrayImage(width: width, height: height, pixels: buffer) }

    var gray = [UInt8](repeating: 0, count: width * height)
    if isColor {
        for i in 0..<gray.count {
            gray[i] = grayFromRGB(buffer[4 * i], buffer[4 * i + 1], buffer[4 * i + 2])
        }
    } else {
        for i in 0..<gray.count { gray[i] = buffer[2 * i] }
    }
    return GrayImage(width: width, height: height, pixels: gray)
}

/// JPEG through the small C shim (Sources/CJPEGShim), which owns the setjmp libjpeg's error
/// handling needs. Corrupt-data warnings from libjpeg are errors here.
public func decodeJPEG(bytes: [UInt8], source: String) throws -> GrayImage {
    if bytes.isEmpty { throw SonoQuantError(source, "empty file (0 bytes), expected a JPEG image", kind: .badImage) }
    var pixels: UnsafeMutablePointer<UInt8>? = nil
    var width: Int32 = 0, height: Int32 = 0
    var message = [CChar](repeating: 0, count: 256)
    let status = bytes.withUnsafeBufferPointer { data in
        sq_jpeg_decode_gray(data.baseAddress, data.count, ImageLimits.maxSide, ImageLimits.maxPixels,
                            &pixels, &width, &height, &message, message.count)
    }
    defer { sq_jpeg_free(pixels) }
    guard status == 0, let pixels else {
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw SonoQuantError(source, "corrupt, truncated or unsupported JPEG: \(text)", kind: .badImage)
    }
    try checkDimensions(width: Int(width), height: Int(height), source: source)
    let count = Int(width) * Int(height)
    return GrayImage(width: Int(width), height: Int(height),
                     pixels: [UInt8](UnsafeBufferPointer(start: pixels, count: count)))
}

// MARK: - Encoding

/// PNG bytes of a gray image (8-bit gray, no alpha).
public func encodePNG(_ image: GrayImage) throws -> [UInt8] {
    try encodePNG(pixels: image.pixels, width: image.width, height: image.height,
                  format: png_uint_32(PNG_FORMAT_GRAY), what: "gray image")
}

/// PNG bytes of an RGB image (8-bit RGB, no alpha).
public func encodePNG(_ image: RGBImage) throws -> [UInt8] {
    try encodePNG(pixels: image.pixels, width: image.width, height: image.height,
                  format: png_uint_32(PNG_FORMAT_RGB), what: "RGB image")
}

/// Writes a gray PNG atomically (temporary file + rename).
public func writePNG(_ image: GrayImage, to path: String) throws {
    try writeFileAtomically(path: path, bytes: encodePNG(image))
}

/// Writes an RGB PNG atomically (temporary file + rename).
public func writePNG(_ image: RGBImage, to path: String) throws {
    try writeFileAtomically(path: path, bytes: encodePNG(image))
}

private func encodePNG(pixels: [UInt8], width: Int, height: Int, format: png_uint_32, what: String) throws -> [UInt8] {
    try checkDimensions(width: width, height: height, source: what)
    var image = png_image()
    image.version = png_uint_32(PNG_IMAGE_VERSION)
    image.width = png_uint_32(width)
    image.height = png_uint_32(height)
    image.format = format
    defer { png_image_free(&image) }
    // First call with no buffer asks for the encoded size; the second writes.
    var size = 0
    let sized = pixels.withUnsafeBytes { raw in
        png_image_write_to_memory(&image, nil, &size, 0, raw.baseAddress, 0, nil)
    }
    guard sized != 0 else { throw SonoQuantError(what, "PNG encoding failed: \(pngMessage(&image))", kind: .cannotWrite) }
    var out = [UInt8](repeating: 0, count: size)
    let written = pixels.withUnsafeBytes { raw in
        out.withUnsafeMutableBytes { dst in
            png_image_write_to_memory(&image, dst.baseAddress, &size, 0, raw.baseAddress, 0, nil)
        }
    }
    guard written != 0 else { throw SonoQuantError(what, "PNG encoding failed: \(pngMessage(&image))", kind: .cannotWrite) }
    return Array(out.prefix(size))
}
